import { describe, expect, it } from 'vitest';
import { randn, rng } from '../../../test/kernel-inputs.js';
import { allocBuf, type Buf, type DType } from '../dtype.js';
import { windowOut, type ConvParams, type PoolParams } from '../prims.js';
import { sizeOf, type Shape } from '../shape.js';
import { jsKernels, jsTuning } from './js.js';
import { linalgReference } from './linalg_ref.js';
import type { KIn } from './types.js';
import { wasmKernels, wasmTuning } from './wasm.js';

// ---------------------------------------------------------------------------------------------
// helpers

type Table = typeof linalgReference;
const SETS: [string, Table][] = [
  ['reference', linalgReference],
  ['js', jsKernels],
  ['wasm', wasmKernels],
];
/** The optimised sets, each with the setter of its filter-gradient chunk size (in elements). */
const OPTIMISED: [string, Table, { filterGradChunk: number }][] = [
  ['js', jsKernels, jsTuning],
  ['wasm', wasmKernels, wasmTuning],
];

function arr(values: number[], shape: Shape, dtype: DType = 'float64'): KIn {
  const data = allocBuf(dtype, values.length);
  data.set(values);
  return { data, shape };
}

function run<P>(
  k: (out: Buf, outShape: Shape, inputs: readonly KIn[], params: P) => void,
  outShape: Shape,
  inputs: KIn[],
  params: P,
  dtype: DType = 'float64',
): Buf {
  const out = allocBuf(dtype, sizeOf(outShape));
  k(out, outShape, inputs, params);
  return out;
}

/** ⟨a, b⟩ and Σ|aᵢ bᵢ| (the scale against which rounding error is measured). */
function dot(a: ArrayLike<number>, b: ArrayLike<number>): [number, number] {
  let s = 0,
    m = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i]! * b[i]!;
    m += Math.abs(a[i]! * b[i]!);
  }
  return [s, m];
}

function expectAdjoint(lhs: [number, number], rhs: [number, number], rtol = 1e-12): void {
  const scale = Math.max(lhs[1], rhs[1], Number.MIN_VALUE);
  expect(Math.abs(lhs[0] - rhs[0]) / scale).toBeLessThanOrEqual(rtol);
}

/** ‖actual − expected‖∞ ≤ rtol · ‖expected‖∞, and identical NaN positions. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number): void {
  expect(actual.length).toBe(expected.length);
  let maxErr = 0,
    maxAbs = 0,
    nanMismatch = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!,
      e = expected[i]!;
    if (Number.isNaN(a) !== Number.isNaN(e)) nanMismatch++;
    if (Number.isNaN(e)) continue;
    maxErr = Math.max(maxErr, Math.abs(a - e));
    maxAbs = Math.max(maxAbs, Math.abs(e));
  }
  expect(nanMismatch).toBe(0);
  expect(maxErr).toBeLessThanOrEqual(rtol * maxAbs);
}

function conv(stride: [number, number] = [1, 1], padding: [number, number] = [0, 0], dilation: [number, number] = [1, 1], groups = 1): ConvParams {
  return { stride, padding, dilation, groups };
}

// ---------------------------------------------------------------------------------------------
// (a) hand-computed cases

describe.each(SETS)('%s kernels: hand-computed cases', (_name, K) => {
  it('matmul 2×3 @ 3×2 in all four storage orders', () => {
    // [[1,2,3],[4,5,6]] @ [[7,8],[9,10],[11,12]] = [[58,64],[139,154]]
    const a = arr([1, 2, 3, 4, 5, 6], [2, 3]);
    const aT = arr([1, 4, 2, 5, 3, 6], [3, 2]);
    const b = arr([7, 8, 9, 10, 11, 12], [3, 2]);
    const bT = arr([7, 9, 11, 8, 10, 12], [2, 3]);
    const want = [58, 64, 139, 154];
    expect(Array.from(run(K.matmul, [2, 2], [a, b], { transA: false, transB: false }))).toEqual(want);
    expect(Array.from(run(K.matmul, [2, 2], [aT, b], { transA: true, transB: false }))).toEqual(want);
    expect(Array.from(run(K.matmul, [2, 2], [a, bT], { transA: false, transB: true }))).toEqual(want);
    expect(Array.from(run(K.matmul, [2, 2], [aT, bT], { transA: true, transB: true }))).toEqual(want);
  });

  const x3 = arr([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);

  it('conv2d: 2×2 kernel on 3×3, no padding', () => {
    // y[0,0] = 1·1 + 2·2 + 4·3 + 5·4 = 37, and so on.
    const w = arr([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(Array.from(run(K.conv2d, [1, 1, 2, 2], [x3, w], conv()))).toEqual([37, 47, 67, 77]);
  });

  it('conv2d: 3×3 box filter with padding 1 (sums of 3×3 neighbourhoods)', () => {
    const w = arr(new Array(9).fill(1), [1, 1, 3, 3]);
    expect(Array.from(run(K.conv2d, [1, 1, 3, 3], [x3, w], conv([1, 1], [1, 1])))).toEqual([12, 21, 16, 27, 45, 33, 24, 39, 28]);
  });

  it('conv2d: stride 2, padding 1 on 5×5', () => {
    // x[i,j] = 5i + j; y[0,0] = x00+x01+x10+x11 = 12; y[1,1] = 3×3 block around x[2,2] = 9·12.
    const x = arr(
      Array.from({ length: 25 }, (_, i) => i),
      [1, 1, 5, 5],
    );
    const w = arr(new Array(9).fill(1), [1, 1, 3, 3]);
    expect(Array.from(run(K.conv2d, [1, 1, 3, 3], [x, w], conv([2, 2], [1, 1])))).toEqual([12, 27, 24, 63, 108, 81, 72, 117, 84]);
  });

  it('conv2d: dilation 2 (taps two apart)', () => {
    // y[i,j] = x[i,j] + 10 x[i,j+2] + 100 x[i+2,j] + 1000 x[i+2,j+2], x[i,j] = 5i + j
    const x = arr(
      Array.from({ length: 25 }, (_, i) => i),
      [1, 1, 5, 5],
    );
    const w = arr([1, 10, 100, 1000], [1, 1, 2, 2]);
    const want: number[] = [];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) want.push(5 * i + j + 10 * (5 * i + j + 2) + 100 * (5 * (i + 2) + j) + 1000 * (5 * (i + 2) + j + 2));
    }
    expect(want[0]).toBe(13020);
    expect(Array.from(run(K.conv2d, [1, 1, 3, 3], [x, w], conv([1, 1], [0, 0], [2, 2])))).toEqual(want);
  });

  it('conv2d: groups 2 (outputs 0,1 see channel 0; outputs 2,3 see channel 1)', () => {
    const x = arr([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    // per output: a 2×2 filter over its group's single channel
    const w = arr([1, 1, 1, 1, /**/ 1, 0, 0, 1, /**/ 1, 1, 1, 1, /**/ 0, 1, 0, 0], [4, 1, 2, 2]);
    // o0: 1+2+3+4 = 10; o1: 1+4 = 5; o2: 5+6+7+8 = 26; o3: 6
    expect(Array.from(run(K.conv2d, [1, 4, 1, 1], [x, w], conv([1, 1], [0, 0], [1, 1], 2)))).toEqual([10, 5, 26, 6]);
  });

  it('conv2d_input_grad and conv2d_filter_grad of the 2×2-on-3×3 case with dy = 1', () => {
    const w = arr([1, 2, 3, 4], [1, 1, 2, 2]);
    const dy = arr([1, 1, 1, 1], [1, 1, 2, 2]);
    // dx[i,j] = Σ of the filter taps that touch (i,j): a "full" correlation
    const dx = run(K.conv2d_input_grad, [1, 1, 3, 3], [dy, w], { ...conv(), inputShape: [1, 1, 3, 3] });
    expect(Array.from(dx)).toEqual([1, 3, 2, 4, 10, 6, 3, 7, 4]);
    // dw[kh,kw] = Σ of the 2×2 block of x starting at (kh,kw)
    const dw = run(K.conv2d_filter_grad, [1, 1, 2, 2], [x3, dy], { ...conv(), filterShape: [1, 1, 2, 2] });
    expect(Array.from(dw)).toEqual([12, 16, 24, 28]);
  });

  it('conv2d_input_grad with stride 3 leaves the skipped pixels at zero', () => {
    // 1×1 filter 2, stride 3 on 4×4: only pixels (0,0), (0,3), (3,0), (3,3) are read.
    const w = arr([2], [1, 1, 1, 1]);
    const dy = arr([1, 2, 3, 4], [1, 1, 2, 2]);
    const p = { ...conv([3, 3]), inputShape: [1, 1, 4, 4] };
    expect(Array.from(run(K.conv2d_input_grad, [1, 1, 4, 4], [dy, w], p))).toEqual([2, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 8]);
  });

  const pool2: PoolParams = { kernel: [2, 2], stride: [2, 2], padding: [0, 0] };

  it('maxpool2d 2×2/2 and its scatter', () => {
    const x = arr([1, 5, 2, 0, /**/ 3, 4, 8, 1, /**/ 0, 0, 7, 7, /**/ 9, 0, 7, 6], [1, 1, 4, 4]);
    expect(Array.from(run(K.maxpool2d, [1, 1, 2, 2], [x, x], pool2))).toEqual([5, 8, 9, 7]);
    const dy = arr([10, 20, 30, 40], [1, 1, 2, 2]);
    // the 7,7 / 7 tie in the last window goes to its first element in row-major order
    expect(Array.from(run(K.maxpool2d_scatter, [1, 1, 4, 4], [x, dy], { ...pool2, inputShape: [1, 1, 4, 4] }))).toEqual([
      0, 10, 0, 0, /**/ 0, 0, 20, 0, /**/ 0, 0, 40, 0, /**/ 30, 0, 0, 0,
    ]);
  });

  it('maxpool2d ties: first maximal element in row-major window order', () => {
    // key has a tie at every window position; val tells the positions apart.
    const val = arr([1, 2, 3, 4], [1, 1, 2, 2]);
    const cases: [number[], number][] = [
      [[3, 3, 3, 3], 1],
      [[0, 3, 3, 3], 2],
      [[0, 1, 3, 3], 3],
      [[0, 3, 1, 3], 2],
      [[-Infinity, -Infinity, -Infinity, -Infinity], 1], // all −∞: the first element
      [[-Infinity, -Infinity, -5, -5], 3],
    ];
    for (const [key, want] of cases) {
      expect(run(K.maxpool2d, [1, 1, 1, 1], [arr(key, [1, 1, 2, 2]), val], pool2)[0]).toBe(want);
      const dx = run(K.maxpool2d_scatter, [1, 1, 2, 2], [arr(key, [1, 1, 2, 2]), arr([1], [1, 1, 1, 1])], {
        ...pool2,
        inputShape: [1, 1, 2, 2],
      });
      expect(Array.from(dx)).toEqual([1, 2, 3, 4].map((v) => (v === want ? 1 : 0)));
    }
  });

  it('maxpool2d NaN keys: as PyTorch CPU, a NaN wins and the last NaN wins among several', () => {
    const val = arr([1, 2, 3, 4], [1, 1, 2, 2]);
    const cases: [number[], number][] = [
      [[1, NaN, 9, 0], 2],
      [[NaN, 9, 9, 0], 1],
      [[9, NaN, NaN, 0], 3],
      [[NaN, NaN, NaN, NaN], 4],
    ];
    for (const [key, want] of cases) {
      expect(run(K.maxpool2d, [1, 1, 1, 1], [arr(key, [1, 1, 2, 2]), val], pool2)[0]).toBe(want);
    }
  });

  it('maxpool2d padding counts as −∞ and is never selected', () => {
    // 3×3 input of negative keys, 2×2 windows, stride 2, padding 1 → 2×2 output.
    const key = arr([-1, -2, -3, -4, -5, -6, -7, -8, -9], [1, 1, 3, 3]);
    const val = arr([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
    const p: PoolParams = { kernel: [2, 2], stride: [2, 2], padding: [1, 1] };
    // windows: {x00}, {x01, x02}, {x10, x20}, {x11, x12, x21, x22}
    expect(Array.from(run(K.maxpool2d, [1, 1, 2, 2], [key, val], p))).toEqual([1, 2, 4, 5]);
  });
});

// ---------------------------------------------------------------------------------------------
// (b) adjoint identities and matmul against a naive triple loop; (c) js, wasm == reference

interface ConvCase {
  name: string;
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  KH: number;
  KW: number;
  p: ConvParams;
}

function convCase(name: string, N: number, C: number, H: number, W: number, O: number, KH: number, KW: number, p: ConvParams): ConvCase {
  return { name, N, C, H, W, O, KH, KW, p };
}

const CONV_CASES: ConvCase[] = [
  convCase('3×3 pad 1, batch 2', 2, 3, 7, 6, 4, 3, 3, conv([1, 1], [1, 1])),
  convCase('3×3 stride 2 pad 0, odd size (stride does not divide)', 2, 2, 8, 7, 3, 3, 3, conv([2, 2])),
  convCase('stride 2 pad 1 on 9×9', 1, 2, 9, 9, 2, 3, 3, conv([2, 2], [1, 1])),
  convCase('pad 2, dilation 2, 3×2 kernel', 2, 2, 9, 10, 3, 3, 2, conv([1, 1], [2, 2], [2, 2])),
  convCase('stride 2 with dilation 2', 1, 3, 11, 8, 2, 2, 3, conv([2, 2], [1, 0], [2, 2])),
  convCase('groups 2', 2, 4, 6, 5, 6, 3, 3, conv([1, 1], [1, 1], [1, 1], 2)),
  convCase('groups 4 (depthwise)', 2, 4, 7, 7, 4, 3, 3, conv([1, 1], [1, 1], [1, 1], 4)),
  convCase('groups 2, channel multiplier 2 (Cg 1, Og 2)', 1, 2, 5, 6, 4, 3, 3, conv([2, 1], [1, 1], [1, 1], 2)),
  convCase('non-square 1×3, stride [2,1], pad [0,2]', 2, 2, 7, 5, 3, 1, 3, conv([2, 1], [0, 2])),
  convCase('non-square 3×1, stride [1,3], pad [1,0]', 1, 3, 6, 10, 2, 3, 1, conv([1, 3], [1, 0])),
  convCase('1×1 pointwise', 2, 5, 4, 3, 3, 1, 1, conv()),
  convCase('1×1 pointwise, groups 2', 1, 4, 3, 5, 6, 1, 1, conv([1, 1], [0, 0], [1, 1], 2)),
  convCase('1×1 stride 2', 2, 3, 5, 5, 2, 1, 1, conv([2, 2])),
  convCase('padding ≥ kernel (all-zero border outputs)', 1, 2, 4, 3, 2, 2, 2, conv([1, 1], [2, 2])),
  convCase('kernel larger than the input', 2, 1, 2, 3, 2, 3, 3, conv([1, 1], [1, 1])),
  // kernel row 0 sees only padding, over more rows than the output has (pad 3 > OH 2); row 1 sees data
  convCase('dilation 4, padding 3, 3-tap kernel on 4 rows', 3, 2, 4, 5, 2, 3, 2, conv([1, 1], [3, 1], [4, 2])),
  convCase('stride 3, kernel 2 (skipped pixels)', 1, 2, 8, 7, 2, 2, 2, conv([3, 3])),
  convCase('convnet conv1: 1→16 3×3 pad 1 on 28×28', 2, 1, 28, 28, 16, 3, 3, conv([1, 1], [1, 1])),
  convCase('convnet conv2: 16→32 3×3 pad 1 on 14×14', 1, 16, 14, 14, 32, 3, 3, conv([1, 1], [1, 1])),
];

interface PoolCase {
  name: string;
  N: number;
  C: number;
  H: number;
  W: number;
  p: PoolParams;
}

const POOL_CASES: PoolCase[] = [
  { name: '2×2 stride 2', N: 2, C: 3, H: 8, W: 6, p: { kernel: [2, 2], stride: [2, 2], padding: [0, 0] } },
  { name: '2×2 stride 2, odd size', N: 1, C: 2, H: 7, W: 9, p: { kernel: [2, 2], stride: [2, 2], padding: [0, 0] } },
  { name: '3×3 stride 2 pad 1 (overlapping)', N: 2, C: 2, H: 7, W: 8, p: { kernel: [3, 3], stride: [2, 2], padding: [1, 1] } },
  { name: '3×3 stride 1 pad 1', N: 1, C: 3, H: 5, W: 5, p: { kernel: [3, 3], stride: [1, 1], padding: [1, 1] } },
  { name: '2×3 stride [1,2] pad [0,1]', N: 2, C: 1, H: 6, W: 7, p: { kernel: [2, 3], stride: [1, 2], padding: [0, 1] } },
  { name: 'convnet pool: 16×28×28', N: 2, C: 16, H: 28, W: 28, p: { kernel: [2, 2], stride: [2, 2], padding: [0, 0] } },
];

function convShapes(c: ConvCase): { x: Shape; w: Shape; y: Shape } {
  const OH = windowOut(c.H, c.KH, c.p.stride[0], c.p.padding[0], c.p.dilation[0]);
  const OW = windowOut(c.W, c.KW, c.p.stride[1], c.p.padding[1], c.p.dilation[1]);
  return { x: [c.N, c.C, c.H, c.W], w: [c.O, c.C / c.p.groups, c.KH, c.KW], y: [c.N, c.O, OH, OW] };
}

function poolOut(c: PoolCase): Shape {
  return [c.N, c.C, windowOut(c.H, c.p.kernel[0], c.p.stride[0], c.p.padding[0]), windowOut(c.W, c.p.kernel[1], c.p.stride[1], c.p.padding[1])];
}

/** Keys from a small set of integers, so that ties inside windows are common. */
function tieKeys(shape: Shape, dtype: DType, r: () => number): KIn {
  const data = allocBuf(dtype, sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 3);
  return { data, shape };
}

describe.each(SETS)('%s kernels: adjoint identities (float64)', (_name, K) => {
  it.each(CONV_CASES.map((c, i) => [c.name, c, i] as const))('conv: %s', (_n, c, i) => {
    const r = rng(1000 + i);
    const s = convShapes(c);
    const x = randn(s.x, 'float64', r);
    const w = randn(s.w, 'float64', r);
    const dy = randn(s.y, 'float64', r);
    const y = run(K.conv2d, s.y, [x, w], c.p);
    const dx = run(K.conv2d_input_grad, s.x, [dy, w], { ...c.p, inputShape: s.x });
    const dw = run(K.conv2d_filter_grad, s.w, [x, dy], { ...c.p, filterShape: s.w });
    const lhs = dot(y, dy.data);
    expectAdjoint(lhs, dot(x.data, dx));
    expectAdjoint(lhs, dot(w.data, dw));
  });

  it.each(POOL_CASES.map((c, i) => [c.name, c, i] as const))('maxpool: %s', (_n, c, i) => {
    const r = rng(2000 + i);
    const inShape: Shape = [c.N, c.C, c.H, c.W];
    const outShape = poolOut(c);
    for (const key of [randn(inShape, 'float64', r), tieKeys(inShape, 'float64', r)]) {
      const v = randn(inShape, 'float64', r);
      const dy = randn(outShape, 'float64', r);
      const y = run(K.maxpool2d, outShape, [key, v], c.p);
      const dx = run(K.maxpool2d_scatter, inShape, [key, dy], { ...c.p, inputShape: inShape });
      expectAdjoint(dot(y, dy.data), dot(v.data, dx));
    }
  });

  it('maxpool2d(x, x) is the window maximum', () => {
    const r = rng(7);
    const c = POOL_CASES[2]!;
    const inShape: Shape = [c.N, c.C, c.H, c.W];
    const outShape = poolOut(c);
    const x = randn(inShape, 'float64', r);
    const y = run(K.maxpool2d, outShape, [x, x], c.p);
    const [, , OH, OW] = outShape as [number, number, number, number];
    for (let q = 0; q < c.N * c.C; q++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let m = -Infinity;
          for (let ih = oh * 2 - 1; ih < oh * 2 + 2; ih++) {
            for (let iw = ow * 2 - 1; iw < ow * 2 + 2; iw++) {
              if (ih >= 0 && ih < c.H && iw >= 0 && iw < c.W) m = Math.max(m, x.data[(q * c.H + ih) * c.W + iw]!);
            }
          }
          expect(y[(q * OH + oh) * OW + ow]).toBe(m);
        }
      }
    }
  });

  it('maxpool2d_scatter sends each window to its first maximal key (explicit ties)', () => {
    // 1×1×4×4, 2×2 stride 1 windows: overlapping windows whose ties resolve to different cells.
    const key = arr([5, 5, 5, 0, /**/ 5, 5, 5, 0, /**/ 0, 0, 0, 0, /**/ 0, 0, 0, 0], [1, 1, 4, 4]);
    const p = { kernel: [2, 2] as [number, number], stride: [1, 1] as [number, number], padding: [0, 0] as [number, number] };
    const dy = arr([1, 2, 4, 8, 16, 32, 64, 128, 256], [1, 1, 3, 3]);
    const dx = run(K.maxpool2d_scatter, [1, 1, 4, 4], [key, dy], { ...p, inputShape: [1, 1, 4, 4] });
    // windows at row 0: (0,0)→x00, (0,1)→x01, (0,2)→x02; row 1: (1,0)→x10, (1,1)→x11, (1,2)→x12;
    // row 2 windows are all zeros: (2,0)→x20, (2,1)→x21, (2,2)→x22.
    expect(Array.from(dx)).toEqual([1, 2, 4, 0, /**/ 8, 16, 32, 0, /**/ 64, 128, 256, 0, /**/ 0, 0, 0, 0]);
  });

  it('matmul rejects shapes that do not agree', () => {
    const a = arr([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = arr([1, 2, 3, 4], [2, 2]);
    expect(() => run(K.matmul, [2, 2], [a, b], { transA: false, transB: false })).toThrow(/do not agree/);
    expect(() => run(K.matmul, [1, 2, 2], [arr([1, 2, 3, 4], [1, 2, 2]), arr([1, 2, 3, 4], [2, 2, 1])], { transA: false, transB: false })).toThrow(
      /do not agree/,
    );
  });

  it('matmul against a naive triple loop, all storage orders, batch dims [2,3]', () => {
    const r = rng(3);
    const [m, k, n] = [4, 5, 3];
    const batch = [2, 3];
    const B = 6;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = randn([...batch, ...(transA ? [k, m] : [m, k])], 'float64', r);
        const b = randn([...batch, ...(transB ? [n, k] : [k, n])], 'float64', r);
        const got = run(K.matmul, [...batch, m, n], [a, b], { transA, transB });
        for (let t = 0; t < B; t++) {
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let s = 0;
              for (let p = 0; p < k; p++) {
                const av = a.data[t * m * k + (transA ? p * m + i : i * k + p)]!;
                const bv = b.data[t * k * n + (transB ? j * k + p : p * n + j)]!;
                s += av * bv;
              }
              expect(Math.abs(got[(t * m + i) * n + j]! - s)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(s)));
            }
          }
        }
      }
    }
  });
});

const MATMUL_CASES: [string, number[], number, number, number][] = [
  ['1×1×1', [], 1, 1, 1],
  ['odd sizes 7×5×3', [], 7, 5, 3],
  ['batched [3] 6×9×10', [3], 6, 9, 10],
  ['MLP fc1 1×784 · 784×128', [], 1, 128, 784],
  ['MLP fc1 batch 8', [], 8, 128, 784],
  ['convnet fc 3×1568 · 1568×10', [], 3, 10, 1568],
  ['K = 0', [], 3, 4, 0],
];

/** Each optimised set (js.ts, wasm.ts) against the reference, in both dtypes. */
const OPTIMISED_BY_DTYPE = OPTIMISED.flatMap(([name, K, knobs]) =>
  (['float64', 'float32'] as const).map((dtype) => [name, dtype, K, knobs] as const),
);

describe.each(OPTIMISED_BY_DTYPE)('%s == reference (%s)', (_set, dtype, Fast, knobs) => {
  const rtol = dtype === 'float64' ? 1e-12 : 1e-5;

  it.each(MATMUL_CASES)('matmul %s', (_n, batch, m, n, k) => {
    const r = rng(m * 1000 + n + k);
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = randn([...batch, ...(transA ? [k, m] : [m, k])], dtype, r);
        const b = randn([...batch, ...(transB ? [n, k] : [k, n])], dtype, r);
        const outShape = [...batch, m, n];
        const p = { transA, transB };
        expectClose(run(Fast.matmul, outShape, [a, b], p, dtype), run(linalgReference.matmul, outShape, [a, b], p, dtype), rtol);
      }
    }
  });

  it.each(CONV_CASES.map((c, i) => [c.name, c, i] as const))('conv family: %s', (_n, c, i) => {
    const r = rng(3000 + i);
    const s = convShapes(c);
    const x = randn(s.x, dtype, r);
    const w = randn(s.w, dtype, r);
    const dy = randn(s.y, dtype, r);
    const pi = { ...c.p, inputShape: s.x };
    const pf = { ...c.p, filterShape: s.w };
    expectClose(run(Fast.conv2d, s.y, [x, w], c.p, dtype), run(linalgReference.conv2d, s.y, [x, w], c.p, dtype), rtol);
    expectClose(run(Fast.conv2d_input_grad, s.x, [dy, w], pi, dtype), run(linalgReference.conv2d_input_grad, s.x, [dy, w], pi, dtype), rtol);
    expectClose(run(Fast.conv2d_filter_grad, s.w, [x, dy], pf, dtype), run(linalgReference.conv2d_filter_grad, s.w, [x, dy], pf, dtype), rtol);
  });

  it.each(POOL_CASES.map((c, i) => [c.name, c, i] as const))('maxpool: %s', (_n, c, i) => {
    const r = rng(4000 + i);
    const inShape: Shape = [c.N, c.C, c.H, c.W];
    const outShape = poolOut(c);
    const key = tieKeys(inShape, dtype, r);
    key.data[3] = NaN; // a NaN key somewhere, to pin both kernels to the same NaN rule
    key.data[4] = NaN;
    const v = randn(inShape, dtype, r);
    const dy = randn(outShape, dtype, r);
    const pp = { ...c.p, inputShape: inShape };
    // selections must agree exactly: same element, same value
    expectClose(run(Fast.maxpool2d, outShape, [key, v], c.p, dtype), run(linalgReference.maxpool2d, outShape, [key, v], c.p, dtype), 0);
    // both add the contributions in output order in float64 and round once: bit-identical
    expectClose(run(Fast.maxpool2d_scatter, inShape, [key, dy], pp, dtype), run(linalgReference.maxpool2d_scatter, inShape, [key, dy], pp, dtype), 0);
  });

  it('conv2d_filter_grad over a batch split into chunks', () => {
    const saved = knobs.filterGradChunk;
    try {
      for (const c of [CONV_CASES[0]!, CONV_CASES[5]!, CONV_CASES[10]!]) {
        const r = rng(6);
        const s = convShapes(c);
        const x = randn(s.x, dtype, r);
        const dy = randn(s.y, dtype, r);
        const pf = { ...c.p, filterShape: s.w };
        const want = run(linalgReference.conv2d_filter_grad, s.w, [x, dy], pf, dtype);
        knobs.filterGradChunk = 1; // one image per chunk
        expectClose(run(Fast.conv2d_filter_grad, s.w, [x, dy], pf, dtype), want, rtol);
      }
    } finally {
      knobs.filterGradChunk = saved;
    }
  });

  it('outputs are independent of later calls (no scratch buffer escapes)', () => {
    const r = rng(5);
    const c = CONV_CASES[0]!;
    const s = convShapes(c);
    const x = randn(s.x, dtype, r);
    const w = randn(s.w, dtype, r);
    const dy = randn(s.y, dtype, r);
    const y1 = run(Fast.conv2d, s.y, [x, w], c.p, dtype);
    const dx1 = run(Fast.conv2d_input_grad, s.x, [dy, w], { ...c.p, inputShape: s.x }, dtype);
    const dw1 = run(Fast.conv2d_filter_grad, s.w, [x, dy], { ...c.p, filterShape: s.w }, dtype);
    const snap = [Array.from(y1), Array.from(dx1), Array.from(dw1)];
    // another round with different data through every scratch slot
    const c2 = CONV_CASES[5]!;
    const s2 = convShapes(c2);
    const x2 = randn(s2.x, dtype, r),
      w2 = randn(s2.w, dtype, r),
      dy2 = randn(s2.y, dtype, r);
    run(Fast.conv2d, s2.y, [x2, w2], c2.p, dtype);
    run(Fast.conv2d_input_grad, s2.x, [dy2, w2], { ...c2.p, inputShape: s2.x }, dtype);
    run(Fast.conv2d_filter_grad, s2.w, [x2, dy2], { ...c2.p, filterShape: s2.w }, dtype);
    expect([Array.from(y1), Array.from(dx1), Array.from(dw1)]).toEqual(snap);
    for (const b of [y1, dx1, dw1]) expect(b.constructor).toBe(dtype === 'float64' ? Float64Array : Float32Array);
  });
});
