/** Test helper for the kernel tests: seeded inputs, so failures reproduce. */
import { allocBuf, type DType } from '../src/engine/dtype.js';
import type { KIn } from '../src/engine/kernels/types.js';
import { sizeOf, type Shape } from '../src/engine/shape.js';

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A kernel input of `shape` with values uniform in [−1, 1). */
export function randn(shape: Shape, dtype: DType, r: () => number): KIn {
  const data = allocBuf(dtype, sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = 2 * r() - 1;
  return { data, shape };
}
