/** Optimizer-aware swap effects: the decompositions of the real two-step order effect close at O(ε³). */
import { describe, expect, test } from 'vitest';
import { batchOf } from '../data/examples.js';
import { loadFashion } from '../data/fashion.js';
import { Tensor } from '../engine/tensor.js';
import { concrete, grad, hvp } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { LOSSES } from '../nn/losses.js';
import { initModel, mlp } from '../nn/models.js';
import { initOptimizerState, optimizerStep, resolveOptimizerConfig, type OptimizerConfig, type OptimizerState } from '../nn/optim.js';
import { bracket, modelLoss, type Example } from './bracket.js';
import { adamGain, optimizerSwap, type OptSwapResult } from './optswap.js';
import { axpy, norm, scale, sub, type Vec } from './vec.js';

const data = loadFashion(undefined, 'test', { limit: 40 });
const ex = (i: number): Example => batchOf(data, [i], 'float64');
const lossFn = modelLoss(mlp, LOSSES.bce);
const vec = (p: Params): Vec => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, concrete(v)]));
const gradOf = (p: Vec, e: Example) => vec(grad((q: Params) => lossFn(q, e))(p));

/** Parameters and optimizer state after a few real minibatch steps (non-trivial buffers / moments). */
function warmed(opt: OptimizerConfig, steps = 5): { params: Vec; state: OptimizerState } {
  let params: Vec = initModel(mlp, 0, 'float64');
  let state = initOptimizerState(opt, params);
  for (let s = 0; s < steps; s++)
    ({ params, state } = optimizerStep(opt, params, gradOf(params, batchOf(data, [10 + 2 * s, 11 + 2 * s], 'float64')), state));
  return { params, state };
}

const part = (r: OptSwapResult, name: string) => r.parts.find((p) => p.name === name)!;

describe('optimizer swap decompositions (mlp, float64)', () => {
  test('momentum decomposition sums to the measured difference', () => {
    const opt: OptimizerConfig = { name: 'momentum', lr: 0.01, momentum: 0.9 };
    const { params, state } = warmed(opt);
    const x = ex(0);
    const y = ex(1);
    const probes = batchOf(data, [5, 6], 'float64').x;
    const runs = [1e-2, 1e-3, 1e-4].map((lr) => optimizerSwap({ model: mlp, loss: LOSSES.bce, params, x, y, optimizer: opt, state, lr, probes }));
    const gx = gradOf(params, x);
    const gy = gradOf(params, y);
    const B = bracket(lossFn, params, x, y).bracket;
    const M: Vec = Object.fromEntries(Object.keys(params).map((k) => [k, state.buffers[`momentum_buffer.${k}`]!]));
    const HM = (e: Example) => vec(hvp((q: Params) => lossFn(q, e), params as Params, M as Params).hvp);
    const momentumTerm = sub(HM(y), HM(x)); // (H_y − H_x) M
    for (const r of runs) {
      const e = r.lr;
      // the parts add up to the real difference
      const sum = r.parts.reduce((acc, p) => axpy(acc, 1, p.vector), scale(r.real.vector, 0));
      expect(norm(sub(sum, r.real.vector)) / r.real.norm).toBeLessThan(1e-12);
      // each part is what the expansion says: state −εμ(g_x − g_y), bracket ε²B, history ε²μ(H_y − H_x)M
      expect(norm(sub(part(r, 'state').vector, scale(sub(gx, gy), -e * 0.9))) / part(r, 'state').norm).toBeLessThan(1e-9);
      expect(norm(sub(part(r, 'bracket').vector, scale(B, e * e))) / part(r, 'bracket').norm).toBeLessThan(1e-12);
      expect(norm(sub(part(r, 'history').vector, scale(momentumTerm, e * e * 0.9))) / part(r, 'history').norm).toBeLessThan(1e-6);
      expect(part(r, 'bracket').logits).toHaveLength(2);
    }
    // the remainder is O(ε³): 1000× smaller per decade of ε
    for (let i = 1; i < runs.length; i++) {
      const ratio = part(runs[i - 1]!, 'remainder').norm / part(runs[i]!, 'remainder').norm;
      expect(ratio).toBeGreaterThan(500);
      expect(ratio).toBeLessThan(2000);
    }
    expect(runs[2]!.remainderRelative).toBeLessThan(1e-3);
    // after the buffer drains the first-order lag cancels: D∞ = (bracket + history)/(1 − μ) + O(ε³)
    // (relative to D∞ = O(ε²), the O(ε³) remainder falls 10× per decade)
    expect(runs[1]!.drained!.remainderRelative / runs[2]!.drained!.remainderRelative).toBeGreaterThan(7);
    expect(runs[2]!.drained!.norm).toBeLessThan(runs[2]!.real.norm);
  });

  test('sgd: no state part; the bracket explains all of the difference as ε → 0', () => {
    const opt: OptimizerConfig = { name: 'sgd', lr: 0.01 };
    const { params, state } = warmed(opt, 2);
    const [a, b] = [1e-2, 1e-3].map((lr) => optimizerSwap({ model: mlp, loss: LOSSES.bce, params, x: ex(2), y: ex(3), optimizer: opt, state, lr }));
    expect(part(b!, 'state').norm).toBeLessThan(1e-9 * b!.real.norm); // rounding only
    expect(part(b!, 'history').norm).toBeLessThan(1e-9 * part(b!, 'bracket').norm);
    expect(1 - b!.share.share).toBeLessThan(0.1 * Math.abs(1 - a!.share.share) + 1e-6);
    expect(b!.share.cosine).toBeGreaterThan(0.999);
  });

  test('adam: the decomposition closes at O(ε³), and the gain matches finite differences of optimizerStep', () => {
    const opt: OptimizerConfig = { name: 'adam', lr: 1e-3 };
    const { params, state } = warmed(opt);
    // (at lr 1e-3 coordinates with tiny second moments are still outside the asymptotic regime)
    const runs = [1e-4, 1e-5].map((lr) => optimizerSwap({ model: mlp, loss: LOSSES.ce, params, x: ex(4), y: ex(7), optimizer: opt, state, lr }));
    const ratio = part(runs[0]!, 'remainder').norm / part(runs[1]!, 'remainder').norm;
    expect(ratio).toBeGreaterThan(500);
    expect(ratio).toBeLessThan(2000);
    expect(runs[1]!.remainderRelative).toBeLessThan(1e-5);
    for (const r of runs) expect(r.share.share).toBeGreaterThan(0);

    // J = ∂Δθ/∂g against a central difference in g (coordinate-wise: the step is elementwise; relative
    // bumps, since where a moment is 0 the step is |g|-like, not differentiable, at g = 0)
    const g = gradOf(params, ex(4));
    const J = adamGain(resolveOptimizerConfig(opt), state, g, opt.lr);
    const h = 1e-6;
    const bump = (s: number): Vec =>
      Object.fromEntries(
        Object.entries(g).map(([k, t]) => [
          k,
          new Tensor(
            t.data.map((v) => v * (1 + s * h)),
            t.shape,
          ),
        ]),
      );
    const step = (gg: Vec) => optimizerStep(opt, params, gg, state).params;
    const fd = sub(step(bump(-1)), step(bump(1))); // −ΔΔθ = J·Δg (θ' = θ − Δθ)
    const dg = sub(bump(1), bump(-1));
    const Jdg: Vec = Object.fromEntries(
      Object.entries(J).map(([k, t]) => [
        k,
        new Tensor(
          t.data.map((v, i) => v * dg[k]!.data[i]!),
          t.shape,
        ),
      ]),
    );
    expect(norm(sub(fd, Jdg)) / norm(Jdg)).toBeLessThan(1e-5);
  });
});
