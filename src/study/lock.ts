/**
 * Exclusive locks on run and sweep directories: a lock file created with O_EXCL holding the pid of
 * its holder. A lock whose process is gone (killed, crashed) is stale and taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { UserError } from '../errors.js';

/** Whether a process with this pid exists (EPERM: it exists, but belongs to someone else). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Take the lock file `path` for `what` (e.g. "sweep", "training run"); returns its release
 * function (idempotent). A live holder, this process included (each holder releases its lock when
 * it ends), gives a one-line UserError naming its pid and the lock file; a dead one's is taken over.
 */
export function acquireLock(path: string, what: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let text: string;
      try {
        text = readFileSync(path, 'utf8').trim();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile: try again
        throw err;
      }
      const pid = Number(text);
      if (text !== '' && processAlive(pid)) {
        throw new UserError(`${dirname(path)}: another ${what} (pid ${pid}) is writing here; wait for it, or delete ${basename(path)} if it is gone`);
      }
      rmSync(path, { force: true }); // stale: its process is gone (or it died before writing its pid)
    }
  }
  throw new UserError(`${path}: cannot take the ${what} lock; delete ${basename(path)} if no other process is writing to ${dirname(path)}`);
}
