/**
 * Hardening of the analysis commands (issue 13): answers that must not depend on what else was
 * asked for, degenerate inputs that must be refused or reported as such, and user errors that must
 * be one line with exit 2.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { captureOutput, expectOneLineError } from './capture-output.js';
import { main } from '../src/cli/main.js';
import { concatenate as concat } from '../src/engine/ops.js';
import { Rng } from '../src/engine/random.js';
import { Tensor } from '../src/engine/tensor.js';
import { concrete } from '../src/engine/transforms.js';
import type { Params } from '../src/engine/tree.js';
import { perExampleState, trainState } from '../src/nn/layers.js';
import { initBuffers, initModel } from '../src/nn/models.js';
import { modelFromSpec } from '../src/nn/spec.js';

const io = captureOutput();
const run = (...args: string[]) => main(['node', 'lie-bracket', ...args]);
const tmp = mkdtempSync(join(tmpdir(), 'lb-hard-'));

const bnSpec = {
  input: [1, 28, 28],
  layers: [{ type: 'conv2d', out: 4, kernel: 3 }, { type: 'batchnorm2d' }, { type: 'tanh' }, { type: 'flatten' }, { type: 'linear', out: 10 }],
};
const bnFile = join(tmp, 'bn.json');
writeFileSync(bnFile, JSON.stringify(bnSpec));

const relDiff = (a: readonly number[], b: readonly number[]) => {
  let num = 0;
  let den = 0;
  a.forEach((v, i) => {
    num += (v - b[i]!) ** 2;
    den += v * v;
  });
  return Math.sqrt(num / den);
};

async function json(...args: string[]): Promise<any> {
  io.out = '';
  const code = await run(...args, '--json');
  if (code !== 0) throw new Error(`exit ${code}: ${io.err}`);
  return JSON.parse(io.out);
}

describe('--bn train: each example is normalised by its own statistics', () => {
  test('the model on a batch in per-example mode equals each example alone as a batch of one', () => {
    const m = modelFromSpec(bnSpec);
    const params = initModel(m, 3, 'float64') as Params;
    const buffers = initBuffers(m);
    const rng = new Rng(5);
    const xs = [0, 1, 2].map(
      () =>
        new Tensor(
          Float64Array.from({ length: 784 }, () => rng.normal()),
          [1, 1, 28, 28],
        ),
    );
    const together = concrete(m.apply(params, concrete(concat(xs, 0)), perExampleState(buffers))).toArray();
    const alone = xs.flatMap((x) => concrete(m.apply(params, x, trainState(buffers))).toArray());
    expect(relDiff(together, alone)).toBeLessThan(1e-13);
    // and batch statistics would have mixed the examples
    const mixed = concrete(m.apply(params, concrete(concat(xs, 0)), trainState(buffers))).toArray();
    expect(relDiff(mixed, alone)).toBeGreaterThan(1e-3);
  });

  test('bracket: a probe’s effect does not depend on the other probes (the issue’s reproduction)', async () => {
    const base = ['bracket', '--model', bnFile, '--bn', 'train', '--pairs', '0,1;2,3'];
    const batch = await json(...base, '--probes', '3');
    for (let k = 0; k < 3; k++) {
      const one = await json(...base, '--probe', String(k));
      for (let p = 0; p < 2; p++) expect(relDiff(batch.pairs[p].probeEffects[k], one.pairs[p].logitEffect)).toBeLessThan(1e-12);
    }
  });

  test('sweep --bn train: the probe effects equal bracket --probe k at the same checkpoint', async () => {
    const runDir = join(tmp, 'bn-run');
    expect(
      await run(
        'train',
        '--model',
        bnFile,
        '--steps',
        '2',
        '--train-size',
        '64',
        '--eval-size',
        '16',
        '--dtype',
        'float64',
        '--out',
        runDir,
        '--json',
      ),
    ).toBe(0);
    expect(await run('sweep', runDir, '--steps', '2', '--pairs', '0,1', '--probes', '2', '--bn', 'train', '--workers', '1', '--json')).toBe(0);
    const line = JSON.parse(
      readFileSync(join(runDir, 'sweep', 'results.jsonl'), 'utf8')
        .trim()
        .split('\n')[0]!,
    );
    for (let k = 0; k < 2; k++) {
      const one = await json('bracket', '--run', runDir, '--step', '2', '--pairs', '0,1', '--bn', 'train', '--probe', String(k));
      expect(relDiff(line.probeEffects[k], one.pairs[0].logitEffect)).toBeLessThan(1e-12);
    }
  });
});

describe('identical examples', () => {
  test('bracket of (x, x) is exactly 0, with zero logit effects and a cosine of 1', async () => {
    const r = await json('bracket', '--model', 'smoothconvnet', '--pairs', '3,3', '--probe', '1');
    const p = r.pairs[0];
    expect(p.bracketNorm).toBe(0);
    expect(p.logitEffect.every((v: number) => v === 0)).toBe(true);
    expect(p.gradCosine).toBeCloseTo(1, 12);
    expect(p.gradCosine).toBeLessThanOrEqual(1);
  });

  test('verify of (x, x) says there is nothing to verify (exit 2) instead of printing NaN', async () => {
    expectOneLineError(io, await run('verify', '--model', 'smoothconvnet', '--pairs', '3,3'), /identical examples: nothing to verify/);
  });

  test('verify with an identical pair among others reports it as such, without NaN, and takes the figures from a real pair', async () => {
    const r = await json('verify', '--model', 'smoothconvnet', '--pairs', '3,3;0,1', '--eps', '1e-2,1e-3');
    expect(r.pairs[0]).toMatchObject({ x: 3, y: 3, verdict: 'identical examples: nothing to verify', lawHolds: false, relErrors: [] });
    expect(r.pair).toEqual([0, 1]);
    expect(r.relErrors.every((v: unknown) => typeof v === 'number' && Number.isFinite(v))).toBe(true);
    io.out = '';
    expect(await run('verify', '--model', 'smoothconvnet', '--pairs', '3,3;0,1', '--eps', '1e-2,1e-3')).toBe(0);
    expect(io.out).toMatch(/pair 3,3: ‖B‖ = 0\.000e\+0.*\n\s+→ identical examples: nothing to verify/);
    expect(io.out).not.toMatch(/NaN/);
  });

  test('--first together with --pairs is an error, not a silent override', async () => {
    expectOneLineError(io, await run('bracket', '--first', '3', '--pairs', '0,1'), /either --pairs or --first/);
  });
});

describe('file-system errors and shape errors: one line, exit 2, no stack', () => {
  const aFile = join(tmp, 'a-file');
  writeFileSync(aFile, 'x');
  const aDir = mkdtempSync(join(tmp, 'a-dir-'));

  test('train --out under a file (ENOTDIR)', async () => {
    expectOneLineError(
      io,
      await run('train', '--model', 'mlp', '--steps', '1', '--out', join(aFile, 'run')),
      /a-file\/run.*not a directory|a-file.*a part of the path is a file/,
    );
  });
  test('bracket --save-vectors under a file (ENOTDIR), and onto a directory (EISDIR)', async () => {
    expectOneLineError(io, await run('bracket', '--save-vectors', join(aFile, 'v.safetensors')), /v\.safetensors|a-file/);
    io.err = '';
    expectOneLineError(
      io,
      await run('bracket', '--save-vectors', aDir, '--json'),
      new RegExp(`${aDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*is a directory`),
    );
  });
  test('sweep --out onto a file (EEXIST / ENOTDIR)', async () => {
    const runDir = join(tmp, 'bn-run'); // trained above
    expectOneLineError(io, await run('sweep', runDir, '--steps', '2', '--pairs', '0,1', '--probes', '0', '--workers', '1', '--out', aFile), /a-file/);
  });
  test('stats --out onto a directory (EISDIR)', async () => {
    expectOneLineError(io, await run('stats', join(tmp, 'bn-run', 'sweep'), '--bootstrap', '10', '--out', aDir), /is a directory/);
  });
  test('report --png under a file (ENOTDIR)', async () => {
    expectOneLineError(io, await run('report', join(tmp, 'bn-run'), '--out', join(tmp, 'r.html'), '--png', join(aFile, 'png')), /a-file/);
  });
  test('an unknown flag is bad input: exit 2', async () => {
    expect(await run('bracket', '--no-such-flag')).toBe(2);
  });
  test('a model whose input has another image shape of the same size is refused (it would scramble the data)', async () => {
    const spec = join(tmp, 'wrong-shape.json');
    writeFileSync(
      spec,
      JSON.stringify({ input: [4, 14, 14], layers: [{ type: 'conv2d', out: 2, kernel: 3 }, { type: 'flatten' }, { type: 'linear', out: 10 }] }),
    );
    expectOneLineError(io, await run('bracket', '--model', spec), /takes input \[4,14,14\] but fashion-mnist has \[1,28,28\]/);
  });
});

describe('resource guards', () => {
  const specFile = (name: string, spec: unknown) => {
    const f = join(tmp, name);
    writeFileSync(f, JSON.stringify(spec));
    return f;
  };
  test('a layer too large for any array is refused up front, with its size', async () => {
    const f = specFile('huge.json', {
      input: [1, 28, 28],
      layers: [{ type: 'flatten' }, { type: 'linear', out: 1e7 }, { type: 'tanh' }, { type: 'linear', out: 10 }],
    });
    expectOneLineError(io, await run('bracket', '--model', f), /parameter 1\.weight of shape \[10000000,784\] has 7\.84e\+9 values/);
  });
  test('a model that would not fit in memory is refused with the estimate', async () => {
    const { checkFitsInMemory } = await import('../src/study/resolve.js');
    const m = modelFromSpec({
      input: [1, 28, 28],
      layers: [{ type: 'flatten' }, { type: 'linear', out: 100000 }, { type: 'tanh' }, { type: 'linear', out: 10 }],
    });
    expect(() => checkFitsInMemory(m, { batch: 32, dtype: 'float64' }, 4e9)).toThrow(
      /needs about 5\.5 GB of memory at batch 32 in float64, more than the 4\.0 GB available/,
    );
    expect(() => checkFitsInMemory(m, { batch: 32, dtype: 'float64' }, 8e9)).not.toThrow();
  });
  test('5,000 nested residual blocks give a one-line error', async () => {
    let layer = '{"type":"tanh"}'; // built as text: JSON.stringify itself overflows at this depth
    for (let i = 0; i < 5000; i++) layer = `{"type":"residual","body":[${layer}]}`;
    const f = join(tmp, 'deep.json');
    writeFileSync(f, `{"input":[1,28,28],"layers":[${layer},{"type":"flatten"},{"type":"linear","out":10}]}`);
    expectOneLineError(io, await run('bracket', '--model', f), /nested more than 64 levels deep/);
  });
});

test('a model spec with an unknown key at any depth names it and the closest valid key of that layer type', async () => {
  const f = join(tmp, 'typo.json');
  writeFileSync(
    f,
    JSON.stringify({
      input: [1, 28, 28],
      layers: [{ type: 'residual', body: [{ type: 'conv2d', out: 1, kernal: 3, padding: 1 }] }, { type: 'flatten' }, { type: 'linear', out: 10 }],
    }),
  );
  expectOneLineError(
    io,
    await run('bracket', '--model', f),
    /unknown key layers\[0\]\.body\[0\]\.kernal; did you mean layers\[0\]\.body\[0\]\.kernel\? \(valid keys at layers\[0\]\.body\[0\]: type, out, bias, kernel, stride, padding, dilation, groups\)/,
  );
});

test('every file-system failure is one line naming the path, the reason and what to do', async () => {
  const { fsUserError, isFsError } = await import('../src/fs-errors.js');
  const errno = (code: string, syscall: string, path: string) =>
    Object.assign(new Error(`${code}: x, ${syscall} '${path}'`), { code, syscall, path });
  expect(isFsError(errno('ENOSPC', 'write', '/x'))).toBe(true);
  expect(isFsError(new Error('plain'))).toBe(false);
  expect(fsUserError(errno('ENOSPC', 'write', '/d/f')).message).toBe(
    '/d/f: cannot write: no space left on the device; free some space or choose another path',
  );
  expect(fsUserError(errno('EACCES', 'open', '/d/f')).message).toBe(
    '/d/f: cannot open: permission denied; check its permissions or choose another path',
  );
  expect(fsUserError(errno('EEXIST', 'mkdir', '/d')).message).toBe(
    '/d: cannot create the directory: already exists and is in the way; remove it or choose another path',
  );
  expect(fsUserError(errno('EISDIR', 'rename', '/tmp/.f.tmp'), 'cannot write', '/d/f').message).toBe(
    '/d/f: cannot write: is a directory, expected a file; give a file name',
  );
});

test('a model spec or config that is not a regular file is refused at once (no hang on /dev/zero)', async () => {
  expectOneLineError(io, await run('bracket', '--model', '/dev/zero.json'), /zero\.json/); // not found
  const fifo = join(tmp, 'spec.json');
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [fifo]);
  io.err = '';
  expectOneLineError(io, await run('bracket', '--model', fifo), /named pipe \(FIFO\), not a regular file/);
  io.err = '';
  expectOneLineError(io, await run('train', '--config', '/dev/zero', '--steps', '1'), /\/dev\/zero: is a character device, not a regular file/);
});

test('a sweep directory with other parameters says where long lists part, not two identical-looking prefixes', async () => {
  const { paramsDiffer } = await import('../src/study/sweep.js');
  const pairs = (k: number) => Array.from({ length: k }, (_, i) => [0, i + 1]);
  const a = { pairs: pairs(40) } as never;
  const b = { pairs: pairs(30) } as never;
  expect(paramsDiffer(a, b, [])).toBe('pairs: 40 vs 30 entries, entry 30: [0,31] vs absent');
});
