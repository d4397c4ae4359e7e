/**
 * The wasm tier's reduce_sum and broadcast (wasm/structural.as.ts): bit-identical to js.ts's
 * reduce_sum and the reference's broadcast on every axis subset of shapes up to rank 4, special
 * values included, at 1, 2 and 3 threads; and resident buffers (scratch-pool buffers in the wasm
 * memory, which the kernels use in place): the same results as plain arrays, pools give their
 * blocks back, and a dropped memory leaves its buffers intact.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { rng } from '../../../test/kernel-inputs.js';
import { allocBuf, type Buf, type DType } from '../dtype.js';
import { kernelOutput, Scratch, SCRATCH_MIN_ELEMS, withScratch } from '../scratch.js';
import { sizeOf, type Shape } from '../shape.js';
import { jsKernels } from './js.js';
import { reference } from './reference.js';
import { setThreads, shutdownThreads, threadsRunning } from './threads.js';
import { releaseWasmMemory, wasmAvailable, wasmKernels, wasmResidentBytes, wasmTuning } from './wasm.js';

const DEFAULT_TUNING = { ...wasmTuning };
afterEach(() => {
  Object.assign(wasmTuning, DEFAULT_TUNING);
  setThreads(1);
});
afterAll(() => shutdownThreads());

const same = (a: Buf, b: Buf): boolean => a.length === b.length && a.every((v, i) => Object.is(v, b[i]) || (Number.isNaN(v) && Number.isNaN(b[i]!)));

/** Random values with NaN, ±0 and ±∞ salted in (where `specials`). */
function values(n: number, dtype: DType, r: () => number, specials = true): Buf {
  const b = allocBuf(dtype, n);
  const pool = [NaN, 0, -0, Infinity, -Infinity];
  for (let i = 0; i < n; i++) b[i] = specials && r() < 0.002 ? pool[Math.floor(r() * pool.length)]! : (2 * r() - 1) * 3;
  return b;
}

function run<P>(
  k: (out: Buf, s: Shape, i: { data: Buf; shape: Shape }[], p: P) => void,
  outShape: Shape,
  a: Buf,
  shape: Shape,
  p: P,
  zero: boolean,
): Buf {
  const out = allocBuf(a instanceof Float32Array ? 'float32' : 'float64', sizeOf(outShape));
  if (!zero) out.fill(NaN); // broadcast writes every element
  k(out, outShape, [{ data: a, shape }], p);
  return out;
}

/** Every subset of the axes of `rank`. */
const subsets = (rank: number): number[][] =>
  Array.from({ length: 1 << rank }, (_, m) => Array.from({ length: rank }, (_, i) => i).filter((i) => m & (1 << i)));

const SHAPES: Shape[] = [[4099], [3, 1030], [7, 5, 33], [2, 3, 17, 19], [32, 16, 8, 8], [5, 1, 9, 31], [1, 64, 1, 40]];

describe.skipIf(!wasmAvailable).each(['float32', 'float64'] as const)('reduce_sum and broadcast in wasm (%s)', (dtype) => {
  const r = rng(dtype === 'float32' ? 7 : 8);

  it('reduce_sum equals js.ts bit for bit on every axis subset (special values included)', () => {
    let inWasm = 0;
    for (const shape of SHAPES) {
      const a = values(sizeOf(shape), dtype, r, shape.length !== 4 || shape[0] !== 32);
      for (const axes of subsets(shape.length)) {
        const outShape = shape.filter((_, i) => !axes.includes(i));
        const got = run(wasmKernels.reduce_sum, outShape, a, shape, { axes }, true);
        const want = run(jsKernels.reduce_sum, outShape, a, shape, { axes }, true);
        expect(same(got, want), `${shape.join('x')} axes ${axes.join(',')}`).toBe(true);
        inWasm++;
      }
    }
    expect(inWasm).toBeGreaterThan(60);
  });

  it('broadcast equals the reference bit for bit (per-channel, per-row, inner, outer and mixed patterns)', () => {
    const cases: [Shape, Shape, number[]][] = [
      [
        [1, 32, 1, 1],
        [32, 32, 16, 16],
        [0, 1, 2, 3],
      ],
      [[32], [32, 32, 16, 16], [1]],
      [
        [16, 1],
        [16, 1030],
        [0, 1],
      ],
      [[1030], [16, 1030], [1]],
      [
        [7, 1, 33],
        [7, 5, 33],
        [0, 1, 2],
      ],
      [
        [7, 33],
        [7, 9, 33],
        [0, 2],
      ],
      [
        [3, 1, 5, 1],
        [3, 4, 5, 6],
        [0, 1, 2, 3],
      ], // four coalesced axes: the reference
      [
        [2, 3],
        [2, 3, 4, 100],
        [0, 1],
      ],
    ];
    for (const [inShape, outShape, dims] of cases) {
      const a = values(sizeOf(inShape), dtype, r);
      const got = run(wasmKernels.broadcast, outShape, a, inShape, { shape: outShape, dims }, false);
      const want = run(reference.broadcast, outShape, a, inShape, { shape: outShape, dims }, false);
      expect(same(got, want), `${inShape.join('x')} → ${outShape.join('x')}`).toBe(true);
    }
  });

  it('both are bit-identical at 1, 2 and 3 threads, split into parts', () => {
    wasmTuning.parallelMinElements = 1;
    const shape = [6, 20, 7, 9];
    const a = values(sizeOf(shape), dtype, r);
    for (const axes of [[0, 2, 3], [2, 3], [0], [0, 1, 2, 3], [1, 3]]) {
      const outShape = shape.filter((_, i) => !axes.includes(i));
      setThreads(1);
      const one = run(wasmKernels.reduce_sum, outShape, a, shape, { axes }, true);
      for (const n of [2, 3]) {
        setThreads(n);
        expect(same(run(wasmKernels.reduce_sum, outShape, a, shape, { axes }, true), one), `axes ${axes.join(',')} at ${n} threads`).toBe(true);
      }
    }
    const c = values(20, dtype, r);
    setThreads(1);
    const one = run(wasmKernels.broadcast, shape, c, [1, 20, 1, 1], { shape, dims: [0, 1, 2, 3] }, false);
    for (const n of [2, 3]) {
      setThreads(n);
      expect(same(run(wasmKernels.broadcast, shape, c, [1, 20, 1, 1], { shape, dims: [0, 1, 2, 3] }, false), one)).toBe(true);
      expect(threadsRunning()).toBe(n - 1);
    }
  });
});

describe.skipIf(!wasmAvailable)('resident buffers (scratch pools in the wasm memory)', () => {
  const r = rng(11);
  const n = SCRATCH_MIN_ELEMS * 2 + 5;

  it('pool buffers live in the wasm memory; kernels on them (and on parts of them) equal the same kernels on plain arrays', () => {
    const s = new Scratch();
    const before = wasmResidentBytes();
    const plain = { a: values(n, 'float32', r, false), b: values(n, 'float32', r, false) };
    const want = { mish: run(wasmKernels.mish, [n], plain.a, [n], {}, false) };
    const mulPlain = allocBuf('float32', n);
    wasmKernels.mul(
      mulPlain,
      [n],
      [
        { data: plain.a, shape: [n] },
        { data: plain.b, shape: [n] },
      ],
      {},
    );
    const got = withScratch(s, () => {
      const a = kernelOutput('float32', n);
      const b = kernelOutput('float32', n);
      a.set(plain.a);
      b.set(plain.b);
      expect(wasmResidentBytes()).toBeGreaterThan(before);
      expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
      const o1 = kernelOutput('float32', n, false);
      wasmKernels.mul(
        o1,
        [n],
        [
          { data: a, shape: [n] },
          { data: b, shape: [n] },
        ],
        {},
      );
      const o2 = kernelOutput('float32', n, false);
      wasmKernels.mish(o2, [n], [{ data: a, shape: [n] }], {});
      // resident input, plain output; a part of a resident buffer as input
      const o3 = allocBuf('float32', n);
      wasmKernels.mish(o3, [n], [{ data: a, shape: [n] }], {});
      const half = (n - 1) / 2 + 1;
      const o4 = allocBuf('float32', n - half);
      wasmKernels.mish(o4, [n - half], [{ data: a.subarray(half), shape: [n - half] }], {});
      return { mul: o1.slice(), mish: o2.slice(), mish3: o3, tail: o4 };
    });
    expect(same(got.mul, mulPlain)).toBe(true);
    expect(same(got.mish, want.mish)).toBe(true);
    expect(same(got.mish3, want.mish)).toBe(true);
    expect(same(got.tail, want.mish.subarray((n - 1) / 2 + 1))).toBe(true);
  });

  it('a disposed pool gives its blocks back: the next pool reuses them instead of growing', () => {
    const first = new Scratch();
    withScratch(first, () => kernelOutput('float64', n * 3));
    const held = wasmResidentBytes();
    first.dispose();
    const second = new Scratch();
    withScratch(second, () => kernelOutput('float64', n * 3));
    expect(wasmResidentBytes()).toBe(held);
    second.dispose();
    expect(() =>
      withScratch(second, () => {
        kernelOutput('float64', n);
        second.dispose();
      }),
    ).toThrow(/still in use/);
  });

  it('releaseWasmMemory leaves a pool’s buffers intact (no longer resident: the kernels copy them)', () => {
    const s = new Scratch({ poison: false });
    const a0 = values(n, 'float32', r, false);
    const want = run(wasmKernels.mish, [n], a0, [n], {}, false);
    const a = withScratch(s, () => {
      const b = kernelOutput('float32', n);
      b.set(a0);
      return { keep: b, copy: 0 };
    }).keep; // copied out of the pool: a plain array
    expect(same(a, a0)).toBe(true);
    withScratch(s, () => {
      const b = kernelOutput('float32', n, false); // the pool's block again
      b.set(a0);
      releaseWasmMemory();
      expect(wasmResidentBytes()).toBe(0);
      expect(Array.from(b.subarray(0, 5))).toEqual(Array.from(a0.subarray(0, 5)));
      const o = kernelOutput('float32', n, false);
      wasmKernels.mish(o, [n], [{ data: b, shape: [n] }], {});
      expect(same(o, want)).toBe(true);
      return null;
    });
  });
});
