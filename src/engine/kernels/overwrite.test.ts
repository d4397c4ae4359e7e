/** The kernels of WRITES_EVERY_ELEMENT do not depend on a zero-filled output (scratch.ts relies on it). */
import { describe, expect, it } from 'vitest';
import { allocBuf, type DType } from '../dtype.js';
import type { Prim, PrimParams } from '../prims.js';
import { Rng } from '../random.js';
import { KERNEL_SETS, kernels, withKernels, type KIn } from './index.js';
import { WRITES_EVERY_ELEMENT } from './types.js';

const rng = new Rng(7);
function arr(dtype: DType, shape: readonly number[], positive = false): KIn {
  const n = shape.reduce((a, b) => a * b, 1);
  const b = allocBuf(dtype, n);
  for (let i = 0; i < n; i++) b[i] = positive ? 0.1 + rng.random() : rng.random() * 2 - 1;
  return { data: b, shape };
}

const S = [3, 1367]; // 4101 elements: the WebAssembly paths, with a ragged tail
const unary = (dtype: DType) => ({ ins: [arr(dtype, S, true)], out: S, params: {} });
const binary = (dtype: DType) => ({ ins: [arr(dtype, S), arr(dtype, S, true)], out: S, params: {} });

/** A conv-family case for x, w shapes (stride s, padding q): conv2d (x, w) → y, input grad (dy, w) → dx, filter grad (x, dy) → dw. */
function conv(prim: 'conv2d' | 'conv2d_input_grad' | 'conv2d_filter_grad', d: DType, xs: number[], ws: number[], s: number, q: number): Case {
  const oh = Math.floor((xs[2]! + 2 * q - ws[2]!) / s) + 1;
  const ys = [xs[0]!, ws[0]!, oh, Math.floor((xs[3]! + 2 * q - ws[3]!) / s) + 1];
  const p = { stride: [s, s], padding: [q, q], dilation: [1, 1], groups: 1 };
  if (prim === 'conv2d') return { ins: [arr(d, xs), arr(d, ws)], out: ys, params: p };
  if (prim === 'conv2d_input_grad') return { ins: [arr(d, ys), arr(d, ws)], out: xs, params: { ...p, inputShape: xs } };
  return { ins: [arr(d, xs), arr(d, ys)], out: ws, params: { ...p, filterShape: ws } };
}

type Case = { ins: KIn[]; out: readonly number[]; outDtype?: DType; params: unknown };
const CASES: { [P in Prim]?: (dtype: DType) => Case[] } = {
  add: (d) => [binary(d)],
  sub: (d) => [binary(d)],
  mul: (d) => [binary(d)],
  div: (d) => [binary(d)],
  max: (d) => [binary(d)],
  min: (d) => [binary(d)],
  neg: (d) => [unary(d)],
  exp: (d) => [unary(d)],
  log: (d) => [unary(d)],
  log1p: (d) => [unary(d)],
  tanh: (d) => [unary(d)],
  erf: (d) => [unary(d), { ...unary(d), ins: [binary(d).ins[0]!] }],
  sqrt: (d) => [unary(d)],
  abs: (d) => [unary(d)],
  mish: (d) => [unary(d), { ...unary(d), ins: [binary(d).ins[0]!] }],
  mish_grad: (d) => [unary(d), { ...unary(d), ins: [binary(d).ins[0]!] }],
  mish_grad2: (d) => [unary(d), { ...unary(d), ins: [binary(d).ins[0]!] }],
  mish_vjp: (d) => [binary(d), { ...binary(d), ins: [binary(d).ins[1]!, binary(d).ins[0]!] }],
  pow: (d) => [
    { ...unary(d), params: { exponent: 2 } },
    { ...unary(d), params: { exponent: 1.5 } },
  ],
  channel_affine: (d) => [
    { ins: [arr(d, [3, 7, 197]), arr(d, [7]), arr(d, [7])], out: [3, 7, 197], params: { axis: 1 } },
    { ins: [arr(d, S), arr(d, [1367]), arr(d, [1367])], out: S, params: { axis: 1 } },
  ],
  bn_normalize: (d) => [
    { ins: [arr(d, [3, 7, 197])], out: [3, 7, 197], params: { axis: 1, eps: 1e-5 } },
    { ins: [arr(d, S)], out: S, params: { axis: 0, eps: 1e-5 } },
  ],
  bn_normalize_jvp: (d) => [
    { ins: [arr(d, [3, 7, 197]), arr(d, [3, 7, 197])], out: [3, 7, 197], params: { axis: 1, eps: 1e-5 } },
    { ins: [arr(d, S), arr(d, S)], out: S, params: { axis: 1, eps: 1e-5 } },
  ],
  // m: [mean; variance], the variance positive
  bn_affine: (d) => [
    { ins: [arr(d, [3, 7, 197]), arr(d, [2, 7], true), arr(d, [7]), arr(d, [7])], out: [3, 7, 197], params: { axis: 1, eps: 1e-5 } },
    { ins: [arr(d, S), arr(d, [2, 1367], true), arr(d, [1367]), arr(d, [1367])], out: S, params: { axis: 1, eps: 1e-5 } },
  ],
  bn_sums: (d) => [
    { ins: [arr(d, [3, 7, 197]), arr(d, [2, 7], true), arr(d, [3, 7, 197])], out: [2, 7], params: { axis: 1, eps: 1e-5 } },
    { ins: [arr(d, S), arr(d, [2, 3], true), arr(d, S)], out: [2, 3], params: { axis: 0, eps: 1e-5 } },
  ],
  bn_affine_jvp: (d) => [
    {
      ins: [arr(d, [3, 7, 197]), arr(d, [2, 7], true), arr(d, [7]), arr(d, [3, 7, 197]), arr(d, [2, 7])],
      out: [3, 7, 197],
      params: { axis: 1, eps: 1e-5 },
    },
    { ins: [arr(d, S), arr(d, [2, 1367], true), arr(d, [1367]), arr(d, S), arr(d, [2, 1367])], out: S, params: { axis: 1, eps: 1e-5 } },
  ],
  channel_moments: (d) => [
    { ins: [arr(d, [3, 7, 197])], out: [2, 7], params: { axis: 1 } },
    { ins: [arr(d, S)], out: [2, 1367], params: { axis: 1 } },
  ],
  conv2d: (d) => [
    conv('conv2d', d, [2, 3, 9, 9], [5, 3, 3, 3], 2, 1), // im2col + GEMM, stride 2
    conv('conv2d', d, [2, 4, 6, 6], [6, 4, 1, 1], 1, 0), // pointwise
    conv('conv2d', d, [4, 8, 8, 8], [32, 8, 3, 3], 1, 1), // the implicit GEMM
  ],
  conv2d_input_grad: (d) => [
    conv('conv2d_input_grad', d, [2, 3, 9, 9], [5, 3, 1, 1], 2, 0), // inputs no window covers
    conv('conv2d_input_grad', d, [2, 3, 9, 9], [5, 3, 3, 3], 2, 1),
    conv('conv2d_input_grad', d, [4, 32, 8, 8], [8, 32, 3, 3], 1, 1), // the implicit GEMM
  ],
  conv2d_filter_grad: (d) => [
    conv('conv2d_filter_grad', d, [3, 3, 9, 9], [5, 3, 3, 3], 2, 1),
    conv('conv2d_filter_grad', d, [2, 4, 6, 6], [6, 4, 1, 1], 1, 0),
  ],
  channel_sums: (d) => [
    { ins: [arr(d, [3, 7, 197]), arr(d, [3, 7, 197])], out: [2, 7], params: { axis: 1 } },
    { ins: [arr(d, S), arr(d, S)], out: [2, 3], params: { axis: 0 } },
  ],
  compare: (d) => (['gt', 'ge', 'lt', 'le', 'eq', 'ne'] as const).map((op) => ({ ...binary(d), params: { op } })),
  select: (d) => [
    { ins: [arr(d, S), arr(d, S), arr(d, S)].map((a, i) => (i === 0 ? { ...a, data: a.data.map((v) => +(v > 0)) } : a)), out: S, params: {} },
  ],
  cast: (d) => [
    { ins: [arr(d, S)], out: S, outDtype: d === 'float32' ? 'float64' : 'float32', params: { dtype: d === 'float32' ? 'float64' : 'float32' } },
  ],
  stop_gradient: (d) => [unary(d)],
  reshape: (d) => [{ ins: [arr(d, S)], out: [1367, 3], params: { shape: [1367, 3] } }],
  broadcast: (d) => [
    { ins: [arr(d, [1, 3, 1])], out: [5, 3, 301], params: { shape: [5, 3, 301], dims: [0, 1, 2] } },
    { ins: [arr(d, [])], out: [4101], params: { shape: [4101], dims: [] } },
  ],
  transpose: (d) => [{ ins: [arr(d, [7, 5, 123])], out: [123, 7, 5], params: { perm: [2, 0, 1] } }],
  slice: (d) => [{ ins: [arr(d, [9, 701])], out: [7, 690], params: { start: [1, 3], end: [8, 693] } }],
  concatenate: (d) => [{ ins: [arr(d, [3, 700]), arr(d, [4, 700])], out: [7, 700], params: { axis: 0 } }],
};

describe('kernels that write every output element', () => {
  for (const prim of WRITES_EVERY_ELEMENT) {
    it(`${prim}: a NaN-filled output gives the same result as a zero-filled one, in every kernel set`, () => {
      const make = CASES[prim];
      expect(make, `no test case for ${prim}`).toBeDefined();
      for (const dtype of ['float32', 'float64'] as const) {
        for (const c of make!(dtype)) {
          for (const set of KERNEL_SETS) {
            const n = c.out.reduce((a, b) => a * b, 1);
            const od = c.outDtype ?? dtype;
            const clean = allocBuf(od, n);
            const dirty = allocBuf(od, n).fill(NaN);
            withKernels(set, () => {
              const k = kernels[prim] as (o: unknown, s: readonly number[], i: readonly KIn[], p: PrimParams[Prim]) => void;
              k(clean, c.out, c.ins, c.params as PrimParams[Prim]);
              k(dirty, c.out, c.ins, c.params as PrimParams[Prim]);
            });
            expect(Array.from(dirty), `${prim} ${dtype} ${set}`).toEqual(Array.from(clean));
          }
        }
      }
    });
  }
});
