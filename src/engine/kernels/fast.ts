/**
 * Fast kernels for matmul and the conv family, bit-for-bit interchangeable with linalg_ref.ts up
 * to floating-point summation order (the tests hold them to 1e-12 relative in float64).
 *
 * - GEMM: one kernel per storage order, each with a contiguous innermost loop:
 *   NN / TN: i-k-j, two rows of C accumulated at once in float64 scratch rows, k unrolled by 4;
 *   NT: dot products in 2×2 register tiles (1×4 for a leftover row);
 *   TT: the smaller operand is transposed into scratch, then NN-style or NT.
 * - conv2d: im2col (stride, padding, dilation, groups) + NN GEMM per (batch, group), written
 *   straight into the output; 1×1 stride-1 unpadded convs skip im2col.
 * - conv2d_input_grad: TN GEMM (wᵀ · dy) into a column buffer, then col2im.
 * - conv2d_filter_grad: NT GEMM (dy · colᵀ), accumulated over the batch.
 * - maxpool2d / maxpool2d_scatter: the reference rule with the window loop inlined.
 *
 * All arithmetic is in float64 (JS numbers); each output element is rounded to the output dtype
 * once. Scratch memory is a few grow-only module-level Float64Arrays, never handed out.
 */
import type { Buf } from '../dtype.js';
import { sizeOf } from '../shape.js';
import type { Kernel } from './types.js';
import { convDims, dim, input, poolDims, type ConvDims } from './linalg_ref.js';
import { fmtShape } from '../shape.js';

// ---------------------------------------------------------------------------------------------
// scratch

// Scratch slots: two GEMM accumulator rows; a transposed operand; the im2col / col2im column
// buffer; float64 accumulation of a whole output (when the output is float32).
const ROWS = 0, TRANS = 1, COL = 2, ACC = 3;
type Slot = number;
const scratchBufs: Float64Array[] = [new Float64Array(0), new Float64Array(0), new Float64Array(0), new Float64Array(0)];

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

/** Release the scratch memory (for long-lived processes after a large one-off computation). */
export function releaseScratch(): void {
  for (let i = 0; i < scratchBufs.length; i++) scratchBufs[i] = new Float64Array(0);
}

// ---------------------------------------------------------------------------------------------
// GEMM kernels. C[cOff + i·N + j] (+)= Σ_p A(i, p) · B(p, j).

/**
 * i-k-j with A(i, p) = A[aOff + i·ai + p·ap] (NN: ai = K, ap = 1; TN: ai = 1, ap = M) and B
 * row-major [K, N]. Two rows of C accumulate in float64 scratch rows and are stored once.
 */
function gemmRows(
  M: number, N: number, K: number,
  A: Buf, aOff: number, ai: number, ap: number,
  B: Buf, bOff: number,
  C: Buf, cOff: number, accumulate: boolean,
): void {
  const R = scratch(ROWS, 2 * N);
  const K4 = K - (K % 4);
  let i = 0;
  for (; i + 1 < M; i += 2) {
    const c0 = cOff + i * N;
    const c1 = c0 + N;
    if (accumulate) {
      for (let j = 0; j < N; j++) {
        R[j] = C[c0 + j]!;
        R[N + j] = C[c1 + j]!;
      }
    } else {
      R.fill(0, 0, 2 * N);
    }
    const a0 = aOff + i * ai;
    const a1 = a0 + ai;
    let p = 0;
    for (; p < K4; p += 4) {
      const x00 = A[a0 + p * ap]!, x01 = A[a0 + (p + 1) * ap]!, x02 = A[a0 + (p + 2) * ap]!, x03 = A[a0 + (p + 3) * ap]!;
      const x10 = A[a1 + p * ap]!, x11 = A[a1 + (p + 1) * ap]!, x12 = A[a1 + (p + 2) * ap]!, x13 = A[a1 + (p + 3) * ap]!;
      const b0 = bOff + p * N, b1 = b0 + N, b2 = b1 + N, b3 = b2 + N;
      for (let j = 0; j < N; j++) {
        const y0 = B[b0 + j]!, y1 = B[b1 + j]!, y2 = B[b2 + j]!, y3 = B[b3 + j]!;
        R[j] = R[j]! + (x00 * y0 + x01 * y1 + x02 * y2 + x03 * y3);
        R[N + j] = R[N + j]! + (x10 * y0 + x11 * y1 + x12 * y2 + x13 * y3);
      }
    }
    for (; p < K; p++) {
      const x0 = A[a0 + p * ap]!, x1 = A[a1 + p * ap]!;
      const b0 = bOff + p * N;
      for (let j = 0; j < N; j++) {
        const y = B[b0 + j]!;
        R[j] = R[j]! + x0 * y;
        R[N + j] = R[N + j]! + x1 * y;
      }
    }
    for (let j = 0; j < N; j++) {
      C[c0 + j] = R[j]!;
      C[c1 + j] = R[N + j]!;
    }
  }
  if (i < M) {
    const c0 = cOff + i * N;
    if (accumulate) for (let j = 0; j < N; j++) R[j] = C[c0 + j]!;
    else R.fill(0, 0, N);
    const a0 = aOff + i * ai;
    let p = 0;
    for (; p < K4; p += 4) {
      const x0 = A[a0 + p * ap]!, x1 = A[a0 + (p + 1) * ap]!, x2 = A[a0 + (p + 2) * ap]!, x3 = A[a0 + (p + 3) * ap]!;
      const b0 = bOff + p * N, b1 = b0 + N, b2 = b1 + N, b3 = b2 + N;
      for (let j = 0; j < N; j++) {
        R[j] = R[j]! + (x0 * B[b0 + j]! + x1 * B[b1 + j]! + x2 * B[b2 + j]! + x3 * B[b3 + j]!);
      }
    }
    for (; p < K; p++) {
      const x0 = A[a0 + p * ap]!;
      const b0 = bOff + p * N;
      for (let j = 0; j < N; j++) R[j] = R[j]! + x0 * B[b0 + j]!;
    }
    for (let j = 0; j < N; j++) C[c0 + j] = R[j]!;
  }
}

/** Dot products: A row-major [M, K], B row-major [N, K]; 2×2 register tiles. */
function gemmDots(
  M: number, N: number, K: number,
  A: Buf, aOff: number,
  B: Buf, bOff: number,
  C: Buf, cOff: number, accumulate: boolean,
): void {
  let i = 0;
  for (; i + 1 < M; i += 2) {
    const a0 = aOff + i * K;
    const a1 = a0 + K;
    const c0 = cOff + i * N;
    const c1 = c0 + N;
    let j = 0;
    for (; j + 1 < N; j += 2) {
      const b0 = bOff + j * K;
      const b1 = b0 + K;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0;
      for (let p = 0; p < K; p++) {
        const x0 = A[a0 + p]!, x1 = A[a1 + p]!, y0 = B[b0 + p]!, y1 = B[b1 + p]!;
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
      }
      if (accumulate) {
        s00 += C[c0 + j]!;
        s01 += C[c0 + j + 1]!;
        s10 += C[c1 + j]!;
        s11 += C[c1 + j + 1]!;
      }
      C[c0 + j] = s00;
      C[c0 + j + 1] = s01;
      C[c1 + j] = s10;
      C[c1 + j + 1] = s11;
    }
    if (j < N) {
      const b0 = bOff + j * K;
      let s0 = 0, s1 = 0;
      for (let p = 0; p < K; p++) {
        const y = B[b0 + p]!;
        s0 += A[a0 + p]! * y;
        s1 += A[a1 + p]! * y;
      }
      if (accumulate) {
        s0 += C[c0 + j]!;
        s1 += C[c1 + j]!;
      }
      C[c0 + j] = s0;
      C[c1 + j] = s1;
    }
  }
  if (i < M) {
    const a0 = aOff + i * K;
    const c0 = cOff + i * N;
    let j = 0;
    for (; j + 3 < N; j += 4) {
      const b0 = bOff + j * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let p = 0; p < K; p++) {
        const x = A[a0 + p]!;
        s0 += x * B[b0 + p]!;
        s1 += x * B[b1 + p]!;
        s2 += x * B[b2 + p]!;
        s3 += x * B[b3 + p]!;
      }
      if (accumulate) {
        s0 += C[c0 + j]!;
        s1 += C[c0 + j + 1]!;
        s2 += C[c0 + j + 2]!;
        s3 += C[c0 + j + 3]!;
      }
      C[c0 + j] = s0;
      C[c0 + j + 1] = s1;
      C[c0 + j + 2] = s2;
      C[c0 + j + 3] = s3;
    }
    for (; j < N; j++) {
      const b0 = bOff + j * K;
      let s0 = 0, s1 = 0;
      let p = 0;
      for (; p + 1 < K; p += 2) {
        s0 += A[a0 + p]! * B[b0 + p]!;
        s1 += A[a0 + p + 1]! * B[b0 + p + 1]!;
      }
      if (p < K) s0 += A[a0 + p]! * B[b0 + p]!;
      let s = s0 + s1;
      if (accumulate) s += C[c0 + j]!;
      C[c0 + j] = s;
    }
  }
}

/** Copy the R×S row-major matrix at X[xOff] transposed into T[0 .. S·R) (S×R row-major). */
function transposeInto(X: Buf, xOff: number, R: number, S: number, T: Float64Array): void {
  const BS = 32;
  for (let r0 = 0; r0 < R; r0 += BS) {
    const r1 = Math.min(R, r0 + BS);
    for (let s0 = 0; s0 < S; s0 += BS) {
      const s1 = Math.min(S, s0 + BS);
      for (let r = r0; r < r1; r++) {
        const src = xOff + r * S;
        for (let s = s0; s < s1; s++) T[s * R + r] = X[src + s]!;
      }
    }
  }
}

/**
 * C[cOff ..] (+)= op(A) op(B) for one [M, N] output block; op(A) is A stored [M, K] (or [K, M]
 * when transA), op(B) is B stored [K, N] (or [N, K] when transB). With `accumulate`, C must be
 * float64 for the sums to be exact to float64.
 */
export function gemm(
  M: number, N: number, K: number,
  A: Buf, aOff: number, transA: boolean,
  B: Buf, bOff: number, transB: boolean,
  C: Buf, cOff: number, accumulate = false,
): void {
  if (M === 0 || N === 0) return;
  if (K === 0) {
    if (!accumulate) C.fill(0, cOff, cOff + M * N);
    return;
  }
  if (!transB) {
    if (transA) gemmRows(M, N, K, A, aOff, 1, M, B, bOff, C, cOff, accumulate);
    else gemmRows(M, N, K, A, aOff, K, 1, B, bOff, C, cOff, accumulate);
  } else if (!transA) {
    gemmDots(M, N, K, A, aOff, B, bOff, C, cOff, accumulate);
  } else if (M <= N) {
    // Aᵀ·Bᵀ: transpose A ([K, M] → [M, K]) and take dot products with the rows of B.
    const T = scratch(TRANS, M * K);
    transposeInto(A, aOff, K, M, T);
    gemmDots(M, N, K, T, 0, B, bOff, C, cOff, accumulate);
  } else {
    // transpose B ([N, K] → [K, N]) and run i-k-j with A read down its columns.
    const T = scratch(TRANS, N * K);
    transposeInto(B, bOff, N, K, T);
    gemmRows(M, N, K, A, aOff, 1, M, T, 0, C, cOff, accumulate);
  }
}

// ---------------------------------------------------------------------------------------------
// matmul

export const matmul: Kernel<'matmul'> = (out, outShape, inputs, { transA, transB }) => {
  const a = input(inputs, 0, 'matmul');
  const b = input(inputs, 1, 'matmul');
  const r = outShape.length;
  if (r < 2 || a.shape.length !== r || b.shape.length !== r) {
    throw new Error(`matmul: ranks of ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} → ${fmtShape(outShape)} differ`);
  }
  const M = dim(outShape, -2, 'matmul');
  const N = dim(outShape, -1, 'matmul');
  const K = dim(a.shape, transA ? -2 : -1, 'matmul');
  const batch = sizeOf(outShape.slice(0, r - 2));
  for (let t = 0; t < batch; t++) {
    gemm(M, N, K, a.data, t * M * K, transA, b.data, t * K * N, transB, out, t * M * N);
  }
};

// ---------------------------------------------------------------------------------------------
// im2col / col2im

interface Geom {
  readonly H: number; readonly W: number; readonly KH: number; readonly KW: number;
  readonly OH: number; readonly OW: number;
  readonly sh: number; readonly sw: number; readonly ph: number; readonly pw: number;
  readonly dh: number; readonly dw: number;
}

function geom(d: ConvDims, p: { stride: readonly [number, number]; padding: readonly [number, number]; dilation: readonly [number, number] }): Geom {
  return {
    H: d.H, W: d.W, KH: d.KH, KW: d.KW, OH: d.OH, OW: d.OW,
    sh: p.stride[0], sw: p.stride[1], ph: p.padding[0], pw: p.padding[1], dh: p.dilation[0], dw: p.dilation[1],
  };
}

/** The output columns [lo, hi) whose input column ow·s − pad + k·dil lies in [0, W). */
function validRange(W: number, OW: number, s: number, pad: number, kOff: number): [number, number] {
  // iw = ow·s + (kOff − pad) ∈ [0, W)  ⇔  ow ∈ [ceil((pad − kOff)/s), floor((W − 1 + pad − kOff)/s)]
  const shift = pad - kOff;
  const lo = Math.max(0, Math.ceil(shift / s));
  const hi = Math.min(OW, Math.floor((W - 1 + shift) / s) + 1);
  return [lo, Math.max(lo, hi)];
}

/**
 * col[((c·KH + kh)·KW + kw)·OH·OW + oh·OW + ow] = x[c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]
 * (0 outside) for the Cg channel planes starting at X[xOff].
 */
function im2col(X: Buf, xOff: number, Cg: number, g: Geom, col: Float64Array): void {
  const { H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw } = g;
  const OHW = OH * OW;
  let row = 0;
  for (let c = 0; c < Cg; c++) {
    const plane = xOff + c * H * W;
    for (let kh = 0; kh < KH; kh++) {
      const [ohLo, ohHi] = validRange(H, OH, sh, ph, kh * dh);
      for (let kw = 0; kw < KW; kw++, row += OHW) {
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

/** The transpose of im2col: dx[xOff + …] += col[…] over the in-bounds positions. */
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

/** A 1×1 kernel with unit stride and no padding: the im2col matrix is x itself. */
function isPointwise(g: Geom): boolean {
  return g.KH === 1 && g.KW === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0;
}

/** Float64 storage for accumulating a whole output: the output itself if float64, else zeroed scratch. */
function f64Target(out: Buf, slot: Slot): Float64Array {
  return out instanceof Float64Array ? out : scratch(slot, out.length, true);
}

function storeBack(out: Buf, acc: Float64Array): void {
  if (acc !== out) out.set(acc.subarray(0, out.length));
}

// ---------------------------------------------------------------------------------------------
// conv2d family

export const conv2d: Kernel<'conv2d'> = (out, outShape, inputs, p) => {
  const x = input(inputs, 0, 'conv2d');
  const w = input(inputs, 1, 'conv2d');
  const d = convDims(x.shape, w.shape, outShape, p, 'conv2d');
  const g = geom(d, p);
  const OHW = d.OH * d.OW;
  const CKK = d.Cg * d.KH * d.KW;
  const pointwise = isPointwise(g);
  const col = pointwise ? null : scratch(COL, CKK * OHW);
  for (let n = 0; n < d.N; n++) {
    for (let gi = 0; gi < d.G; gi++) {
      const xOff = (n * d.C + gi * d.Cg) * d.H * d.W;
      const yOff = (n * d.O + gi * d.Og) * OHW;
      const wOff = gi * d.Og * CKK;
      if (col === null) {
        gemm(d.Og, OHW, CKK, w.data, wOff, false, x.data, xOff, false, out, yOff);
      } else {
        im2col(x.data, xOff, d.Cg, g, col);
        gemm(d.Og, OHW, CKK, w.data, wOff, false, col, 0, false, out, yOff);
      }
    }
  }
};

export const conv2d_input_grad: Kernel<'conv2d_input_grad'> = (out, outShape, inputs, p) => {
  const dy = input(inputs, 0, 'conv2d_input_grad');
  const w = input(inputs, 1, 'conv2d_input_grad');
  const d = convDims(outShape, w.shape, dy.shape, p, 'conv2d_input_grad');
  const g = geom(d, p);
  const OHW = d.OH * d.OW;
  const CKK = d.Cg * d.KH * d.KW;
  if (isPointwise(g)) {
    // dx_g [Cg, HW] = w_gᵀ [Cg, Og] · dy_g [Og, HW]
    for (let n = 0; n < d.N; n++) {
      for (let gi = 0; gi < d.G; gi++) {
        const dyOff = (n * d.O + gi * d.Og) * OHW;
        const xOff = (n * d.C + gi * d.Cg) * d.H * d.W;
        gemm(d.Cg, OHW, d.Og, w.data, gi * d.Og * CKK, true, dy.data, dyOff, false, out, xOff);
      }
    }
    return;
  }
  const col = scratch(COL, CKK * OHW);
  const DX = f64Target(out, ACC);
  for (let n = 0; n < d.N; n++) {
    for (let gi = 0; gi < d.G; gi++) {
      const dyOff = (n * d.O + gi * d.Og) * OHW;
      // col [CKK, OHW] = w_gᵀ · dy_g, then scatter the columns back onto the input grid.
      gemm(CKK, OHW, d.Og, w.data, gi * d.Og * CKK, true, dy.data, dyOff, false, col, 0);
      col2im(col, d.Cg, g, DX, (n * d.C + gi * d.Cg) * d.H * d.W);
    }
  }
  storeBack(out, DX);
};

export const conv2d_filter_grad: Kernel<'conv2d_filter_grad'> = (out, outShape, inputs, p) => {
  const x = input(inputs, 0, 'conv2d_filter_grad');
  const dy = input(inputs, 1, 'conv2d_filter_grad');
  const d = convDims(x.shape, outShape, dy.shape, p, 'conv2d_filter_grad');
  const g = geom(d, p);
  const OHW = d.OH * d.OW;
  const CKK = d.Cg * d.KH * d.KW;
  const pointwise = isPointwise(g);
  const col = pointwise ? null : scratch(COL, CKK * OHW);
  // One batch element: store straight into `out`; several: accumulate in float64.
  const DW: Buf = d.N === 1 ? out : f64Target(out, ACC);
  for (let n = 0; n < d.N; n++) {
    for (let gi = 0; gi < d.G; gi++) {
      const xOff = (n * d.C + gi * d.Cg) * d.H * d.W;
      const dyOff = (n * d.O + gi * d.Og) * OHW;
      const wOff = gi * d.Og * CKK;
      // dw_g [Og, CKK] += dy_g [Og, OHW] · colᵀ, col [CKK, OHW]
      if (col === null) {
        gemm(d.Og, CKK, OHW, dy.data, dyOff, false, x.data, xOff, true, DW, wOff, n > 0);
      } else {
        im2col(x.data, xOff, d.Cg, g, col);
        gemm(d.Og, CKK, OHW, dy.data, dyOff, false, col, 0, true, DW, wOff, n > 0);
      }
    }
  }
  if (DW !== out) storeBack(out, DW as Float64Array);
};

// ---------------------------------------------------------------------------------------------
// max pooling (same selection rule as linalg_ref.ts: strict >, NaN replaces, first in-bounds
// element as the initial candidate)

export const maxpool2d: Kernel<'maxpool2d'> = (out, outShape, inputs, p) => {
  const key = input(inputs, 0, 'maxpool2d');
  const val = input(inputs, 1, 'maxpool2d');
  const [NC, H, W, OH, OW] = poolDims(key.shape, outShape, 'maxpool2d');
  const K = key.data;
  const V = val.data;
  const [KH, KW] = p.kernel;
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  for (let q = 0; q < NC; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = Math.max(0, oh * sh - ph);
      const ih1 = Math.min(H, oh * sh - ph + KH);
      const o = (q * OH + oh) * OW;
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = Math.max(0, ow * sw - pw);
        const iw1 = Math.min(W, ow * sw - pw + KW);
        if (ih0 >= ih1 || iw0 >= iw1) {
          out[o + ow] = 0;
          continue;
        }
        let arg = base + ih0 * W + iw0;
        let best = -Infinity;
        for (let ih = ih0; ih < ih1; ih++) {
          const r = base + ih * W;
          for (let iw = iw0; iw < iw1; iw++) {
            const v = K[r + iw]!;
            if (v > best || v !== v) {
              best = v;
              arg = r + iw;
            }
          }
        }
        out[o + ow] = V[arg]!;
      }
    }
  }
};

export const maxpool2d_scatter: Kernel<'maxpool2d_scatter'> = (out, outShape, inputs, p) => {
  const key = input(inputs, 0, 'maxpool2d_scatter');
  const dy = input(inputs, 1, 'maxpool2d_scatter');
  const [NC, H, W, OH, OW] = poolDims(outShape, dy.shape, 'maxpool2d_scatter');
  const K = key.data;
  const DY = dy.data;
  const [KH, KW] = p.kernel;
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  // Non-overlapping windows write each input element at most once: no float64 detour needed.
  const overlap = sh < KH || sw < KW;
  const DX = overlap ? f64Target(out, ACC) : out;
  for (let q = 0; q < NC; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = Math.max(0, oh * sh - ph);
      const ih1 = Math.min(H, oh * sh - ph + KH);
      const o = (q * OH + oh) * OW;
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = Math.max(0, ow * sw - pw);
        const iw1 = Math.min(W, ow * sw - pw + KW);
        if (ih0 >= ih1 || iw0 >= iw1) continue;
        let arg = base + ih0 * W + iw0;
        let best = -Infinity;
        for (let ih = ih0; ih < ih1; ih++) {
          const r = base + ih * W;
          for (let iw = iw0; iw < iw1; iw++) {
            const v = K[r + iw]!;
            if (v > best || v !== v) {
              best = v;
              arg = r + iw;
            }
          }
        }
        DX[arg] = DX[arg]! + DY[o + ow]!;
      }
    }
  }
  if (DX !== out) storeBack(out, DX as Float64Array);
};

export const linalgFast = {
  matmul,
  conv2d,
  conv2d_input_grad,
  conv2d_filter_grad,
  maxpool2d,
  maxpool2d_scatter,
} as const;
