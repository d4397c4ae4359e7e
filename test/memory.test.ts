/**
 * Memory belongs to the garbage collector: nothing is disposed by hand, and 10,000 brackets leave
 * the resident set flat (tapes and tracers die with each call). A small MLP keeps this fast; the
 * benchmark (`npm run bench`) reports the same for the reference MLP.
 */
import { expect, test } from 'vitest';
import { bracket, modelLoss } from '../src/bracket/bracket.js';
import { Rng } from '../src/engine/random.js';
import * as o from '../src/engine/ops.js';
import { LOSSES } from '../src/nn/losses.js';
import { linear } from '../src/nn/layers.js';
import { initModel, type Model } from '../src/nn/models.js';
import { Tensor } from '../src/engine/tensor.js';

const small: Model = {
  name: 'small',
  description: '64 → 32 (tanh) → 4',
  inputShape: [64],
  numOutputs: 4,
  paramShapes: { 'fc1.weight': [32, 64], 'fc1.bias': [32], 'fc2.weight': [4, 32], 'fc2.bias': [4] },
  bufferShapes: {},
  apply: (p, x) => linear(p, 'fc2', o.tanh(linear(p, 'fc1', x))),
};

test('RSS stays flat over 10,000 brackets', () => {
  const rng = new Rng(5);
  const params = initModel(small, 1, 'float32');
  const loss = modelLoss(small, LOSSES.bce);
  const ex = () => ({ x: rng.normalTensor([1, 64], 'float32'), t: new Tensor(Float32Array.from([1, 0, 0, 1]), [1, 4]) });
  const x = ex();
  const y = ex();
  const gc = (globalThis as { gc?: () => void }).gc;
  const rss = () => {
    gc?.();
    return process.memoryUsage().rss / 2 ** 20;
  };
  for (let i = 0; i < 1000; i++) bracket(loss, params, x, y);
  const before = rss();
  for (let i = 0; i < 9000; i++) bracket(loss, params, x, y);
  const after = rss();
  // each bracket allocates ~100 kB of short-lived arrays (≈ 1 GB over the loop); a leak of even one
  // array per bracket would add tens of MB
  expect(after - before).toBeLessThan(25);
});
