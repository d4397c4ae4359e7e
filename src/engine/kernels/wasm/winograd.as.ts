/**
 * Winograd F(2×2, 3×3) for float32 3×3 convolutions of stride 1 and dilation 1: each 2×2 output
 * tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, d the tile's 4×4 input patch and g a 3×3 kernel, so the sums
 * over input channels become 16 GEMMs of (Cout × Cin)·(Cin × tiles), 16 multiplies per tile and
 * channel pair where the direct form takes 36:
 *
 *   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]   G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
 *   Aᵀ = [1 1 1 0; 0 1 −1 −1]
 *
 * winograd_weights_f32 transforms the weights once per call (V[ξ][o][c], ξ = 4i + j, of every
 * output channel o and input channel c; `flip`: the weights of the input gradient, rotated by
 * 180° with input and output channels swapped, as conv.as.ts's packA). winograd_conv_f32 takes
 * the tiles block by block (blocks of Tb tiles in the order (image, tile row, tile column), the
 * same blocks at every thread count, so that each output is computed the same way): the input
 * transform of a block into U[ξ][c][t], four tiles per vector (a tile row holds a multiple of
 * four tiles), the 16 GEMMs into Mb[ξ][o][t] (gemm.as.ts's gemmAxpy), and the output transform
 * into y. Rows of U and Mb are Tb + LD_PAD elements long, so that the planes of ξ are not a power
 * of two apart (the 16 values of a tile, stored or loaded together, would map to the same cache
 * sets). Float32 throughout: the transforms add and subtract (the weights' also halve), so the
 * results are within a few float32 ulps of the sums' scale of the direct convolution's.
 */
import { min32 } from './common.as';
import { gemmAxpy, gemmDot } from './gemm.as';

/** The padding of U's and Mb's rows (elements; wasm.ts's WINOGRAD_LD_PAD). */
const LD_PAD: i32 = 4;

/** G's rows applied to three values a, b, c (a kernel column or a row of G g). */
@inline function g1(a: f32, b: f32, c: f32): f32 {
  return (a + b + c) * 0.5;
}
@inline function g2(a: f32, b: f32, c: f32): f32 {
  return (a - b + c) * 0.5;
}

/** Store row i of (G g) Gᵀ, from row i of G g (a, b, c), at V + (4i + j)·plane. */
@inline function vRow(dst: usize, plane: usize, i: i32, a: f32, b: f32, c: f32): void {
  const d = dst + <usize>(4 * i) * plane;
  store<f32>(d, a);
  store<f32>(d + plane, g1(a, b, c));
  store<f32>(d + 2 * plane, g2(a, b, c));
  store<f32>(d + 3 * plane, c);
}

/**
 * V[((i·4 + j)·Cout + o)·Cin + c] = (G g Gᵀ)[i][j] for g the 3×3 kernel of output channel o and
 * input channel c: Wt[o][c] (flip false, Wt [Cout][Cin][3][3]) or Wt[c][o] rotated by 180° (flip
 * true, Wt [Cin][Cout][3][3]: the input gradient's convolution of dy).
 */
export function winograd_weights_f32(Wt: usize, Cin: i32, Cout: i32, flip: bool, V: usize): void {
  const plane: usize = <usize>Cout * <usize>Cin * 4;
  for (let o = 0; o < Cout; o++) {
    for (let c = 0; c < Cin; c++) {
      const g: usize = Wt + <usize>(flip ? c * Cout + o : o * Cin + c) * 36;
      // the taps k(kh, kw), rotated by 180° for flip
      let k00: f32, k01: f32, k02: f32, k10: f32, k11: f32, k12: f32, k20: f32, k21: f32, k22: f32;
      if (flip) {
        k00 = load<f32>(g, 32); k01 = load<f32>(g, 28); k02 = load<f32>(g, 24);
        k10 = load<f32>(g, 20); k11 = load<f32>(g, 16); k12 = load<f32>(g, 12);
        k20 = load<f32>(g, 8); k21 = load<f32>(g, 4); k22 = load<f32>(g);
      } else {
        k00 = load<f32>(g); k01 = load<f32>(g, 4); k02 = load<f32>(g, 8);
        k10 = load<f32>(g, 12); k11 = load<f32>(g, 16); k12 = load<f32>(g, 20);
        k20 = load<f32>(g, 24); k21 = load<f32>(g, 28); k22 = load<f32>(g, 32);
      }
      const dst: usize = V + (<usize>o * <usize>Cin + <usize>c) * 4;
      // rows of G g: (k0·, g1 of the three rows, g2 of them, k2·), then each through Gᵀ
      vRow(dst, plane, 0, k00, k01, k02);
      vRow(dst, plane, 1, g1(k00, k10, k20), g1(k01, k11, k21), g1(k02, k12, k22));
      vRow(dst, plane, 2, g2(k00, k10, k20), g2(k01, k11, k21), g2(k02, k12, k22));
      vRow(dst, plane, 3, k20, k21, k22);
    }
  }
}

// the geometry of a winograd_conv_f32 call
let wH: i32 = 0, wW: i32 = 0, wOH: i32 = 0, wOW: i32 = 0, wPH: i32 = 0, wPW: i32 = 0;

/** Row r of x's plane at column `base`, or (outside x) a zero-padded copy of its 10 values there in `edge`, or the zeros at `zero`. */
@inline function rowPtr(plane: usize, r: i32, base: i32, inside: bool, edge: usize, zero: usize): usize {
  const H = wH, W = wW;
  if (r < 0 || r >= H) return zero;
  const row: usize = plane + <usize>r * <usize>W * 4;
  if (inside) return row + <usize>base * 4;
  for (let k = 0; k < 10; k++) {
    const col = base + k;
    store<f32>(edge + <usize>k * 4, col >= 0 && col < W ? load<f32>(row + <usize>col * 4) : 0);
  }
  return edge;
}

/** Columns j (0…3) of the four tiles' patch row at p: the values at p[2q + j], q = 0…3 (lanes). */
@inline function col0(p: usize): v128 {
  return v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
}
@inline function col1(p: usize): v128 {
  return v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 1, 3, 5, 7);
}
@inline function col2(p: usize): v128 {
  return v128.shuffle<f32>(v128.load(p, 8), v128.load(p, 24), 0, 2, 4, 6);
}
@inline function col3(p: usize): v128 {
  return v128.shuffle<f32>(v128.load(p, 8), v128.load(p, 24), 1, 3, 5, 7);
}

/** Store u[i][0…3] = (Bᵀ d)[i] B from row i of Bᵀ d (a0…a3) at u, u + ld, u + 2ld, u + 3ld. */
@inline function uRow(u: usize, ld: usize, a0: v128, a1: v128, a2: v128, a3: v128): void {
  v128.store(u, f32x4.sub(a0, a2));
  v128.store(u + ld, f32x4.add(a1, a2));
  v128.store(u + 2 * ld, f32x4.sub(a2, a1));
  v128.store(u + 3 * ld, f32x4.sub(a1, a3));
}

/**
 * U[(ξ·Cin + c)·ldT + t] for the four tiles t … t + 3 (tile row th of image n, tile columns
 * tw … tw + 3) and input channel c: Bᵀ d B of each tile's patch, four tiles per vector. Patch
 * rows that reach outside x are first copied, zero-padded, to `edge` (4 × 48 bytes of this
 * part's); rows wholly outside read the zeros at `zero`.
 */
@inline function inputTiles(X: usize, Cin: i32, n: i32, c: i32, th: i32, tw: i32, U: usize, ldT: i32, t: i32, edge: usize, zero: usize): void {
  const plane: usize = X + (<usize>n * <usize>Cin + <usize>c) * <usize>wH * <usize>wW * 4;
  const base = 2 * tw - wPW;
  const r0 = 2 * th - wPH;
  const inside = base >= 0 && base + 10 <= wW;
  const p0 = rowPtr(plane, r0, base, inside, edge, zero);
  const p1 = rowPtr(plane, r0 + 1, base, inside, edge + 48, zero);
  const p2 = rowPtr(plane, r0 + 2, base, inside, edge + 96, zero);
  const p3 = rowPtr(plane, r0 + 3, base, inside, edge + 144, zero);
  const ld: usize = <usize>Cin * <usize>ldT * 4; // from one ξ to the next
  const u: usize = U + (<usize>c * <usize>ldT + <usize>t) * 4;
  // Bᵀ d, column by column: row 0 = d0 − d2, row 1 = d1 + d2, row 2 = d2 − d1, row 3 = d1 − d3
  const d10 = col0(p1), d11 = col1(p1), d12 = col2(p1), d13 = col3(p1);
  const d20 = col0(p2), d21 = col1(p2), d22 = col2(p2), d23 = col3(p2);
  uRow(u, ld, f32x4.sub(col0(p0), d20), f32x4.sub(col1(p0), d21), f32x4.sub(col2(p0), d22), f32x4.sub(col3(p0), d23));
  uRow(u + 4 * ld, ld, f32x4.add(d10, d20), f32x4.add(d11, d21), f32x4.add(d12, d22), f32x4.add(d13, d23));
  uRow(u + 8 * ld, ld, f32x4.sub(d20, d10), f32x4.sub(d21, d11), f32x4.sub(d22, d12), f32x4.sub(d23, d13));
  uRow(u + 12 * ld, ld, f32x4.sub(d10, col0(p3)), f32x4.sub(d11, col1(p3)), f32x4.sub(d12, col2(p3)), f32x4.sub(d13, col3(p3)));
}

/** y's 2×2 tiles t … t + 3 (tile row th of image n, tile columns tw …) of output channel o: Aᵀ m A from Mb[(ξ·Cout + o)·ldT + t]. */
@inline function outputTiles(Y: usize, Cout: i32, n: i32, o: i32, th: i32, tw: i32, Mb: usize, ldT: i32, t: i32): void {
  const step: usize = <usize>Cout * <usize>ldT * 4;
  let m: usize = Mb + (<usize>o * <usize>ldT + <usize>t) * 4;
  const m00 = v128.load(m); m += step;
  const m01 = v128.load(m); m += step;
  const m02 = v128.load(m); m += step;
  const m03 = v128.load(m); m += step;
  const m10 = v128.load(m); m += step;
  const m11 = v128.load(m); m += step;
  const m12 = v128.load(m); m += step;
  const m13 = v128.load(m); m += step;
  const m20 = v128.load(m); m += step;
  const m21 = v128.load(m); m += step;
  const m22 = v128.load(m); m += step;
  const m23 = v128.load(m); m += step;
  const m30 = v128.load(m); m += step;
  const m31 = v128.load(m); m += step;
  const m32 = v128.load(m); m += step;
  const m33 = v128.load(m);
  // Aᵀ m: two rows
  const b00 = f32x4.add(f32x4.add(m00, m10), m20), b01 = f32x4.add(f32x4.add(m01, m11), m21);
  const b02 = f32x4.add(f32x4.add(m02, m12), m22), b03 = f32x4.add(f32x4.add(m03, m13), m23);
  const b10 = f32x4.sub(f32x4.sub(m10, m20), m30), b11 = f32x4.sub(f32x4.sub(m11, m21), m31);
  const b12 = f32x4.sub(f32x4.sub(m12, m22), m32), b13 = f32x4.sub(f32x4.sub(m13, m23), m33);
  // (Aᵀ m) A
  const y00 = f32x4.add(f32x4.add(b00, b01), b02), y01 = f32x4.sub(f32x4.sub(b01, b02), b03);
  const y10 = f32x4.add(f32x4.add(b10, b11), b12), y11 = f32x4.sub(f32x4.sub(b11, b12), b13);
  const OW = wOW;
  const row: usize = Y + ((<usize>n * <usize>Cout + <usize>o) * <usize>wOH + <usize>(2 * th)) * <usize>OW * 4 + <usize>(2 * tw) * 4;
  v128.store(row, v128.shuffle<f32>(y00, y01, 0, 4, 1, 5));
  v128.store(row, v128.shuffle<f32>(y00, y01, 2, 6, 3, 7), 16);
  const row1 = row + <usize>OW * 4;
  v128.store(row1, v128.shuffle<f32>(y10, y11, 0, 4, 1, 5));
  v128.store(row1, v128.shuffle<f32>(y10, y11, 2, 6, 3, 7), 16);
}

/**
 * y [N, Cout, OH, OW] of x [N, Cin, H, W] (padding ph, pw; OH = H + 2ph − 2, OW = W + 2pw − 2,
 * both even, OW/2 a multiple of 4) for the tile blocks [b0, b1) of Tb tiles each (Tb a multiple
 * of 4), from the transformed weights V; U (16·Cin·(Tb + LD_PAD)) and Mb (16·Cout·(Tb + LD_PAD))
 * are this part's.
 */
export function winograd_conv_f32(
  X: usize, V: usize, Y: usize, U: usize, Mb: usize, N: i32, Cin: i32, Cout: i32,
  H: i32, W: i32, ph: i32, pw: i32, Tb: i32, b0: i32, b1: i32,
): void {
  wH = H; wW = W; wPH = ph; wPW = pw;
  wOH = H + 2 * ph - 2; wOW = W + 2 * pw - 2;
  const TH = wOH >> 1, TW = wOW >> 1;
  const T = N * TH * TW;
  const vPlane: usize = <usize>Cout * <usize>Cin * 4;
  const ldT = Tb + LD_PAD;
  const uPlane: usize = <usize>Cin * <usize>ldT * 4;
  const mPlane: usize = <usize>Cout * <usize>ldT * 4;
  // the edge rows and a zero row, in Mb (free until the GEMMs write it)
  const edge = Mb, zero = Mb + 192;
  for (let b = b0; b < b1; b++) {
    const t0 = b * Tb;
    const tb = min32(Tb, T - t0);
    if (tb <= 0) break;
    v128.store(zero, f32x4.splat(0));
    v128.store(zero, f32x4.splat(0), 16);
    v128.store(zero, f32x4.splat(0), 32);
    for (let t = 0; t < tb; t += 4) {
      const g = t0 + t;
      const tw = g % TW, rest = g / TW;
      const th = rest % TH, n = rest / TH;
      for (let c = 0; c < Cin; c++) inputTiles(X, Cin, n, c, th, tw, U, ldT, t, edge, zero);
    }
    for (let xi = 0; xi < 16; xi++) {
      gemmAxpy<f32>(Cout, tb, Cin, V + <usize>xi * vPlane, Cin, 1, U + <usize>xi * uPlane, ldT, Mb + <usize>xi * mPlane, ldT, false);
    }
    for (let t = 0; t < tb; t += 4) {
      const g = t0 + t;
      const tw = g % TW, rest = g / TW;
      const th = rest % TH, n = rest / TH;
      for (let o = 0; o < Cout; o++) outputTiles(Y, Cout, n, o, th, tw, Mb, ldT, t);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the filter gradient
//
// y is bilinear in g and d, so each tile's share of the filter gradient is its adjoint:
// ⟨e, Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A⟩ = ⟨Gᵀ[(A e Aᵀ) ⊙ (Bᵀ d B)]G, g⟩ for e the tile's 2×2 output
// gradient. Summed over the tiles: dW[o][c] = Gᵀ Z G with Z[ξ] = Σ_t E[ξ][o][t] · U[ξ][c][t],
// E = A e Aᵀ and U = Bᵀ d B (the forward's input transform): 16 dot-form GEMMs (Cout × Cin,
// summing over tiles), 16 multiplies per tile and channel pair where the direct form takes 36.
//
//   A = [1 0; 1 1; 1 −1; 0 −1]   Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1]
//
// The sum over tiles is split into P partial sums (P fixed by the tile count, not the thread
// count: partial k holds the blocks [⌊k·nb/P⌋, ⌊(k+1)·nb/P⌋)), each summed block by block in
// order; winograd_filter_out_f32 adds the partials in order and applies Gᵀ · G. So the result
// is the same at every thread count.

/** E[(ξ·Cout + o)·ldT + t] for the four tiles t … t + 3 (tile row th of image n, columns tw …) of dy's channel o: A e Aᵀ. */
@inline function gradTiles(DY: usize, Cout: i32, n: i32, o: i32, th: i32, tw: i32, E: usize, ldT: i32, t: i32): void {
  const OW = wOW;
  const row: usize = DY + ((<usize>n * <usize>Cout + <usize>o) * <usize>wOH + <usize>(2 * th)) * <usize>OW * 4 + <usize>(2 * tw) * 4;
  const row1: usize = row + <usize>OW * 4;
  const a0 = v128.load(row), a1 = v128.load(row, 16);
  const b0 = v128.load(row1), b1 = v128.load(row1, 16);
  // e[r][s] of the four tiles
  const e00 = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6), e01 = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
  const e10 = v128.shuffle<f32>(b0, b1, 0, 2, 4, 6), e11 = v128.shuffle<f32>(b0, b1, 1, 3, 5, 7);
  // rows of A e: (e0, e0 + e1, e0 − e1, −e1), each then through Aᵀ: (r0, r0 + r1, r0 − r1, −r1)
  const ld: usize = <usize>Cout * <usize>ldT * 4;
  const u: usize = E + (<usize>o * <usize>ldT + <usize>t) * 4;
  eRow(u, ld, e00, e01);
  eRow(u + 4 * ld, ld, f32x4.add(e00, e10), f32x4.add(e01, e11));
  eRow(u + 8 * ld, ld, f32x4.sub(e00, e10), f32x4.sub(e01, e11));
  eRow(u + 12 * ld, ld, f32x4.neg(e10), f32x4.neg(e11));
}

/** Store row i of (A e) Aᵀ from row i of A e (r0, r1) at u, u + ld, u + 2ld, u + 3ld. */
@inline function eRow(u: usize, ld: usize, r0: v128, r1: v128): void {
  v128.store(u, r0);
  v128.store(u + ld, f32x4.add(r0, r1));
  v128.store(u + 2 * ld, f32x4.sub(r0, r1));
  v128.store(u + 3 * ld, f32x4.neg(r1));
}

/**
 * The partial sums k0 … k1 − 1 of P of the filter gradient of x [N, Cin, H, W] and dy [N, Cout,
 * OH, OW] (padding ph, pw; OH, OW as winograd_conv_f32's) into Z + k·16·Cout·Cin:
 * Z_k[(ξ·Cout + o)·Cin + c], over the blocks of Tb tiles that partial k holds. U
 * (16·Cin·(Tb + LD_PAD)), E (16·Cout·(Tb + LD_PAD)) and then 64 elements for the edge rows are
 * this part's.
 */
export function winograd_filter_f32(
  X: usize, DY: usize, U: usize, E: usize, Z: usize, N: i32, Cin: i32, Cout: i32,
  H: i32, W: i32, ph: i32, pw: i32, Tb: i32, P: i32, k0: i32, k1: i32,
): void {
  wH = H; wW = W; wPH = ph; wPW = pw;
  wOH = H + 2 * ph - 2; wOW = W + 2 * pw - 2;
  const TH = wOH >> 1, TW = wOW >> 1;
  const T = N * TH * TW;
  const nb = (T + Tb - 1) / Tb;
  const ldT = Tb + LD_PAD;
  const uPlane: usize = <usize>Cin * <usize>ldT * 4;
  const ePlane: usize = <usize>Cout * <usize>ldT * 4;
  const zPlane: usize = <usize>Cout * <usize>Cin * 4;
  const edge = E + 16 * ePlane, zero = edge + 192;
  v128.store(zero, f32x4.splat(0));
  v128.store(zero, f32x4.splat(0), 16);
  v128.store(zero, f32x4.splat(0), 32);
  for (let k = k0; k < k1; k++) {
    const Zk: usize = Z + <usize>k * 16 * zPlane;
    const bEnd = <i32>((<i64>(k + 1) * <i64>nb) / <i64>P);
    for (let b = <i32>((<i64>k * <i64>nb) / <i64>P); b < bEnd; b++) {
      const t0 = b * Tb;
      const tb = min32(Tb, T - t0);
      for (let t = 0; t < tb; t += 4) {
        const g = t0 + t;
        const tw = g % TW, rest = g / TW;
        const th = rest % TH, n = rest / TH;
        for (let c = 0; c < Cin; c++) inputTiles(X, Cin, n, c, th, tw, U, ldT, t, edge, zero);
        for (let o = 0; o < Cout; o++) gradTiles(DY, Cout, n, o, th, tw, E, ldT, t);
      }
      const acc = b > <i32>((<i64>k * <i64>nb) / <i64>P);
      for (let xi = 0; xi < 16; xi++) {
        gemmDot<f32>(Cout, Cin, tb, E + <usize>xi * ePlane, ldT, U + <usize>xi * uPlane, ldT, Zk + <usize>xi * zPlane, Cin, acc);
      }
    }
  }
}

/** Gᵀ's rows applied to four values z0 … z3 (a column of Z or a row of Gᵀ Z). */
@inline function h0(z0: f32, z1: f32, z2: f32): f32 {
  return z0 + (z1 + z2) * 0.5;
}
@inline function h1(z1: f32, z2: f32): f32 {
  return (z1 - z2) * 0.5;
}
@inline function h2(z1: f32, z2: f32, z3: f32): f32 {
  return (z1 + z2) * 0.5 + z3;
}

/** Z[ξ] of one (o, c) at p: the P partials (zPart bytes apart) summed in order. */
@inline function zSum(p: usize, P: i32, zPart: usize): f32 {
  let s = load<f32>(p);
  for (let k = 1; k < P; k++) s += load<f32>(p + <usize>k * zPart);
  return s;
}

/** Store row a of Gᵀ Z G at dw + 12a, from row a of Gᵀ Z (r0 … r3). */
@inline function dwRow(dw: usize, a: i32, r0: f32, r1: f32, r2: f32, r3: f32): void {
  const d = dw + <usize>(12 * a);
  store<f32>(d, h0(r0, r1, r2));
  store<f32>(d, h1(r1, r2), 4);
  store<f32>(d, h2(r1, r2, r3), 8);
}

/**
 * dW [Cout, Cin, 3, 3] for the output channels o0 … o1 − 1: Gᵀ Z G with Z the sum of the P
 * partials at Z (in order), each 16·Cout·Cin.
 */
export function winograd_filter_out_f32(Z: usize, P: i32, Cin: i32, Cout: i32, DW: usize, o0: i32, o1: i32): void {
  const zPlane: usize = <usize>Cout * <usize>Cin * 4;
  const zPart: usize = 16 * zPlane;
  for (let o = o0; o < o1; o++) {
    for (let c = 0; c < Cin; c++) {
      let p: usize = Z + (<usize>o * <usize>Cin + <usize>c) * 4;
      const z00 = zSum(p, P, zPart); p += zPlane;
      const z01 = zSum(p, P, zPart); p += zPlane;
      const z02 = zSum(p, P, zPart); p += zPlane;
      const z03 = zSum(p, P, zPart); p += zPlane;
      const z10 = zSum(p, P, zPart); p += zPlane;
      const z11 = zSum(p, P, zPart); p += zPlane;
      const z12 = zSum(p, P, zPart); p += zPlane;
      const z13 = zSum(p, P, zPart); p += zPlane;
      const z20 = zSum(p, P, zPart); p += zPlane;
      const z21 = zSum(p, P, zPart); p += zPlane;
      const z22 = zSum(p, P, zPart); p += zPlane;
      const z23 = zSum(p, P, zPart); p += zPlane;
      const z30 = zSum(p, P, zPart); p += zPlane;
      const z31 = zSum(p, P, zPart); p += zPlane;
      const z32 = zSum(p, P, zPart); p += zPlane;
      const z33 = zSum(p, P, zPart);
      const dw: usize = DW + (<usize>o * <usize>Cin + <usize>c) * 36;
      // rows of Gᵀ Z, then each through G
      dwRow(dw, 0, h0(z00, z10, z20), h0(z01, z11, z21), h0(z02, z12, z22), h0(z03, z13, z23));
      dwRow(dw, 1, h1(z10, z20), h1(z11, z21), h1(z12, z22), h1(z13, z23));
      dwRow(dw, 2, h2(z10, z20, z30), h2(z11, z21, z31), h2(z12, z22, z32), h2(z13, z23, z33));
    }
  }
}
