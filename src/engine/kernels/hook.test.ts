/** withKernelHook and what is built on it: measureFlops and profileKernels. */
import { describe, expect, it } from 'vitest';
import * as o from '../ops.js';
import { tensor, type Tensor } from '../tensor.js';
import { kernels, measureFlops, profileKernels } from './index.js';

const a = tensor(
  Array.from({ length: 12 }, (_, i) => i + 1),
  [3, 4],
);
const b = tensor(
  Array.from({ length: 20 }, (_, i) => i - 7),
  [4, 5],
);

describe('kernel hooks', () => {
  it('measureFlops counts 2·M·N·K for a matmul and one per element elsewhere, and returns the result', () => {
    const { result, flops } = measureFlops(() => o.add(o.matmul(a, b), 1));
    // matmul 2·3·5·4 = 120; broadcast of the constant 15; add 15
    expect(flops).toBe(120 + 15 + 15);
    expect((result as Tensor).at(0, 0)).toBe(1 * -7 + 2 * -2 + 3 * 3 + 4 * 8 + 1);
  });

  it('profileKernels groups calls by primitive and shapes, and restores the kernel table', () => {
    const before = kernels;
    const { result, rows } = profileKernels(() => {
      const x = o.matmul(a, b);
      return o.add(o.mul(x, x), o.mul(x, x));
    });
    expect(kernels).toBe(before);
    const mul = rows.find((r) => r.prim === 'mul');
    expect(mul).toMatchObject({ shape: '3x5,3x5→3x5', calls: 2 });
    expect(rows.find((r) => r.prim === 'matmul')).toMatchObject({ shape: '3x4,4x5→3x5', calls: 1 });
    expect(rows.every((r) => r.ms >= 0)).toBe(true);
    expect((result as Tensor).shape).toEqual([3, 5]);
  });

  it('a throwing computation still restores the kernel table', () => {
    const before = kernels;
    expect(() =>
      profileKernels(() => {
        o.add(a, a);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(kernels).toBe(before);
  });
});
