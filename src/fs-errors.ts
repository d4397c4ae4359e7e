/**
 * File-system failures as user errors: an errno error from node:fs (EACCES, ENOTDIR, EISDIR,
 * ENOSPC, EEXIST, …) becomes one line naming the path and what to do, instead of a stack trace.
 */
import { UserError } from './errors.js';

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'is a directory, expected a file',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EEXIST: 'already exists and is in the way',
  EROFS: 'the file system is read-only',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  ELOOP: 'too many symbolic links',
  ENOTEMPTY: 'the directory is not empty',
  EBUSY: 'the file is busy',
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
  const reason = REASONS[e.code!] ?? e.code!;
  const doing = what ?? VERBS[e.syscall ?? ''] ?? 'cannot write';
  return new UserError(`${where}: ${doing}: ${reason}; check the path and its permissions`);
}
