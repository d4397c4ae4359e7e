/**
 * Issue 13 (hardening), the CLI side of the data layer: PyTorch state_dicts with I64
 * num_batches_tracked, missing BatchNorm statistics and --fresh-bn-stats, non-regular weights
 * files, the NaN-weights message.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { captureOutput, expectOneLineError } from './capture-output.js';
import { main } from '../src/cli/main.js';
import { writeSafetensors } from '../src/data/safetensors.js';
import { initModel } from '../src/nn/models.js';
import { modelFromSpec } from '../src/nn/spec.js';

const io = captureOutput();
const run = (...args: string[]) => main(['node', 'lie-bracket', ...args]);
const tmp = mkdtempSync(join(tmpdir(), 'lb-hardening-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SPEC = {
  input: [1, 28, 28],
  layers: [{ type: 'conv2d', out: 4, kernel: 3 }, { type: 'batchnorm2d' }, { type: 'tanh' }, { type: 'flatten' }, { type: 'linear', out: 10 }],
};
const specFile = join(tmp, 'bn.json');
writeFileSync(specFile, JSON.stringify(SPEC));
const model = modelFromSpec(SPEC, 'bn');

/** A hand-built safetensors file: F32 tensors plus I64 ones (what torch's save_file writes for a state_dict). */
function stateDictFile(name: string, opts: { mean?: number[]; variance?: number[]; drop?: string[] } = {}): string {
  const params = initModel(model, 5, 'float32');
  const f32: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, t] of Object.entries(params)) f32[k] = { shape: [...t.shape], data: Float32Array.from(t.data) };
  f32['1.running_mean'] = { shape: [4], data: Float32Array.from(opts.mean ?? [0.1, -0.2, 0.3, 0.05]) };
  f32['1.running_var'] = { shape: [4], data: Float32Array.from(opts.variance ?? [0.5, 2, 1.5, 0.8]) };
  const entries: [string, string, number[], Uint8Array][] = [['1.num_batches_tracked', 'I64', [], new Uint8Array(BigInt64Array.of(300n).buffer)]];
  for (const [k, v] of Object.entries(f32)) entries.push([k, 'F32', v.shape, new Uint8Array(v.data.buffer)]);
  const kept = entries.filter(([k]) => !opts.drop?.includes(k));
  let off = 0;
  const hdr: Record<string, unknown> = {};
  for (const [k, dtype, shape, b] of kept) {
    hdr[k] = { dtype, shape, data_offsets: [off, off + b.length] };
    off += b.length;
  }
  let json = JSON.stringify(hdr);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const h = Buffer.from(json);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const p = join(tmp, name);
  writeFileSync(p, Buffer.concat([len, h, ...kept.map(([, , , b]) => Buffer.from(b))]));
  return p;
}

async function bracketJson(...args: string[]): Promise<{ weights: string; pairs: { bracketNorm: number }[] }> {
  io.out = '';
  io.err = '';
  const code = await run('bracket', '--model', specFile, '--pairs', '0,1', '--probe', '2', '--json', ...args);
  expect(code, io.err).toBe(0);
  return JSON.parse(io.out) as { weights: string; pairs: { bracketNorm: number }[] };
}

describe('PyTorch state_dicts with BatchNorm (points 2 and 3)', () => {
  test('a state_dict with I64 num_batches_tracked loads, and its running statistics are used', async () => {
    const w = stateDictFile('sd.safetensors');
    const r = await bracketJson('--weights', w);
    expect(r.weights).toBe(w);
    // different statistics give a different bracket: the file's statistics are really used
    const other = await bracketJson('--weights', stateDictFile('sd2.safetensors', { mean: [0, 0, 0, 0], variance: [1, 1, 1, 1] }));
    expect(other.pairs[0]!.bracketNorm).not.toBeCloseTo(r.pairs[0]!.bracketNorm, 6);
  });

  test('missing running statistics are an error naming them and the flag', async () => {
    const w = stateDictFile('nostats.safetensors', { drop: ['1.running_mean', '1.running_var', '1.num_batches_tracked'] });
    expectOneLineError(
      io,
      await run('bracket', '--model', specFile, '--weights', w, '--pairs', '0,1'),
      /nostats\.safetensors: BatchNorm running statistics missing: 1\.running_mean, 1\.running_var; .*--fresh-bn-stats/,
    );
  });

  test('--fresh-bn-stats uses mean 0, variance 1 and says so in the report', async () => {
    const w = stateDictFile('nostats2.safetensors', { drop: ['1.running_mean', '1.running_var'] });
    const fresh = await bracketJson('--weights', w, '--fresh-bn-stats');
    expect(fresh.weights).toBe(`${w} (fresh BatchNorm statistics)`);
    const explicit = await bracketJson('--weights', stateDictFile('unit.safetensors', { mean: [0, 0, 0, 0], variance: [1, 1, 1, 1] }));
    expect(fresh.pairs[0]!.bracketNorm).toBe(explicit.pairs[0]!.bracketNorm);
    io.out = '';
    expect(await run('bracket', '--model', specFile, '--weights', w, '--fresh-bn-stats', '--pairs', '0,1', '--probe', '2')).toBe(0);
    expect(io.out).toContain('(fresh BatchNorm statistics)');
  });

  test('--fresh-bn-stats without --weights, or on a model without BatchNorm, is an error', async () => {
    expectOneLineError(io, await run('bracket', '--model', specFile, '--fresh-bn-stats', '--pairs', '0,1'), /--fresh-bn-stats needs --weights/);
    io.err = '';
    const w = join(tmp, 'mlp.safetensors');
    writeSafetensors(w, initModel(modelFromSpec({ input: [1, 28, 28], layers: [{ type: 'flatten' }, { type: 'linear', out: 10 }] }), 1, 'float32'));
    const lin = join(tmp, 'lin.json');
    writeFileSync(lin, JSON.stringify({ input: [1, 28, 28], layers: [{ type: 'flatten' }, { type: 'linear', out: 10 }] }));
    expectOneLineError(
      io,
      await run('bracket', '--model', lin, '--weights', w, '--fresh-bn-stats', '--pairs', '0,1'),
      /has no BatchNorm running statistics/,
    );
  });
});

describe('weights files (points 10b and 13d)', () => {
  test('--weights /dev/zero is refused at once', async () => {
    expectOneLineError(
      io,
      await run('bracket', '--weights', '/dev/zero', '--pairs', '0,1'),
      /\/dev\/zero: is a character device, not a regular file/,
    );
  });

  test('the NaN-weights message names no library option as if it were a flag', async () => {
    const t = initModel(modelFromSpec({ input: [1, 28, 28], layers: [{ type: 'flatten' }, { type: 'linear', out: 10 }] }), 1, 'float32');
    t['1.bias']!.data[0] = NaN;
    const w = join(tmp, 'nan.safetensors');
    writeSafetensors(w, t);
    const lin = join(tmp, 'lin2.json');
    writeFileSync(lin, JSON.stringify({ input: [1, 28, 28], layers: [{ type: 'flatten' }, { type: 'linear', out: 10 }] }));
    expectOneLineError(io, await run('bracket', '--model', lin, '--weights', w, '--pairs', '0,1'), /no lie-bracket flag loads them/);
    expect(io.err).not.toMatch(/pass allowNonFinite/);
  });
});
