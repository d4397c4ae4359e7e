/**
 * The bracket against real swapped SGD steps: the error of (θ_xy − θ_yx)/ε² falls like ε on smooth
 * nets, does not on the ReLU/max-pool convnet (and the switching units are counted), and falls
 * like ε again once the activation pattern is frozen.
 */
import { describe, expect, test } from 'vitest';
import { batchOf } from '../data/examples.js';
import { loadFashion } from '../data/fashion.js';
import { concrete, hvp, valueAndGrad } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { LOSSES } from '../nn/losses.js';
import { evalState } from '../nn/layers.js';
import { convnet, initBuffers, initModel, mlp, smoothconvnet } from '../nn/models.js';
import { modelFromSpec } from '../nn/spec.js';
import * as o from '../engine/ops.js';
import { markKink } from '../engine/trace.js';
import { linear } from '../nn/layers.js';
import type { Model } from '../nn/models.js';
import { modelLoss, type Example } from './bracket.js';
import { activationPattern, frozenModel, patternDiff } from './kinks.js';
import { verifySwap } from './verify.js';
import { axpy, norm, sub, type Vec } from './vec.js';

const data = loadFashion(undefined, 'test', { limit: 16 });
const ex = (i: number): Example => batchOf(data, [i], 'float64');
const EPS = [1e-2, 1e-3, 1e-4];
function expectOrderOne(checks: readonly { order: number | null }[]): void {
  for (const c of checks.slice(1)) {
    expect(c.order!).toBeGreaterThan(0.9);
    expect(c.order!).toBeLessThan(1.1);
  }
}
const vec = (p: Params): Vec => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, concrete(v)]));

describe('verify: smooth nets obey the ε² law', () => {
  test('mlp (tanh): the error falls ~10× per decade (order ≈ 1), no kinks', () => {
    const r = verifySwap(mlp, LOSSES.bce, initModel(mlp, 0, 'float64'), ex(0), ex(1), { eps: EPS });
    expect(r.kinkUnits).toBe(0);
    expect(r.checks[0]!.order).toBeNull();
    expectOrderOne(r.checks);
    expect(r.checks[2]!.relError).toBeLessThan(1e-2);
    expect(r.checks.every((c) => c.expansionValid && c.switched === 0 && c.note === undefined)).toBe(true);
  });

  test('smoothconvnet (silu, avg-pool): order ≈ 1', () => {
    const r = verifySwap(smoothconvnet, LOSSES.ce, initModel(smoothconvnet, 1, 'float64'), ex(2), ex(3), { eps: EPS });
    expect(r.kinkUnits).toBe(0);
    expectOrderOne(r.checks);
  });
});

describe('verify: the ReLU/max-pool convnet', () => {
  const params = initModel(convnet, 0, 'float64');

  test('at ε = 1e-2 and 1e-3 units switch, the check says the expansion is not valid, and the error does not converge', () => {
    const r = verifySwap(convnet, LOSSES.bce, params, ex(0), ex(1), { eps: [1e-2, 1e-3] });
    expect(r.kinkUnits).toBe(2 * (16 * 28 * 28 + 16 * 14 * 14 + 32 * 14 * 14 + 32 * 7 * 7));
    for (const c of r.checks) {
      expect(c.switchedAtGradients).toBeGreaterThan(0);
      expect(c.expansionValid).toBe(false);
      expect(c.note).toContain(`the expansion is not valid at ε = ${c.eps}`);
      expect(c.kinks.map((k) => k.point)).toEqual(['θ_x', 'θ_xy', 'θ_y', 'θ_yx']);
    }
    expect(r.checks[1]!.relError).toBeGreaterThan(0.3); // the measured fact: no convergence at ε = 1e-3
    expect(r.checks[1]!.order!).toBeLessThan(0.5);
  });

  test('frozen pattern: the error falls ~10× per decade', () => {
    const r = verifySwap(convnet, LOSSES.bce, params, ex(0), ex(1), { eps: EPS, frozen: true });
    expect(r.frozen).toBe(true);
    expectOrderOne(r.checks);
    expect(r.checks[1]!.relError).toBeLessThan(0.02);
    expect(r.checks.every((c) => c.expansionValid)).toBe(true);
  });

  test('the frozen model equals the model at θ₀ (logits, gradient, HVP) and is fixed elsewhere', () => {
    const frozen = frozenModel(convnet, params);
    const x = ex(4);
    const f = (m: typeof convnet) => (p: Params) => modelLoss(m, LOSSES.ce)(p, x);
    const a = valueAndGrad(f(convnet))(params);
    const b = valueAndGrad(f(frozen))(params);
    expect(concrete(b[0]).item()).toBe(concrete(a[0]).item());
    const ga = vec(a[1]);
    expect(norm(sub(vec(b[1]), ga)) / norm(ga)).toBeLessThan(1e-14);
    const ha = vec(hvp(f(convnet), params as Params, ga as Params).hvp);
    const hb = vec(hvp(f(frozen), params as Params, ga as Params).hvp);
    expect(norm(sub(hb, ha)) / norm(ha)).toBeLessThan(1e-12);
    // far from θ₀ the real pattern moves, the frozen one does not
    const far = axpy(params, -0.5, ga);
    expect(patternDiff(activationPattern(convnet, params, x.x), activationPattern(convnet, far, x.x)).total).toBeGreaterThan(0);
    const masked = concrete(frozen.apply(far, x.x));
    expect(masked.shape).toEqual([1, 10]);
  });

  test('activation patterns: same point → no difference; smooth nets have no units', () => {
    const x = ex(5);
    const p = activationPattern(convnet, params, x.x);
    expect(p.layers.map((l) => l.kind)).toEqual(['relu', 'maxpool', 'relu', 'maxpool']);
    expect(patternDiff(p, activationPattern(convnet, params, x.x)).total).toBe(0);
    expect(activationPattern(smoothconvnet, initModel(smoothconvnet, 0, 'float64'), x.x).units).toBe(0);
  });
});

describe('kinks of any model (read from the forward pass, no instrumentation)', () => {
  test('a spec model with BatchNorm, ReLU and max-pool: patterns counted, frozen version smooth', () => {
    const model = modelFromSpec({
      input: [1, 28, 28],
      layers: [
        { type: 'conv2d', out: 4, kernel: 3, padding: 1 },
        { type: 'batchnorm2d' },
        { type: 'relu' },
        { type: 'maxpool2d', kernel: 2 },
        { type: 'flatten' },
        { type: 'linear', out: 10 },
      ],
    });
    const params = initModel(model, 2, 'float64');
    const state = evalState(initBuffers(model));
    const p = activationPattern(model, params, ex(0).x, state);
    expect(p.layers.map((l) => l.kind)).toEqual(['relu', 'maxpool']);
    expect(p.units).toBe(4 * 28 * 28 + 4 * 14 * 14);
    const real = verifySwap(model, LOSSES.ce, params, ex(0), ex(1), { eps: [1e-1, 1e-2], state });
    expect(real.kinkUnits).toBe(2 * p.units);
    expect(real.checks[0]!.switched).toBeGreaterThan(0);
    const frozen = verifySwap(model, LOSSES.ce, params, ex(0), ex(1), { eps: EPS, frozen: true, state });
    expectOrderOne(frozen.checks);
  });

  test('ReLU written as select(x > 0, x, 0) is recognised once its mask is declared (markKink); a constant 0/1 factor is not a unit', () => {
    const base = mlp;
    const tiny: Model = {
      ...base,
      name: 'select-relu mlp',
      apply: (p, x) => {
        const h = linear(p, 'fc1', o.flatten(x));
        const ones = o.onesLike(h);
        return linear(p, 'fc2', o.mul(o.where(markKink(o.gt(h, 0)), h, 0), ones));
      },
    };
    const params = initModel(tiny, 3, 'float64');
    const pat = activationPattern(tiny, params, ex(0).x);
    expect(pat.layers.map((l) => l.kind)).toEqual(['relu']);
    expect(pat.units).toBe(128);
    const moved = activationPattern(tiny, axpy(params, 0.3, params), ex(0).x, evalState(), pat);
    expect(patternDiff(pat, moved).units).toBe(128);
  });
});
