/**
 * The JS kernel tier (kernel set 'js'): the reference table (reference.ts) with plain-JS fast
 * paths for matmul, the conv family and max pooling, interchangeable with linalg_ref.ts up to
 * floating-point summation order (linalg.test.ts holds them to 1e-12 relative in float64), and
 * reduce_sum with float64 accumulation.
 *
 * Why it is kept now that the wasm tier (wasm.ts) does this work on Node ≥ 20: it is the wasm
 * tier's fallback, and the only one that is not ~10× slower (the reference is). wasm.ts calls
 * these kernels
 *  - for every overlapping max-pool scatter (stride < kernel, e.g. the 3×3 stride-2 stem pool of
 *    xresnet, every training step): overlapping windows sum in float64 here;
 *  - where WebAssembly or its SIMD extension is unavailable (wasmAvailable false: runtimes or
 *    flags without it, e.g. node --jitless), for every linear-algebra call;
 *  - for operands of mixed dtypes, and for calls too large for a wasm32 memory (4 GiB).
 * The ReLU convnet and the MLP never reach it under the wasm set (2×2 stride-2 pools). The 'js'
 * set also keeps the WebAssembly speed-up measurable (src/bench/kernels.ts, --kernels js).
 * linalg.test.ts tests these kernels directly, and torch-reference.test.ts runs the 'js' set.
 *
 * - GEMM: one register-tiled kernel for all four storage orders, reading the operands through
 *   strides (no transposed copies): 4×4 tiles of C in 16 float64 locals, 1×8 tiles for rows
 *   left over (the batch-1 case), B swept in cache-sized panels of columns.
 * - conv2d: im2col (stride, padding, dilation, groups) + GEMM per (image, group), written
 *   straight into the output; 1×1 stride-1 unpadded convs use x itself as the column matrix.
 * - conv2d_input_grad: GEMM wᵀ · dy into a column buffer, then col2im (float64 accumulation).
 * - conv2d_filter_grad: one GEMM dy · colᵀ per group with the images' columns side by side,
 *   so that every filter element is a single dot product over the batch.
 * - maxpool2d / maxpool2d_scatter: the window argmaxes by linalg_ref.ts's poolArgmax (the one
 *   JS copy of the selection rule; unrolled for the 2×2 stride-2 pool) into an index table, then
 *   a gather or scatter.
 *
 * All arithmetic is in float64 (JS numbers); each output element is rounded to the output dtype
 * once. Scratch memory is a few grow-only module-level Float64Arrays (float64 whatever the
 * dtype, so the inner loops see one array type), never handed out: results go to `out` only.
 */
import type { Buf } from '../dtype.js';
import type { ConvParams, PoolParams } from '../prims.js';
import { convDims, input, matmulDims, poolArgmax, poolDims, type ConvDims } from './linalg_ref.js';
import { reduceInto, reference } from './reference.js';
import { overwriting, type Kernel, type KernelTable } from './types.js';

// ---------------------------------------------------------------------------------------------
// scratch

// Scratch slots: float64 copies of float32 operands (A, B); the im2col / col2im column buffer;
// float64 accumulation of a whole output (when the output is float32).
const SA = 0,
  SB = 1,
  SCOL = 2,
  SOUT = 3;
type Slot = number;
const scratchBufs: Float64Array[] = [0, 1, 2, 3].map(() => new Float64Array(0));

/** A float64 scratch array of at least `n` elements (contents undefined unless `zero`). */
function scratch(slot: Slot, n: number, zero = false): Float64Array {
  let b = scratchBufs[slot]!;
  if (b.length < n) {
    b = new Float64Array(Math.max(n, Math.ceil(b.length * 1.5)));
    scratchBufs[slot] = b;
  } else if (zero) {
    b.fill(0, 0, n);
  }
  return b;
}

/**
 * The operand as a Float64Array: itself, or a float64 copy in scratch. The GEMM and col2im loops
 * only ever see Float64Arrays, so V8 compiles them for one element type (mixing Float32Array and
 * Float64Array at the same loads costs a good part of the speed).
 */
function f64In(buf: Buf, slot: Slot): Float64Array {
  if (buf instanceof Float64Array) return buf;
  const t = scratch(slot, buf.length);
  t.set(buf);
  return t;
}

/** Where to compute a whole output in float64: the output itself if float64, else scratch (zeroed if asked). */
function f64Out(out: Buf, zero: boolean): Float64Array {
  return out instanceof Float64Array ? out : scratch(SOUT, out.length, zero);
}

/** Round the float64 result into `out` (a no-op when it was computed in place). */
function storeBack(out: Buf, res: Float64Array): void {
  if (res !== out) out.set(res.subarray(0, out.length));
}

/** Release the scratch memory (for long-lived processes after a large one-off computation). */
export function releaseScratch(): void {
  for (let i = 0; i < scratchBufs.length; i++) scratchBufs[i] = new Float64Array(0);
  argBuf = new Int32Array(0);
}

// ---------------------------------------------------------------------------------------------
// GEMM. One register-tiled kernel serves every storage order through strides:
//   A(i, p) = A[aOff + i·ai + p·ap],  B(p, j) = B[bOff + p·bp + j·bj],  C row-major [M, N].
// NN: ai = K, ap = 1, bp = N, bj = 1;  TN: ai = 1, ap = M;  NT: bp = 1, bj = K.
// Each C element is a sum over p in a float64 local, stored once (added to C when `acc`).
// Tiles: 4×4 (16 accumulators), 4×1 for the columns left over, and for rows left over 1×8,
// 1×4 and 1×1 (two accumulators). Columns are processed in panels of at most NC columns so
// that the panel of B being swept by all row blocks stays in cache.

/** Columns per B panel: keep K·NC doubles around 256 KiB. */
function panelCols(K: number, N: number): number {
  const nc = Math.max(8, Math.floor(32768 / Math.max(K, 1)) & ~7);
  return Math.min(N, nc);
}

function gemmStrided(
  M: number,
  N: number,
  K: number,
  A: Float64Array,
  aOff: number,
  ai: number,
  ap: number,
  B: Float64Array,
  bOff: number,
  bp: number,
  bj: number,
  C: Float64Array,
  cOff: number,
  acc: boolean,
): void {
  const NC = panelCols(K, N);
  const M4 = M - (M % 4);
  for (let j0 = 0; j0 < N; j0 += NC) {
    const j1 = Math.min(N, j0 + NC);
    const J4 = j0 + ((j1 - j0) & ~3);
    for (let i = 0; i < M4; i += 4) {
      const r0 = aOff + i * ai,
        r1 = r0 + ai,
        r2 = r1 + ai,
        r3 = r2 + ai;
      const cRow = cOff + i * N;
      let j = j0;
      for (; j < J4; j += 4) {
        const q0 = bOff + j * bj,
          q1 = q0 + bj,
          q2 = q1 + bj,
          q3 = q2 + bj;
        let c00 = 0,
          c01 = 0,
          c02 = 0,
          c03 = 0,
          c10 = 0,
          c11 = 0,
          c12 = 0,
          c13 = 0;
        let c20 = 0,
          c21 = 0,
          c22 = 0,
          c23 = 0,
          c30 = 0,
          c31 = 0,
          c32 = 0,
          c33 = 0;
        for (let p = 0, pa = 0, pb = 0; p < K; p++, pa += ap, pb += bp) {
          const y0 = B[q0 + pb]!,
            y1 = B[q1 + pb]!,
            y2 = B[q2 + pb]!,
            y3 = B[q3 + pb]!;
          let x = A[r0 + pa]!;
          c00 += x * y0;
          c01 += x * y1;
          c02 += x * y2;
          c03 += x * y3;
          x = A[r1 + pa]!;
          c10 += x * y0;
          c11 += x * y1;
          c12 += x * y2;
          c13 += x * y3;
          x = A[r2 + pa]!;
          c20 += x * y0;
          c21 += x * y1;
          c22 += x * y2;
          c23 += x * y3;
          x = A[r3 + pa]!;
          c30 += x * y0;
          c31 += x * y1;
          c32 += x * y2;
          c33 += x * y3;
        }
        let c = cRow + j;
        if (acc) {
          C[c] = C[c]! + c00;
          C[c + 1] = C[c + 1]! + c01;
          C[c + 2] = C[c + 2]! + c02;
          C[c + 3] = C[c + 3]! + c03;
          c += N;
          C[c] = C[c]! + c10;
          C[c + 1] = C[c + 1]! + c11;
          C[c + 2] = C[c + 2]! + c12;
          C[c + 3] = C[c + 3]! + c13;
          c += N;
          C[c] = C[c]! + c20;
          C[c + 1] = C[c + 1]! + c21;
          C[c + 2] = C[c + 2]! + c22;
          C[c + 3] = C[c + 3]! + c23;
          c += N;
          C[c] = C[c]! + c30;
          C[c + 1] = C[c + 1]! + c31;
          C[c + 2] = C[c + 2]! + c32;
          C[c + 3] = C[c + 3]! + c33;
        } else {
          C[c] = c00;
          C[c + 1] = c01;
          C[c + 2] = c02;
          C[c + 3] = c03;
          c += N;
          C[c] = c10;
          C[c + 1] = c11;
          C[c + 2] = c12;
          C[c + 3] = c13;
          c += N;
          C[c] = c20;
          C[c + 1] = c21;
          C[c + 2] = c22;
          C[c + 3] = c23;
          c += N;
          C[c] = c30;
          C[c + 1] = c31;
          C[c + 2] = c32;
          C[c + 3] = c33;
        }
      }
      for (; j < j1; j++) {
        const q0 = bOff + j * bj;
        let c0 = 0,
          c1 = 0,
          c2 = 0,
          c3 = 0;
        for (let p = 0, pa = 0, pb = 0; p < K; p++, pa += ap, pb += bp) {
          const y = B[q0 + pb]!;
          c0 += A[r0 + pa]! * y;
          c1 += A[r1 + pa]! * y;
          c2 += A[r2 + pa]! * y;
          c3 += A[r3 + pa]! * y;
        }
        const c = cRow + j;
        if (acc) {
          C[c] = C[c]! + c0;
          C[c + N] = C[c + N]! + c1;
          C[c + 2 * N] = C[c + 2 * N]! + c2;
          C[c + 3 * N] = C[c + 3 * N]! + c3;
        } else {
          C[c] = c0;
          C[c + N] = c1;
          C[c + 2 * N] = c2;
          C[c + 3 * N] = c3;
        }
      }
    }
    for (let i = M4; i < M; i++) gemmRow(j0, j1, K, A, aOff + i * ai, ap, B, bOff, bp, bj, C, cOff + i * N, acc);
  }
}

/** One row of C, columns [j0, j1): tiles of 1×8, 1×4, then single dot products. */
function gemmRow(
  j0: number,
  j1: number,
  K: number,
  A: Float64Array,
  r0: number,
  ap: number,
  B: Float64Array,
  bOff: number,
  bp: number,
  bj: number,
  C: Float64Array,
  cRow: number,
  acc: boolean,
): void {
  let j = j0;
  for (; j + 7 < j1; j += 8) {
    const q0 = bOff + j * bj,
      q1 = q0 + bj,
      q2 = q1 + bj,
      q3 = q2 + bj;
    const q4 = q3 + bj,
      q5 = q4 + bj,
      q6 = q5 + bj,
      q7 = q6 + bj;
    let c0 = 0,
      c1 = 0,
      c2 = 0,
      c3 = 0,
      c4 = 0,
      c5 = 0,
      c6 = 0,
      c7 = 0;
    for (let p = 0, pa = 0, pb = 0; p < K; p++, pa += ap, pb += bp) {
      const x = A[r0 + pa]!;
      c0 += x * B[q0 + pb]!;
      c1 += x * B[q1 + pb]!;
      c2 += x * B[q2 + pb]!;
      c3 += x * B[q3 + pb]!;
      c4 += x * B[q4 + pb]!;
      c5 += x * B[q5 + pb]!;
      c6 += x * B[q6 + pb]!;
      c7 += x * B[q7 + pb]!;
    }
    const c = cRow + j;
    if (acc) {
      C[c] = C[c]! + c0;
      C[c + 1] = C[c + 1]! + c1;
      C[c + 2] = C[c + 2]! + c2;
      C[c + 3] = C[c + 3]! + c3;
      C[c + 4] = C[c + 4]! + c4;
      C[c + 5] = C[c + 5]! + c5;
      C[c + 6] = C[c + 6]! + c6;
      C[c + 7] = C[c + 7]! + c7;
    } else {
      C[c] = c0;
      C[c + 1] = c1;
      C[c + 2] = c2;
      C[c + 3] = c3;
      C[c + 4] = c4;
      C[c + 5] = c5;
      C[c + 6] = c6;
      C[c + 7] = c7;
    }
  }
  if (j + 3 < j1) {
    const q0 = bOff + j * bj,
      q1 = q0 + bj,
      q2 = q1 + bj,
      q3 = q2 + bj;
    let c0 = 0,
      c1 = 0,
      c2 = 0,
      c3 = 0;
    for (let p = 0, pa = 0, pb = 0; p < K; p++, pa += ap, pb += bp) {
      const x = A[r0 + pa]!;
      c0 += x * B[q0 + pb]!;
      c1 += x * B[q1 + pb]!;
      c2 += x * B[q2 + pb]!;
      c3 += x * B[q3 + pb]!;
    }
    const c = cRow + j;
    if (acc) {
      C[c] = C[c]! + c0;
      C[c + 1] = C[c + 1]! + c1;
      C[c + 2] = C[c + 2]! + c2;
      C[c + 3] = C[c + 3]! + c3;
    } else {
      C[c] = c0;
      C[c + 1] = c1;
      C[c + 2] = c2;
      C[c + 3] = c3;
    }
    j += 4;
  }
  for (; j < j1; j++) {
    const q0 = bOff + j * bj;
    let s0 = 0,
      s1 = 0;
    let p = 0,
      pa = 0,
      pb = 0;
    for (; p + 1 < K; p += 2, pa += 2 * ap, pb += 2 * bp) {
      s0 += A[r0 + pa]! * B[q0 + pb]!;
      s1 += A[r0 + pa + ap]! * B[q0 + pb + bp]!;
    }
    if (p < K) s0 += A[r0 + pa]! * B[q0 + pb]!;
    const c = cRow + j;
    C[c] = acc ? C[c]! + (s0 + s1) : s0 + s1;
  }
}

/**
 * C[cOff ..] (+)= op(A) op(B) for one [M, N] output block; op(A) is A stored [M, K] (or [K, M]
 * when transA), op(B) is B stored [K, N] (or [N, K] when transB).
 */
export function gemm(
  M: number,
  N: number,
  K: number,
  A: Float64Array,
  aOff: number,
  transA: boolean,
  B: Float64Array,
  bOff: number,
  transB: boolean,
  C: Float64Array,
  cOff: number,
  accumulate = false,
): void {
  if (M === 0 || N === 0) return;
  if (K === 0) {
    if (!accumulate) C.fill(0, cOff, cOff + M * N);
    return;
  }
  gemmStrided(M, N, K, A, aOff, transA ? 1 : K, transA ? M : 1, B, bOff, transB ? 1 : N, transB ? K : 1, C, cOff, accumulate);
}

// ---------------------------------------------------------------------------------------------
// matmul

export const matmul: Kernel<'matmul'> = (out, outShape, inputs, { transA, transB }) => {
  const a = input(inputs, 0, 'matmul');
  const b = input(inputs, 1, 'matmul');
  const [batch, M, N, K] = matmulDims(a.shape, b.shape, outShape, transA, transB);
  const A = f64In(a.data, SA);
  const B = f64In(b.data, SB);
  const C = f64Out(out, false); // every element is written
  for (let t = 0; t < batch; t++) gemm(M, N, K, A, t * M * K, transA, B, t * K * N, transB, C, t * M * N);
  storeBack(out, C);
};

// ---------------------------------------------------------------------------------------------
// im2col / col2im

interface Geom {
  readonly H: number;
  readonly W: number;
  readonly KH: number;
  readonly KW: number;
  readonly OH: number;
  readonly OW: number;
  readonly sh: number;
  readonly sw: number;
  readonly ph: number;
  readonly pw: number;
  readonly dh: number;
  readonly dw: number;
}

function geom(d: ConvDims, p: ConvParams): Geom {
  return {
    H: d.H,
    W: d.W,
    KH: d.KH,
    KW: d.KW,
    OH: d.OH,
    OW: d.OW,
    sh: p.stride[0],
    sw: p.stride[1],
    ph: p.padding[0],
    pw: p.padding[1],
    dh: p.dilation[0],
    dw: p.dilation[1],
  };
}

/**
 * The output positions [lo, hi) ⊆ [0, OW) whose input position o·s − pad + kOff lies in [0, W)
 * (an empty range may sit anywhere in [0, OW], never beyond: callers zero-fill around it).
 */
function validRange(W: number, OW: number, s: number, pad: number, kOff: number): [number, number] {
  // i = o·s + (kOff − pad) ∈ [0, W)  ⇔  o ∈ [ceil((pad − kOff)/s), floor((W − 1 + pad − kOff)/s)]
  const shift = pad - kOff;
  const lo = Math.min(OW, Math.max(0, Math.ceil(shift / s)));
  const hi = Math.min(OW, Math.floor((W - 1 + shift) / s) + 1);
  return [lo, Math.max(lo, hi)];
}

/**
 * col[((c·KH + kh)·KW + kw)·ld + cOff + oh·OW + ow] = x[c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]
 * (0 outside x) for the Cg channel planes starting at X[xOff]. `ld` is the row length of col
 * (OH·OW for one image; a multiple of it when several images sit side by side).
 */
function im2col(X: Buf, xOff: number, Cg: number, g: Geom, col: Float64Array, ld: number, cOff: number): void {
  const { H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw } = g;
  const OHW = OH * OW;
  let row = cOff;
  for (let c = 0; c < Cg; c++) {
    const plane = xOff + c * H * W;
    for (let kh = 0; kh < KH; kh++) {
      const [ohLo, ohHi] = validRange(H, OH, sh, ph, kh * dh);
      for (let kw = 0; kw < KW; kw++, row += ld) {
        const [owLo, owHi] = validRange(W, OW, sw, pw, kw * dw);
        if (ohLo > 0) col.fill(0, row, row + ohLo * OW);
        if (ohHi < OH) col.fill(0, row + ohHi * OW, row + OHW);
        for (let oh = ohLo; oh < ohHi; oh++) {
          const dst = row + oh * OW;
          const src = plane + (oh * sh - ph + kh * dh) * W - pw + kw * dw;
          for (let ow = 0; ow < owLo; ow++) col[dst + ow] = 0;
          if (sw === 1) {
            for (let ow = owLo; ow < owHi; ow++) col[dst + ow] = X[src + ow]!;
          } else {
            for (let ow = owLo; ow < owHi; ow++) col[dst + ow] = X[src + ow * sw]!;
          }
          for (let ow = owHi; ow < OW; ow++) col[dst + ow] = 0;
        }
      }
    }
  }
}

/** The transpose of im2col (one image, ld = OH·OW): DX[xOff + …] += col[…] at the in-bounds positions. */
function col2im(col: Float64Array, Cg: number, g: Geom, DX: Float64Array, xOff: number): void {
  const { H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw } = g;
  const OHW = OH * OW;
  let row = 0;
  for (let c = 0; c < Cg; c++) {
    const plane = xOff + c * H * W;
    for (let kh = 0; kh < KH; kh++) {
      const [ohLo, ohHi] = validRange(H, OH, sh, ph, kh * dh);
      for (let kw = 0; kw < KW; kw++, row += OHW) {
        const [owLo, owHi] = validRange(W, OW, sw, pw, kw * dw);
        for (let oh = ohLo; oh < ohHi; oh++) {
          const s = row + oh * OW;
          const dst = plane + (oh * sh - ph + kh * dh) * W - pw + kw * dw;
          if (sw === 1) {
            for (let ow = owLo; ow < owHi; ow++) DX[dst + ow] = DX[dst + ow]! + col[s + ow]!;
          } else {
            for (let ow = owLo; ow < owHi; ow++) DX[dst + ow * sw] = DX[dst + ow * sw]! + col[s + ow]!;
          }
        }
      }
    }
  }
}

/** A 1×1 kernel with unit stride and no padding: the im2col matrix of an image is x itself. */
function isPointwise(g: Geom): boolean {
  return g.KH === 1 && g.KW === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0;
}

// ---------------------------------------------------------------------------------------------
// conv2d family

/** y_g[n] [Og, OHW] = w_g [Og, CKK] · col(x_g[n]) [CKK, OHW]. */
export const conv2d: Kernel<'conv2d'> = (out, outShape, inputs, p) => {
  const x = input(inputs, 0, 'conv2d');
  const w = input(inputs, 1, 'conv2d');
  const d = convDims(x.shape, w.shape, outShape, p, 'conv2d');
  const g = geom(d, p);
  const OHW = d.OH * d.OW;
  const CKK = d.Cg * d.KH * d.KW;
  const Wt = f64In(w.data, SA);
  const Y = f64Out(out, false); // every element is written
  const X = isPointwise(g) ? f64In(x.data, SB) : null;
  const col = X === null ? scratch(SCOL, CKK * OHW) : null;
  for (let n = 0; n < d.N; n++) {
    for (let gi = 0; gi < d.G; gi++) {
      const xOff = (n * d.C + gi * d.Cg) * d.H * d.W;
      const yOff = (n * d.O + gi * d.Og) * OHW;
      const wOff = gi * d.Og * CKK;
      if (col === null) {
        gemm(d.Og, OHW, CKK, Wt, wOff, false, X!, xOff, false, Y, yOff);
      } else {
        im2col(x.data, xOff, d.Cg, g, col, OHW, 0);
        gemm(d.Og, OHW, CKK, Wt, wOff, false, col, 0, false, Y, yOff);
      }
    }
  }
  storeBack(out, Y);
};

/** col [CKK, OHW] = w_gᵀ · dy_g[n], then col2im onto dx (accumulated in float64). */
export const conv2d_input_grad: Kernel<'conv2d_input_grad'> = (out, outShape, inputs, p) => {
  const dy = input(inputs, 0, 'conv2d_input_grad');
  const w = input(inputs, 1, 'conv2d_input_grad');
  const d = convDims(outShape, w.shape, dy.shape, p, 'conv2d_input_grad');
  const g = geom(d, p);
  const OHW = d.OH * d.OW;
  const CKK = d.Cg * d.KH * d.KW;
  const Wt = f64In(w.data, SA);
  const DY = f64In(dy.data, SB);
  if (isPointwise(g)) {
    // dx_g [Cg, HW] = w_gᵀ [Cg, Og] · dy_g [Og, HW]: every dx element is one sum, stored once.
    const DX = f64Out(out, false);
    for (let n = 0; n < d.N; n++) {
      for (let gi = 0; gi < d.G; gi++) {
        const dyOff = (n * d.O + gi * d.Og) * OHW;
        const xOff = (n * d.C + gi * d.Cg) * d.H * d.W;
        gemm(d.Cg, OHW, d.Og, Wt, gi * d.Og * CKK, true, DY, dyOff, false, DX, xOff);
      }
    }
    storeBack(out, DX);
    return;
  }
  const col = scratch(SCOL, CKK * OHW);
  const DX = f64Out(out, true);
  for (let n = 0; n < d.N; n++) {
    for (let gi = 0; gi < d.G; gi++) {
      const dyOff = (n * d.O + gi * d.Og) * OHW;
      gemm(CKK, OHW, d.Og, Wt, gi * d.Og * CKK, true, DY, dyOff, false, col, 0);
      col2im(col, d.Cg, g, DX, (n * d.C + gi * d.Cg) * d.H * d.W);
    }
  }
  storeBack(out, DX);
};

/**
 * Tuning knobs, exported so that tests can force the rarely taken paths.
 * filterGradChunk: most doubles that the filter gradient gathers at once (32 MiB).
 */
export const jsTuning = { filterGradChunk: 1 << 22 };

/**
 * dw_g [Og, CKK] = Σ_n dy_g[n] [Og, OHW] · col(x_g[n])ᵀ, as one NT GEMM over K = images · OHW:
 * the columns of the images (and the rows of dy) are laid side by side in scratch, so each
 * filter element is a single long dot product, stored once.
 */
export const conv2d_filter_grad: Kernel<'conv2d_filter_grad'> = (out, outShape, inputs, p) => {
  const x = input(inputs, 0, 'conv2d_filter_grad');
  const dy = input(inputs, 1, 'conv2d_filter_grad');
  const d = convDims(x.shape, outShape, dy.shape, p, 'conv2d_filter_grad');
  const g = geom(d, p);
  const OHW = d.OH * d.OW;
  const CKK = d.Cg * d.KH * d.KW;
  const HW = d.H * d.W;
  // Images per chunk; several chunks (huge batches only) accumulate in float64.
  const per = Math.max(1, Math.min(d.N, Math.floor(jsTuning.filterGradChunk / Math.max(1, (CKK + d.Og) * OHW))));
  const DW = f64Out(out, false); // the first chunk writes every element
  for (let n0 = 0; n0 < d.N; n0 += per) {
    const nb = Math.min(per, d.N - n0);
    const L = nb * OHW;
    for (let gi = 0; gi < d.G; gi++) {
      const col = scratch(SCOL, CKK * L);
      for (let k = 0; k < nb; k++) im2col(x.data, ((n0 + k) * d.C + gi * d.Cg) * HW, d.Cg, g, col, L, k * OHW);
      let A: Float64Array;
      let aOff: number;
      if (nb === 1 && dy.data instanceof Float64Array) {
        A = dy.data;
        aOff = (n0 * d.O + gi * d.Og) * OHW;
      } else {
        // [Og, nb·OHW]: row o holds dy[n0 .. n0+nb, g·Og + o, :] side by side (in float64).
        A = scratch(SB, d.Og * L);
        aOff = 0;
        for (let o = 0; o < d.Og; o++) {
          for (let k = 0; k < nb; k++) {
            const src = ((n0 + k) * d.O + gi * d.Og + o) * OHW;
            A.set(dy.data.subarray(src, src + OHW), o * L + k * OHW);
          }
        }
      }
      gemmStrided(d.Og, CKK, L, A, aOff, L, 1, col, 0, 1, L, DW, gi * d.Og * CKK, n0 > 0);
    }
  }
  storeBack(out, DW);
};

// ---------------------------------------------------------------------------------------------
// max pooling (the selection rule is linalg_ref.ts's poolArgmax)

let argBuf = new Int32Array(0);

/**
 * For every pooling window, the flat index into key of the element it selects (−1 when the window
 * has no in-bounds element), in output order. The returned array is scratch: read it at once.
 * The selection rule is linalg_ref.ts's poolArgmax; only the common 2×2 stride-2 unpadded pool,
 * where every window is in bounds, is unrolled here (3–5× faster than a call per window).
 */
function windowArgmaxes(K: Buf, NC: number, H: number, W: number, OH: number, OW: number, p: PoolParams): Int32Array {
  const n = NC * OH * OW;
  if (argBuf.length < n) argBuf = new Int32Array(Math.max(n, Math.ceil(argBuf.length * 1.5)));
  const idx = argBuf;
  const [KH, KW] = p.kernel;
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  let o = 0;
  if (KH === 2 && KW === 2 && sh === 2 && sw === 2 && ph === 0 && pw === 0) {
    // poolArgmax unrolled: the four candidates in row-major order, the first as the initial one
    for (let q = 0; q < NC; q++) {
      for (let oh = 0; oh < OH; oh++) {
        const r0 = q * H * W + 2 * oh * W;
        for (let ow = 0; ow < OW; ow++, o++) {
          const i0 = r0 + 2 * ow;
          const i2 = i0 + W;
          let arg = i0;
          let best = K[i0]!;
          let v = K[i0 + 1]!;
          if (v > best || v !== v) {
            best = v;
            arg = i0 + 1;
          }
          v = K[i2]!;
          if (v > best || v !== v) {
            best = v;
            arg = i2;
          }
          v = K[i2 + 1]!;
          if (v > best || v !== v) arg = i2 + 1;
          idx[o] = arg;
        }
      }
    }
    return idx;
  }
  for (let q = 0; q < NC; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, o++) {
        const arg = poolArgmax(K, base, H, W, oh, ow, p.kernel, p.stride, p.padding);
        idx[o] = arg < 0 ? -1 : base + arg;
      }
    }
  }
  return idx;
}

export const maxpool2d: Kernel<'maxpool2d'> = (out, outShape, inputs, p) => {
  const key = input(inputs, 0, 'maxpool2d');
  const val = input(inputs, 1, 'maxpool2d');
  const [NC, H, W, OH, OW] = poolDims(key.shape, outShape, 'maxpool2d');
  const idx = windowArgmaxes(key.data, NC, H, W, OH, OW, p);
  const V = val.data;
  const n = NC * OH * OW;
  for (let o = 0; o < n; o++) {
    const a = idx[o]!;
    out[o] = a < 0 ? 0 : V[a]!;
  }
};

export const maxpool2d_scatter: Kernel<'maxpool2d_scatter'> = (out, outShape, inputs, p) => {
  const key = input(inputs, 0, 'maxpool2d_scatter');
  const dy = input(inputs, 1, 'maxpool2d_scatter');
  const [NC, H, W, OH, OW] = poolDims(outShape, dy.shape, 'maxpool2d_scatter');
  const idx = windowArgmaxes(key.data, NC, H, W, OH, OW, p);
  const DY = dy.data;
  const n = NC * OH * OW;
  // Windows that do not overlap write each input element at most once: no float64 detour.
  const overlap = p.stride[0] < p.kernel[0] || p.stride[1] < p.kernel[1];
  const DX = overlap ? f64Out(out, true) : out;
  for (let o = 0; o < n; o++) {
    const a = idx[o]!;
    if (a >= 0) DX[a] = DX[a]! + DY[o]!;
  }
  if (DX !== out) storeBack(out, DX as Float64Array);
};

/**
 * reduce_sum with float64 accumulation along each innermost run (strided.ts, mode 'sum'): for
 * float32, one rounding per run instead of one per element, which also takes the rounding out of
 * the loop-carried dependency (about 2× faster). Equal to the reference up to rounding.
 */
export const reduce_sum: Kernel<'reduce_sum'> = (out, _s, [a], { axes }) => reduceInto(out, a!, axes, 'sum');

/** The 'js' kernel set: every primitive, the fast paths of this file or else the reference's. */
export const jsKernels: KernelTable = {
  add: reference.add,
  sub: reference.sub,
  mul: reference.mul,
  channel_affine: reference.channel_affine,
  bn_normalize: reference.bn_normalize,
  bn_normalize_jvp: reference.bn_normalize_jvp,
  channel_moments: reference.channel_moments,
  channel_sums: reference.channel_sums,
  bn_affine: reference.bn_affine,
  bn_sums: reference.bn_sums,
  bn_affine_jvp: reference.bn_affine_jvp,
  div: reference.div,
  max: reference.max,
  min: reference.min,
  neg: reference.neg,
  exp: reference.exp,
  log: reference.log,
  log1p: reference.log1p,
  tanh: reference.tanh,
  erf: reference.erf,
  sqrt: reference.sqrt,
  abs: reference.abs,
  mish: reference.mish,
  mish_grad: reference.mish_grad,
  mish_vjp: reference.mish_vjp,
  mish_grad2: reference.mish_grad2,
  pow: reference.pow,
  compare: reference.compare,
  select: reference.select,
  cast: reference.cast,
  stop_gradient: reference.stop_gradient,
  reduce_sum,
  reduce_max: reference.reduce_max,
  reshape: reference.reshape,
  broadcast: reference.broadcast,
  transpose: reference.transpose,
  slice: reference.slice,
  pad: reference.pad,
  concatenate: reference.concatenate,
  matmul,
  conv2d: overwriting(conv2d),
  conv2d_input_grad: overwriting(conv2d_input_grad),
  conv2d_filter_grad: overwriting(conv2d_filter_grad),
  maxpool2d,
  maxpool2d_scatter,
};
