/**
 * Test helper: capture what a CLI command writes. Call it at the top of a file or describe block;
 * before each test the captured text is cleared and process.stdout/stderr writes go to `io.out`
 * and `io.err` instead of the terminal (restored after each test).
 */
import { afterEach, beforeEach, expect, vi } from 'vitest';

export function captureOutput(): { out: string; err: string } {
  const io = { out: '', err: '' };
  beforeEach(() => {
    io.out = '';
    io.err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((io.out += String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((io.err += String(s)), true));
  });
  afterEach(() => vi.restoreAllMocks());
  return io;
}

/** Bad input: exit code `code` (2 unless said), one line on stderr matching `pattern`, nothing on stdout. */
export function expectOneLineError(io: { out: string; err: string }, code: number, pattern: RegExp, want = 2): void {
  expect(code).toBe(want);
  expect(io.err.trim().split('\n')).toHaveLength(1);
  expect(io.err).toMatch(pattern);
  expect(io.out).toBe('');
}
