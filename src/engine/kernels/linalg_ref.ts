/**
 * Reference kernels for the linear-algebra and pooling primitives: nested loops over the
 * definitions, written to be read and checked, not to be fast (see js.ts and wasm.ts for that).
 *
 * Conventions (shared with js.ts and wasm.ts; the tests in linalg.test.ts pin them down):
 *
 * - matmul: a[..., m, k] @ b[..., k, n] → [..., m, n] with equal batch shapes. `transA` means a is
 *   stored as [..., k, m], `transB` means b is stored as [..., n, k].
 * - conv2d: NCHW cross-correlation exactly as PyTorch's F.conv2d:
 *     y[n, o, oh, ow] = Σ_{c, kh, kw} x[n, g·Cg + c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw] · w[o, c, kh, kw]
 *   where Cg = C / groups, Og = O / groups, g = ⌊o / Og⌋, and x is zero outside its bounds.
 * - conv2d_input_grad / conv2d_filter_grad: the exact transposes (adjoints) of conv2d in x and in
 *   w. They are written here in gather form (each output element sums its own contributions),
 *   which is a different formulation from the scatter that the js and wasm kernels use.
 * - maxpool2d(key, val): per window, val at the element that PyTorch's CPU max_pool2d selects in
 *   key: scanning the in-bounds window elements in row-major order, the candidate is replaced
 *   when `k > best || isNaN(k)`, starting from best = −∞ and the first in-bounds element.
 *   Hence: the FIRST maximal element wins ties; if the window holds a NaN, the LAST NaN wins
 *   (exactly PyTorch's rule); if all keys are −∞, the first in-bounds element wins. Padding
 *   is −∞ and is never selected; a window with no in-bounds element (only possible when
 *   padding ≥ the kernel extent, which PyTorch rejects) gives 0 and receives no gradient.
 * - maxpool2d_scatter(key, dy): dx with dy added at the selected element of each window, the
 *   exact transpose of maxpool2d in val.
 *
 * All sums are accumulated in float64 (JS numbers) and stored once, whatever the dtype.
 */
import { windowOut, type ConvParams } from '../prims.js';
import type { Shape } from '../shape.js';
import { sizeOf, fmtShape } from '../shape.js';
import { overwriting, type KIn, type Kernel } from './types.js';

export function input(inputs: readonly KIn[], i: number, what: string): KIn {
  const x = inputs[i];
  if (x === undefined) throw new Error(`${what}: missing input ${i}`);
  return x;
}

/** Dimension `i` of a shape, counting from the end when negative; throws when absent. */
export function dim(shape: Shape, i: number, what: string): number {
  const d = shape[i < 0 ? shape.length + i : i];
  if (d === undefined) throw new Error(`${what}: shape ${fmtShape(shape)} has no axis ${i}`);
  return d;
}

export function check4(shape: Shape, what: string): void {
  if (shape.length !== 4) throw new Error(`${what}: expected a rank-4 shape, got ${fmtShape(shape)}`);
}

/** The three shapes of a conv (x, w, y), each checked as rank 4. */
export interface ConvDims {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  Cg: number;
  KH: number;
  KW: number;
  OH: number;
  OW: number;
  G: number;
  Og: number;
}

export function convDims(xShape: Shape, wShape: Shape, yShape: Shape, p: ConvParams, what: string): ConvDims {
  check4(xShape, what);
  check4(wShape, what);
  check4(yShape, what);
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, Cg, KH, KW] = wShape as [number, number, number, number];
  const [N2, O2, OH, OW] = yShape as [number, number, number, number];
  const G = p.groups;
  if (
    N2 !== N ||
    O2 !== O ||
    C !== Cg * G ||
    O % G !== 0 ||
    OH !== windowOut(H, KH, p.stride[0], p.padding[0], p.dilation[0]) ||
    OW !== windowOut(W, KW, p.stride[1], p.padding[1], p.dilation[1])
  ) {
    throw new Error(`${what}: inconsistent shapes x ${fmtShape(xShape)}, w ${fmtShape(wShape)}, y ${fmtShape(yShape)}, params ${JSON.stringify(p)}`);
  }
  return { N, C, H, W, O, Cg, KH, KW, OH, OW, G, Og: O / G };
}

// ---------------------------------------------------------------------------------------------
// matmul

/** [batch, m, n, k] of a matmul, checking that the shapes agree. */
export function matmulDims(aShape: Shape, bShape: Shape, outShape: Shape, transA: boolean, transB: boolean): [number, number, number, number] {
  const r = outShape.length;
  const bad = (): Error =>
    new Error(`matmul: ${fmtShape(aShape)}${transA ? 'ᵀ' : ''} @ ${fmtShape(bShape)}${transB ? 'ᵀ' : ''} → ${fmtShape(outShape)} do not agree`);
  if (r < 2 || aShape.length !== r || bShape.length !== r) throw bad();
  for (let i = 0; i < r - 2; i++) if (aShape[i] !== outShape[i] || bShape[i] !== outShape[i]) throw bad();
  const m = outShape[r - 2]!,
    n = outShape[r - 1]!;
  const [am, ak] = transA ? [aShape[r - 1]!, aShape[r - 2]!] : [aShape[r - 2]!, aShape[r - 1]!];
  const [bk, bn] = transB ? [bShape[r - 1]!, bShape[r - 2]!] : [bShape[r - 2]!, bShape[r - 1]!];
  if (am !== m || bn !== n || ak !== bk) throw bad();
  return [sizeOf(outShape.slice(0, r - 2)), m, n, ak];
}

export const matmul: Kernel<'matmul'> = (out, outShape, inputs, { transA, transB }) => {
  const a = input(inputs, 0, 'matmul');
  const b = input(inputs, 1, 'matmul');
  const [batch, m, n, k] = matmulDims(a.shape, b.shape, outShape, transA, transB);
  const A = a.data;
  const B = b.data;
  // A(i, p) and B(p, j) of batch t, honouring the storage order.
  const at = (t: number, i: number, p: number): number => A[t * m * k + (transA ? p * m + i : i * k + p)]!;
  const bt = (t: number, p: number, j: number): number => B[t * k * n + (transB ? j * k + p : p * n + j)]!;
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += at(t, i, p) * bt(t, p, j);
        out[(t * m + i) * n + j] = s;
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// conv2d and its two transposes

export const conv2d: Kernel<'conv2d'> = (out, outShape, inputs, p) => {
  const x = input(inputs, 0, 'conv2d');
  const w = input(inputs, 1, 'conv2d');
  const d = convDims(x.shape, w.shape, outShape, p, 'conv2d');
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation;
  const X = x.data;
  const Wt = w.data;
  for (let n = 0; n < d.N; n++) {
    for (let o = 0; o < d.O; o++) {
      const g = Math.floor(o / d.Og);
      for (let oh = 0; oh < d.OH; oh++) {
        for (let ow = 0; ow < d.OW; ow++) {
          let s = 0;
          for (let c = 0; c < d.Cg; c++) {
            const ci = g * d.Cg + c;
            for (let kh = 0; kh < d.KH; kh++) {
              const ih = oh * sh - ph + kh * dh;
              if (ih < 0 || ih >= d.H) continue;
              for (let kw = 0; kw < d.KW; kw++) {
                const iw = ow * sw - pw + kw * dw;
                if (iw < 0 || iw >= d.W) continue;
                s += X[((n * d.C + ci) * d.H + ih) * d.W + iw]! * Wt[((o * d.Cg + c) * d.KH + kh) * d.KW + kw]!;
              }
            }
          }
          out[((n * d.O + o) * d.OH + oh) * d.OW + ow] = s;
        }
      }
    }
  }
};

/**
 * dx[n, ci, ih, iw] = Σ dy[n, o, oh, ow] · w[o, c, kh, kw] over the (o, kh, kw) of ci's group
 * and the (oh, ow) with oh·sh − ph + kh·dh = ih and ow·sw − pw + kw·dw = iw.
 */
export const conv2d_input_grad: Kernel<'conv2d_input_grad'> = (out, outShape, inputs, p) => {
  const dy = input(inputs, 0, 'conv2d_input_grad');
  const w = input(inputs, 1, 'conv2d_input_grad');
  const d = convDims(outShape, w.shape, dy.shape, p, 'conv2d_input_grad');
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation;
  const DY = dy.data;
  const Wt = w.data;
  for (let n = 0; n < d.N; n++) {
    for (let ci = 0; ci < d.C; ci++) {
      const g = Math.floor(ci / d.Cg);
      const c = ci - g * d.Cg;
      for (let ih = 0; ih < d.H; ih++) {
        for (let iw = 0; iw < d.W; iw++) {
          let s = 0;
          for (let kh = 0; kh < d.KH; kh++) {
            const th = ih + ph - kh * dh; // = oh·sh
            if (th < 0 || th % sh !== 0) continue;
            const oh = th / sh;
            if (oh >= d.OH) continue;
            for (let kw = 0; kw < d.KW; kw++) {
              const tw = iw + pw - kw * dw; // = ow·sw
              if (tw < 0 || tw % sw !== 0) continue;
              const ow = tw / sw;
              if (ow >= d.OW) continue;
              for (let o = g * d.Og; o < (g + 1) * d.Og; o++) {
                s += DY[((n * d.O + o) * d.OH + oh) * d.OW + ow]! * Wt[((o * d.Cg + c) * d.KH + kh) * d.KW + kw]!;
              }
            }
          }
          out[((n * d.C + ci) * d.H + ih) * d.W + iw] = s;
        }
      }
    }
  }
};

/** dw[o, c, kh, kw] = Σ_{n, oh, ow} dy[n, o, oh, ow] · x[n, g·Cg + c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]. */
export const conv2d_filter_grad: Kernel<'conv2d_filter_grad'> = (out, outShape, inputs, p) => {
  const x = input(inputs, 0, 'conv2d_filter_grad');
  const dy = input(inputs, 1, 'conv2d_filter_grad');
  const d = convDims(x.shape, outShape, dy.shape, p, 'conv2d_filter_grad');
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation;
  const X = x.data;
  const DY = dy.data;
  for (let o = 0; o < d.O; o++) {
    const g = Math.floor(o / d.Og);
    for (let c = 0; c < d.Cg; c++) {
      const ci = g * d.Cg + c;
      for (let kh = 0; kh < d.KH; kh++) {
        for (let kw = 0; kw < d.KW; kw++) {
          let s = 0;
          for (let n = 0; n < d.N; n++) {
            for (let oh = 0; oh < d.OH; oh++) {
              const ih = oh * sh - ph + kh * dh;
              if (ih < 0 || ih >= d.H) continue;
              for (let ow = 0; ow < d.OW; ow++) {
                const iw = ow * sw - pw + kw * dw;
                if (iw < 0 || iw >= d.W) continue;
                s += DY[((n * d.O + o) * d.OH + oh) * d.OW + ow]! * X[((n * d.C + ci) * d.H + ih) * d.W + iw]!;
              }
            }
          }
          out[((o * d.Cg + c) * d.KH + kh) * d.KW + kw] = s;
        }
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// max pooling

/** Shapes of a pool: input [N, C, H, W] and output [N, C, OH, OW]. */
export function poolDims(inShape: Shape, outShape: Shape, what: string): [number, number, number, number, number] {
  check4(inShape, what);
  check4(outShape, what);
  const [N, C, H, W] = inShape as [number, number, number, number];
  if (outShape[0] !== N || outShape[1] !== C) {
    throw new Error(`${what}: input ${fmtShape(inShape)} and output ${fmtShape(outShape)} disagree`);
  }
  return [N * C, H, W, outShape[2]!, outShape[3]!];
}

/**
 * Offset within an H×W plane of the element that maxpool selects in the window at (oh, ow),
 * or −1 when the window has no in-bounds element. See the file comment for the rule. The one JS
 * copy of it: the js kernels (js.ts) and bracket/kinks.ts call this too (wasm/pool.as.ts has its own).
 */
export function poolArgmax(
  K: ArrayLike<number>,
  base: number,
  H: number,
  W: number,
  oh: number,
  ow: number,
  kernel: readonly [number, number],
  stride: readonly [number, number],
  padding: readonly [number, number],
): number {
  // the in-bounds part of the window: rows [ih0, ih1), columns [iw0, iw1)
  const ih0 = Math.max(0, oh * stride[0] - padding[0]);
  const ih1 = Math.min(H, oh * stride[0] - padding[0] + kernel[0]);
  const iw0 = Math.max(0, ow * stride[1] - padding[1]);
  const iw1 = Math.min(W, ow * stride[1] - padding[1] + kernel[1]);
  if (ih0 >= ih1 || iw0 >= iw1) return -1;
  let best = -Infinity;
  let arg = ih0 * W + iw0; // PyTorch's initial candidate: the first in-bounds element
  for (let ih = ih0; ih < ih1; ih++) {
    for (let iw = iw0; iw < iw1; iw++) {
      const v = K[base + ih * W + iw]!;
      if (v > best || v !== v) {
        best = v;
        arg = ih * W + iw;
      }
    }
  }
  return arg;
}

export const maxpool2d: Kernel<'maxpool2d'> = (out, outShape, inputs, p) => {
  const key = input(inputs, 0, 'maxpool2d');
  const val = input(inputs, 1, 'maxpool2d');
  const [NC, H, W, OH, OW] = poolDims(key.shape, outShape, 'maxpool2d');
  for (let q = 0; q < NC; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const arg = poolArgmax(key.data, base, H, W, oh, ow, p.kernel, p.stride, p.padding);
        out[(q * OH + oh) * OW + ow] = arg < 0 ? 0 : val.data[base + arg]!;
      }
    }
  }
};

export const maxpool2d_scatter: Kernel<'maxpool2d_scatter'> = (out, outShape, inputs, p) => {
  const key = input(inputs, 0, 'maxpool2d_scatter');
  const dy = input(inputs, 1, 'maxpool2d_scatter');
  const [NC, H, W, OH, OW] = poolDims(outShape, dy.shape, 'maxpool2d_scatter');
  const acc = new Float64Array(out.length); // overlapping windows add up; round once at the end
  for (let q = 0; q < NC; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const arg = poolArgmax(key.data, base, H, W, oh, ow, p.kernel, p.stride, p.padding);
        if (arg >= 0) acc[base + arg]! += dy.data[(q * OH + oh) * OW + ow]!;
      }
    }
  }
  out.set(acc);
};

export const linalgReference = {
  matmul,
  conv2d: overwriting(conv2d),
  conv2d_input_grad: overwriting(conv2d_input_grad),
  conv2d_filter_grad: overwriting(conv2d_filter_grad),
  maxpool2d,
  maxpool2d_scatter,
} as const;
