/** gradHvp (reverse-over-reverse) and vjpWithAux: against forward-over-reverse, finite differences and symmetry, in float64. */
import { describe, expect, test } from 'vitest';
import { concrete, gradHvp, hvp, jvp, tensor, valueAndGrad, vjpWithAux, type Params, type Val } from './index.js';
import * as o from './ops.js';
import { Rng } from './random.js';
import type { Tensor } from './tensor.js';

const rng = new Rng(11);
const X = rng.normalTensor([5, 4], 'float64');
// a smooth loss of two parameter tensors, with every kind of second-order coupling
const f = (p: Params): Val => {
  const h = o.tanh(o.matmul(X, p.w!));
  return o.add(o.sum(o.mul(o.exp(o.mul(h, p.b!)), h)), o.sum(o.mul(p.b!, p.b!)));
};
const p0: Params = { w: rng.normalTensor([4, 3], 'float64'), b: rng.normalTensor([3], 'float64') };
const dir = (): Params => ({ w: rng.normalTensor([4, 3], 'float64'), b: rng.normalTensor([3], 'float64') });

const flat = (p: Params): number[] => Object.keys(p0).flatMap((k) => Array.from(concrete(p[k]!).data));
const dot = (a: Params, b: Params) => flat(a).reduce((s, x, i) => s + x * flat(b)[i]!, 0);
const relErr = (a: number[], b: number[]) => Math.hypot(...a.map((x, i) => x - b[i]!)) / Math.hypot(...b);

describe('gradHvp', () => {
  test('value and gradient equal valueAndGrad bit for bit', () => {
    const h = gradHvp(f, p0);
    const [v, g] = valueAndGrad(f)(p0);
    expect(concrete(h.value).item()).toBe(concrete(v).item());
    expect(flat(h.grad)).toEqual(flat(g));
  });

  test('H·v equals forward-over-reverse within float64 rounding and central differences of the gradient within 1e-7', () => {
    const h = gradHvp(f, p0);
    for (let i = 0; i < 3; i++) {
      const v = dir();
      const rr = flat(h.hvp(v)); // (the same recorded gradient, many directions)
      expect(relErr(rr, flat(hvp(f, p0, v).hvp))).toBeLessThan(1e-13);
      const e = 1e-5;
      const at = (s: number) => {
        const q: Params = {};
        for (const k of Object.keys(p0)) q[k] = concrete(o.add(p0[k]!, o.mul(v[k]!, s)));
        return flat(valueAndGrad(f)(q)[1]);
      };
      const fd = at(e).map((x, j) => (x - at(-e)[j]!) / (2 * e));
      expect(relErr(rr, fd)).toBeLessThan(1e-7);
    }
  });

  test('symmetric: ⟨u, H v⟩ = ⟨H u, v⟩', () => {
    const h = gradHvp(f, p0);
    const u = dir();
    const v = dir();
    const a = dot(u, h.hvp(v));
    expect(Math.abs(a - dot(h.hvp(u), v)) / Math.abs(a)).toBeLessThan(1e-13);
  });

  test('nests: under an outer jvp, the value is that level’s (d/ds of s·f is f)', () => {
    const [, dv] = jvp((s: Tensor) => gradHvp((p: Params) => o.mul(s, f(p)), p0).value, tensor([2], [1]), tensor([1], [1]));
    expect(concrete(dv).item()).toBeCloseTo(concrete(f(p0)).item(), 12);
  });
});

describe('vjpWithAux', () => {
  test('returns the auxiliary value, which the pullback does not differentiate', () => {
    const [out, pull, aux] = vjpWithAux((p: Params): [Val, Val] => [o.sum(o.mul(p.b!, p.b!)), o.mul(p.b!, 3)], { b: p0.b! });
    expect(Array.from(concrete(aux).data)).toEqual(Array.from(concrete(p0.b!).data).map((x) => x * 3));
    const g = pull(tensor([1], [], 'float64'));
    expect(Array.from(concrete(g.b).data)).toEqual(Array.from(concrete(p0.b!).data).map((x) => 2 * x));
    expect(concrete(out).item()).toBeCloseTo(
      Array.from(concrete(p0.b!).data).reduce((s, x) => s + x * x, 0),
      12,
    );
  });
});
