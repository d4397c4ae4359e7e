/** The bracket against its identities: antisymmetry, dtype agreement, and the ε² swap law. */
import { describe, expect, test } from 'vitest';
import { bracket, modelLoss, type Example } from '../src/bracket/bracket.js';
import { axpy, norm, scale, sub, type Vec } from '../src/bracket/vec.js';
import { batchOf } from '../src/data/examples.js';
import { loadFashion } from '../src/data/fashion.js';
import type { DType } from '../src/engine/dtype.js';
import { cast } from '../src/engine/ops.js';
import { concrete, grad } from '../src/engine/transforms.js';
import type { Params } from '../src/engine/tree.js';
import { LOSSES } from '../src/nn/losses.js';
import { convnet, initModel, mlp, smoothconvnet, type Model } from '../src/nn/models.js';

const data = loadFashion(undefined, 'test', { limit: 16 });
const ex = (i: number, dtype: DType): Example => {
  const b = batchOf(data, [i], dtype);
  return { x: b.x, t: b.t };
};
const castVec = (v: Vec, dtype: DType): Vec => Object.fromEntries(Object.entries(v).map(([k, t]) => [k, concrete(cast(t, dtype))]));

function sgdStep(f: (p: Params) => ReturnType<typeof cast>, p: Vec, eps: number): Vec {
  const g = grad(f)(p) as Record<string, ReturnType<typeof cast>>;
  return axpy(p, -eps, castVec(g as Vec, p[Object.keys(p)[0]!]!.dtype));
}

function swapErrors(model: Model, lossName: 'bce' | 'ce', epsList: number[]): number[] {
  const params = initModel(model, 3, 'float64');
  const loss = modelLoss(model, LOSSES[lossName]);
  const x = ex(0, 'float64');
  const y = ex(1, 'float64');
  const B = bracket(loss, params, x, y).bracket;
  return epsList.map((eps) => {
    const fx = (p: Params) => loss(p, x);
    const fy = (p: Params) => loss(p, y);
    const xy = sgdStep(fy, sgdStep(fx, params, eps), eps);
    const yx = sgdStep(fx, sgdStep(fy, params, eps), eps);
    return norm(sub(scale(sub(xy, yx), 1 / (eps * eps)), B)) / norm(B);
  });
}

describe('bracket identities', () => {
  for (const model of [mlp, convnet, smoothconvnet]) {
    test(`${model.name}: B(x, y) = −B(y, x) and B(x, x) = 0`, () => {
      const params = initModel(model, 1, 'float64');
      const loss = modelLoss(model, LOSSES.bce);
      const bxy = bracket(loss, params, ex(2, 'float64'), ex(3, 'float64'));
      const byx = bracket(loss, params, ex(3, 'float64'), ex(2, 'float64'));
      const n = norm(bxy.bracket);
      expect(n).toBeGreaterThan(0);
      expect(norm(axpy(bxy.bracket, 1, byx.bracket)) / n).toBeLessThan(1e-12);
      expect(norm(bracket(loss, params, ex(2, 'float64'), ex(2, 'float64')).bracket)).toBeLessThan(1e-12 * n);
      expect(bxy.lossX).toBeCloseTo(byx.lossY, 12);
    });

    test(`${model.name}: float32 bracket within 1e-4 relative of float64`, () => {
      const p64 = initModel(model, 2, 'float64');
      const p32 = castVec(p64, 'float32');
      const loss = modelLoss(model, LOSSES.ce);
      const b64 = bracket(loss, p64, ex(4, 'float64'), ex(5, 'float64')).bracket;
      const b32 = bracket(loss, p32, ex(4, 'float32'), ex(5, 'float32')).bracket;
      expect(Object.values(b32).every((t) => t.dtype === 'float32')).toBe(true);
      expect(norm(sub(castVec(b32, 'float64'), b64)) / norm(b64)).toBeLessThan(1e-4);
    });
  }
});

describe('the ε² swap law (float64)', () => {
  test('tanh MLP: ‖(θ_xy − θ_yx)/ε² − B‖/‖B‖ falls about 10× per decade of ε', () => {
    const errs = swapErrors(mlp, 'bce', [1e-2, 1e-3, 1e-4]);
    for (let i = 1; i < errs.length; i++) {
      const ratio = errs[i - 1]! / errs[i]!;
      expect(ratio).toBeGreaterThan(7);
      expect(ratio).toBeLessThan(14);
    }
    expect(errs[2]).toBeLessThan(1e-2);
  });
  test('smooth convnet (silu, avg-pool) obeys the same law', () => {
    const errs = swapErrors(smoothconvnet, 'ce', [1e-2, 1e-3]);
    expect(errs[0]! / errs[1]!).toBeGreaterThan(7);
  });
});

describe('analyzePairs recycles each pair’s intermediates', () => {
  test('statistics, probe effects and kept vectors equal direct brackets (large activations, poisoned pool)', async () => {
    const { analyzePairs } = await import('../src/bracket/analysis.js');
    const { logitEffect } = await import('../src/bracket/bracket.js');
    const { pairStats } = await import('../src/bracket/pair-stats.js');
    const { modelFromSpec } = await import('../src/nn/spec.js');
    const { Scratch } = await import('../src/engine/scratch.js');
    const { openDataset } = await import('../src/data/registry.js');
    const { batch } = await import('../src/data/dataset.js');
    const ds = openDataset('fashion-mnist', 'test', { loss: 'bce' });
    const one = (i: number): Example => batch(ds, [i], 'float64');
    // 32 × 28 × 28 activations (25,088 elements) and the 10 × 6,272 read-out come from the scratch pool
    const model = modelFromSpec({
      input: [1, 28, 28],
      layers: [
        { type: 'conv2d', out: 32, kernel: 3, padding: 1 },
        { type: 'silu' },
        { type: 'avgpool2d', kernel: 2 },
        { type: 'flatten' },
        { type: 'linear', out: 10 },
      ],
    });
    const params = initModel(model, 5, 'float64');
    const loss = LOSSES.bce;
    const pairs: [number, number][] = [
      [0, 1],
      [2, 3],
      [1, 2],
    ];
    const input = {
      model,
      loss,
      dtype: 'float64' as const,
      params,
      forward: () => ({ training: false, buffers: {}, updates: {} }),
      data: ds,
      probes: ds,
    };
    const scratch = new Scratch({ poison: true });
    const got = analyzePairs(input, pairs, { probeIndices: [4, 5], keepVectors: true, scratch });
    expect(scratch.stats.buffers).toBeGreaterThan(0); // the pool was used
    const lossFn = modelLoss(model, loss);
    const z = batch(ds, [4, 5], 'float64').x;
    pairs.forEach(([x, y], i) => {
      const r = bracket(lossFn, params, one(x), one(y));
      const want = pairStats(x, y, r);
      expect(got.pairs[i]!.bracketNorm).toBe(want.bracketNorm);
      expect(got.pairs[i]!.tensors).toEqual(want.tensors);
      const eff = logitEffect(model, params, z, r.bracket);
      expect(got.pairs[i]!.probeEffects!.flat()).toEqual(Array.from(eff.data));
      for (const [k, t] of Object.entries(r.bracket)) expect(Array.from(got.vectors![i]!.bracket[k]!.data), k).toEqual(Array.from(t.data));
    });
  });
});
