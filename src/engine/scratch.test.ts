import { describe, expect, it } from 'vitest';
import * as o from './ops.js';
import { residentCopy, Scratch, SCRATCH_MIN_ELEMS, withScratch } from './scratch.js';
import { Tensor, tensor } from './tensor.js';
import { valueAndGrad } from './transforms.js';

const N = SCRATCH_MIN_ELEMS * 2;
const ramp = (n: number) =>
  tensor(
    Float64Array.from({ length: n }, (_, i) => i / n),
    [n],
  );

describe('scratch pool', () => {
  it('recycles the intermediates of a scope and copies its results out', () => {
    const s = new Scratch({ poison: true });
    const x = ramp(N);
    const results: Tensor[] = [];
    for (let k = 0; k < 3; k++) {
      const r = withScratch(s, () => ({ y: o.mul(o.add(x, x), k + 1) }));
      results.push(r.y as Tensor);
      expect(s.owns((r.y as Tensor).data)).toBe(false); // copied out of the pool
    }
    // the pool stops growing after the first scope: same buffers reused
    const held = s.stats.buffers;
    withScratch(s, () => ({ y: o.mul(o.add(x, x), x) }));
    expect(s.stats.buffers).toBe(held);
    // earlier results survived the reuse (and the NaN poisoning) of the pool
    results.forEach((r, k) => expect(r.data[N - 1]).toBeCloseTo(2 * ((N - 1) / N) * (k + 1), 12));
  });

  it('poisons a tensor smuggled out of the scope, which is how tests catch escapes', () => {
    const s = new Scratch({ poison: true });
    const x = ramp(N);
    let smuggled: Tensor | null = null;
    withScratch(s, () => {
      smuggled = o.add(x, x) as Tensor;
      return {};
    });
    expect(Number.isNaN(smuggled!.data[1])).toBe(true);
  });

  it('reused buffers are zero-filled and small outputs bypass the pool', () => {
    const s = new Scratch();
    const x = ramp(N);
    withScratch(s, () => ({ y: o.add(x, x) }));
    const r = withScratch(s, () => {
      const small = o.add(ramp(8), ramp(8)) as Tensor;
      expect(s.owns(small.data)).toBe(false);
      const z = o.sum(o.mul(x, x)); // reduce_sum accumulates into its (recycled) output
      return { z };
    });
    const want = Array.from({ length: N }, (_, i) => (i / N) ** 2).reduce((a, b) => a + b, 0);
    expect((r.z as Tensor).item()).toBeCloseTo(want, 6);
  });

  it('gradients computed inside a scope match those computed outside', () => {
    const s = new Scratch({ poison: true });
    const x = ramp(N);
    const f = (v: typeof x) => o.sum(o.mul(o.tanh(v), v));
    const [v0, g0] = valueAndGrad(f)(x);
    for (let k = 0; k < 2; k++) {
      const { v, g } = withScratch(s, () => {
        const [v, g] = valueAndGrad(f)(x);
        return { v, g };
      });
      expect((v as Tensor).item()).toBe((v0 as Tensor).item());
      expect(Array.from(g.data)).toEqual(Array.from(g0.data));
    }
  });

  it('nested scopes release only their own buffers; a throwing scope releases too', () => {
    const s = new Scratch({ poison: true });
    const x = ramp(N);
    const outer = withScratch(s, () => {
      const a = o.add(x, x);
      const inner = withScratch(s, () => ({ b: o.mul(a, a) }));
      return { c: o.add(a, inner.b) };
    });
    expect((outer.c as Tensor).data[N - 1]).toBeCloseTo(2 * ((N - 1) / N) + 4 * ((N - 1) / N) ** 2, 12);
    const before = s.mark();
    expect(() =>
      withScratch(s, () => {
        o.add(x, x);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(s.mark()).toBe(before);
  });

  it('copies pooled tensors and bare buffers out of nested plain objects and arrays; other values pass', () => {
    const s = new Scratch({ poison: true });
    const x = ramp(N);
    const r = withScratch(s, () => {
      const y = o.add(x, x) as Tensor;
      return { stats: { n: 3, label: 'a', list: [y, { deep: y.data }] }, plain: x };
    });
    const [t, { deep }] = r.stats.list as [Tensor, { deep: Float64Array }];
    expect(s.owns(t.data) || s.owns(deep)).toBe(false);
    expect(r.stats.n).toBe(3);
    expect(r.stats.label).toBe('a');
    expect(r.plain).toBe(x); // not from the pool: not copied
    withScratch(s, () => o.mul(x, x)); // reuse (and poison) the pool
    expect(t.data[N - 1]).toBeCloseTo((2 * (N - 1)) / N, 12);
    expect(deep[N - 1]).toBeCloseTo((2 * (N - 1)) / N, 12);
  });
});

describe('residentCopy', () => {
  const big = () => {
    const t = new Tensor(new Float32Array(SCRATCH_MIN_ELEMS + 3), [SCRATCH_MIN_ELEMS + 3]);
    t.data.forEach((_, i) => (t.data[i] = i * 0.5));
    return t;
  };
  it('outside withScratch: the tree itself', () => {
    const tree = { w: big() };
    expect(residentCopy(tree)).toBe(tree);
  });
  it('inside: large tensors copied into the pool (equal values), small ones and pool ones as they are; the originals untouched', () => {
    const s = new Scratch({ poison: true });
    const w = big();
    const b = tensor([1, 2, 3], [3]);
    const sums = withScratch(s, () => {
      const r = residentCopy({ w, b });
      expect(r.b).toBe(b);
      expect(r.w).not.toBe(w);
      expect(s.owns(r.w.data)).toBe(true);
      expect(r.w.shape).toEqual(w.shape);
      expect(r.w.data.every((v, i) => v === w.data[i])).toBe(true);
      expect(residentCopy(r).w).toBe(r.w); // already in the pool
      return (o.sum(o.mul(r.w, r.w)) as Tensor).item();
    });
    expect(sums).toBe((o.sum(o.mul(w, w)) as Tensor).item());
    expect(w.data[7]).toBe(3.5); // the pool's buffers were poisoned at release, the original was not
  });
});
