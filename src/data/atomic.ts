/** Write a file so that readers never see it half-written: write a temp file beside it, then rename. */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { fsUserError, isFsError } from '../fs-errors.js';

/** Failures (permissions, a file in the way, a full disk) are one-line UserErrors naming `path`, not the temp file. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirOrExplain(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw isFsError(e) ? fsUserError(e, 'cannot write', path) : e;
  }
}

/** mkdir -p, with failures as one-line UserErrors naming the directory. */
export function mkdirOrExplain(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw isFsError(e) ? fsUserError(e, 'cannot create the directory', dir) : e;
  }
}
