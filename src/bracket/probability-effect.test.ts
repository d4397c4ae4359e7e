/**
 * probabilityEffect — J_{p∘f}(z)·v by forward mode — against two oracles: central finite differences
 * of θ ↦ probabilities(f(θ, z)) in float64, and the explicit chain rule J_p(logits)·(J_f·v) with the
 * probability Jacobian written out by hand (sigmoid: p(1 − p); softmax: diag(p) − ppᵀ; grouped:
 * the softmax block of each group, the none option included, and sigmoids for the rest).
 */
import { describe, expect, test } from 'vitest';
import { batch } from '../data/dataset.js';
import { openDataset } from '../data/registry.js';
import { SYNTHETIC_GROUPS } from '../data/synthetic.js';
import { Tensor } from '../engine/tensor.js';
import { concrete } from '../engine/transforms.js';
import { modelFromSpec } from '../nn/spec.js';
import { bce, ce, groupedLoss, type Loss } from '../nn/losses.js';
import { initModel, smoothconvnet, type Model } from '../nn/models.js';
import { evalState } from '../nn/layers.js';
import { bracket, logitEffect, modelLoss, probabilityEffect } from './bracket.js';
import { axpy, type Vec } from './vec.js';

const probs = (model: Model, loss: Loss, p: Vec, z: ReturnType<typeof batch>['x']) =>
  concrete(loss.probabilities(model.apply(p, z, evalState()))).data;

function finiteDifference(model: Model, loss: Loss, p: Vec, z: ReturnType<typeof batch>['x'], v: Vec, h: number): number[] {
  const a = probs(model, loss, axpy(p, h, v), z);
  const b = probs(model, loss, axpy(p, -h, v), z);
  return Array.from(a, (x, i) => (x - b[i]!) / (2 * h));
}

/** J_p(logits)·dLogits per row, with the probability Jacobian written out. */
function chainRule(
  name: 'bce' | 'ce' | 'grouped',
  logits: Float64Array | Float32Array,
  dz: Float64Array | Float32Array,
  n: number,
  k: number,
  group: number[] = [],
): number[] {
  const out = new Array<number>(n * k).fill(0);
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  for (let r = 0; r < n; r++) {
    const row = (j: number) => logits[r * k + j]!;
    const d = (j: number) => dz[r * k + j]!;
    if (name === 'ce' || name === 'grouped') {
      const members = name === 'ce' ? Array.from({ length: k }, (_, j) => j) : group;
      // grouped: the group's softmax has an extra "none" logit fixed at 0 (its tangent is 0)
      const none = name === 'grouped' ? 1 : 0;
      const e = members.map((j) => Math.exp(row(j)));
      const s = e.reduce((a, b) => a + b, 0) + none;
      const p = e.map((x) => x / s);
      const pd = p.reduce((a, pi, i) => a + pi * d(members[i]!), 0);
      members.forEach((j, i) => (out[r * k + j] = p[i]! * (d(j) - pd)));
    }
    for (let j = 0; j < k; j++) {
      if (name === 'ce' || (name === 'grouped' && group.includes(j))) continue;
      const p = sig(row(j));
      out[r * k + j] = p * (1 - p) * d(j);
    }
  }
  return out;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

describe('probabilityEffect', () => {
  const fashion = openDataset('fashion-mnist', 'test', { loss: 'bce' });
  for (const [name, loss] of [
    ['bce', bce],
    ['ce', ce],
  ] as const) {
    test(`smoothconvnet, ${name}: finite differences and the explicit chain rule`, () => {
      const params = initModel(smoothconvnet, 4, 'float64');
      const x = batch(fashion, [0], 'float64');
      const y = batch(fashion, [1], 'float64');
      const z = batch(fashion, [2, 3, 4], 'float64').x;
      const B = bracket(modelLoss(smoothconvnet, loss), params, x, y).bracket;
      const dp = probabilityEffect(smoothconvnet, loss, params, z, B);
      expect(dp.shape).toEqual([3, 10]);
      const fd = finiteDifference(smoothconvnet, loss, params, z, B, 1e-4);
      expect(relErr(dp.data, fd)).toBeLessThan(1e-6);
      const logits = concrete(smoothconvnet.apply(params, z, evalState())).data;
      const dz = logitEffect(smoothconvnet, params, z, B).data;
      expect(relErr(dp.data, chainRule(name, logits, dz, 3, 10))).toBeLessThan(1e-12);
      if (name === 'ce') {
        // a softmax's probabilities sum to 1, so their changes sum to 0 on every probe
        for (let r = 0; r < 3; r++)
          expect(Math.abs(Array.from(dp.data.subarray(r * 10, r * 10 + 10)).reduce((a, b) => a + b, 0))).toBeLessThan(1e-14);
      }
    });
  }

  test('a shift of every logit alike: no change of softmax probabilities, a change of sigmoids', () => {
    const params = initModel(smoothconvnet, 5, 'float64');
    const z = batch(fashion, [0, 1], 'float64').x;
    const v: Vec = {};
    for (const [k, t] of Object.entries(params))
      v[k] = k === 'fc.bias' ? new Tensor(new Float64Array(10).fill(1), [10]) : new Tensor(new Float64Array(t.data.length), t.shape);
    const dz = logitEffect(smoothconvnet, params, z, v).data;
    expect(Math.min(...dz)).toBeCloseTo(1, 12);
    expect(Math.max(...probabilityEffect(smoothconvnet, ce, params, z, v).data.map(Math.abs))).toBeLessThan(1e-15);
    expect(Math.min(...probabilityEffect(smoothconvnet, bce, params, z, v).data)).toBeGreaterThan(0);
  });

  test('grouped loss on a small xresnet (synthetic data): finite differences, chain rule, shift invariance', () => {
    const syn = openDataset('synthetic', 'test', { loss: 'grouped', length: 8, size: 16 });
    const model = modelFromSpec({
      input: [3, 16, 16],
      layers: [{ type: 'conv2d', out: 4, kernel: 3, padding: 1 }, { type: 'silu' }, { type: 'globalavgpool' }, { type: 'linear', out: 6 }],
    });
    const loss = groupedLoss(
      SYNTHETIC_GROUPS.map((g) => ({ name: g.name, allowNone: g.allowNone, members: g.members.map((m) => syn.labelNames.indexOf(m)) })),
      6,
    );
    const params = initModel(model, 2, 'float64');
    const B = bracket(modelLoss(model, loss), params, batch(syn, [0], 'float64'), batch(syn, [1], 'float64')).bracket;
    const z = batch(syn, [2, 3, 4, 5], 'float64').x;
    const dp = probabilityEffect(model, loss, params, z, B);
    expect(relErr(dp.data, finiteDifference(model, loss, params, z, B, 1e-4))).toBeLessThan(1e-6);
    const logits = concrete(model.apply(params, z, evalState())).data;
    expect(relErr(dp.data, chainRule('grouped', logits, logitEffect(model, params, z, B).data, 4, 6, [0, 1]))).toBeLessThan(1e-12);
    expect(dp.shape).toEqual([4, 6]);
  });
});
