/**
 * Kinks are found by the primitives that have them (relu's declared mask, max-pool, max, min,
 * abs), never by the shape of a select or a 0/1 factor: smooth composites have none.
 */
import { describe, expect, test } from 'vitest';
import { batchOf } from '../data/examples.js';
import { loadFashion } from '../data/fashion.js';
import { bceWithLogits, concrete, gelu, hvp, mishComposite, silu, softplus, valueAndGrad, type Params, type Val } from '../engine/index.js';
import * as o from '../engine/ops.js';
import { linear } from '../nn/layers.js';
import { LOSSES } from '../nn/losses.js';
import { convnet, initModel, mlp, type Model } from '../nn/models.js';
import { modelLoss } from './bracket.js';
import { activationPattern, frozenModel, hasKinks, patternDiff } from './kinks.js';
import { axpy, norm, sub, type Vec } from './vec.js';

const data = loadFashion(undefined, 'test', { limit: 4 });
const ex = (i: number) => batchOf(data, [i], 'float64');
const vec = (p: Params): Vec => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, concrete(v)]));

/** The mlp with `act` between its layers and `head` on its logits. */
const mlpWith = (name: string, act: (h: Val) => Val, head: (z: Val) => Val = (z) => z): Model => ({
  ...mlp,
  name,
  apply: (p, x) => head(linear(p, 'fc2', act(linear(p, 'fc1', o.flatten(x))))),
});

describe('kinks: which operations count', () => {
  const smooth: [string, (h: Val) => Val][] = [
    ['softplus', softplus],
    ['mish (composite)', mishComposite],
    ['mish (primitive)', o.mish],
    ['silu', silu],
    ['gelu', gelu],
  ];
  test.each(smooth)('%s: no kinks', (name, act) => {
    const m = mlpWith(name, act);
    const p = initModel(m, 1, 'float64');
    expect(activationPattern(m, p, ex(0).x).units).toBe(0);
    expect(hasKinks(m, p, ex(0).x)).toBe(false);
  });

  test('the bce loss has no kinks, even against targets equal to [z > 0]', () => {
    // softplus's branch is a select; the target term t·z multiplies by a constant 0/1 factor
    const m = mlpWith('mlp + bce', o.tanh, (z) => bceWithLogits(z, o.gt(z, 0)));
    const p = initModel(m, 1, 'float64');
    expect(activationPattern(m, p, ex(0).x).units).toBe(0);
    expect(hasKinks(m, p, ex(0).x)).toBe(false);
  });

  test('the ReLU convnet: every ReLU unit and max-pool window, in forward order', () => {
    const params = initModel(convnet, 0, 'float64');
    const p = activationPattern(convnet, params, ex(0).x);
    expect(p.layers.map((l) => [l.kind, l.state.length])).toEqual([
      ['relu', 16 * 28 * 28],
      ['maxpool', 16 * 14 * 14],
      ['relu', 32 * 14 * 14],
      ['maxpool', 32 * 7 * 7],
    ]);
    expect(p.units).toBe(16 * 28 * 28 + 16 * 14 * 14 + 32 * 14 * 14 + 32 * 7 * 7);
    // a max-pool state is an offset in its 28×28 (then 14×14) plane, inside the window
    const pool = p.layers[1]!.state;
    for (let i = 0; i < pool.length; i++) {
      const [oh, ow, off] = [Math.floor((i % 196) / 14), i % 14, pool[i]!];
      expect([Math.floor(off / 28) >> 1, (off % 28) >> 1]).toEqual([oh, ow]);
    }
  });

  test('max, min and abs: winners and signs counted, and frozen at θ₀ by the frozen model', () => {
    const m = mlpWith('abs/min mlp', (h) => o.add(o.abs(h), o.minimum(h, o.maximum(o.neg(h), 0.1))));
    const params = initModel(m, 2, 'float64');
    const x = ex(1).x;
    const pat = activationPattern(m, params, x);
    expect(pat.layers.map((l) => l.kind)).toEqual(['abs', 'max', 'min']);
    expect(pat.units).toBe(3 * 128);
    const far = axpy(params, 0.5, params);
    const d = patternDiff(pat, activationPattern(m, far, x, undefined, pat));
    expect(d.relu + d.maxpool).toBe(0);
    expect(d.other).toBe(d.total);

    // the frozen model equals the model at θ₀ in value, gradient and HVP
    const frozen = frozenModel(m, params);
    const f = (mm: Model) => modelLoss(mm, LOSSES.bce);
    const a = valueAndGrad((p: Params) => f(m)(p, ex(1)))(params);
    const b = valueAndGrad((p: Params) => f(frozen)(p, ex(1)))(params);
    expect(concrete(b[0]).item()).toBe(concrete(a[0]).item());
    const ga = vec(a[1]);
    expect(norm(sub(vec(b[1]), ga)) / norm(ga)).toBeLessThan(1e-14);
    const ha = vec(hvp((p: Params) => f(m)(p, ex(1)), params as Params, ga as Params).hvp);
    const hb = vec(hvp((p: Params) => f(frozen)(p, ex(1)), params as Params, ga as Params).hvp);
    expect(norm(sub(hb, ha)) / norm(ha)).toBeLessThan(1e-12);
    // elsewhere it is the model with each kink's weights of θ₀: abs → x·sign(x₀), max/min → blends
    expect(d.total).toBeGreaterThan(0);
    const h0 = linear(params, 'fc1', o.flatten(x));
    const h = linear(far, 'fc1', o.flatten(x));
    const blend = (u: Val, v: Val, u0: Val, v0: Val, op: 'gt' | 'lt') => {
      const w = o.add(o.compare(u0, op, v0), o.mul(o.eq(u0, v0), 0.5));
      return o.add(o.mul(u, w), o.mul(v, o.sub(1, w)));
    };
    const c = (v: number) => o.mul(o.onesLike(h), v);
    const mx0 = o.maximum(o.neg(h0), 0.1);
    const act = o.add(o.mul(h, o.sub(o.gt(h0, 0), o.lt(h0, 0))), blend(h, blend(o.neg(h), c(0.1), o.neg(h0), c(0.1), 'gt'), h0, mx0, 'lt'));
    const want = concrete(linear(far, 'fc2', act));
    const got = concrete(frozen.apply(far, x));
    expect(norm({ d: sub({ d: got }, { d: want }).d! }) / norm({ w: want })).toBeLessThan(1e-14);
    expect(norm({ d: sub({ d: concrete(m.apply(far as Params, x)) }, { d: want }).d! }) / norm({ w: want })).toBeGreaterThan(1e-6);
  });
});
