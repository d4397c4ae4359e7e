/**
 * The conv family in WebAssembly SIMD: im2col / col2im around the GEMMs of gemm.as.ts, as in
 * the JS tier (js.ts). The geometry of a call is set first by setGeom (module globals).
 */
import { ceilDiv, floorDiv, max32, min32 } from './common.as';
import { gemmAxpy, gemmDot, packRows, tile4x2, transpose } from './gemm.as';

// ---------------------------------------------------------------------------------------------
// conv geometry (set once per call by setGeom, read by the conv kernels)

let gH: i32 = 0, gW: i32 = 0, gKH: i32 = 0, gKW: i32 = 0, gOH: i32 = 0, gOW: i32 = 0;
let gSH: i32 = 1, gSW: i32 = 1, gPH: i32 = 0, gPW: i32 = 0, gDH: i32 = 1, gDW: i32 = 1;

export function setGeom(H: i32, W: i32, KH: i32, KW: i32, OH: i32, OW: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32): void {
  gH = H; gW = W; gKH = KH; gKW = KW; gOH = OH; gOW = OW;
  gSH = sh; gSW = sw; gPH = ph; gPW = pw; gDH = dh; gDW = dw;
}

/** A 1×1 kernel with unit stride and no padding: the im2col matrix of an image is x itself. */
@inline function pointwise(): bool {
  return gKH == 1 && gKW == 1 && gSH == 1 && gSW == 1 && gPH == 0 && gPW == 0;
}

/** The output positions [lo, hi) ⊆ [0, OUT) whose input o·s − pad + kOff lies in [0, IN) (lo ≤ hi). */
@inline function validLo(OUT: i32, s: i32, pad: i32, kOff: i32): i32 {
  return min32(OUT, max32(0, ceilDiv(pad - kOff, s)));
}

@inline function validHi(IN: i32, OUT: i32, s: i32, pad: i32, kOff: i32, lo: i32): i32 {
  return max32(lo, min32(OUT, floorDiv(IN - 1 + pad - kOff, s) + 1));
}

/** Copies n elements (n ≥ 0) from src to dst, vectors first. */
@inline function copyRow<T>(dst: usize, src: usize, n: i32): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  let k = 0;
  for (; k + L <= n; k += L) v128.store(dst + <usize>k * sz, v128.load(src + <usize>k * sz));
  for (; k < n; k++) store<T>(dst + <usize>k * sz, load<T>(src + <usize>k * sz));
}

/**
 * col[((c·KH + kh)·KW + kw)·ld + oh·OW + ow] = x[c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]
 * (0 outside x) for the Cg channel planes at X; ld ≥ OH·OW is the row length of col.
 */
function im2col<T>(X: usize, Cg: i32, col: usize, ld: i32): void {
  const sz: usize = sizeof<T>();
  const H = gH, W = gW, KH = gKH, KW = gKW, OH = gOH, OW = gOW;
  const sh = gSH, sw = gSW, ph = gPH, pw = gPW, dh = gDH, dw = gDW;
  const OHW = OH * OW;
  let row = col;
  const ldB: usize = <usize>ld * sz;
  for (let c = 0; c < Cg; c++) {
    const plane = X + <usize>(c * H * W) * sz;
    for (let kh = 0; kh < KH; kh++) {
      const ohLo = validLo(OH, sh, ph, kh * dh);
      const ohHi = validHi(H, OH, sh, ph, kh * dh, ohLo);
      for (let kw = 0; kw < KW; kw++) {
        const owLo = validLo(OW, sw, pw, kw * dw);
        const owHi = validHi(W, OW, sw, pw, kw * dw, owLo);
        if (ohLo > 0) memory.fill(row, 0, <usize>(ohLo * OW) * sz);
        if (ohHi < OH) memory.fill(row + <usize>(ohHi * OW) * sz, 0, <usize>((OH - ohHi) * OW) * sz);
        if (sh == 1 && sw == 1 && OW == W) {
          // "same" geometry: the rows ohLo…ohHi−1 are one shifted run of the plane; copy it from
          // its first to its last in-bounds element, then zero the edge columns (which took
          // wrapped-around neighbours or were not written)
          if (ohLo < ohHi && owLo < owHi) {
            const shift = (kh * dh - ph) * W + kw * dw - pw;
            const t0 = ohLo * W + owLo, t1 = (ohHi - 1) * W + owHi;
            copyRow<T>(row + <usize>t0 * sz, plane + <usize>(t0 + shift) * sz, t1 - t0);
            for (let oh = ohLo; oh < ohHi; oh++) {
              const dst = row + <usize>(oh * OW) * sz;
              for (let ow = 0; ow < owLo; ow++) store<T>(dst + <usize>ow * sz, <T>0);
              for (let ow = owHi; ow < OW; ow++) store<T>(dst + <usize>ow * sz, <T>0);
            }
          } else if (ohLo < ohHi) {
            memory.fill(row + <usize>(ohLo * OW) * sz, 0, <usize>((ohHi - ohLo) * OW) * sz);
          }
          row += ldB;
          continue;
        }
        for (let oh = ohLo; oh < ohHi; oh++) {
          const dst = row + <usize>(oh * OW) * sz;
          for (let ow = 0; ow < owLo; ow++) store<T>(dst + <usize>ow * sz, <T>0);
          // the input element of ow = 0 (possibly outside the row: only in-range ow are read)
          const src = plane + <usize>((oh * sh - ph + kh * dh) * W - pw + kw * dw) * sz;
          if (sw == 1) {
            copyRow<T>(dst + <usize>owLo * sz, src + <usize>owLo * sz, owHi - owLo);
          } else {
            for (let ow = owLo; ow < owHi; ow++) store<T>(dst + <usize>ow * sz, load<T>(src + <usize>(ow * sw) * sz));
          }
          for (let ow = owHi; ow < OW; ow++) store<T>(dst + <usize>ow * sz, <T>0);
        }
        row += ldB;
      }
    }
  }
}

/**
 * The transpose of im2col for one image (its rows of OH·OW elements ld apart: OH·OW, or more when
 * several images' columns sit side by side): DX[…] += col[…] at the in-bounds positions.
 * col is scratch: in the "same" geometry its out-of-bounds entries are overwritten with 0.
 */
function col2im<T>(col: usize, Cg: i32, DX: usize, ld: i32): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  const H = gH, W = gW, KH = gKH, KW = gKW, OH = gOH, OW = gOW;
  const sh = gSH, sw = gSW, ph = gPH, pw = gPW, dh = gDH, dw = gDW;
  const OHW = OH * OW;
  let row = col;
  for (let c = 0; c < Cg; c++) {
    const plane = DX + <usize>(c * H * W) * sz;
    for (let kh = 0; kh < KH; kh++) {
      const ohLo = validLo(OH, sh, ph, kh * dh);
      const ohHi = validHi(H, OH, sh, ph, kh * dh, ohLo);
      for (let kw = 0; kw < KW; kw++) {
        const owLo = validLo(OW, sw, pw, kw * dw);
        const owHi = validHi(W, OW, sw, pw, kw * dw, owLo);
        if (sh == 1 && sw == 1 && OW == W) {
          // "same" geometry (as in im2col): zero the edge columns of col (they would land on
          // wrapped-around neighbours), then add one shifted run; dx starts at +0, so it is
          // never −0 and adding +0 changes nothing
          if (ohLo < ohHi && owLo < owHi) {
            for (let oh = ohLo; oh < ohHi; oh++) {
              const r = row + <usize>(oh * OW) * sz;
              for (let ow = 0; ow < owLo; ow++) store<T>(r + <usize>ow * sz, <T>0);
              for (let ow = owHi; ow < OW; ow++) store<T>(r + <usize>ow * sz, <T>0);
            }
            const shift = (kh * dh - ph) * W + kw * dw - pw;
            const t0 = ohLo * W + owLo, t1 = (ohHi - 1) * W + owHi;
            const s = row + <usize>t0 * sz;
            const d0 = plane + <usize>(t0 + shift) * sz;
            const n = t1 - t0;
            let k = 0;
            for (; k + L <= n; k += L) {
              const d = d0 + <usize>k * sz;
              v128.store(d, v128.add<T>(v128.load(d), v128.load(s + <usize>k * sz)));
            }
            for (; k < n; k++) {
              const d = d0 + <usize>k * sz;
              store<T>(d, load<T>(d) + load<T>(s + <usize>k * sz));
            }
          }
          row += <usize>ld * sz;
          continue;
        }
        for (let oh = ohLo; oh < ohHi; oh++) {
          const s = row + <usize>(oh * OW) * sz;
          const dst = plane + <usize>((oh * sh - ph + kh * dh) * W - pw + kw * dw) * sz;
          if (sw == 1) {
            let ow = owLo;
            for (; ow + L <= owHi; ow += L) {
              const d = dst + <usize>ow * sz;
              v128.store(d, v128.add<T>(v128.load(d), v128.load(s + <usize>ow * sz)));
            }
            for (; ow < owHi; ow++) {
              const d = dst + <usize>ow * sz;
              store<T>(d, load<T>(d) + load<T>(s + <usize>ow * sz));
            }
          } else {
            for (let ow = owLo; ow < owHi; ow++) {
              const d = dst + <usize>(ow * sw) * sz;
              store<T>(d, load<T>(d) + load<T>(s + <usize>ow * sz));
            }
          }
        }
        row += <usize>ld * sz;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// conv family (geometry from setGeom; x [N, C, H, W], w [O, C/G, KH, KW], y [N, O, OH, OW])
//
// Each kernel computes a part of its output, so that threads can share a call (partitioned over
// output elements only: every output element is computed by one thread, in the same order as
// by a single thread): the units u = n·G + g ∈ [u0, u1) (image n, group g) and, within each, a
// range of output channels (conv2d), input channels (the input gradient), or output and input
// channels (the filter gradient, whose reduction over the images stays whole in every part).

/**
 * y_g[n] [Og, OHW] = w_g [Og, CKK] · col(x_g[n]) [CKK, OHW] for the units [u0, u1) and the rows
 * (output channels of the group) [o0, o1); col holds CKK·OHW elements.
 */
function conv2d<T>(X: usize, Wt: usize, Y: usize, col: usize, N: i32, C: i32, O: i32, G: i32, u0: i32, u1: i32, o0: i32, o1: i32): void {
  const sz: usize = sizeof<T>();
  const Cg = C / G, Og = O / G;
  const HW = gH * gW, OHW = gOH * gOW, CKK = Cg * gKH * gKW;
  const pw = pointwise();
  if (o1 <= o0) return;
  for (let u = u0; u < u1; u++) {
    const n = u / G, g = u % G;
    const x = X + <usize>((n * C + g * Cg) * HW) * sz;
    const y = Y + <usize>((n * O + g * Og + o0) * OHW) * sz;
    const w = Wt + <usize>((g * Og + o0) * CKK) * sz;
    if (pw) {
      gemmAxpy<T>(o1 - o0, OHW, CKK, w, CKK, 1, x, OHW, y, OHW, false);
    } else {
      im2col<T>(x, Cg, col, OHW);
      gemmAxpy<T>(o1 - o0, OHW, CKK, w, CKK, 1, col, OHW, y, OHW, false);
    }
  }
}

/**
 * For the units [u0, u1) and the input channels [c0, c1) of the group: col [(c1−c0)·KK, OHW] =
 * (rows of w_gᵀ) · dy_g[n], then col2im onto those channel planes of dx (zeroed first); col
 * holds (c1 − c0)·KH·KW·OHW elements.
 */
function conv2dInputGrad<T>(
  DY: usize, Wt: usize, DX: usize, col: usize, N: i32, C: i32, O: i32, G: i32, u0: i32, u1: i32, c0: i32, c1: i32, per: i32,
): void {
  const sz: usize = sizeof<T>();
  const Cg = C / G, Og = O / G;
  const KK = gKH * gKW;
  const HW = gH * gW, OHW = gOH * gOW, CKK = Cg * KK;
  const pw = pointwise();
  const cc = c1 - c0;
  if (cc <= 0) return;
  if (per > 0) {
    conv2dInputGradBatched<T>(DY, Wt, DX, col, N, C, O, c0, c1, per);
    return;
  }
  for (let u = u0; u < u1; u++) {
    const n = u / G, g = u % G;
    const dy = DY + <usize>((n * O + g * Og) * OHW) * sz;
    const dx = DX + <usize>((n * C + g * Cg + c0) * HW) * sz;
    const w = Wt + <usize>(g * Og * CKK + c0 * KK) * sz;
    if (pw) {
      // dx_g [cc, HW] = (rows c0… of w_gᵀ) [cc, Og] · dy_g [Og, HW]
      gemmAxpy<T>(cc, OHW, Og, w, 1, CKK, dy, OHW, dx, OHW, false);
    } else {
      memory.fill(dx, 0, <usize>(cc * HW) * sz);
      gemmAxpy<T>(cc * KK, OHW, Og, w, 1, CKK, dy, OHW, col, OHW, false);
      col2im<T>(col, cc, dx, OHW);
    }
  }
}

/**
 * conv2dInputGrad for one group (G = 1) and the images in chunks of `per` (chunk k: images
 * k·per…, whatever the parts; the parts split the channels, with c0·KK a multiple of 4): dy of a
 * chunk gathered into dyb [O, nb·OHW] (after col), then col [cc·KK, nb·OHW] = (rows c0·KK… of wᵀ)
 * · dyb by gemmAxpy in chunks of rows that it packs (every row on the same path whatever the
 * parts), then each image's col2im from its columns. For small outputs, where one GEMM per image
 * has too few columns and reads all of w, transposed, for each image. col holds
 * cc·KK·per·OHW elements, then O·per·OHW.
 */
function conv2dInputGradBatched<T>(DY: usize, Wt: usize, DX: usize, col: usize, N: i32, C: i32, O: i32, c0: i32, c1: i32, per: i32): void {
  const sz: usize = sizeof<T>();
  const KK = gKH * gKW;
  const HW = gH * gW, OHW = gOH * gOW, CKK = C * KK;
  const cc = c1 - c0;
  const M = cc * KK;
  const dyb = col + <usize>(M * per * OHW) * sz;
  const w = Wt + <usize>(c0 * KK) * sz;
  const rows = packRows<T>(O); // (chunks from c0·KK, a multiple of 4)
  for (let n0 = 0; n0 < N; n0 += per) {
    const nb = min32(per, N - n0);
    const ld = nb * OHW;
    for (let k = 0; k < nb; k++) {
      for (let o = 0; o < O; o++) {
        memory.copy(dyb + <usize>(o * ld + k * OHW) * sz, DY + <usize>(((n0 + k) * O + o) * OHW) * sz, <usize>OHW * sz);
      }
    }
    for (let r = 0; r < M; r += rows) {
      gemmAxpy<T>(min32(rows, M - r), ld, O, w + <usize>r * sz, 1, CKK, dyb, ld, col + <usize>(r * ld) * sz, ld, false);
    }
    for (let k = 0; k < nb; k++) {
      const dx = DX + <usize>(((n0 + k) * C + c0) * HW) * sz;
      memory.fill(dx, 0, <usize>(cc * HW) * sz);
      col2im<T>(col + <usize>(k * OHW) * sz, cc, dx, ld);
    }
  }
}

/**
 * dw_g [Og, CKK] = Σ_n dy_g[n] [Og, OHW] · col(x_g[n])ᵀ, as dot-form GEMMs over the images of
 * a chunk laid side by side (L = nb·OHW), for the groups [g0, g1), the output channels
 * [o0, o1) and the input channels [c0, c1) of each group (their columns c·KK… of dw): col holds
 * (c1 − c0)·KK·per·OHW elements, dyg (o1 − o0)·per·OHW (used when per > 1). Chunks after the
 * first accumulate. (The dot form pairs rows and groups columns by 4: o0 is even and c0·KK a
 * multiple of 4 for the results to match a single call's bit for bit.)
 */
function conv2dFilterGrad<T>(
  X: usize, DY: usize, DW: usize, col: usize, dyg: usize, N: i32, C: i32, O: i32, G: i32, per: i32,
  g0: i32, g1: i32, o0: i32, o1: i32, c0: i32, c1: i32,
): void {
  const sz: usize = sizeof<T>();
  const Cg = C / G, Og = O / G;
  const KK = gKH * gKW;
  const HW = gH * gW, OHW = gOH * gOW, CKK = Cg * KK;
  const pw = pointwise();
  const oo = o1 - o0, cc = c1 - c0;
  if (oo <= 0 || cc <= 0) return;
  for (let n0 = 0; n0 < N; n0 += per) {
    const nb = min32(per, N - n0);
    const L = nb * OHW;
    for (let g = g0; g < g1; g++) {
      const dw = DW + <usize>((g * Og + o0) * CKK + c0 * KK) * sz;
      let a: usize;
      let b: usize;
      if (nb == 1) {
        a = DY + <usize>((n0 * O + g * Og + o0) * OHW) * sz;
        const x = X + <usize>((n0 * C + g * Cg + c0) * HW) * sz;
        if (pw) {
          b = x;
        } else {
          im2col<T>(x, cc, col, L);
          b = col;
        }
      } else {
        for (let k = 0; k < nb; k++) {
          im2col<T>(X + <usize>(((n0 + k) * C + g * Cg + c0) * HW) * sz, cc, col + <usize>(k * OHW) * sz, L);
          for (let o = 0; o < oo; o++) {
            memory.copy(dyg + <usize>(o * L + k * OHW) * sz, DY + <usize>((((n0 + k) * O + g * Og + o0 + o) * OHW)) * sz, <usize>OHW * sz);
          }
        }
        a = dyg;
        b = col;
      }
      if (per * OHW <= SMALL_L) {
        // a short sum (one image of a few positions, as in a per-example bracket): dw [oo, cc·KK]
        // += a [oo, L] · bᵀ as an axpy-form GEMM over bᵀ [L, cc·KK] (transposed after b), instead
        // of cc·KK·oo dot products of L terms each
        const bt = b == col ? col + <usize>(cc * KK * L) * sz : col;
        transpose<T>(b, cc * KK, L, bt);
        gemmAxpy<T>(oo, cc * KK, L, a, L, 1, bt, cc * KK, dw, CKK, n0 > 0);
      } else {
        gemmDot<T>(oo, cc * KK, L, a, L, b, L, dw, CKK, n0 > 0);
      }
    }
  }
}

/**
 * The filter gradient's sums of at most this many terms (images × positions of a full chunk) take
 * the axpy form (conv2dFilterGrad; col then holds 2·(c1 − c0)·KK·per·OHW elements: wasm.ts).
 */
const SMALL_L: i32 = 16;

export function conv2d_f32(X: usize, Wt: usize, Y: usize, col: usize, N: i32, C: i32, O: i32, G: i32, u0: i32, u1: i32, o0: i32, o1: i32): void {
  conv2d<f32>(X, Wt, Y, col, N, C, O, G, u0, u1, o0, o1);
}

export function conv2d_f64(X: usize, Wt: usize, Y: usize, col: usize, N: i32, C: i32, O: i32, G: i32, u0: i32, u1: i32, o0: i32, o1: i32): void {
  conv2d<f64>(X, Wt, Y, col, N, C, O, G, u0, u1, o0, o1);
}

export function conv2d_input_grad_f32(
  DY: usize, Wt: usize, DX: usize, col: usize, N: i32, C: i32, O: i32, G: i32, u0: i32, u1: i32, c0: i32, c1: i32, per: i32,
): void {
  conv2dInputGrad<f32>(DY, Wt, DX, col, N, C, O, G, u0, u1, c0, c1, per);
}

export function conv2d_input_grad_f64(
  DY: usize, Wt: usize, DX: usize, col: usize, N: i32, C: i32, O: i32, G: i32, u0: i32, u1: i32, c0: i32, c1: i32, per: i32,
): void {
  conv2dInputGrad<f64>(DY, Wt, DX, col, N, C, O, G, u0, u1, c0, c1, per);
}

export function conv2d_filter_grad_f32(
  X: usize, DY: usize, DW: usize, col: usize, dyg: usize, N: i32, C: i32, O: i32, G: i32, per: i32,
  g0: i32, g1: i32, o0: i32, o1: i32, c0: i32, c1: i32,
): void {
  conv2dFilterGrad<f32>(X, DY, DW, col, dyg, N, C, O, G, per, g0, g1, o0, o1, c0, c1);
}

export function conv2d_filter_grad_f64(
  X: usize, DY: usize, DW: usize, col: usize, dyg: usize, N: i32, C: i32, O: i32, G: i32, per: i32,
  g0: i32, g1: i32, o0: i32, o1: i32, c0: i32, c1: i32,
): void {
  conv2dFilterGrad<f64>(X, DY, DW, col, dyg, N, C, O, G, per, g0, g1, o0, o1, c0, c1);
}

// ---------------------------------------------------------------------------------------------
// Implicit GEMM (groups 1, OH·OW a multiple of the lane count L): y [Cout, (n, q)] = A [Cout, K] ·
// X̃ [K, (n, q)] with K = Cin·KH·KW, where X̃ is the im2col matrix of all the images side by side,
// never formed: each panel of 2L columns (two vectors, each within one image, as L divides OH·OW)
// and up to KC rows is gathered from x into an L1-sized buffer, then every 4-row block of the
// packed A (the weights, packed once per call into 4-row blocks) passes over it with 4 × 2L
// register tiles. Rows of K are taken in blocks of whole channels (KC = channels·KH·KW ≤ KC_MAX):
// each output element is the sum over the blocks, in order, of its in-register block sums, the
// same for any partition of the columns and rows (threads), so results do not depend on the
// thread count.
//
// The input gradient of a stride-1, dilation-1 convolution is the convolution of dy with the
// flipped, transposed weights (`flip`: A row c, column (o, kh, kw) = w[o, c, KH−1−kh, KW−1−kw]),
// padding KH−1−ph: the JS side sets that geometry (setGeom with dy's dims as the input) and
// calls the same kernel.

/** Rows of K per packed B panel (at most): the panel (KC_MAX × 32 bytes = 16 KiB) stays in L1. */
const KC_MAX: i32 = 512;

/**
 * AP[(i/4)·4K + k·4 + i%4] = A[o0 + i, k] for i < ⌈(o1−o0)/4⌉·4 (rows past o1: 0), A the weights
 * as a [Cout, K] matrix (flip = false: w [Cout, Cin, KH, KW]) or the flipped transpose
 * (flip = true: w [Cin, Cout, KH, KW], A[o, (c, kh, kw)] = w[c, o, KH−1−kh, KW−1−kw]).
 */
function packA<T>(Wt: usize, Cin: i32, Cout: i32, flip: bool, o0: i32, o1: i32, AP: usize): void {
  const sz: usize = sizeof<T>();
  const KH = gKH, KW = gKW, KK = KH * KW, K = Cin * KK;
  const M4 = (o1 - o0 + 3) & ~3;
  for (let i = 0; i < M4; i++) {
    const o = o0 + i;
    let dst = AP + (<usize>(i >> 2) * <usize>(4 * K) + <usize>(i & 3)) * sz;
    if (o >= o1) {
      for (let k = 0; k < K; k++) {
        store<T>(dst, <T>0);
        dst += 4 * sz;
      }
    } else if (!flip) {
      const src = Wt + <usize>o * <usize>K * sz;
      for (let k = 0; k < K; k++) {
        store<T>(dst, load<T>(src + <usize>k * sz));
        dst += 4 * sz;
      }
    } else {
      for (let c = 0; c < Cin; c++) {
        const src = Wt + <usize>((c * Cout + o) * KK + KK - 1) * sz;
        for (let t = 0; t < KK; t++) {
          store<T>(dst, load<T>(src - <usize>t * sz));
          dst += 4 * sz;
        }
      }
    }
  }
}

// per panel vector (v = 0, 1): the image's first plane (byte address), the first input row and
// column of its first lane, whether its L lanes lie in one output row; and per lane (for the
// vectors that do not): the first input row and column
let pvX0: usize = 0, pvX1: usize = 0;
let pvH0: i32 = 0, pvH1: i32 = 0, pvW0: i32 = 0, pvW1: i32 = 0;
let pvRow0: bool = false, pvRow1: bool = false;
// (in the part's own scratch, after its panel: the memory is shared by the threads' instances)
let LANE_IH: usize = 0, LANE_IW: usize = 0;

/** Sets the panel state of vector v for its first column j (of the N·OH·OW columns). */
@inline function panelVector<T>(v: i32, X: usize, Cin: i32, j: i32): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  const OW = gOW, OHW = gOH * gOW;
  const n = j / OHW, q = j - n * OHW;
  const oh = q / OW, ow = q - oh * OW;
  const xb = X + <usize>n * <usize>(Cin * gH * gW) * sz;
  const ih = oh * gSH - gPH, iw = ow * gSW - gPW;
  const row = ow + L <= OW;
  for (let l = 0; l < L; l++) {
    const ql = q + l;
    const ohl = ql / OW, owl = ql - ohl * OW;
    store<i32>(LANE_IH + <usize>((v * L + l) << 2), ohl * gSH - gPH);
    store<i32>(LANE_IW + <usize>((v * L + l) << 2), owl * gSW - gPW);
  }
  if (v == 0) {
    pvX0 = xb; pvH0 = ih; pvW0 = iw; pvRow0 = row;
  } else {
    pvX1 = xb; pvH1 = ih; pvW1 = iw; pvRow1 = row;
  }
}

/** The L values of vector v's columns for input channel plane `plane` (byte offset) and tap (kh, kw), stored at dst. */
@inline function gatherVector<T>(v: i32, plane: usize, kh: i32, kw: i32, dst: usize): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  const H = gH, W = gW, sw = gSW;
  const xb = (v == 0 ? pvX0 : pvX1) + plane;
  if (v == 0 ? pvRow0 : pvRow1) {
    const ih = (v == 0 ? pvH0 : pvH1) + kh * gDH;
    if (<u32>ih >= <u32>H) {
      v128.store(dst, v128.splat<i32>(0));
      return;
    }
    const iw = (v == 0 ? pvW0 : pvW1) + kw * gDW;
    const src = xb + <usize>(ih * W) * sz;
    if (sw == 1 && iw >= 0 && iw + L <= W) {
      v128.store(dst, v128.load(src + <usize>iw * sz));
      return;
    }
    for (let l = 0; l < L; l++) {
      const c = iw + l * sw;
      store<T>(dst + <usize>l * sz, <u32>c < <u32>W ? load<T>(src + <usize>c * sz) : <T>0);
    }
    return;
  }
  for (let l = 0; l < L; l++) {
    const ih = load<i32>(LANE_IH + <usize>((v * L + l) << 2)) + kh * gDH;
    const iw = load<i32>(LANE_IW + <usize>((v * L + l) << 2)) + kw * gDW;
    store<T>(dst + <usize>l * sz, <u32>ih < <u32>H && <u32>iw < <u32>W ? load<T>(xb + <usize>(ih * W + iw) * sz) : <T>0);
  }
}

/**
 * The implicit-GEMM convolution for the columns [j0, j1) (multiples of L; inner bounds multiples
 * of 2L) and the output channels [o0, o1) (inner bounds multiples of 4); AP holds the weights as
 * packA packed all Cout rows (once per call, shared by the parts), BP KC_MAX·32 + 64 bytes.
 */
function convImplicit<T>(
  X: usize, AP: usize, Y: usize, BP: usize, Cin: i32, Cout: i32, j0: i32, j1: i32, o0: i32, o1: i32,
): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  const KH = gKH, KW = gKW, KK = KH * KW, K = Cin * KK;
  const HW: usize = <usize>(gH * gW) * sz;
  const OHW = gOH * gOW;
  const ldcB: usize = <usize>OHW * sz;
  const rowsAll = o1 - o0;
  if (rowsAll <= 0 || j1 <= j0) return;
  LANE_IH = BP + <usize>KC_MAX * 32;
  LANE_IW = LANE_IH + 32;
  const cb = max32(1, KC_MAX / KK);
  const unit = gSW == 1;
  const blkA: usize = <usize>(4 * K) * sz;
  for (let j = j0; j < j1; j += 2 * L) {
    const two = j + L < j1;
    panelVector<T>(0, X, Cin, j);
    if (two) panelVector<T>(1, X, Cin, j + L);
    const wide = two && pvRow0 && pvRow1 && pvX0 == pvX1 && pvH0 == pvH1 && pvW1 == pvW0 + L * gSW;
    // output addresses of the two vectors at row o0
    const n0 = j / OHW, q0 = j - n0 * OHW;
    const y0 = Y + (<usize>(n0 * Cout + o0) * <usize>OHW + <usize>q0) * sz;
    const n1 = (j + L) / OHW, q1 = j + L - n1 * OHW;
    const y1 = Y + (<usize>(n1 * Cout + o0) * <usize>OHW + <usize>q1) * sz;
    for (let c0 = 0; c0 < Cin; c0 += cb) {
      const c1 = min32(Cin, c0 + cb);
      // gather the panel: rows (c, kh, kw) for c ∈ [c0, c1)
      let d = BP;
      if (wide) {
        // both vectors in one output row, side by side: 2L input elements per tap
        for (let c = c0; c < c1; c++) {
          const plane = pvX0 + <usize>c * HW;
          for (let kh = 0; kh < KH; kh++) {
            const ih = pvH0 + kh * gDH;
            if (<u32>ih >= <u32>gH) {
              for (let kw = 0; kw < KW; kw++) {
                v128.store(d, v128.splat<i32>(0));
                v128.store(d, v128.splat<i32>(0), 16);
                d += 32;
              }
              continue;
            }
            const rowp = plane + <usize>(ih * gW) * sz;
            for (let kw = 0; kw < KW; kw++) {
              const iw = pvW0 + kw * gDW;
              if (unit && iw >= 0 && iw + 2 * L <= gW) {
                const src = rowp + <usize>iw * sz;
                v128.store(d, v128.load(src));
                v128.store(d, v128.load(src, 16), 16);
              } else {
                for (let l = 0; l < 2 * L; l++) {
                  const cc = iw + l * gSW;
                  store<T>(d + <usize>l * sz, <u32>cc < <u32>gW ? load<T>(rowp + <usize>cc * sz) : <T>0);
                }
              }
              d += 32;
            }
          }
        }
      } else for (let c = c0; c < c1; c++) {
        const plane: usize = <usize>c * HW;
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++) {
            gatherVector<T>(0, plane, kh, kw, d);
            if (two) gatherVector<T>(1, plane, kh, kw, d + 16);
            else v128.store(d + 16, v128.splat<i32>(0));
            d += 32;
          }
        }
      }
      const pe0: usize = <usize>(c0 * KK * 4) * sz;
      const rowsK: usize = <usize>((c1 - c0) * KK);
      const acc = c0 > 0;
      for (let i = 0; i < rowsAll; i += 4) {
        const pa = AP + <usize>((o0 + i) >> 2) * blkA + pe0;
        const off: usize = <usize>i * ldcB;
        tile4x2<T>(pa, pa + rowsK * 4 * sz, BP, 32, y0 + off, y1 + off, ldcB, min32(4, rowsAll - i), two, acc);
      }
    }
  }
}

export function conv2d_implicit_f32(X: usize, AP: usize, Y: usize, BP: usize, Cin: i32, Cout: i32, j0: i32, j1: i32, o0: i32, o1: i32): void {
  convImplicit<f32>(X, AP, Y, BP, Cin, Cout, j0, j1, o0, o1);
}

export function conv2d_implicit_f64(X: usize, AP: usize, Y: usize, BP: usize, Cin: i32, Cout: i32, j0: i32, j1: i32, o0: i32, o1: i32): void {
  convImplicit<f64>(X, AP, Y, BP, Cin, Cout, j0, j1, o0, o1);
}

/** packA of all Cout rows, for conv2d_implicit (one call before the parts). */
export function conv2d_pack_f32(Wt: usize, Cin: i32, Cout: i32, flip: bool, AP: usize): void {
  packA<f32>(Wt, Cin, Cout, flip, 0, Cout, AP);
}

export function conv2d_pack_f64(Wt: usize, Cin: i32, Cout: i32, flip: bool, AP: usize): void {
  packA<f64>(Wt, Cin, Cout, flip, 0, Cout, AP);
}
