/** Minibatch brackets are bilinear: [v_A, v_B] is the average of the pairwise brackets [v_i, v_j]. */
import { describe, expect, test } from 'vitest';
import { batchOf } from '../data/examples.js';
import { loadFashion } from '../data/fashion.js';
import { LOSSES } from '../nn/losses.js';
import { convnet, initModel, mlp, type Model } from '../nn/models.js';
import { bracket, modelLoss } from './bracket.js';
import { minibatchBracket } from './minibatch.js';
import { axpy, norm, scale, sub, type Vec } from './vec.js';

const data = loadFashion(undefined, 'test', { limit: 16 });

function pairwiseAverage(model: Model, params: Vec, a: number[], b: number[], lossName: 'bce' | 'ce'): Vec {
  const loss = modelLoss(model, LOSSES[lossName]);
  let acc: Vec | undefined;
  for (const i of a) {
    for (const j of b) {
      const r = bracket(loss, params, batchOf(data, [i], 'float64'), batchOf(data, [j], 'float64')).bracket;
      acc = acc ? axpy(acc, 1, r) : r;
    }
  }
  return scale(acc!, 1 / (a.length * b.length));
}

describe('minibatch brackets (float64)', () => {
  const cases: [Model, 'bce' | 'ce', number[], number[]][] = [
    [mlp, 'bce', [0, 1, 2], [3, 4]],
    [convnet, 'ce', [5, 6], [7, 8, 9]],
    [mlp, 'ce', [0, 1], [1, 2]], // overlapping batches
  ];
  for (const [model, lossName, a, b] of cases) {
    test(`${model.name}, ${lossName}: [v_A, v_B] = mean over i∈A, j∈B of [v_i, v_j] (A = {${a.join(',')}}, B = {${b.join(',')}})`, () => {
      const params = initModel(model, 4, 'float64');
      const r = minibatchBracket(model, LOSSES[lossName], params, batchOf(data, a, 'float64'), batchOf(data, b, 'float64'));
      const avg = pairwiseAverage(model, params, a, b, lossName);
      expect(norm(r.bracket)).toBeGreaterThan(0);
      expect(norm(sub(r.bracket, avg)) / norm(avg)).toBeLessThan(1e-10);
      // the gradient is the average too
      const g = scale(
        b
          .map((j) => bracket(modelLoss(model, LOSSES[lossName]), params, batchOf(data, [j], 'float64'), batchOf(data, [j], 'float64')).gradX)
          .reduce((s, v) => axpy(s, 1, v)),
        1 / b.length,
      );
      expect(norm(sub(r.gradY, g)) / norm(g)).toBeLessThan(1e-12);
    });
  }

  test('one-example minibatches give the pair bracket', () => {
    const params = initModel(mlp, 5, 'float64');
    const r = minibatchBracket(mlp, LOSSES.bce, params, batchOf(data, [3], 'float64'), batchOf(data, [4], 'float64'));
    const p = bracket(modelLoss(mlp, LOSSES.bce), params, batchOf(data, [3], 'float64'), batchOf(data, [4], 'float64'));
    expect(norm(sub(r.bracket, p.bracket)) / norm(p.bracket)).toBeLessThan(1e-13);
  });
});
