/** `lie-bracket verify`, driven through its Command (registration in main.ts is the lead's). */
import { describe, expect, test } from 'vitest';
import { captureOutput } from '../../test/capture-output.js';
import { UserError } from '../errors.js';
import type { VerifyReport } from '../study/verify-report.js';
import { verifyCommand } from './verify.js';

const io = captureOutput();

const run = async (...args: string[]) => {
  const cmd = verifyCommand().exitOverride();
  await cmd.parseAsync(args, { from: 'user' });
};

describe('lie-bracket verify', () => {
  test('--json: the report, with the run-report fields of the first pair', async () => {
    await run('--model', 'mlp', '--pairs', '0,1;2,3', '--eps', '1e-2,1e-3', '--json');
    const r = JSON.parse(io.out) as VerifyReport;
    expect(r).toMatchObject({ model: 'mlp', loss: 'bce', dtype: 'float64', eps: [1e-2, 1e-3], pair: [0, 1], frozen: false });
    expect(r.relErrors).toHaveLength(2);
    expect(r.orders).toHaveLength(1);
    expect(r.orders[0]!).toBeGreaterThan(0.9);
    expect(r.kinks).toEqual([0, 0]);
    expect(r.pairs).toHaveLength(2);
    expect(r.pairs[1]!.lawHolds).toBe(true);
  });

  test('convnet: says plainly where the expansion is not valid; --frozen restores the law', async () => {
    await run('--model', 'convnet', '--eps', '1e-2,1e-3');
    expect(io.out).toContain('switch state between θ and the stepped points');
    expect(io.out).toContain('the expansion is not valid at ε = 0.001');
    io.out = '';
    await run('--model', 'convnet', '--eps', '1e-2,1e-3', '--frozen', '--json');
    const r = JSON.parse(io.out) as VerifyReport;
    expect(r.frozen).toBe(true);
    expect(r.kinks).toEqual([0, 0]);
    expect(r.pairs[0]!.lawHolds).toBe(true);
  });

  test('--optimizer: the decomposition of a real optimizer’s order effect', async () => {
    await run('--model', 'mlp', '--eps', '1e-3,1e-4', '--optimizer', '{"name":"momentum","lr":0.001,"momentum":0.9}', '--probes', '2');
    expect(io.out).toContain('the bracket explains');
    expect(io.out).toMatch(/state\s/);
  });

  test('bad input: one-line errors', async () => {
    await expect(run('--eps', '1e-2,-1')).rejects.toThrow(/step sizes must be finite numbers > 0/);
    await expect(run('--optimizer', 'run')).rejects.toThrow(UserError);
    await expect(run('--optimizer', '{"name":"adagrad","lr":1}')).rejects.toThrow(/name must be one of/);
    await expect(run('--pairs', '0,100000')).rejects.toThrow(/out of range/);
  });

  test('--help has examples', () => {
    const help = verifyCommand().helpInformation() + '';
    expect(help).toContain('--eps');
    let text = '';
    const cmd = verifyCommand()
      .configureOutput({ writeOut: (s) => (text += s) })
      .exitOverride();
    expect(() => cmd.parse(['--help'], { from: 'user' })).toThrow();
    expect(text).toContain('Examples:');
    expect(text).toContain('--frozen');
  });
});
