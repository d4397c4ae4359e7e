/**
 * The wasm tier's fast paths for the xresnet training step: the implicit-GEMM convolution
 * (conv.as.ts convImplicit: conv2d, and the input gradient of stride-1 convolutions as a
 * convolution with the flipped, transposed weights), the float32 3×3 stride-2 max-pool argmax
 * (pool.as.ts poolArgmax3s2), channel_affine (BatchNorm's scale and shift in one pass) and
 * BatchNorm's normalisation (bn_normalize, bn_normalize_jvp, channel_moments, channel_sums; normalize.as.ts)
 * and the filter gradient's short sums (a per-example bracket's few positions: the axpy form):
 * against the reference kernels (and the im2col path they replace), and bit-identical at 1, 2 and
 * 3 threads.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { randn, rng } from '../../../test/kernel-inputs.js';
import { allocBuf, type Buf, type DType } from '../dtype.js';
import { windowOut, type ConvParams, type PoolParams } from '../prims.js';
import { sizeOf, type Shape } from '../shape.js';
import { linalgReference } from './linalg_ref.js';
import { reference } from './reference.js';
import { setThreads, shutdownThreads } from './threads.js';
import type { KIn } from './types.js';
import { wasmAvailable, wasmKernels, wasmTuning } from './wasm.js';

const DEFAULT_TUNING = { ...wasmTuning };
afterEach(() => {
  Object.assign(wasmTuning, DEFAULT_TUNING);
  setThreads(1);
});
afterAll(() => shutdownThreads());

function run<P>(k: (out: Buf, s: Shape, ins: readonly KIn[], p: P) => void, shape: Shape, ins: KIn[], p: P, dtype: DType): Buf {
  const out = allocBuf(dtype, sizeOf(shape));
  out.fill(NaN); // the implicit GEMM overwrites every element
  k(out, shape, ins, p);
  return out;
}

function maxRelErr(a: Buf, b: Buf): number {
  let e = 0,
    m = 0;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(a[i]!) !== Number.isNaN(b[i]!)) return Infinity;
    e = Math.max(e, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return e / m;
}

const same = (a: Buf, b: Buf): boolean => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

interface Case {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  K: number;
  s: number;
  pad: number;
  dil?: number;
}

// every case takes the implicit path (≥ 32 output channels, ≤ 64 positions per image, ≥ 128
// columns in all; the input gradient where it has ≥ 32 input channels), and among them: rows not a multiple
// of 4 (33, 37), Cin·KH·KW above the panel's 512 rows (64·9, 600·9), a tail of one vector
// (N·OH·OW ≡ 4 mod 8), 2×2 and 1×1 outputs (vectors spanning output rows and images), 1×1 and
// 5×5 kernels, padding 0 and 2, stride 2, dilation 2, non-square images
const CASES: Case[] = [
  { N: 3, C: 5, H: 8, W: 8, O: 32, K: 3, s: 1, pad: 1 },
  { N: 3, C: 3, H: 6, W: 10, O: 33, K: 3, s: 1, pad: 1 },
  { N: 33, C: 64, H: 2, W: 2, O: 37, K: 3, s: 1, pad: 1 },
  { N: 40, C: 64, H: 4, W: 4, O: 32, K: 3, s: 2, pad: 1 },
  { N: 8, C: 600, H: 4, W: 4, O: 32, K: 3, s: 1, pad: 1 },
  { N: 4, C: 7, H: 6, W: 6, O: 40, K: 1, s: 1, pad: 0 },
  { N: 3, C: 4, H: 6, W: 8, O: 32, K: 5, s: 1, pad: 2 },
  { N: 2, C: 6, H: 10, W: 10, O: 36, K: 3, s: 1, pad: 0 },
  { N: 4, C: 8, H: 12, W: 12, O: 32, K: 3, s: 2, pad: 1 },
  { N: 2, C: 8, H: 8, W: 8, O: 32, K: 3, s: 1, pad: 2, dil: 2 },
  { N: 32, C: 16, H: 2, W: 2, O: 64, K: 3, s: 1, pad: 1 },
];

function shapes(c: Case): { x: Shape; w: Shape; y: Shape; p: ConvParams } {
  const d = c.dil ?? 1;
  const OH = windowOut(c.H, c.K, c.s, c.pad, d);
  const OW = windowOut(c.W, c.K, c.s, c.pad, d);
  const p: ConvParams = { stride: [c.s, c.s], padding: [c.pad, c.pad], dilation: [d, d], groups: 1 };
  return { x: [c.N, c.C, c.H, c.W], w: [c.O, c.C, c.K, c.K], y: [c.N, c.O, OH, OW], p };
}

describe.skipIf(!wasmAvailable)('implicit-GEMM convolution (wasm)', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    const rtol = dtype === 'float64' ? 1e-12 : 1e-5; // float32: sums of up to 5,400 products
    it.each(CASES.map((c) => [JSON.stringify(c), c] as const))(
      `${dtype} %s: conv2d and input gradient equal the reference, the im2col path and themselves at 1, 2, 3 threads`,
      (_n, c) => {
        wasmTuning.winograd = false; // (it would take the float32 3×3 stride-1 cases)
        const r = rng(c.N * 1000 + c.C * 10 + c.O);
        const s = shapes(c);
        const x = randn(s.x, dtype, r);
        const w = randn(s.w, dtype, r);
        const dy = randn(s.y, dtype, r);
        const pi = { ...s.p, inputShape: s.x };
        const fwd = (): Buf => run(wasmKernels.conv2d, s.y, [x, w], s.p, dtype);
        const dx = (): Buf => run(wasmKernels.conv2d_input_grad, s.x, [dy, w], pi, dtype);
        const yRef = run(linalgReference.conv2d, s.y, [x, w], s.p, dtype);
        const dxRef = run(linalgReference.conv2d_input_grad, s.x, [dy, w], pi, dtype);
        const y1 = fwd();
        const dx1 = dx();
        expect(maxRelErr(y1, yRef)).toBeLessThanOrEqual(rtol);
        expect(maxRelErr(dx1, dxRef)).toBeLessThanOrEqual(rtol);
        // every part of a split call sums each element in the same order
        wasmTuning.parallelMinFlops = 1;
        for (const t of [2, 3]) {
          setThreads(t);
          expect(same(fwd(), y1), `conv2d at ${t} threads`).toBe(true);
          expect(same(dx(), dx1), `input gradient at ${t} threads`).toBe(true);
        }
        setThreads(1);
        // the im2col path: the same values up to the order of the sums
        wasmTuning.implicitConv = false;
        expect(maxRelErr(fwd(), y1)).toBeLessThanOrEqual(rtol);
        expect(maxRelErr(dx(), dx1)).toBeLessThanOrEqual(rtol);
      },
    );
  }

  it('the implicit path is the one taken (it differs from the im2col path in the last bits somewhere)', () => {
    // Cin·KK = 600·9 rows: summed in panels of ≤ 512 rows by the implicit GEMM, in one run by the GEMM
    const c = CASES[4]!;
    const s = shapes(c);
    const r = rng(9);
    wasmTuning.winograd = false;
    const x = randn(s.x, 'float32', r);
    const w = randn(s.w, 'float32', r);
    const a = run(wasmKernels.conv2d, s.y, [x, w], s.p, 'float32');
    wasmTuning.implicitConv = false;
    const b = run(wasmKernels.conv2d, s.y, [x, w], s.p, 'float32');
    expect(same(a, b)).toBe(false);
    expect(maxRelErr(a, b)).toBeLessThanOrEqual(1e-5);
  });
});

describe.skipIf(!wasmAvailable)('float32 3×3 stride-2 max-pool (wasm, four windows at a time)', () => {
  const p: PoolParams = { kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
  for (const [N, C, H, W] of [
    [2, 3, 32, 32],
    [1, 2, 17, 30],
    [2, 2, 31, 19],
    [1, 1, 12, 11],
  ] as const) {
    it(`${N}×${C}×${H}×${W}: the same selections (ties, NaN, −∞) and scatter as the reference, at 1, 2, 3 threads`, () => {
      const r = rng(H * 100 + W);
      const inShape: Shape = [N, C, H, W];
      const OH = windowOut(H, 3, 2, 1),
        OW = windowOut(W, 3, 2, 1);
      const outShape: Shape = [N, C, OH, OW];
      const key = new Float32Array(N * C * H * W);
      for (let i = 0; i < key.length; i++) key[i] = Math.round((r() * 2 - 1) * 4) / 4; // many ties
      for (let i = 3; i < key.length; i += 37) key[i] = NaN;
      for (let i = 11; i < key.length; i += 41) key[i] = -Infinity;
      const val = new Float32Array(key.length).map((_, i) => i); // which element each window selected
      const k: KIn = { data: key, shape: inShape };
      const v: KIn = { data: val, shape: inShape };
      const dy = randn(outShape, 'float32', r);
      const pp = { ...p, inputShape: inShape };
      const want = run(linalgReference.maxpool2d, outShape, [k, v], p, 'float32');
      const wantS = run(linalgReference.maxpool2d_scatter, inShape, [k, dy], pp, 'float32');
      wasmTuning.parallelMinElements = 1;
      for (const t of [1, 2, 3]) {
        setThreads(t);
        expect(same(run(wasmKernels.maxpool2d, outShape, [k, v], p, 'float32'), want), `maxpool2d, ${t} threads`).toBe(true);
        expect(same(run(wasmKernels.maxpool2d_scatter, inShape, [k, dy], pp, 'float32'), wantS), `scatter, ${t} threads`).toBe(true);
      }
    });
  }
});

describe.skipIf(!wasmAvailable)('channel_affine (wasm)', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    for (const [shape, axis] of [
      [[32, 16, 32, 32], 1],
      [[3, 5, 7], 1],
      [[4, 37], 1],
      [[41, 6], 0],
      [[2, 3, 4, 5], 3],
    ] as const) {
      it(`${dtype} ${JSON.stringify(shape)} axis ${axis}: bit-identical to the reference and to mul then add, at 1, 2, 3 threads`, () => {
        const r = rng(shape.length * 10 + axis);
        const x = randn([...shape], dtype, r);
        const s = randn([shape[axis]!], dtype, r);
        const t = randn([shape[axis]!], dtype, r);
        const want = run(reference.channel_affine, [...shape], [x, s, t], { axis }, dtype);
        // mul then add of the broadcast vectors
        const dims = [axis];
        const bs = run(reference.broadcast, [...shape], [s], { shape: [...shape], dims }, dtype);
        const bt = run(reference.broadcast, [...shape], [t], { shape: [...shape], dims }, dtype);
        const prod = run(reference.mul, [...shape], [x, { data: bs, shape: [...shape] }], {}, dtype);
        const sum = run(
          reference.add,
          [...shape],
          [
            { data: prod, shape: [...shape] },
            { data: bt, shape: [...shape] },
          ],
          {},
          dtype,
        );
        expect(same(want, sum)).toBe(true);
        wasmTuning.parallelMinElements = 1;
        for (const n of [1, 2, 3]) {
          setThreads(n);
          expect(same(run(wasmKernels.channel_affine, [...shape], [x, s, t], { axis }, dtype), want), `${n} threads`).toBe(true);
        }
      });
    }
  }
});

// Winograd F(2×2, 3×3) (winograd.as.ts), float32 only, here from any number of tiles: output
// channels not a multiple of 4 (33, 9), padding 0, 1 and 2, the edge path (patch rows reaching
// outside x), non-square images, blocks of 96 tiles with a partial last one (5·256 tiles), and
// input gradients through four tiles of a row per vector (dx 16 or 32 wide) and through tiles
// gathered one by one (dx 10 wide, and the small images); the filter gradient in every case, in
// 1, 2 and 8 partial sums (P = min(blocks, 8); the 5·256 tiles' 14 blocks go 1 or 2 to a
// partial); with one block, the parts split the output channels
const WINOGRAD: Case[] = [
  { N: 3, C: 5, H: 8, W: 8, O: 8, K: 3, s: 1, pad: 1 },
  { N: 2, C: 16, H: 16, W: 16, O: 33, K: 3, s: 1, pad: 1 },
  { N: 2, C: 7, H: 10, W: 10, O: 12, K: 3, s: 1, pad: 0 },
  { N: 1, C: 4, H: 6, W: 6, O: 4, K: 3, s: 1, pad: 2 },
  { N: 3, C: 6, H: 8, W: 16, O: 9, K: 3, s: 1, pad: 1 },
  { N: 5, C: 12, H: 32, W: 32, O: 20, K: 3, s: 1, pad: 1 },
  // small images (tile rows not a multiple of four tiles: gathered one by one): 2×2 with a last
  // vector of one tile (33), 4×4 over two blocks, 6×6 (three tiles a row, vectors spanning rows
  // and images), 2×4 outputs from padding 0, and Cin·Cout above 16 Ki (the GEMMs' row chunks)
  { N: 33, C: 64, H: 2, W: 2, O: 37, K: 3, s: 1, pad: 1 },
  { N: 40, C: 20, H: 4, W: 4, O: 12, K: 3, s: 1, pad: 1 },
  { N: 3, C: 5, H: 6, W: 6, O: 9, K: 3, s: 1, pad: 1 },
  { N: 5, C: 6, H: 4, W: 6, O: 8, K: 3, s: 1, pad: 0 },
  { N: 4, C: 136, H: 2, W: 2, O: 132, K: 3, s: 1, pad: 1 },
];

describe.skipIf(!wasmAvailable)('Winograd F(2×2, 3×3) convolution (wasm, float32)', () => {
  it.each(WINOGRAD.map((c) => [JSON.stringify(c), c] as const))(
    '%s: conv2d, input and filter gradients equal the reference and the other paths, and themselves at 1, 2, 3 threads',
    (_n, c) => {
      const dtype = 'float32';
      const rtol = 1e-5;
      const r = rng(c.N * 1000 + c.C * 10 + c.O + 7);
      const s = shapes(c);
      const x = randn(s.x, dtype, r);
      const w = randn(s.w, dtype, r);
      const dy = randn(s.y, dtype, r);
      const pi = { ...s.p, inputShape: s.x };
      const fwd = (): Buf => run(wasmKernels.conv2d, s.y, [x, w], s.p, dtype);
      const dx = (): Buf => run(wasmKernels.conv2d_input_grad, s.x, [dy, w], pi, dtype);
      const pf = { ...s.p, filterShape: s.w };
      const dw = (): Buf => run(wasmKernels.conv2d_filter_grad, s.w, [x, dy], pf, dtype);
      wasmTuning.winogradMinTiles = 1;
      wasmTuning.winogradMinTilesAny = 1;
      wasmTuning.winogradMinChannelsAny = 1;
      wasmTuning.winogradTiles = 96;
      const y1 = fwd();
      const dx1 = dx();
      const dw1 = dw();
      expect(maxRelErr(dw1, run(linalgReference.conv2d_filter_grad, s.w, [x, dy], pf, dtype))).toBeLessThanOrEqual(rtol);
      expect(maxRelErr(y1, run(linalgReference.conv2d, s.y, [x, w], s.p, dtype))).toBeLessThanOrEqual(rtol);
      expect(maxRelErr(dx1, run(linalgReference.conv2d_input_grad, s.x, [dy, w], pi, dtype))).toBeLessThanOrEqual(rtol);
      wasmTuning.parallelMinFlops = 1;
      for (const t of [2, 3]) {
        setThreads(t);
        expect(same(fwd(), y1), `conv2d at ${t} threads`).toBe(true);
        expect(same(dx(), dx1), `input gradient at ${t} threads`).toBe(true);
        expect(same(dw(), dw1), `filter gradient at ${t} threads`).toBe(true);
      }
      setThreads(1);
      wasmTuning.winograd = false;
      const y0 = fwd();
      expect(maxRelErr(y0, y1)).toBeLessThanOrEqual(rtol);
      expect(maxRelErr(dx(), dx1)).toBeLessThanOrEqual(rtol);
      const dw0 = dw();
      expect(maxRelErr(dw0, dw1)).toBeLessThanOrEqual(rtol);
      // the Winograd path is the one taken: its sums round differently somewhere
      expect(same(y0, y1), 'conv2d by Winograd differs from the other paths in the last bits').toBe(false);
      expect(same(dw0, dw1), 'the filter gradient by Winograd differs from the other paths in the last bits').toBe(false);
    },
  );
  it('is not taken for float64, and by default not below 512 tiles (a per-example 32×32 layer)', () => {
    const c = { N: 1, C: 8, H: 32, W: 32, O: 8, K: 3, s: 1, pad: 1 };
    const s = shapes(c);
    const r = rng(11);
    for (const dtype of ['float32', 'float64'] as const) {
      const x = randn(s.x, dtype, r);
      const w = randn(s.w, dtype, r);
      const fwd = (): Buf => run(wasmKernels.conv2d, s.y, [x, w], s.p, dtype);
      const y1 = fwd();
      wasmTuning.winograd = false;
      expect(same(fwd(), y1), dtype).toBe(true);
      wasmTuning.winograd = true;
    }
  });
  it('by default, small images take it from 64 tiles and 64 channels: the xresnet 4×4 128→128 layer at batch 32, not a 16→32 one on 14×14 images, nor 2×2 at batch 32', () => {
    for (const [c, taken] of [
      [{ N: 32, C: 128, H: 4, W: 4, O: 128, K: 3, s: 1, pad: 1 }, true],
      [{ N: 32, C: 16, H: 14, W: 14, O: 32, K: 3, s: 1, pad: 1 }, false],
      [{ N: 32, C: 64, H: 2, W: 2, O: 64, K: 3, s: 1, pad: 1 }, false],
    ] as const) {
      const s = shapes(c);
      const r = rng(12);
      const x = randn(s.x, 'float32', r);
      const w = randn(s.w, 'float32', r);
      const fwd = (): Buf => run(wasmKernels.conv2d, s.y, [x, w], s.p, 'float32');
      const y1 = fwd();
      wasmTuning.winograd = false;
      expect(same(fwd(), y1), JSON.stringify(c)).toBe(!taken);
      wasmTuning.winograd = true;
    }
  });
});

// the input gradient of small outputs with the images' columns side by side (conv.as.ts,
// conv2dInputGradBatched): stride 2 onto 2×2, 6×6 and 3×4 outputs, GEMM rows not a multiple of 4
// (5·9, 7·9), padding 0 and 1; chunks of all the images and of 3 (a partial last one)
const BATCHED: Case[] = [
  { N: 40, C: 64, H: 4, W: 4, O: 32, K: 3, s: 2, pad: 1 },
  { N: 8, C: 5, H: 12, W: 12, O: 12, K: 3, s: 2, pad: 1 },
  { N: 16, C: 7, H: 8, W: 10, O: 9, K: 3, s: 2, pad: 0 },
];

describe.skipIf(!wasmAvailable)('conv2d_input_grad of small outputs, batched (wasm)', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    const rtol = dtype === 'float64' ? 1e-12 : 1e-5;
    it.each(BATCHED.map((c) => [JSON.stringify(c), c] as const))(
      `${dtype} %s: equals the reference and the per-image path, and itself at 1, 2, 3 threads, in chunks of all images and of 3`,
      (_n, c) => {
        const r = rng(c.N * 100 + c.C * 10 + c.O + 5);
        const s = shapes(c);
        const w = randn(s.w, dtype, r);
        const dy = randn(s.y, dtype, r);
        const pi = { ...s.p, inputShape: s.x };
        const dx = (): Buf => run(wasmKernels.conv2d_input_grad, s.x, [dy, w], pi, dtype);
        const want = run(linalgReference.conv2d_input_grad, s.x, [dy, w], pi, dtype);
        const OHW = s.y[2]! * s.y[3]!;
        for (const chunk of [1 << 20, 3 * (c.C * 9 + c.O) * OHW + 1]) {
          wasmTuning.filterGradChunk = chunk;
          wasmTuning.parallelMinFlops = 1 << 20;
          setThreads(1);
          const one = dx();
          expect(maxRelErr(one, want), `chunk ${chunk}`).toBeLessThanOrEqual(rtol);
          wasmTuning.parallelMinFlops = 1;
          for (const t of [2, 3]) {
            setThreads(t);
            expect(same(dx(), one), `chunk ${chunk}, ${t} threads`).toBe(true);
          }
        }
        setThreads(1);
        wasmTuning.inputGradBatched = false;
        expect(maxRelErr(dx(), want)).toBeLessThanOrEqual(rtol);
      },
    );
  }
});

describe.skipIf(!wasmAvailable)('bn_normalize, bn_normalize_jvp, channel_moments, channel_sums, bn_affine, bn_sums and bn_affine_jvp (wasm)', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    // float64 sums in another order than the reference's: the float64 results agree to a few
    // float64 ulps (channel_sums, a plain sum of up to 32 Ki terms: to 1e-12 of the largest);
    // float32 ones, rounded once from them, to one float32 ulp of the largest value
    const tolOf = (prim: string): number => (dtype === 'float32' ? 2 ** -23 : prim === 'channel_sums' || prim === 'bn_sums' ? 1e-12 : 1e-14);
    for (const [shape, axis] of [
      [[32, 16, 32, 32], 1],
      [[8, 8, 2, 2], 1],
      [[3, 5, 7], 1],
      [[4, 37], 1],
      [[41, 6], 0],
      [[2, 3, 4, 5], 3],
    ] as const) {
      it(`${dtype} ${JSON.stringify(shape)} axis ${axis}: the reference's values, and bit-identical at 1, 2, 3 threads`, () => {
        const r = rng(shape.length * 10 + axis + 3);
        const x = randn([...shape], dtype, r);
        for (let i = 0; i < x.data.length; i++) x.data[i] = 3 + 2 * x.data[i]!; // an offset mean, as activations have
        const t = randn([...shape], dtype, r);
        const C = shape[axis]!;
        const p = { axis, eps: 1e-5 };
        // the fused primitives' operands: the statistics m and sums from the reference, w and b per channel
        const m = { data: run(reference.channel_moments, [2, C], [x], { axis }, dtype), shape: [2, C] };
        const w = randn([C], dtype, r);
        const b = randn([C], dtype, r);
        const sums = { data: run(reference.bn_sums, [2, C], [x, m, t], p, dtype), shape: [2, C] };
        wasmTuning.elementwiseMin = 1; // the wasm kernels for the small shapes too (their ragged runs)
        const cases = [
          ['bn_normalize', [...shape], [x], p],
          ['bn_normalize_jvp', [...shape], [x, t], p],
          ['channel_moments', [2, C], [x], { axis }],
          ['channel_sums', [2, C], [t, x], { axis }],
          ['bn_affine', [...shape], [x, m, w, b], p],
          ['bn_sums', [2, C], [x, m, t], p],
          ['bn_affine_jvp', [...shape], [x, m, w, t, sums], p],
        ] as const;
        for (const [prim, outShape, ins, params] of cases) {
          const kr = reference[prim] as (o: Buf, s: Shape, i: readonly KIn[], q: typeof params) => void;
          const kw = wasmKernels[prim] as typeof kr;
          const want = run(kr, [...outShape], [...ins], params, dtype);
          const got = run(kw, [...outShape], [...ins], params, dtype);
          expect(maxRelErr(got, want), prim).toBeLessThanOrEqual(tolOf(prim));
          // the same formulas in the same order, from the same statistics and sums
          if (prim === 'bn_affine' || prim === 'bn_affine_jvp') expect(same(got, want), `${prim} bit-identical to the reference`).toBe(true);
          wasmTuning.parallelMinElements = 1;
          setThreads(1);
          const one = run(kw, [...outShape], [...ins], params, dtype);
          for (const n of [2, 3]) {
            setThreads(n);
            expect(same(run(kw, [...outShape], [...ins], params, dtype), one), `${prim} at ${n} threads`).toBe(true);
          }
          setThreads(1);
          wasmTuning.parallelMinElements = DEFAULT_TUNING.parallelMinElements;
        }
      });
    }
  }
  it('bn_normalize gives mean 0 and variance 1/(1 + eps/σ²) per channel (float64)', () => {
    const x = randn([16, 3, 5, 5], 'float64', rng(5));
    const y = run(wasmKernels.bn_normalize, [16, 3, 5, 5], [x], { axis: 1, eps: 0 }, 'float64');
    const m = run(wasmKernels.channel_moments, [2, 3], [{ data: y, shape: [16, 3, 5, 5] }], { axis: 1 }, 'float64');
    for (let c = 0; c < 3; c++) {
      expect(Math.abs(m[c]!)).toBeLessThan(1e-15);
      expect(m[3 + c]!).toBeCloseTo(1, 14);
    }
  });
});

// the filter gradient of chunks of ≤ 16 terms per sum (conv.as.ts SMALL_L): batch 1 at 2×2 and
// 4×4 (the xresnet's last stages in a per-example bracket), stride 2, a 1×1 output of 3 images, a
// pointwise kernel on one image (x read in place), and 17 terms (the dot form, just above)
const SHORT: Case[] = [
  { N: 1, C: 24, H: 2, W: 2, O: 20, K: 3, s: 1, pad: 1 },
  { N: 1, C: 12, H: 8, W: 8, O: 16, K: 3, s: 2, pad: 1 },
  { N: 3, C: 5, H: 1, W: 1, O: 8, K: 3, s: 1, pad: 1 },
  { N: 1, C: 16, H: 3, W: 3, O: 12, K: 1, s: 1, pad: 0 },
  { N: 1, C: 8, H: 4, W: 4, O: 9, K: 3, s: 1, pad: 1 },
  { N: 17, C: 8, H: 1, W: 1, O: 8, K: 1, s: 1, pad: 0 },
];

describe.skipIf(!wasmAvailable)('conv2d_filter_grad of short sums (wasm)', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    const rtol = dtype === 'float64' ? 1e-12 : 1e-5;
    it.each(SHORT.map((c) => [JSON.stringify(c), c] as const))(`${dtype} %s: equals the reference, and itself at 1, 2, 3 threads`, (_n, c) => {
      const r = rng(c.N * 100 + c.C * 10 + c.O);
      const s = shapes(c);
      const x = randn(s.x, dtype, r);
      const dy = randn(s.y, dtype, r);
      const pf = { ...s.p, filterShape: s.w };
      const dw = (): Buf => run(wasmKernels.conv2d_filter_grad, s.w, [x, dy], pf, dtype);
      const one = dw();
      expect(maxRelErr(one, run(linalgReference.conv2d_filter_grad, s.w, [x, dy], pf, dtype))).toBeLessThanOrEqual(rtol);
      wasmTuning.parallelMinFlops = 1;
      for (const t of [2, 3]) {
        setThreads(t);
        expect(same(dw(), one), `${t} threads`).toBe(true);
      }
    });
  }
});
