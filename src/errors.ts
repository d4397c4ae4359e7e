/**
 * An error caused by the user's input (a bad flag, a corrupt file, a wrong shape). The CLI prints
 * its message as one line and exits non-zero; anything else is a bug and keeps its stack.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
}
