/** Test helper: run `fn`, assert it throws a one-line UserError, and return the message. */
import { expect } from 'vitest';
import { UserError } from '../src/errors.js';

export function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n');
    return msg;
  }
  throw new Error('expected a UserError');
}
