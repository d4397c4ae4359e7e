/**
 * WebAssembly kernels: availability, the generated module against its source, odd sizes in every
 * storage order against the reference kernels, memory growth and release. (The shared kernel
 * tables, hand-computed cases and adjoint identities in linalg.test.ts cover them as well.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { randn, rng } from '../../../test/kernel-inputs.js';
import { allocBuf, type Buf, type DType } from '../dtype.js';
import { windowOut, type ConvParams } from '../prims.js';
import { sizeOf, type Shape } from '../shape.js';
import { linalgReference } from './linalg_ref.js';
import { reference } from './reference.js';
import type { KIn } from './types.js';
import { elementwiseWasm, linalgWasm, releaseWasmMemory, wasmAvailable, wasmMemoryBytes, wasmTuning } from './wasm.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function run<P>(k: (out: Buf, outShape: Shape, inputs: readonly KIn[], params: P) => void, outShape: Shape, inputs: KIn[], params: P, dtype: DType): Buf {
  const out = allocBuf(dtype, sizeOf(outShape));
  k(out, outShape, inputs, params);
  return out;
}

/** ‖actual − expected‖∞ ≤ rtol · ‖expected‖∞. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number): void {
  expect(actual.length).toBe(expected.length);
  let maxErr = 0, maxAbs = 0;
  for (let i = 0; i < expected.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(actual[i]! - expected[i]!));
    maxAbs = Math.max(maxAbs, Math.abs(expected[i]!));
  }
  expect(maxErr).toBeLessThanOrEqual(rtol * maxAbs);
}

const RTOL: Record<DType, number> = { float64: 1e-12, float32: 1e-5 };

describe('wasm kernels', () => {
  it('are available in this Node (WebAssembly SIMD), so that the tests below test them', () => {
    expect(wasmAvailable).toBe(true);
  });

  const hasAsc = existsSync(join(ROOT, 'node_modules', 'assemblyscript', 'package.json'));
  it.skipIf(!hasAsc)('kernels.wasm.ts is what gemm.as.ts compiles to (rebuild: npm run build)', () => {
    // byte-identical to a fresh compilation, so the committed module can never go stale
    const out = execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-wasm.mjs'), '--check'], { encoding: 'utf8', stdio: 'pipe' });
    expect(out).toMatch(/up to date/);
  });
  if (!hasAsc) {
    it.skip('kernels.wasm.ts freshness: skipped because assemblyscript is not installed (npm ci installs it)', () => {});
  }

  describe.each(['float64', 'float32'] as const)('matmul, odd sizes, every storage order (%s)', (dtype) => {
    // sizes around the tile edges: rows 4, columns 2L and L (L = 4 in float32, 2 in float64),
    // dot-form K ≥ 16 and the transposing path below it
    const Ms = [1, 2, 3, 4, 5, 7, 8, 9, 13];
    const Ns = [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 33];
    const Ks = [1, 2, 3, 5, 15, 16, 17, 31, 40];
    it('random (M, N, K) and batch sizes', () => {
      const r = rng(dtype === 'float64' ? 11 : 12);
      const pick = (xs: number[]): number => xs[Math.floor(r() * xs.length)]!;
      for (let trial = 0; trial < 120; trial++) {
        const M = pick(Ms), N = pick(Ns), K = pick(Ks);
        const batch = trial % 5 === 0 ? [2, 3] : trial % 3 === 0 ? [2] : [];
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const a = randn([...batch, ...(transA ? [K, M] : [M, K])], dtype, r);
            const b = randn([...batch, ...(transB ? [N, K] : [K, N])], dtype, r);
            const outShape = [...batch, M, N];
            const p = { transA, transB };
            expectClose(run(linalgWasm.matmul, outShape, [a, b], p, dtype), run(linalgReference.matmul, outShape, [a, b], p, dtype), RTOL[dtype]);
          }
        }
      }
    });
  });

  describe.each(['float64', 'float32'] as const)('conv family, odd sizes (%s)', (dtype) => {
    it('random geometries with stride, padding, dilation, groups and batch', () => {
      const r = rng(dtype === 'float64' ? 21 : 22);
      const pick = (xs: number[]): number => xs[Math.floor(r() * xs.length)]!;
      let done = 0;
      for (let trial = 0; done < 60 && trial < 1000; trial++) {
        const G = pick([1, 1, 2, 3]);
        const Cg = pick([1, 2, 3, 5]), Og = pick([1, 2, 3, 5, 9]);
        const KH = pick([1, 2, 3]), KW = pick([1, 2, 3, 5]);
        const H = pick([1, 3, 6, 9, 13]), W = pick([1, 4, 7, 10, 17]);
        const p: ConvParams = {
          stride: [pick([1, 1, 2, 3]), pick([1, 1, 2])],
          padding: [pick([0, 0, 1, 2]), pick([0, 1, 3])],
          dilation: [pick([1, 1, 2]), pick([1, 2])],
          groups: G,
        };
        const OH = windowOut(H, KH, p.stride[0], p.padding[0], p.dilation[0]);
        const OW = windowOut(W, KW, p.stride[1], p.padding[1], p.dilation[1]);
        if (OH < 1 || OW < 1) continue;
        done++;
        const N = pick([1, 1, 2, 3]);
        const xs: Shape = [N, G * Cg, H, W], ws: Shape = [G * Og, Cg, KH, KW], ys: Shape = [N, G * Og, OH, OW];
        const x = randn(xs, dtype, r), w = randn(ws, dtype, r), dy = randn(ys, dtype, r);
        const pi = { ...p, inputShape: xs }, pf = { ...p, filterShape: ws };
        expectClose(run(linalgWasm.conv2d, ys, [x, w], p, dtype), run(linalgReference.conv2d, ys, [x, w], p, dtype), RTOL[dtype]);
        expectClose(
          run(linalgWasm.conv2d_input_grad, xs, [dy, w], pi, dtype),
          run(linalgReference.conv2d_input_grad, xs, [dy, w], pi, dtype),
          RTOL[dtype],
        );
        expectClose(
          run(linalgWasm.conv2d_filter_grad, ws, [x, dy], pf, dtype),
          run(linalgReference.conv2d_filter_grad, ws, [x, dy], pf, dtype),
          RTOL[dtype],
        );
      }
      expect(done).toBe(60);
    });
  });

  it.each(['float64', 'float32'] as const)('conv2d_filter_grad over chunks of 2 images with a last chunk of 1 (%s)', (dtype) => {
    const r = rng(41);
    const saved = wasmTuning.filterGradChunk;
    try {
      for (const [KH, pad, G] of [[3, 1, 1], [1, 0, 1], [3, 0, 2], [1, 0, 2]] as const) {
        const N = 5, Cg = 3, Og = 2, H = 6, W = 7;
        const p: ConvParams = { stride: [1, 1], padding: [pad, pad], dilation: [1, 1], groups: G };
        const OH = windowOut(H, KH, 1, pad), OW = windowOut(W, KH, 1, pad);
        const xs: Shape = [N, G * Cg, H, W], ws: Shape = [G * Og, Cg, KH, KH], ys: Shape = [N, G * Og, OH, OW];
        const x = randn(xs, dtype, r), dy = randn(ys, dtype, r);
        const pf = { ...p, filterShape: ws };
        wasmTuning.filterGradChunk = 2 * (Cg * KH * KH + Og) * OH * OW; // 2 images per chunk: 2 + 2 + 1
        expectClose(
          run(linalgWasm.conv2d_filter_grad, ws, [x, dy], pf, dtype),
          run(linalgReference.conv2d_filter_grad, ws, [x, dy], pf, dtype),
          RTOL[dtype],
        );
      }
    } finally {
      wasmTuning.filterGradChunk = saved;
    }
  });

  it.each(['float64', 'float32'] as const)('maxpool2d 2×2/2 and its scatter: keys with ties, zeros, ±∞ and NaN (%s)', (dtype) => {
    // widths with and without a multiple of 4 windows per row (the f32 kernel takes 4 at a time)
    const r = rng(41);
    const special = [NaN, 0, -0, Infinity, -Infinity, 1, -1];
    const pool = { kernel: [2, 2] as const, stride: [2, 2] as const, padding: [0, 0] as const };
    for (const [N, C, H, W] of [[2, 3, 28, 28], [2, 2, 14, 14], [1, 2, 6, 10], [1, 1, 4, 18], [3, 1, 8, 16], [1, 1, 2, 2]] as const) {
      const xs: Shape = [N, C, H, W], os: Shape = [N, C, H / 2, W / 2];
      const key = randn(xs, dtype, r), val = randn(xs, dtype, r), dy = randn(os, dtype, r);
      for (let i = 0; i < key.data.length; i++) {
        const u = r();
        if (u < 0.3) key.data[i] = special[Math.floor(r() * special.length)]!;
        else if (u < 0.5) key.data[i] = Math.max(0, Math.round(4 * r() - 2));
      }
      const same = (a: Buf, b: Buf): boolean => a.length === b.length && a.every((v, i) => Object.is(v, b[i]) || (Number.isNaN(v) && Number.isNaN(b[i]!)));
      for (const v of [val, key]) {
        expect(same(run(linalgWasm.maxpool2d, os, [key, v], pool, dtype), run(linalgReference.maxpool2d, os, [key, v], pool, dtype))).toBe(true);
      }
      const q = { ...pool, inputShape: xs };
      expect(same(run(linalgWasm.maxpool2d_scatter, xs, [key, dy], q, dtype), run(linalgReference.maxpool2d_scatter, xs, [key, dy], q, dtype))).toBe(true);
    }
  });

  it('grows its memory for a large call and stays correct for small and large calls after it', () => {
    releaseWasmMemory();
    const r = rng(31);
    const small = (): void => {
      const a = randn([5, 7], 'float32', r), b = randn([9, 7], 'float32', r);
      const p = { transA: false, transB: true };
      expectClose(run(linalgWasm.matmul, [5, 9], [a, b], p, 'float32'), run(linalgReference.matmul, [5, 9], [a, b], p, 'float32'), 1e-5);
    };
    small();
    const before = wasmMemoryBytes();
    // 3 operands of 300×300 float64 (≈ 2.2 MB): several pages more than the small call needed
    const M = 300;
    const a = randn([M, M], 'float64', r), b = randn([M, M], 'float64', r);
    const p = { transA: true, transB: true };
    const got = run(linalgWasm.matmul, [M, M], [a, b], p, 'float64');
    expect(wasmMemoryBytes()).toBeGreaterThan(before);
    expectClose(got, run(linalgReference.matmul, [M, M], [a, b], p, 'float64'), 1e-12);
    small();
    // the result is a copy, not a view of wasm memory: later calls leave it alone
    const snapshot = Array.from(got);
    small();
    run(linalgWasm.matmul, [M, M], [b, a], p, 'float64');
    expect(Array.from(got)).toEqual(snapshot);
    releaseWasmMemory();
    expect(wasmMemoryBytes()).toBeLessThan(before + 65536);
    small();
  });
});

describe('wasm elementwise kernels equal reference.ts bit for bit', () => {
  /** Random values salted with the special cases: NaN, ±0, ±∞, ties between the operands, integers. */
  function special(n: number, dtype: DType, r: () => number, other?: Buf): Buf {
    const b = allocBuf(dtype, n);
    const pool = [NaN, 0, -0, Infinity, -Infinity, 1, -1, 2, 0.5];
    for (let i = 0; i < n; i++) {
      const u = r();
      b[i] = u < 0.15 ? pool[Math.floor(r() * pool.length)]! : u < 0.25 && other ? other[i]! : (2 * r() - 1) * 3;
    }
    return b;
  }
  const same = (a: Buf, b: Buf): boolean => a.length === b.length && a.every((v, i) => Object.is(v, b[i]) || (Number.isNaN(v) && Number.isNaN(b[i]!)));
  const r = rng(41);

  it('float32 exp, log, log1p, tanh, mish, mish_grad: bit-identical to the reference on special values and a million random ones', () => {
    const specials = [NaN, 0, -0, Infinity, -Infinity, 1, -1, 1e-30, -1e-30, 1e-45, 88.7, 89, -87.3, -104, -110, 1e30, 3.4e38, 0.5, -0.999999, -1.0000001, 20, -20, 9.5, 1e-8, -1e-8];
    const n = 1 << 20;
    const a = new Float32Array(n);
    a.set(specials);
    for (let i = specials.length; i < n; i++) {
      const u = r();
      // wide magnitudes: exponents from 1e-20 to 1e20, both signs, plus the interesting middle
      a[i] = u < 0.5 ? (2 * r() - 1) * 12 : Math.sign(r() - 0.5) * 10 ** (40 * r() - 20);
    }
    const x: KIn = { data: a, shape: [n] };
    for (const prim of ['exp', 'log', 'log1p', 'tanh', 'mish', 'mish_grad'] as const) {
      const got = new Float32Array(n), want = new Float32Array(n);
      elementwiseWasm[prim](got, [n], [x], {});
      reference[prim](want, [n], [x], {});
      expect(same(got, want), prim).toBe(true);
    }
  });

  for (const dtype of ['float32', 'float64'] as const) {
    // below the threshold (JS), a tail that is not a multiple of the vector width, and large
    for (const n of [5, 4096 + 13, 40_000]) {
      it(`${dtype}, ${n} elements: add, sub, mul, div, max, min, every comparison, select, neg, abs, sqrt, square`, () => {
        const shape = [n];
        const a: KIn = { data: special(n, dtype, r), shape };
        const b: KIn = { data: special(n, dtype, r, a.data), shape };
        const out = () => allocBuf(dtype, n);
        for (const prim of ['add', 'sub', 'mul', 'div', 'max', 'min'] as const) {
          const got = out(), want = out();
          elementwiseWasm[prim](got, shape, [a, b], {});
          reference[prim](want, shape, [a, b], {});
          expect(same(got, want), prim).toBe(true);
          // both operands the same array (one copy into wasm memory)
          const got2 = out(), want2 = out();
          elementwiseWasm[prim](got2, shape, [a, a], {});
          reference[prim](want2, shape, [a, a], {});
          expect(same(got2, want2), `${prim}(a, a)`).toBe(true);
        }
        for (const op of ['gt', 'ge', 'lt', 'le', 'eq', 'ne'] as const) {
          const got = out(), want = out();
          elementwiseWasm.compare(got, shape, [a, b], { op });
          reference.compare(want, shape, [a, b], { op });
          expect(same(got, want), op).toBe(true);
        }
        {
          // select with a mask of special values (NaN selects the first branch, −0 the second)
          const got = out(), want = out();
          elementwiseWasm.select(got, shape, [b, a, { data: a.data.map((v) => -v), shape }], {});
          reference.select(want, shape, [b, a, { data: a.data.map((v) => -v), shape }], {});
          expect(same(got, want), 'select').toBe(true);
        }
        for (const prim of ['neg', 'abs', 'sqrt'] as const) {
          const got = out(), want = out();
          elementwiseWasm[prim](got, shape, [a], {});
          reference[prim](want, shape, [a], {});
          expect(same(got, want), prim).toBe(true);
        }
        for (const exponent of [2, 3]) {
          const got = out(), want = out();
          elementwiseWasm.pow(got, shape, [a], { exponent });
          reference.pow(want, shape, [a], { exponent });
          expect(same(got, want), `pow ${exponent}`).toBe(true);
        }
      });
    }
  }

  it('mixed dtypes fall back to the JS loops', () => {
    const n = 5000;
    const a: KIn = { data: special(n, 'float32', r), shape: [n] };
    const b: KIn = { data: special(n, 'float64', r), shape: [n] };
    const got = allocBuf('float64', n), want = allocBuf('float64', n);
    elementwiseWasm.mul(got, [n], [a, b], {});
    reference.mul(want, [n], [a, b], {});
    expect(same(got, want)).toBe(true);
  });
});
