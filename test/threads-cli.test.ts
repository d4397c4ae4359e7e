/** `--threads N` and LIE_BRACKET_THREADS on the command line: results identical across thread counts, bad values one-line errors. */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { captureOutput, expectOneLineError } from './capture-output.js';
import { main } from '../src/cli/main.js';
import { threads } from '../src/engine/kernels/threads.js';

const io = captureOutput();
const run = (...args: string[]) => main(['node', 'lie-bracket', ...args]);

describe('--threads', () => {
  test('a bracket is bit-identical at 1, 2 and 3 threads, and --threads holds for that command only', async () => {
    const before = threads();
    const outs: string[] = [];
    for (const t of ['1', '2', '3']) {
      io.out = '';
      expect(await run('--threads', t, 'bracket', '--model', 'convnet', '--dtype', 'float32', '--pairs', '0,1', '--probes', '4', '--json')).toBe(0);
      const r = JSON.parse(io.out);
      delete r.seconds;
      outs.push(JSON.stringify(r));
      expect(threads()).toBe(before);
    }
    expect(outs[1]).toBe(outs[0]);
    expect(outs[2]).toBe(outs[0]);
  });

  test('--threads 0 and a bad LIE_BRACKET_THREADS (read once, when the process starts) are one-line errors with exit 2', async () => {
    expectOneLineError(io, await run('bracket', '--threads', '0'), /--threads must be an integer ≥ 1, got "0"/);
    const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');
    const r = spawnSync(process.execPath, [cli, 'bracket', '--pairs', '0,1'], {
      env: { ...process.env, LIE_BRACKET_THREADS: 'many' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/LIE_BRACKET_THREADS/);
  });
});
