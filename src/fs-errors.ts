/**
 * File-system failures as user errors: an errno error from node:fs (EACCES, ENOTDIR, EISDIR,
 * ENOSPC, EEXIST, …) becomes one line naming the path and what to do, instead of a stack trace.
 */
import { UserError } from './errors.js';

/** What went wrong, and what to do about it. */
const REASONS: Record<string, [string, string]> = {
  EACCES: ['permission denied', 'check its permissions or choose another path'],
  EPERM: ['operation not permitted', 'check its permissions or choose another path'],
  EROFS: ['the file system is read-only', 'choose another path'],
  ENOENT: ['no such file or directory', 'check the path'],
  ENOTDIR: ['a part of the path is a file, not a directory', 'check the path'],
  EISDIR: ['is a directory, expected a file', 'give a file name'],
  EEXIST: ['already exists and is in the way', 'remove it or choose another path'],
  ENAMETOOLONG: ['the name is too long', 'choose a shorter path'],
  ELOOP: ['too many symbolic links', 'check the path'],
  ENOTEMPTY: ['the directory is not empty', 'choose another path'],
  ENOSPC: ['no space left on the device', 'free some space or choose another path'],
  EDQUOT: ['disk quota exceeded', 'free some space or choose another path'],
  EMFILE: ['too many open files', 'close other programs or raise the limit (ulimit -n)'],
  EBUSY: ['the file is busy', 'try again when it is free'],
};

const VERBS: Record<string, string> = {
  open: 'cannot open',
  read: 'cannot read',
  stat: 'cannot read',
  lstat: 'cannot read',
  scandir: 'cannot list the directory',
  mkdir: 'cannot create the directory',
  rmdir: 'cannot remove',
  unlink: 'cannot remove',
};

/** Whether `e` is an errno error from node:fs (it has a code like 'EACCES' and a syscall). */
export function isFsError(e: unknown): e is NodeJS.ErrnoException {
  const x = e as NodeJS.ErrnoException | null;
  return x !== null && typeof x === 'object' && typeof x.code === 'string' && /^E[A-Z]+$/.test(x.code) && typeof x.syscall === 'string';
}

/** The one-line UserError for an fs error; `what` says what was being done ("cannot write", …), `path` overrides e.path. */
export function fsUserError(e: NodeJS.ErrnoException, what?: string, path?: string): UserError {
  const where = path ?? e.path ?? '(unknown path)';
  const [reason, todo] = REASONS[e.code!] ?? [e.code!, 'check the path'];
  const doing = what ?? VERBS[e.syscall ?? ''] ?? 'cannot write';
  return new UserError(`${where}: ${doing}: ${reason}; ${todo}`);
}
