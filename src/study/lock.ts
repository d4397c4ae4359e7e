/**
 * Exclusive locks on run and sweep directories: a lock file created with O_EXCL holding its
 * holder's pid, host name and a token unique to the holding process. A lock whose process is gone
 * (killed, crashed) is stale and taken over. On this host that is decided by the pid — and by the
 * token when the pid is this process's own, as after a container restart, where the new process
 * gets the dead one's pid (often 1). A lock from another host cannot be checked: it is refused,
 * naming the host. `releaseHeldLocks` releases this process's locks (the CLI calls it on SIGTERM).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import { UserError } from '../errors.js';

/** This process's token: tells its locks from a dead process's that had the same pid. */
const TOKEN = randomBytes(8).toString('hex');

interface Holder {
  pid: number;
  host?: string;
  token?: string;
}

/** The lock file's holder: JSON, or a bare pid (locks written before host and token were recorded). */
function parseHolder(text: string): Holder | null {
  if (/^\d+$/.test(text)) return { pid: Number(text) };
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    return typeof h.pid === 'number'
      ? { pid: h.pid, ...(typeof h.host === 'string' ? { host: h.host } : {}), ...(typeof h.token === 'string' ? { token: h.token } : {}) }
      : null;
  } catch {
    return null;
  }
}

/** The releases of the locks this process holds. */
const held = new Set<() => void>();

/** Release every lock this process holds (on SIGTERM, before exiting). */
export function releaseHeldLocks(): void {
  for (const release of [...held]) release();
}

/** Whether a process with this pid exists on this host (EPERM: it exists, but belongs to someone else). */
function processAlive(pid: number, token: string | undefined): boolean {
  if (pid === process.pid) return token === undefined || token === TOKEN;
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
        writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), token: TOKEN }));
      } finally {
        closeSync(fd);
      }
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        held.delete(release);
        rmSync(path, { force: true });
      };
      held.add(release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let text: string;
      try {
        text = readFileSync(path, 'utf8').trim();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile: try again
        throw err;
      }
      const h = parseHolder(text);
      if (h && h.host !== undefined && h.host !== hostname()) {
        throw new UserError(
          `${dirname(path)}: another ${what} (pid ${h.pid} on host ${h.host}) is writing here; wait for it, or delete ${basename(path)} if it is gone`,
        );
      }
      if (h && processAlive(h.pid, h.token)) {
        throw new UserError(
          `${dirname(path)}: another ${what} (pid ${h.pid}) is writing here; wait for it, or delete ${basename(path)} if it is gone`,
        );
      }
      rmSync(path, { force: true }); // stale: its process is gone (or it died before writing its pid)
    }
  }
  throw new UserError(`${path}: cannot take the ${what} lock; delete ${basename(path)} if no other process is writing to ${dirname(path)}`);
}
