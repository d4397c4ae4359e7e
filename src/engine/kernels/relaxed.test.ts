/**
 * The relaxed-SIMD build of the wasm kernels (wasm/kernels.wasm.ts's WASM_RELAXED_BASE64: the
 * float32 GEMM micro-kernels use f32x4.relaxed_madd) against the plain SIMD build: float32
 * matmul and conv family within float32 rounding, float64 identical, and the kernel worker threads
 * running the same build as the calling thread.
 *
 * This file runs in a process of its own (vitest's forks pool), started without
 * --experimental-wasm-relaxed-simd, so wasm.ts loads the plain module (on Node 20; a runtime that
 * ships relaxed SIMD loads the relaxed one). The flag is then turned on here with
 * v8.setFlagsFromString, which lets Node 20's V8 validate the relaxed module, and the two builds
 * are compared in this one process through useWasmVariant.
 */
import { setFlagsFromString } from 'node:v8';
import { afterAll, describe, expect, it } from 'vitest';
import { randn, rng } from '../../../test/kernel-inputs.js';
import { allocBuf, type Buf, type DType } from '../dtype.js';
import { windowOut, type ConvParams } from '../prims.js';
import { sizeOf, type Shape } from '../shape.js';
import { linalgReference } from './linalg_ref.js';
import { setThreads, shutdownThreads } from './threads.js';
import type { KIn } from './types.js';
import { useWasmVariant, wasmAvailable, wasmKernels, wasmRelaxedSupported, wasmTuning, wasmVariant } from './wasm.js';

const relaxedAtLoad = wasmRelaxedSupported(); // before the flag below
const variantAtLoad = wasmVariant();
setFlagsFromString('--experimental-wasm-relaxed-simd');
const relaxed = wasmAvailable && wasmRelaxedSupported();

const EPS32 = 2 ** -23;
const DEFAULT_TUNING = { ...wasmTuning };

afterAll(() => {
  Object.assign(wasmTuning, DEFAULT_TUNING);
  setThreads(1);
  useWasmVariant(relaxedAtLoad ? 'relaxed-simd' : 'simd');
  shutdownThreads();
});

type K = (out: Buf, outShape: Shape, inputs: readonly KIn[], params: never) => void;

function run(k: K, outShape: Shape, inputs: KIn[], params: unknown, dtype: DType): Buf {
  const out = allocBuf(dtype, sizeOf(outShape));
  (k as (out: Buf, s: Shape, i: readonly KIn[], p: unknown) => void)(out, outShape, inputs, params);
  return out;
}

/** Both builds' results of one call (relaxed first), at the current thread count. */
function both(k: K, outShape: Shape, inputs: KIn[], params: unknown, dtype: DType): [Buf, Buf] {
  expect(useWasmVariant('relaxed-simd')).toBe(true);
  expect(wasmVariant()).toBe('relaxed-simd');
  const r = run(k, outShape, inputs, params, dtype);
  expect(useWasmVariant('simd')).toBe(true);
  expect(wasmVariant()).toBe('simd');
  const p = run(k, outShape, inputs, params, dtype);
  return [r, p];
}

/**
 * conv2d, its input gradient and its filter gradient on x, w and dy (float32): kernel, output
 * shape, inputs, parameters, the reference kernel, and the terms K of each output's sum.
 */
type ConvCase = [K, Shape, KIn[], unknown, K, number];
function convCases(x: KIn, w: KIn, dy: KIn, p: ConvParams): ConvCase[] {
  const [O, Cg, KH, KW] = w.shape as [number, number, number, number];
  const [N, , OH, OW] = dy.shape as [number, number, number, number];
  return [
    [wasmKernels.conv2d, dy.shape, [x, w], p, linalgReference.conv2d, Cg * KH * KW],
    [wasmKernels.conv2d_input_grad, x.shape, [dy, w], { ...p, inputShape: x.shape }, linalgReference.conv2d_input_grad, (O / p.groups) * KH * KW],
    [wasmKernels.conv2d_filter_grad, w.shape, [x, dy], { ...p, filterShape: w.shape }, linalgReference.conv2d_filter_grad, N * OH * OW],
  ];
}

/** One case in both builds: the relaxed result within float32 rounding of the plain one. */
function expectCaseWithinRounding([k, shape, ins, params, ref, K]: ConvCase): void {
  const [rx, px] = both(k, shape, ins, params, 'float32');
  expectWithinRounding(rx, px, run(ref, shape, ins.map(abs64), params, 'float64'), K);
}

/** |x| of an input, in float64 (for the bound Σ|a||b|). */
function abs64(x: KIn): KIn {
  const data = new Float64Array(x.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.abs(x.data[i]!);
  return { data, shape: x.shape };
}

/**
 * |relaxed − plain| ≤ 4 ulp · √K · Σ|a||b| at every element (`scale`: that sum, computed by the
 * reference kernel on |operands| in float64). Returns the largest ratio seen and how many differ.
 */
function expectWithinRounding(r: Buf, p: Buf, scale: Buf, K: number): { worst: number; differ: number } {
  expect(r.length).toBe(p.length);
  let worst = 0,
    differ = 0;
  const tol = 4 * EPS32 * Math.sqrt(K);
  for (let i = 0; i < p.length; i++) {
    const d = Math.abs(r[i]! - p[i]!);
    if (d !== 0) differ++;
    const ratio = d / (tol * scale[i]! + Number.MIN_VALUE);
    worst = Math.max(worst, ratio);
  }
  expect(worst).toBeLessThanOrEqual(1);
  return { worst, differ };
}

function same(a: Buf, b: Buf): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('relaxed-SIMD wasm kernels', () => {
  it('the variant picked at load is the relaxed one exactly where the runtime validates it', () => {
    expect(wasmAvailable).toBe(true);
    expect(variantAtLoad).toBe(relaxedAtLoad ? 'relaxed-simd' : 'simd');
  });

  it.skipIf(!relaxed)('matmul: float32 within float32 rounding of the plain build, float64 identical', () => {
    const r = rng(71);
    let differ = 0;
    for (const [M, N, K] of [
      [1, 1, 1],
      [5, 9, 3],
      [13, 17, 31],
      [64, 64, 64],
      [33, 70, 300],
      [7, 129, 1000],
    ] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const p = { transA, transB };
          const as: Shape = transA ? [K, M] : [M, K],
            bs: Shape = transB ? [N, K] : [K, N];
          const a = randn(as, 'float32', r),
            b = randn(bs, 'float32', r);
          const [rx, px] = both(wasmKernels.matmul, [M, N], [a, b], p, 'float32');
          const scale = run(linalgReference.matmul, [M, N], [abs64(a), abs64(b)], p, 'float64');
          differ += expectWithinRounding(rx, px, scale, K).differ;
          const a64 = randn(as, 'float64', r),
            b64 = randn(bs, 'float64', r);
          const [r64, p64] = both(wasmKernels.matmul, [M, N], [a64, b64], p, 'float64');
          expect(same(r64, p64)).toBe(true);
        }
      }
    }
    // on hardware with FMA most float32 results differ in their last bits (x86-64 with FMA3:
    // about 70% of them here, at most a fifth of the bound); without FMA relaxed_madd is mul + add
    expect(differ).toBeGreaterThanOrEqual(0);
  });

  it.skipIf(!relaxed)('conv2d and its gradients: float32 within float32 rounding of the plain build, float64 identical', () => {
    const r = rng(72);
    for (const [N, G, Cg, Og, H, W, KH, stride, pad] of [
      [2, 1, 3, 5, 9, 10, 3, 1, 1],
      [3, 2, 4, 3, 8, 7, 3, 2, 1],
      [2, 1, 16, 32, 12, 12, 3, 1, 1],
      [4, 1, 32, 16, 8, 8, 1, 1, 0],
    ] as const) {
      const p: ConvParams = { stride: [stride, stride], padding: [pad, pad], dilation: [1, 1], groups: G };
      const OH = windowOut(H, KH, stride, pad),
        OW = windowOut(W, KH, stride, pad);
      const xs: Shape = [N, G * Cg, H, W],
        ws: Shape = [G * Og, Cg, KH, KH],
        ys: Shape = [N, G * Og, OH, OW];
      const pi = { ...p, inputShape: xs },
        pf = { ...p, filterShape: ws };
      const x = randn(xs, 'float32', r),
        w = randn(ws, 'float32', r),
        dy = randn(ys, 'float32', r);
      for (const c of convCases(x, w, dy, p)) expectCaseWithinRounding(c);
      const x64 = randn(xs, 'float64', r),
        w64 = randn(ws, 'float64', r),
        dy64 = randn(ys, 'float64', r);
      for (const [k, shape, ins, params] of [
        [wasmKernels.conv2d, ys, [x64, w64], p],
        [wasmKernels.conv2d_input_grad, xs, [dy64, w64], pi],
        [wasmKernels.conv2d_filter_grad, ws, [x64, dy64], pf],
      ] as [K, Shape, KIn[], unknown][]) {
        const [r64, p64] = both(k, shape, ins, params, 'float64');
        expect(same(r64, p64)).toBe(true);
      }
    }
  });

  it.skipIf(!relaxed)('the kernel worker threads run the same build: relaxed results at 2 and 3 threads equal 1 thread', () => {
    const r = rng(73);
    wasmTuning.parallelMinFlops = 1;
    const a = randn([67, 300], 'float32', r),
      b = randn([300, 45], 'float32', r);
    const x = randn([4, 16, 10, 10], 'float32', r),
      w = randn([24, 16, 3, 3], 'float32', r);
    const cp: ConvParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    const calls = (): Buf[] => [
      run(wasmKernels.matmul, [67, 45], [a, b], { transA: false, transB: false }, 'float32'),
      run(wasmKernels.conv2d, [4, 24, 10, 10], [x, w], cp, 'float32'),
    ];
    expect(useWasmVariant('relaxed-simd')).toBe(true);
    setThreads(1);
    const one = calls();
    for (const n of [2, 3]) {
      setThreads(n);
      const got = calls();
      for (let i = 0; i < one.length; i++) expect(same(got[i]!, one[i]!)).toBe(true);
    }
    // and the plain build at 2 threads equals its single-thread result as well
    expect(useWasmVariant('simd')).toBe(true);
    setThreads(1);
    const plainOne = calls();
    setThreads(2);
    const plainTwo = calls();
    for (let i = 0; i < one.length; i++) expect(same(plainTwo[i]!, plainOne[i]!)).toBe(true);
    // (where the builds' results differ, as on hardware with FMA, a worker running the other
    // build would have broken the equalities above)
  });

  it.skipIf(!relaxed)(
    'Winograd (row vectors and tiles one by one, all three kernels) and the batched input gradient: relaxed results at 2 and 3 threads equal 1 thread, within float32 rounding of the plain build',
    () => {
      // (a fused multiply-add rounds once where a multiply then an add round twice, so a row or a
      // column that took another GEMM path at another thread count would differ here)
      const r = rng(74);
      Object.assign(wasmTuning, { parallelMinFlops: 1, winogradMinTiles: 1, winogradMinTilesAny: 1, winogradMinChannelsAny: 1, winogradTiles: 96 });
      const calls: (() => Buf)[] = [];
      const bounds: (() => void)[] = []; // each call within float32 rounding of the plain build's
      for (const [N, C, O, H, stride] of [
        [5, 12, 20, 32, 1], // row vectors, 14 blocks of 96 tiles
        [33, 20, 37, 2, 1], // one by one, one block: the parts split the output channels
        [40, 64, 32, 4, 2], // stride 2 onto 2×2: the batched input gradient
      ] as const) {
        const p: ConvParams = { stride: [stride, stride], padding: [1, 1], dilation: [1, 1], groups: 1 };
        const OH = windowOut(H, 3, stride, 1);
        const xs: Shape = [N, C, H, H],
          ws: Shape = [O, C, 3, 3],
          ys: Shape = [N, O, OH, OH];
        const x = randn(xs, 'float32', r),
          w = randn(ws, 'float32', r),
          dy = randn(ys, 'float32', r);
        for (const c of convCases(x, w, dy, p)) {
          const [k, shape, ins, params] = c;
          calls.push(() => run(k, shape, ins, params, 'float32'));
          bounds.push(() => expectCaseWithinRounding(c));
        }
      }
      expect(useWasmVariant('relaxed-simd')).toBe(true);
      setThreads(1);
      const one = calls.map((f) => f());
      for (const n of [2, 3]) {
        setThreads(n);
        calls.forEach((f, i) => expect(same(f(), one[i]!), `call ${i}, ${n} threads`).toBe(true));
      }
      setThreads(1);
      for (const f of bounds) f();
      Object.assign(wasmTuning, DEFAULT_TUNING);
    },
  );
});
