/** The `lie-bracket` command, in process: output schema, and one-line errors with a non-zero exit for bad input. */
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { captureOutput, expectOneLineError } from './capture-output.js';
import { main } from '../src/cli/main.js';
import { DEFAULT_DATA_DIR } from '../src/data/fashion.js';
import { readSafetensors, serializeSafetensors, writeSafetensors } from '../src/data/safetensors.js';
import { Tensor } from '../src/engine/tensor.js';
import { initModel, mlp } from '../src/nn/models.js';

const io = captureOutput();

const run = (...args: string[]) => main(['node', 'lie-bracket', ...args]);
const tmp = mkdtempSync(join(tmpdir(), 'lb-cli-'));

describe('lie-bracket bracket', () => {
  test('--json prints exactly one object with the documented fields', async () => {
    expect(await run('bracket', '--model', 'mlp', '--pairs', '0,1;2,3', '--probe', '4', '--json')).toBe(0);
    const lines = io.out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!);
    expect(r).toMatchObject({ model: 'mlp', loss: 'bce', dtype: 'float64', paramCount: 101770 });
    expect(r.pairs).toHaveLength(2);
    const p = r.pairs[0];
    for (const k of ['x', 'y', 'lossX', 'lossY', 'gradNormX', 'gradNormY', 'bracketNorm', 'tensors', 'logitEffect']) expect(p).toHaveProperty(k);
    expect(Object.keys(p.tensors)).toEqual(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    expect(Object.keys(p.tensors['fc1.weight'])).toEqual(['bracketNorm', 'bracketRms', 'gradNormX', 'gradNormY', 'gradRmsX', 'gradRmsY']);
    expect(p.logitEffect).toHaveLength(10);
    const sq = Object.values(p.tensors as Record<string, { bracketNorm: number }>).reduce((s, t) => s + t.bracketNorm ** 2, 0);
    expect(Math.sqrt(sq)).toBeCloseTo(p.bracketNorm, 8);
  });

  test('a readable table without --json; weights from safetensors give the same numbers as the seed', async () => {
    const w = join(tmp, 'mlp.safetensors');
    writeSafetensors(w, initModel(mlp, 7, 'float32'));
    expect(await run('bracket', '--weights', w, '--dtype', 'float32', '--pairs', '5,6')).toBe(0);
    expect(io.out).toMatch(/pair \(x,y\)/);
    expect(io.out).toMatch(/fc1\.weight/);
    const table = io.out;
    io.out = '';
    expect(await run('bracket', '--seed', '7', '--dtype', 'float32', '--pairs', '5,6')).toBe(0);
    expect(io.out.split('\n').slice(2)).toEqual(table.split('\n').slice(2));
  });

  test('--save-vectors writes the full bracket with keys <x>_<y>/<param>', async () => {
    const f = join(tmp, 'vectors.safetensors');
    expect(await run('bracket', '--pairs', '0,1', '--save-vectors', f, '--json')).toBe(0);
    const { tensors } = readSafetensors(f);
    expect(Object.keys(tensors).sort()).toEqual(['0_1/fc1.bias', '0_1/fc1.weight', '0_1/fc2.bias', '0_1/fc2.weight']);
    const r = JSON.parse(io.out);
    const n = Math.sqrt(Object.values(tensors).reduce((s, t) => s + t.toArray().reduce((a, v) => a + v * v, 0), 0));
    expect(n).toBeCloseTo(r.pairs[0].bracketNorm, 8);
  });
});

describe('bad input: one line on stderr, non-zero exit, no output file', () => {
  const weightsWith = (mutate: (t: Record<string, Tensor>) => void, name: string) => {
    const t = initModel(mlp, 1, 'float32');
    mutate(t);
    const f = join(tmp, name);
    writeSafetensors(f, t);
    return f;
  };

  test('missing weights file', async () => {
    expectOneLineError(io, await run('bracket', '--weights', join(tmp, 'nope.safetensors')), /nope\.safetensors.*not found/i);
  });
  test('weights of the wrong shape', async () => {
    const f = weightsWith((t) => (t['fc1.weight'] = new Tensor(new Float32Array(10 * 784), [10, 784])), 'shape.safetensors');
    expectOneLineError(io, await run('bracket', '--weights', f), /fc1\.weight has shape \[10,784\], model mlp expects \[128,784\]/);
  });
  test('NaN weights', async () => {
    const f = weightsWith((t) => (t['fc2.bias']!.data[3] = NaN), 'nan.safetensors');
    expectOneLineError(io, await run('bracket', '--weights', f), /fc2\.bias.*NaN/);
  });
  test('Inf weights', async () => {
    const f = weightsWith((t) => (t['fc1.bias']!.data[0] = -Infinity), 'inf.safetensors');
    expectOneLineError(io, await run('bracket', '--weights', f), /fc1\.bias.*Inf/);
  });
  test('a header over 100 MB', async () => {
    const f = join(tmp, 'huge.safetensors');
    const b = new Uint8Array(16);
    new DataView(b.buffer).setBigUint64(0, 200_000_000n, true);
    writeFileSync(f, b);
    expectOneLineError(io, await run('bracket', '--weights', f), /100 MB/);
  });
  test('offsets outside the file', async () => {
    const good = serializeSafetensors(initModel(mlp, 1, 'float32'));
    const f = join(tmp, 'truncated.safetensors');
    writeFileSync(f, good.subarray(0, good.length - 100));
    expectOneLineError(io, await run('bracket', '--weights', f), /truncated\.safetensors/);
  });
  test('an unknown dtype', async () => {
    const header = JSON.stringify({ 'fc2.bias': { dtype: 'I8', shape: [10], data_offsets: [0, 10] } });
    const pad = ' '.repeat((8 - (header.length % 8)) % 8);
    const h = Buffer.from(header + pad);
    const f = join(tmp, 'dtype.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    writeFileSync(f, Buffer.concat([len, h, Buffer.alloc(10)]));
    expectOneLineError(io, await run('bracket', '--weights', f), /I8/);
  });
  test('IDX with a wrong magic number', async () => {
    const dir = mkdtempSync(join(tmp, 'idx-'));
    for (const f of ['t10k-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz']) copyFileSync(join(DEFAULT_DATA_DIR, f), join(dir, f));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(Buffer.from([0, 0, 0x99, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28])));
    expectOneLineError(io, await run('bracket', '--data', dir), /t10k-images-idx3-ubyte\.gz/);
  });
  test('a truncated IDX file', async () => {
    const dir = mkdtempSync(join(tmp, 'idx-'));
    copyFileSync(join(DEFAULT_DATA_DIR, 't10k-labels-idx1-ubyte.gz'), join(dir, 't10k-labels-idx1-ubyte.gz'));
    const header = Buffer.from([0, 0, 8, 3, 0, 0, 0x03, 0xe8, 0, 0, 0, 28, 0, 0, 0, 28]);
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), Buffer.concat([header, Buffer.alloc(784 * 10)]));
    expectOneLineError(io, await run('bracket', '--data', dir), /truncated|short|expected/i);
  });
  test('a missing data directory', async () => {
    expectOneLineError(io, await run('bracket', '--data', join(tmp, 'no-such-dir')), /not found/);
  });
  test('an example index out of range', async () => {
    expectOneLineError(io, await run('bracket', '--pairs', '0,5000'), /5000 is out of range/);
  });
  test('a probe index out of range', async () => {
    expectOneLineError(io, await run('bracket', '--probe', '1000'), /1000 is out of range/);
  });
  test('malformed pairs', async () => {
    expectOneLineError(io, await run('bracket', '--pairs', '0-1'), /pairs must look like/);
  });
  test('unknown model, dtype, loss and flag', async () => {
    expectOneLineError(io, await run('bracket', '--model', 'resnet'), /unknown model "resnet"/);
    io.err = '';
    expectOneLineError(io, await run('bracket', '--dtype', 'float16'), /float16.*invalid/);
    io.err = '';
    expectOneLineError(io, await run('bracket', '--loss', 'mse'), /mse.*invalid/);
    io.err = '';
    expectOneLineError(io, await run('bracket', '--frobnicate'), /unknown option/);
  });
  test('a failed run leaves no vectors file behind', async () => {
    const f = join(tmp, 'never.safetensors');
    expect(await run('bracket', '--pairs', '0,9999', '--save-vectors', f)).not.toBe(0);
    expect(existsSync(f)).toBe(false);
  });
});

test('--help describes every flag', async () => {
  expect(await run('bracket', '--help')).toBe(0);
  for (const flag of ['--model', '--weights', '--seed', '--data', '--split', '--pairs', '--loss', '--dtype', '--probe', '--save-vectors', '--json']) {
    expect(io.out).toContain(flag);
  }
});

describe('bracket on a run, with a probe batch', () => {
  test('--run/--step with --first and --probes ranks the outputs', async () => {
    const { train, parseTrainConfig, lossFor } = await import('../src/study/train.js');
    const { openDataset } = await import('../src/data/registry.js');
    const { resolveModel } = await import('../src/study/resolve.js');
    const config = parseTrainConfig({ model: 'mlp', steps: 3, evalSize: 20, trainSize: 100 }, 'test');
    const trainSet = openDataset('fashion-mnist', 'train', { loss: 'bce' });
    const testSet = openDataset('fashion-mnist', 'test', { loss: 'bce' });
    const dir = join(tmp, 'run-for-bracket');
    train({ config, train: trainSet, test: testSet, model: resolveModel('mlp', trainSet), loss: lossFor(config, trainSet) }, dir);
    expect(await run('bracket', '--run', dir, '--step', '2', '--first', '3', '--probes', '4', '--json')).toBe(0);
    const r = JSON.parse(io.out);
    expect(r.weights).toBe(`${dir} step 2`);
    expect(r.dtype).toBe('float32');
    expect(r.pairs.map((p: { x: number; y: number }) => [p.x, p.y])).toEqual([
      [0, 1],
      [0, 2],
      [1, 2],
    ]);
    expect(r.pairs[0].probeEffects).toHaveLength(4);
    expect(r.features).toHaveLength(10);
    expect(r.features[0].meanAbsEffect).toBeGreaterThanOrEqual(r.features[9].meanAbsEffect);
    io.out = '';
    expect(await run('bracket', '--run', dir, '--step', '7')).not.toBe(0);
    expect(io.err).toMatch(/no checkpoint at step 7; available: 0, 1, 2, 3/);
    io.err = '';
    expect(await run('bracket', '--run', dir, '--model', 'convnet')).not.toBe(0);
    expect(io.err).toMatch(/--model cannot be combined with --run/);
  });
});
