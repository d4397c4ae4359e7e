/**
 * Reference kernels for the elementwise, reduction and structural primitives: plain loops that
 * read like the definitions. (matmul, conv and pooling references are in linalg_ref.ts.)
 */
import type { Buf } from '../dtype.js';
import type { CompareOp } from '../prims.js';
import { sizeOf, stridesOf, type Shape } from '../shape.js';
import { stridedLoop } from './strided.js';
import type { KIn, Kernel, KernelTable } from './types.js';
import { linalgReference } from './linalg_ref.js';
import erf64 from '@stdlib/math-base-special-erf';

// Each elementwise kernel is its own loop: a shared loop calling a function per element would be
// megamorphic in V8 and several times slower. Comparisons are +(a > b), not a > b ? 1 : 0: V8
// compiles the former without a branch (a relu mask is a coin flip per element, and a
// mispredicted branch per element made the comparison 2–3× slower than a multiply).
type Ins = readonly KIn[];
const X = (ins: Ins, k = 0) => ins[k]!.data;

const COMPARE: Record<CompareOp, Kernel<'compare'>> = {
  gt: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = +(x[i]! > y[i]!);
  },
  ge: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = +(x[i]! >= y[i]!);
  },
  lt: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = +(x[i]! < y[i]!);
  },
  le: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = +(x[i]! <= y[i]!);
  },
  eq: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = +(x[i]! === y[i]!);
  },
  ne: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = +(x[i]! !== y[i]!);
  },
};

/**
 * Reduce `a` over `axes` into `out` (its strides seen from an output that keeps the other axes;
 * reduced axes have stride 0 in dst). Mode 'sum' is 'add' with float64 accumulation along the
 * innermost axis (see strided.ts), for the js and wasm kernel sets.
 */
export function reduceInto(out: Buf, a: KIn, axes: readonly number[], mode: 'add' | 'sum' | 'max'): void {
  if (mode === 'max') out.fill(-Infinity);
  stridedLoop(a.shape, out, 0, reduceDstStrides(a.shape, axes), a.data, 0, stridesOf(a.shape), mode);
}

/** A reduction's destination strides over the operand's axes: 0 on the reduced `axes`, the compact output's elsewhere. */
export function reduceDstStrides(shape: Shape, axes: readonly number[]): number[] {
  const outStrides = stridesOf(shape.filter((_, i) => !axes.includes(i)));
  let k = 0;
  return shape.map((_, i) => (axes.includes(i) ? 0 : outStrides[k++]!));
}

/**
 * mish'' = (1 − T²)·σ·(2 + x(1 − σ − 2Tσ)) in float64 with one exponential, T, 1 − T², σ and
 * 1 − σ as in mishGrad64 (without cancellation); 0 at ±∞ (its limits).
 */
function mishGrad2_64(x: number): number {
  if (x === Infinity || x === -Infinity) return 0;
  let T: number, S: number, s: number, sc: number;
  if (x <= 0) {
    const u = Math.exp(x);
    const n = u * (u + 2);
    const d = n + 2;
    T = n / d;
    S = (4 * (n + 1)) / (d * d);
    s = u / (1 + u);
    sc = 1 / (1 + u);
  } else {
    const w = Math.exp(-x);
    const a = 1 + 2 * w;
    const b = a + 2 * w * w;
    T = a / b;
    S = (2 * w * w * (a + b)) / (b * b);
    s = 1 / (1 + w);
    sc = w / (1 + w);
  }
  return S * s * (2 + x * (sc - 2 * T * s));
}

/** A broadcast's source strides over the output's axes: operand axis i at output axis dims[i], 0 where it has extent 1 or is new. */
export function broadcastSrcStrides(inShape: Shape, outRank: number, dims: readonly number[]): number[] {
  const inStrides = stridesOf(inShape);
  const src = new Array<number>(outRank).fill(0);
  dims.forEach((d, i) => {
    if (inShape[i] !== 1) src[d] = inStrides[i]!;
  });
  return src;
}

/**
 * Mish and its derivative in float64 with one exponential (as the wasm kernels, wasm/elementwise.as.ts):
 * T = tanh(softplus(x)) = n / (n + 2) with n = u(u + 2), u = eˣ, for x ≤ 0; for x > 0, with
 * w = e^−x, T = (1 + 2w) / (1 + 2w + 2w²). 1 − T² and σ(x) come from the same u or w without
 * cancellation. mish = xT; mish' = T + x(1 − T²)σ.
 */
function mish64(x: number): number {
  if (x <= 0) {
    const u = Math.exp(x);
    const n = u * (u + 2);
    return (x * n) / (n + 2);
  }
  const w = Math.exp(-x);
  const a = 1 + 2 * w;
  return (x * a) / (a + 2 * w * w);
}
function mishGrad64(x: number): number {
  if (x <= 0) {
    const u = Math.exp(x);
    const n = u * (u + 2);
    const d = n + 2;
    // T = n/d, 1 − T² = 4(n + 1)/d², σ = u/(1 + u)
    return n / d + (x * 4 * (n + 1) * u) / (d * d * (1 + u));
  }
  const w = Math.exp(-x);
  const a = 1 + 2 * w;
  const b = a + 2 * w * w;
  // T = a/b, 1 − T² = 2w²(a + b)/b², σ = 1/(1 + w)
  return a / b + (x * 2 * w * w * (a + b)) / (b * b * (1 + w));
}

/** A shape as [P, C, R] around `axis` (C = shape[axis]): the layout of the per-channel kernels. */
export function channelLayout(shape: Shape, axis: number): { P: number; C: number; R: number } {
  return { P: sizeOf(shape.slice(0, axis)), C: shape[axis]!, R: sizeOf(shape.slice(axis + 1)) };
}

/**
 * x as [P, C, R] around `axis` (channelLayout), and each channel's mean and biased variance
 * over its P·R elements, in float64: the sums in row-major order, the variance of the centred
 * values (two passes).
 */
function channelStats(x: Buf, shape: Shape, axis: number): { P: number; C: number; R: number; mean: Float64Array; vari: Float64Array } {
  const { P, C, R } = channelLayout(shape, axis);
  const n = P * R;
  const mean = new Float64Array(C);
  const vari = new Float64Array(C);
  for (let p = 0, i = 0; p < P; p++) for (let c = 0; c < C; c++) for (let r = 0; r < R; r++) mean[c] = mean[c]! + x[i++]!;
  for (let c = 0; c < C; c++) mean[c] = mean[c]! / n;
  for (let p = 0, i = 0; p < P; p++)
    for (let c = 0; c < C; c++)
      for (let r = 0; r < R; r++) {
        const d = x[i++]! - mean[c]!;
        vari[c] = vari[c]! + d * d;
      }
  for (let c = 0; c < C; c++) vari[c] = vari[c]! / n;
  return { P, C, R, mean, vari };
}

export const reference: KernelTable = {
  add: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = x[i]! + y[i]!;
  },
  sub: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = x[i]! - y[i]!;
  },
  mul: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = x[i]! * y[i]!;
  },
  // x·s + t per index along `axis`, the product rounded to the output's precision first (as mul, then add)
  channel_affine: (out, shape, ins, { axis }) => {
    const x = X(ins),
      s = X(ins, 1),
      t = X(ins, 2);
    const { C, R } = channelLayout(shape, axis);
    const f32 = out instanceof Float32Array;
    for (let i = 0, c = 0; i < out.length; i += R, c = c + 1 === C ? 0 : c + 1) {
      const sc = s[c]!,
        sh = t[c]!;
      if (f32) for (let k = i; k < i + R; k++) out[k] = Math.fround(x[k]! * sc) + sh;
      else for (let k = i; k < i + R; k++) out[k] = x[k]! * sc + sh;
    }
  },
  // (x − μ)·(1/√(σ² + eps)) per channel, in float64 (channelStats), rounded once
  bn_normalize: (out, shape, ins, { axis, eps }) => {
    const x = X(ins);
    const { P, C, R, mean, vari } = channelStats(x, shape, axis);
    for (let p = 0, i = 0; p < P; p++)
      for (let c = 0; c < C; c++) {
        const m = mean[c]!,
          rs = 1 / Math.sqrt(vari[c]! + eps);
        for (let r = 0; r < R; r++, i++) out[i] = (x[i]! - m) * rs;
      }
  },
  // r·(t − mean(t) − x̂·mean(x̂·t)) per channel, r = 1/√(σ² + eps), x̂ = (x − μ)·r, in float64
  bn_normalize_jvp: (out, shape, ins, { axis, eps }) => {
    const x = X(ins),
      t = X(ins, 1);
    const { P, C, R, mean, vari } = channelStats(x, shape, axis);
    const rs = vari.map((v) => 1 / Math.sqrt(v + eps));
    const st = new Float64Array(C);
    const sxt = new Float64Array(C);
    for (let p = 0, i = 0; p < P; p++)
      for (let c = 0; c < C; c++)
        for (let r = 0; r < R; r++, i++) {
          st[c] = st[c]! + t[i]!;
          sxt[c] = sxt[c]! + (x[i]! - mean[c]!) * rs[c]! * t[i]!;
        }
    const n = P * R;
    for (let p = 0, i = 0; p < P; p++)
      for (let c = 0; c < C; c++) {
        const m = mean[c]!,
          r0 = rs[c]!,
          a = st[c]! / n,
          b = sxt[c]! / n;
        for (let r = 0; r < R; r++, i++) out[i] = r0 * (t[i]! - a - (x[i]! - m) * r0 * b);
      }
  },
  // [Σ u·x; Σ u] per channel, in float64 (row-major order)
  channel_sums: (out, _shape, ins, { axis }) => {
    const u = X(ins),
      x = X(ins, 1);
    const { P, C, R } = channelLayout(ins[0]!.shape, axis);
    const sux = new Float64Array(C);
    const su = new Float64Array(C);
    for (let p = 0, i = 0; p < P; p++)
      for (let c = 0; c < C; c++)
        for (let r = 0; r < R; r++, i++) {
          sux[c] = sux[c]! + u[i]! * x[i]!;
          su[c] = su[c]! + u[i]!;
        }
    for (let c = 0; c < C; c++) {
      out[c] = sux[c]!;
      out[C + c] = su[c]!;
    }
  },
  // ((x − μ)·r)·w + b per channel, μ and σ² read from m, r = 1/√(σ² + eps), in float64, rounded once
  bn_affine: (out, shape, ins, { axis, eps }) => {
    const x = X(ins),
      m = X(ins, 1),
      w = X(ins, 2),
      b = X(ins, 3);
    const { P, C, R } = channelLayout(shape, axis);
    for (let p = 0, i = 0; p < P; p++)
      for (let c = 0; c < C; c++) {
        const mu = m[c]!,
          rs = 1 / Math.sqrt(m[C + c]! + eps),
          wc = w[c]!,
          bc = b[c]!;
        for (let r = 0; r < R; r++, i++) out[i] = (x[i]! - mu) * rs * wc + bc;
      }
  },
  // [Σ u·(x − μ)·r; Σ u] per channel, μ and σ² read from m, in float64 (row-major order)
  bn_sums: (out, _shape, ins, { axis, eps }) => {
    const x = X(ins),
      m = X(ins, 1),
      u = X(ins, 2);
    const { P, C, R } = channelLayout(ins[0]!.shape, axis);
    const rs = Float64Array.from({ length: C }, (_, c) => 1 / Math.sqrt(m[C + c]! + eps));
    const sux = new Float64Array(C);
    const su = new Float64Array(C);
    for (let p = 0, i = 0; p < P; p++)
      for (let c = 0; c < C; c++)
        for (let r = 0; r < R; r++, i++) {
          sux[c] = sux[c]! + (x[i]! - m[c]!) * rs[c]! * u[i]!;
          su[c] = su[c]! + u[i]!;
        }
    for (let c = 0; c < C; c++) {
      out[c] = sux[c]!;
      out[C + c] = su[c]!;
    }
  },
  // (w·r)·(u − s₁/n − (x − μ)·r·s₀/n) per channel, μ, σ² from m and the sums s, in float64
  bn_affine_jvp: (out, shape, ins, { axis, eps }) => {
    const x = X(ins),
      m = X(ins, 1),
      w = X(ins, 2),
      u = X(ins, 3),
      s = X(ins, 4);
    const { P, C, R } = channelLayout(shape, axis);
    const n = P * R;
    for (let p = 0, i = 0; p < P; p++)
      for (let c = 0; c < C; c++) {
        const mu = m[c]!,
          rs = 1 / Math.sqrt(m[C + c]! + eps),
          wr = w[c]! * rs,
          a = s[C + c]! / n,
          b = s[c]! / n;
        for (let r = 0; r < R; r++, i++) out[i] = wr * (u[i]! - a - (x[i]! - mu) * rs * b);
      }
  },
  // [mean; biased variance] per channel (channelStats)
  channel_moments: (out, _shape, ins, { axis }) => {
    const { C, mean, vari } = channelStats(X(ins), ins[0]!.shape, axis);
    for (let c = 0; c < C; c++) {
      out[c] = mean[c]!;
      out[C + c] = vari[c]!;
    }
  },
  div: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = x[i]! / y[i]!;
  },
  // NaN propagates
  max: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = x[i]! > y[i]! || x[i] !== x[i] ? x[i]! : y[i]!;
  },
  min: (out, _s, ins) => {
    const x = X(ins),
      y = X(ins, 1);
    for (let i = 0; i < out.length; i++) out[i] = x[i]! < y[i]! || x[i] !== x[i] ? x[i]! : y[i]!;
  },
  neg: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = -x[i]!;
  },
  exp: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = Math.exp(x[i]!);
  },
  log: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = Math.log(x[i]!);
  },
  log1p: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = Math.log1p(x[i]!);
  },
  tanh: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = Math.tanh(x[i]!);
  },
  // erf in float64 (@stdlib, FreeBSD's algorithm, < 1 ulp); float32 data rounds once on store
  erf: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = erf64(x[i]!);
  },
  sqrt: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = Math.sqrt(x[i]!);
  },
  abs: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = Math.abs(x[i]!);
  },
  mish: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = mish64(x[i]!);
  },
  mish_grad: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = mishGrad64(x[i]!);
  },
  // g·mish'(x), mish'(x) rounded to the output's precision first (as mish_grad, then mul)
  mish_vjp: (out, _s, ins) => {
    const x = X(ins),
      g = X(ins, 1);
    if (out instanceof Float32Array) for (let i = 0; i < out.length; i++) out[i] = Math.fround(mishGrad64(x[i]!)) * g[i]!;
    else for (let i = 0; i < out.length; i++) out[i] = mishGrad64(x[i]!) * g[i]!;
  },
  mish_grad2: (out, _s, ins) => {
    const x = X(ins);
    for (let i = 0; i < out.length; i++) out[i] = mishGrad2_64(x[i]!);
  },
  pow: (out, _s, ins, { exponent: p }) => {
    const x = X(ins);
    if (p === 2) for (let i = 0; i < out.length; i++) out[i] = x[i]! * x[i]!;
    else for (let i = 0; i < out.length; i++) out[i] = Math.pow(x[i]!, p);
  },
  compare: (out, s, ins, params) => COMPARE[params.op](out, s, ins, params),
  select: (out, _s, ins) => {
    const m = X(ins),
      x = X(ins, 1),
      y = X(ins, 2);
    for (let i = 0; i < out.length; i++) out[i] = m[i] !== 0 ? x[i]! : y[i]!;
  },
  cast: (out, _s, [a]) => out.set(a!.data),
  stop_gradient: (out, _s, [a]) => out.set(a!.data),
  reduce_sum: (out, _s, [a], { axes }) => reduceInto(out, a!, axes, 'add'),
  reduce_max: (out, _s, [a], { axes }) => reduceInto(out, a!, axes, 'max'),
  reshape: (out, _s, [a]) => out.set(a!.data),
  broadcast: (out, outShape, [a], { dims }) => {
    if (a!.data.length === 1) return void out.fill(a!.data[0]!);
    stridedLoop(outShape, out, 0, stridesOf(outShape), a!.data, 0, broadcastSrcStrides(a!.shape, outShape.length, dims), 'copy');
  },
  transpose: (out, outShape, [a], { perm }) => {
    const inStrides = stridesOf(a!.shape);
    stridedLoop(
      outShape,
      out,
      0,
      stridesOf(outShape),
      a!.data,
      0,
      perm.map((p) => inStrides[p]!),
      'copy',
    );
  },
  slice: (out, outShape, [a], { start }) => {
    const inStrides = stridesOf(a!.shape);
    const off = start.reduce((acc, s, i) => acc + s * inStrides[i]!, 0);
    stridedLoop(outShape, out, 0, stridesOf(outShape), a!.data, off, inStrides, 'copy');
  },
  pad: (out, outShape, [a], { lo }) => {
    const outStrides = stridesOf(outShape);
    const off = lo.reduce((acc, s, i) => acc + s * outStrides[i]!, 0);
    stridedLoop(a!.shape, out, off, outStrides, a!.data, 0, stridesOf(a!.shape), 'copy');
  },
  concatenate: (out, outShape, inputs, { axis }) => {
    const outStrides = stridesOf(outShape);
    let pos = 0;
    for (const a of inputs) {
      stridedLoop(a.shape, out, pos * outStrides[axis]!, outStrides, a.data, 0, stridesOf(a.shape), 'copy');
      pos += a.shape[axis]!;
    }
  },
  ...linalgReference,
};
