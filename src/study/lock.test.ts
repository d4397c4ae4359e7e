import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { userError } from '../../test/expect-user-error.js';
import { acquireLock, releaseHeldLocks } from './lock.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-lock-'));

describe('locks', () => {
  test('the lock file records pid, host and a per-process token; a second taker in this process is refused', () => {
    const f = join(dir, 'a.lock');
    const release = acquireLock(f, 'sweep');
    const h = JSON.parse(readFileSync(f, 'utf8')) as { pid: number; host: string; token: string };
    expect(h).toMatchObject({ pid: process.pid, host: hostname() });
    expect(h.token).toMatch(/^[0-9a-f]{16}$/);
    expect(userError(() => acquireLock(f, 'sweep'))).toMatch(new RegExp(`another sweep \\(pid ${process.pid}\\) is writing here`));
    release();
    expect(existsSync(f)).toBe(false);
  });

  test("our own pid with another process's token is stale (a restarted container reuses pid 1) and is taken over", () => {
    const f = join(dir, 'b.lock');
    writeFileSync(f, JSON.stringify({ pid: process.pid, host: hostname(), token: 'deadbeefdeadbeef' }));
    const release = acquireLock(f, 'sweep');
    expect(JSON.parse(readFileSync(f, 'utf8')).token).not.toBe('deadbeefdeadbeef');
    release();
  });

  test('a lock from another host cannot be checked: refused, naming the host', () => {
    const f = join(dir, 'c.lock');
    writeFileSync(f, JSON.stringify({ pid: 1, host: 'node-17', token: 'x' }));
    expect(userError(() => acquireLock(f, 'sweep'))).toMatch(
      /another sweep \(pid 1 on host node-17\) is writing here; wait for it, or delete c\.lock if it is gone/,
    );
  });

  test('releaseHeldLocks releases every lock this process holds (what the CLI does on SIGTERM)', () => {
    const f1 = join(dir, 'd1.lock');
    const f2 = join(dir, 'd2.lock');
    acquireLock(f1, 'sweep');
    acquireLock(f2, 'training');
    releaseHeldLocks();
    expect(existsSync(f1) || existsSync(f2)).toBe(false);
  });
});
