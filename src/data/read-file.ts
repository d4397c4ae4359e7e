/**
 * Reading a user-given file (weights, IDX, CelebA lists and images) with one-line `UserError`s for
 * the usual failures. The path is `stat`ed first and must be a regular file: a FIFO, a socket or a
 * device (`/dev/zero`, `/dev/stdin`) is refused before it is opened, since reading one can block
 * forever or never end.
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import { UserError } from '../errors.js';

function explain(path: string, e: unknown): UserError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new UserError(`${path}: file not found; check the path`);
  if (code === 'ENOTDIR') return new UserError(`${path}: file not found (a part of the path is not a directory); check the path`);
  if (code === 'EISDIR') return new UserError(`${path}: is a directory, expected a file`);
  if (code === 'EACCES' || code === 'EPERM') return new UserError(`${path}: permission denied`);
  return new UserError(`${path}: cannot read file (${code ?? (e as Error).message})`);
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'of an unusual kind';
}

/** Throw a one-line `UserError` unless `path` is (a symlink to) an existing regular file. */
export function checkRegularFile(path: string): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw explain(path, e);
  }
  if (st.isDirectory()) throw new UserError(`${path}: is a directory, expected a file`);
  if (!st.isFile()) throw new UserError(`${path}: is ${kindOf(st)}, not a regular file; give a file`);
}

/** Read a whole regular file, turning the usual I/O failures into one-line `UserError`s. */
export function readFileOrExplain(path: string): Uint8Array {
  checkRegularFile(path);
  try {
    return readFileSync(path);
  } catch (e) {
    throw explain(path, e);
  }
}
