/**
 * Hardening of the analysis commands (issue 13): answers that must not depend on what else was
 * asked for, degenerate inputs that must be refused or reported as such, and user errors that must
 * be one line with exit 2.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { captureOutput } from './capture-output.js';
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
    const xs = [0, 1, 2].map(() => new Tensor(Float64Array.from({ length: 784 }, () => rng.normal()), [1, 1, 28, 28]));
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
    expect(await run('train', '--model', bnFile, '--steps', '2', '--train-size', '64', '--eval-size', '16', '--dtype', 'float64', '--out', runDir, '--json')).toBe(0);
    expect(await run('sweep', runDir, '--steps', '2', '--pairs', '0,1', '--probes', '2', '--bn', 'train', '--workers', '1', '--json')).toBe(0);
    const line = JSON.parse(readFileSync(join(runDir, 'sweep', 'results.jsonl'), 'utf8').trim().split('\n')[0]!);
    for (let k = 0; k < 2; k++) {
      const one = await json('bracket', '--run', runDir, '--step', '2', '--pairs', '0,1', '--bn', 'train', '--probe', String(k));
      expect(relDiff(line.probeEffects[k], one.pairs[0].logitEffect)).toBeLessThan(1e-12);
    }
  });
});
