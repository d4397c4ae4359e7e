/**
 * Test helper: capture what a CLI command writes. Call it at the top of a file or describe block;
 * before each test the captured text is cleared and process.stdout/stderr writes go to `io.out`
 * and `io.err` instead of the terminal (restored after each test).
 */
import { afterEach, beforeEach, vi } from 'vitest';

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
