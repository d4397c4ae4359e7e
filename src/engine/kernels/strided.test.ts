/**
 * The strided loop (axis merging, register accumulation) against a plain odometer over the full
 * index space, bit for bit, for the structural kernels' patterns: copies through transposes,
 * broadcasts and slices, reductions (add/max) over every subset of axes — and the js set's
 * reduce_sum (float64 accumulation) against the reference one.
 */
import { describe, expect, it } from 'vitest';
import { rng } from '../../../test/kernel-inputs.js';
import { allocBuf, type Buf, type DType } from '../dtype.js';
import { sizeOf, stridesOf, type Shape } from '../shape.js';
import { jsKernels } from './js.js';
import { reference } from './reference.js';
import { stridedLoop, type Combine } from './strided.js';

/** The unoptimised definition: every multi-index in row-major order, one element at a time. */
function naive(shape: Shape, dst: Buf, dOff: number, dStr: readonly number[], src: Buf, sOff: number, sStr: readonly number[], mode: Combine): void {
  const n = sizeOf(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    let d = dOff;
    let s = sOff;
    for (let a = 0; a < shape.length; a++) {
      d += idx[a]! * dStr[a]!;
      s += idx[a]! * sStr[a]!;
    }
    const v = src[s]!;
    if (mode === 'copy') dst[d] = v;
    else if (mode === 'add') dst[d]! += v;
    else if (mode === 'max') {
      if (v > dst[d]! || v !== v) dst[d] = v;
    }
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
}

function fill(dtype: DType, n: number, r: () => number): Buf {
  const b = allocBuf(dtype, n);
  for (let i = 0; i < n; i++) b[i] = r() * 2 - 1;
  return b;
}

const SHAPES: Shape[] = [[], [7], [1, 5], [3, 1, 4], [2, 3, 4, 5], [4, 1, 6, 6], [2, 3, 1, 7, 2], [32, 4, 7, 7]];

describe.each(['float32', 'float64'] as const)('stridedLoop (%s) equals the element-by-element definition', (dtype) => {
  const r = rng(dtype === 'float32' ? 1 : 2);
  it.each(SHAPES.map((s) => [s.join('×') || 'scalar', s] as const))('%s: transposes, broadcasts, reductions', (_name, shape) => {
    const n = sizeOf(shape);
    const src = fill(dtype, n, r);
    const srcStrides = stridesOf(shape);
    // every permutation-free pattern of zeroed axes: broadcast (src stride 0) and reduction (dst stride 0)
    for (let mask = 0; mask < 1 << shape.length; mask++) {
      const kept = shape.map((d, i) => ((mask >> i) & 1 ? 1 : d));
      const keptStrides = stridesOf(kept).map((s, i) => ((mask >> i) & 1 ? 0 : s));
      // broadcast: read a kept-shaped source into the full shape
      const bsrc = fill(dtype, sizeOf(kept), r);
      const a = allocBuf(dtype, n);
      const b = allocBuf(dtype, n);
      stridedLoop(shape, a, 0, srcStrides, bsrc, 0, keptStrides, 'copy');
      naive(shape, b, 0, srcStrides, bsrc, 0, keptStrides, 'copy');
      expect(Array.from(a)).toEqual(Array.from(b));
      // reductions into the kept shape, add and max
      for (const mode of ['add', 'max'] as const) {
        const x = allocBuf(dtype, sizeOf(kept)).fill(mode === 'max' ? -Infinity : 0);
        const y = allocBuf(dtype, sizeOf(kept)).fill(mode === 'max' ? -Infinity : 0);
        stridedLoop(shape, x, 0, keptStrides, src, 0, srcStrides, mode);
        naive(shape, y, 0, keptStrides, src, 0, srcStrides, mode);
        expect(Array.from(x)).toEqual(Array.from(y));
      }
    }
    // reversed-axis transpose (strides that never merge)
    if (shape.length > 1) {
      const outShape = [...shape].reverse();
      const inStr = [...srcStrides].reverse();
      const a = allocBuf(dtype, n);
      const b = allocBuf(dtype, n);
      stridedLoop(outShape, a, 0, stridesOf(outShape), src, 0, inStr, 'copy');
      naive(outShape, b, 0, stridesOf(outShape), src, 0, inStr, 'copy');
      expect(Array.from(a)).toEqual(Array.from(b));
    }
  });

  it('offsets: a slice read and a padded write', () => {
    const full = [5, 6, 7];
    const src = fill(dtype, sizeOf(full), r);
    const sub = [3, 4, 5];
    const str = stridesOf(full);
    const off = 1 * str[0]! + 1 * str[1]! + 1 * str[2]!;
    const a = allocBuf(dtype, sizeOf(sub));
    const b = allocBuf(dtype, sizeOf(sub));
    stridedLoop(sub, a, 0, stridesOf(sub), src, off, str, 'copy');
    naive(sub, b, 0, stridesOf(sub), src, off, str, 'copy');
    expect(Array.from(a)).toEqual(Array.from(b));
    const c = allocBuf(dtype, sizeOf(full));
    const d = allocBuf(dtype, sizeOf(full));
    stridedLoop(sub, c, off, str, a, 0, stridesOf(sub), 'copy');
    naive(sub, d, off, str, a, 0, stridesOf(sub), 'copy');
    expect(Array.from(c)).toEqual(Array.from(d));
  });
});

describe('js reduce_sum (float64 accumulation) equals the reference up to rounding', () => {
  const r = rng(3);
  it.each([
    [
      [32, 16, 28, 28],
      [0, 2, 3],
    ],
    [[4, 5, 6], [1]],
    [
      [4, 5, 6],
      [0, 2],
    ],
    [
      [7, 9],
      [0, 1],
    ],
    [[3, 1000], [1]],
  ] as [Shape, number[]][])('%j over axes %j', (shape, axes) => {
    const outShape = shape.filter((_, i) => !axes.includes(i));
    for (const dtype of ['float32', 'float64'] as const) {
      const a = { data: fill(dtype, sizeOf(shape), r), shape };
      const ref = allocBuf(dtype, sizeOf(outShape));
      const fast = allocBuf(dtype, sizeOf(outShape));
      reference.reduce_sum(ref, outShape, [a], { axes });
      jsKernels.reduce_sum(fast, outShape, [a], { axes });
      // float64 sums of x and |x| bound the error: ≤ n·u·Σ|x| for each output
      const dStr = stridesOf(shape.map((d, i) => (axes.includes(i) ? 1 : d))).map((s, i) => (axes.includes(i) ? 0 : s));
      const exact = new Float64Array(sizeOf(outShape));
      const mass = new Float64Array(sizeOf(outShape));
      naive(shape, exact, 0, dStr, a.data, 0, stridesOf(shape), 'add');
      naive(shape, mass, 0, dStr, Float64Array.from(a.data, Math.abs), 0, stridesOf(shape), 'add');
      const n = sizeOf(shape) / Math.max(1, sizeOf(outShape));
      const u = dtype === 'float32' ? 2 ** -24 : 2 ** -53;
      fast.forEach((v, i) => expect(Math.abs(v - exact[i]!)).toBeLessThanOrEqual(n * u * mass[i]! + u * Math.abs(exact[i]!)));
      if (dtype === 'float64' && axes.includes(shape.length - 1)) {
        // float64: identical summation order, identical bits
        expect(Array.from(fast)).toEqual(Array.from(ref));
      }
    }
  });
});
