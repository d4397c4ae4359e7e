/** All-pairs brackets: the projected O(N)-HVP algorithm agrees with the direct one and with `bracket`. */
import { describe, expect, test } from 'vitest';
import { batchOf } from '../data/examples.js';
import { loadFashion } from '../data/fashion.js';
import { Rng } from '../engine/random.js';
import { Tensor } from '../engine/tensor.js';
import { LOSSES } from '../nn/losses.js';
import { convnet, initModel, mlp, smoothconvnet, type Model } from '../nn/models.js';
import { bracket, logitEffect, modelLoss, type Example } from './bracket.js';
import { allPairsCost, allPairsLogitEffects, projectedBrackets } from './projected.js';
import { dot, type Vec } from './vec.js';

const data = loadFashion(undefined, 'test', { limit: 16 });
const examples = (idx: number[]): Example[] => idx.map((i) => batchOf(data, [i], 'float64'));

function maxAbs(ms: readonly Float64Array[]): number {
  let m = 0;
  for (const a of ms) for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function maxDiff(a: readonly Float64Array[], b: readonly Float64Array[]): number {
  let m = 0;
  a.forEach((x, d) => x.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[d]![i]!)))));
  return m;
}

function expectAntisymmetric(ms: readonly Float64Array[], n: number): void {
  for (const m of ms) {
    for (let i = 0; i < n; i++) {
      expect(m[i * n + i]).toBe(0);
      for (let j = 0; j < n; j++) expect(m[i * n + j]! + m[j * n + i]!).toBe(0);
    }
  }
}

function randomDirection(params: Vec, seed: number): Vec {
  const rng = new Rng(seed);
  return Object.fromEntries(
    Object.entries(params).map(([k, t]) => [
      k,
      new Tensor(
        Float64Array.from({ length: t.size }, () => rng.normal()),
        t.shape,
      ),
    ]),
  );
}

describe('all-pairs logit-effect matrices (float64, N = 5)', () => {
  for (const model of [convnet, mlp, smoothconvnet] as Model[]) {
    test(`${model.name}: projected == direct to 1e-9, antisymmetric, and entry (i, j) = J_f(z)·bracket(x_i, x_j)`, () => {
      const params = initModel(model, 7, 'float64');
      const ex = examples([0, 1, 2, 3, 4]);
      const probes = model === mlp ? [9, 10] : [9]; // 2 (1) probes × 10 outputs
      const z = batchOf(data, probes, 'float64').x;
      const d = probes.length * 10;
      const direct = allPairsLogitEffects(model, LOSSES.bce, params, ex, z, { method: 'direct' });
      const proj = allPairsLogitEffects(model, LOSSES.bce, params, ex, z, { method: 'projected' });
      expect(direct.method).toBe('direct');
      expect(proj.method).toBe('projected');
      expect(proj.matrices.length).toBe(d);
      expect(proj.counts.hvps).toBe(5 * d);
      expect(direct.counts.brackets).toBe(10);
      const scale = maxAbs(direct.matrices);
      expect(scale).toBeGreaterThan(0);
      expect(maxDiff(direct.matrices, proj.matrices)).toBeLessThan(1e-9 * scale);
      expectAntisymmetric(proj.matrices, 5);
      expectAntisymmetric(direct.matrices, 5);
      // one entry against the plain bracket
      const b = bracket(modelLoss(model, LOSSES.bce), params, ex[1]!, ex[3]!).bracket;
      const le = logitEffect(model, params, z, b).data;
      for (let q = 0; q < d; q++) expect(Math.abs(proj.matrices[q]![1 * 5 + 3]! - le[q]!)).toBeLessThan(1e-9 * scale);
    });
  }

  test('arbitrary directions: projected == direct, u·B_ij', () => {
    const params = initModel(mlp, 8, 'float64');
    const ex = examples([5, 6, 7, 8, 9]);
    const lossFn = modelLoss(mlp, LOSSES.ce);
    const dirs = [randomDirection(params, 1), randomDirection(params, 2)];
    const direct = projectedBrackets(lossFn, params, ex, dirs, { method: 'direct' });
    const proj = projectedBrackets(lossFn, params, ex, dirs, { method: 'projected' });
    const scale = maxAbs(direct.matrices);
    expect(maxDiff(direct.matrices, proj.matrices)).toBeLessThan(1e-9 * scale);
    expectAntisymmetric(proj.matrices, 5);
    const b = bracket(lossFn, params, ex[4]!, ex[0]!).bracket;
    expect(Math.abs(proj.matrices[1]![4 * 5 + 0]! - dot(dirs[1]!, b))).toBeLessThan(1e-9 * scale);
  });
});

describe('choosing the algorithm', () => {
  test('few examples, many directions: direct; many examples: projected', () => {
    expect(allPairsCost(5, 10, { probes: 1, outputs: 10 }).cheaper).toBe('direct');
    expect(allPairsCost(256, 10, { probes: 1, outputs: 10, flopRatio: 1 / 866 }).cheaper).toBe('projected');
    const c = allPairsCost(256, 10, { probes: 1, outputs: 10 });
    expect(c.projected).toBeLessThan(c.direct / 10);
  });

  test('auto reports the method it used and gives the same matrices', () => {
    const params = initModel(mlp, 9, 'float64');
    const ex = examples([0, 1, 2, 3]);
    const z = batchOf(data, [11], 'float64').x;
    const auto = allPairsLogitEffects(mlp, LOSSES.bce, params, ex, z);
    expect(auto.method).toBe(auto.cost.cheaper);
    const other = allPairsLogitEffects(mlp, LOSSES.bce, params, ex, z, { method: auto.method === 'direct' ? 'projected' : 'direct' });
    expect(maxDiff(auto.matrices, other.matrices)).toBeLessThan(1e-9 * maxAbs(auto.matrices));
  });
});
