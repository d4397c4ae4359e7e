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
 * same blocks at every thread count, so that each output is computed the same way), for a range
 * of output channels (a part's: the blocks or the channels are split over the threads): the input
 * transform of a block into U[ξ][c][t], four tiles per vector (four of one tile row where a tile
 * row holds a multiple of four, else any four: inputTilesAny, for small images), the 16 GEMMs
 * into Mb[ξ][o][t] (gemm.as.ts's gemmAxpy, in chunks of rows that it packs), and the output
 * transform into y. Rows of U and Mb are Tb + LD_PAD elements long, and their planes of ξ a cache
 * line more than the rows, so that the planes are not a power of two apart (the 16 values of a
 * tile, stored or loaded together, would map to the same cache sets). Float32 throughout: the transforms add and subtract (the weights' also halve), so the
 * results are within a few float32 ulps of the sums' scale of the direct convolution's.
 */
import { min32 } from './common.as';
import { gemmAxpy, gemmDot, packRows } from './gemm.as';

/** The padding of U's, Mb's and E's rows (elements; wasm.ts's WINOGRAD_LD_PAD). */
const LD_PAD: i32 = 4;
/** The padding of their planes (elements; wasm.ts's WINOGRAD_PLANE_PAD). */
const PLANE_PAD: i32 = 16;

/**
 * Bytes from one ξ plane of U, Mb or E (`rows` rows of ldT elements) to the next: one cache line
 * more than the rows, so that the 16 values of a tile do not fall into one cache set when the
 * rows' bytes are a multiple of 4 KiB (256 channels: 1 KiB · ldT).
 */
@inline function planeBytes(rows: i32, ldT: i32): usize {
  return (<usize>rows * <usize>ldT + PLANE_PAD) * 4;
}

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
 * V[((i·4 + j)·Cout + o)·Cin + c] = (G g Gᵀ)[i][j] for g the 3×3 kernel of output channel o (of
 * o0 … o1 − 1) and input channel c: Wt[o][c] (flip false, Wt [Cout][Cin][3][3]) or Wt[c][o] rotated by 180° (flip
 * true, Wt [Cin][Cout][3][3]: the input gradient's convolution of dy).
 */
export function winograd_weights_f32(Wt: usize, Cin: i32, Cout: i32, flip: bool, V: usize, o0: i32, o1: i32): void {
  const plane: usize = <usize>Cout * <usize>Cin * 4;
  for (let o = o0; o < o1; o++) {
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

/** Bᵀ d B of four tiles' patches d (rows d0·, …, d3·; lanes: the tiles), stored at u + ξ·ld (ξ = 4i + j). */
@inline function uTiles(
  u: usize, ld: usize,
  d00: v128, d01: v128, d02: v128, d03: v128, d10: v128, d11: v128, d12: v128, d13: v128,
  d20: v128, d21: v128, d22: v128, d23: v128, d30: v128, d31: v128, d32: v128, d33: v128,
): void {
  // Bᵀ d, column by column: row 0 = d0 − d2, row 1 = d1 + d2, row 2 = d2 − d1, row 3 = d1 − d3
  uRow(u, ld, f32x4.sub(d00, d20), f32x4.sub(d01, d21), f32x4.sub(d02, d22), f32x4.sub(d03, d23));
  uRow(u + 4 * ld, ld, f32x4.add(d10, d20), f32x4.add(d11, d21), f32x4.add(d12, d22), f32x4.add(d13, d23));
  uRow(u + 8 * ld, ld, f32x4.sub(d20, d10), f32x4.sub(d21, d11), f32x4.sub(d22, d12), f32x4.sub(d23, d13));
  uRow(u + 12 * ld, ld, f32x4.sub(d10, d30), f32x4.sub(d11, d31), f32x4.sub(d12, d32), f32x4.sub(d13, d33));
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
  const ld = planeBytes(Cin, ldT); // from one ξ to the next
  uTiles(
    U + (<usize>c * <usize>ldT + <usize>t) * 4, ld,
    col0(p0), col1(p0), col2(p0), col3(p0), col0(p1), col1(p1), col2(p1), col3(p1),
    col0(p2), col1(p2), col2(p2), col3(p2), col0(p3), col1(p3), col2(p3), col3(p3),
  );
}

// ---------------------------------------------------------------------------------------------
// any tiles (images whose tile rows do not hold a multiple of four tiles: small ones): the four
// tiles of a vector are tiles g … g + 3 in the order (image, tile row, tile column), each found
// on its own; lanes past the last tile (T) read zeros and are not stored

/** The image of tile g, or −1 past the last tile (T). */
@inline function tileImage(g: i32, T: i32, TH: i32, TW: i32): i32 {
  return g < T ? g / (TH * TW) : -1;
}

/** x's value at row r, column col of the plane at `plane` (image n; n < 0: a lane past the last tile), or 0 outside x. */
@inline function px(plane: usize, n: i32, r: i32, col: i32): f32 {
  return n >= 0 && r >= 0 && r < wH && col >= 0 && col < wW ? load<f32>(plane + (<usize>r * <usize>wW + <usize>col) * 4) : 0;
}

/** Patch element (i, j) of the four tiles (planes q0 … q3, images n0 … n3, first rows r0…, first columns b0…) as lanes. */
@inline function lanes4(
  q0: usize, q1: usize, q2: usize, q3: usize, n0: i32, n1: i32, n2: i32, n3: i32,
  r0: i32, r1: i32, r2: i32, r3: i32, b0: i32, b1: i32, b2: i32, b3: i32, i: i32, j: i32,
): v128 {
  let v = f32x4.splat(px(q0, n0, r0 + i, b0 + j));
  v = f32x4.replace_lane(v, 1, px(q1, n1, r1 + i, b1 + j));
  v = f32x4.replace_lane(v, 2, px(q2, n2, r2 + i, b2 + j));
  return f32x4.replace_lane(v, 3, px(q3, n3, r3 + i, b3 + j));
}

/** inputTiles for any four tiles g … g + 3 (see above), stored at column t of U. */
function inputTilesAny(X: usize, Cin: i32, g: i32, T: i32, TH: i32, TW: i32, c: i32, U: usize, ldT: i32, t: i32): void {
  const n0 = tileImage(g, T, TH, TW), n1 = tileImage(g + 1, T, TH, TW);
  const n2 = tileImage(g + 2, T, TH, TW), n3 = tileImage(g + 3, T, TH, TW);
  const HW: usize = <usize>wH * <usize>wW * 4;
  const q0: usize = X + (<usize>max<i32>(n0, 0) * <usize>Cin + <usize>c) * HW, q1: usize = X + (<usize>max<i32>(n1, 0) * <usize>Cin + <usize>c) * HW;
  const q2: usize = X + (<usize>max<i32>(n2, 0) * <usize>Cin + <usize>c) * HW, q3: usize = X + (<usize>max<i32>(n3, 0) * <usize>Cin + <usize>c) * HW;
  const s0 = g % (TH * TW), s1 = (g + 1) % (TH * TW), s2 = (g + 2) % (TH * TW), s3 = (g + 3) % (TH * TW);
  const r0 = 2 * (s0 / TW) - wPH, r1 = 2 * (s1 / TW) - wPH, r2 = 2 * (s2 / TW) - wPH, r3 = 2 * (s3 / TW) - wPH;
  const b0 = 2 * (s0 % TW) - wPW, b1 = 2 * (s1 % TW) - wPW, b2 = 2 * (s2 % TW) - wPW, b3 = 2 * (s3 % TW) - wPW;
  uTiles(
    U + (<usize>c * <usize>ldT + <usize>t) * 4, planeBytes(Cin, ldT),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 0, 0),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 0, 1),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 0, 2),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 0, 3),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 1, 0),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 1, 1),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 1, 2),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 1, 3),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 2, 0),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 2, 1),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 2, 2),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 2, 3),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 3, 0),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 3, 1),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 3, 2),
    lanes4(q0, q1, q2, q3, n0, n1, n2, n3, r0, r1, r2, r3, b0, b1, b2, b3, 3, 3),
  );
}

/** Where tile g's 2×2 block of channel o starts in a tensor [N, C, OH, OW] at Y (tiles in the order (image, tile row, tile column)). */
@inline function tileAt(Y: usize, C: i32, o: i32, g: i32, TH: i32, TW: i32): usize {
  const s = g % (TH * TW);
  return Y + ((<usize>(g / (TH * TW)) * <usize>C + <usize>o) * <usize>wOH + <usize>(2 * (s / TW))) * <usize>wOW * 4 + <usize>(2 * (s % TW)) * 4;
}

/** Store tile g's 2×2 outputs of channel o (nothing past the last tile, T). */
@inline function yTile(Y: usize, Cout: i32, o: i32, g: i32, T: i32, TH: i32, TW: i32, y00: f32, y01: f32, y10: f32, y11: f32): void {
  if (g >= T) return;
  const OW = wOW;
  const row = tileAt(Y, Cout, o, g, TH, TW);
  store<f32>(row, y00);
  store<f32>(row, y01, 4);
  store<f32>(row + <usize>OW * 4, y10);
  store<f32>(row + <usize>OW * 4, y11, 4);
}

/**
 * y's 2×2 tiles t … t + 3 of output channel o: Aᵀ m A from Mb[(ξ·Cout + o)·ldT + t]. The tiles:
 * tile row th of image n, tile columns tw … (any false), or tiles g … g + 3 of T (any true: each
 * stored on its own, those past T not at all).
 */
@inline function outputTiles(
  Y: usize, Cout: i32, n: i32, o: i32, th: i32, tw: i32, Mb: usize, ldT: i32, t: i32,
  any: bool, g: i32, T: i32, TH: i32, TW: i32,
): void {
  const step = planeBytes(Cout, ldT);
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
  if (any) {
    yTile(Y, Cout, o, g, T, TH, TW, f32x4.extract_lane(y00, 0), f32x4.extract_lane(y01, 0), f32x4.extract_lane(y10, 0), f32x4.extract_lane(y11, 0));
    yTile(Y, Cout, o, g + 1, T, TH, TW, f32x4.extract_lane(y00, 1), f32x4.extract_lane(y01, 1), f32x4.extract_lane(y10, 1), f32x4.extract_lane(y11, 1));
    yTile(Y, Cout, o, g + 2, T, TH, TW, f32x4.extract_lane(y00, 2), f32x4.extract_lane(y01, 2), f32x4.extract_lane(y10, 2), f32x4.extract_lane(y11, 2));
    yTile(Y, Cout, o, g + 3, T, TH, TW, f32x4.extract_lane(y00, 3), f32x4.extract_lane(y01, 3), f32x4.extract_lane(y10, 3), f32x4.extract_lane(y11, 3));
    return;
  }
  const row: usize = Y + ((<usize>n * <usize>Cout + <usize>o) * <usize>wOH + <usize>(2 * th)) * <usize>OW * 4 + <usize>(2 * tw) * 4;
  v128.store(row, v128.shuffle<f32>(y00, y01, 0, 4, 1, 5));
  v128.store(row, v128.shuffle<f32>(y00, y01, 2, 6, 3, 7), 16);
  const row1 = row + <usize>OW * 4;
  v128.store(row1, v128.shuffle<f32>(y10, y11, 0, 4, 1, 5));
  v128.store(row1, v128.shuffle<f32>(y10, y11, 2, 6, 3, 7), 16);
}

/**
 * y [N, Cout, OH, OW] of x [N, Cin, H, W] (padding ph, pw; OH = H + 2ph − 2, OW = W + 2pw − 2,
 * both even) for the tile blocks [b0, b1) of Tb tiles each (Tb a multiple of 4) and the output
 * channels [o0, o1) (o0 a multiple of 4), from the transformed weights V; U (16·Cin·(Tb + LD_PAD))
 * and Mb (16·Cout·(Tb + LD_PAD)) are this part's. `any`: tiles taken one by one (inputTilesAny);
 * else OW/2 is a multiple of 4 (four tiles of a tile row per vector).
 */
export function winograd_conv_f32(
  X: usize, V: usize, Y: usize, U: usize, Mb: usize, N: i32, Cin: i32, Cout: i32,
  H: i32, W: i32, ph: i32, pw: i32, Tb: i32, b0: i32, b1: i32, o0: i32, o1: i32, any: bool,
): void {
  wH = H; wW = W; wPH = ph; wPW = pw;
  wOH = H + 2 * ph - 2; wOW = W + 2 * pw - 2;
  const TH = wOH >> 1, TW = wOW >> 1;
  const T = N * TH * TW;
  const vPlane: usize = <usize>Cout * <usize>Cin * 4;
  const ldT = Tb + LD_PAD;
  const uPlane = planeBytes(Cin, ldT);
  const mPlane = planeBytes(Cout, ldT);
  const rows = packRows<f32>(Cin); // (chunks from o0, a multiple of 4)
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
      if (any) {
        for (let c = 0; c < Cin; c++) inputTilesAny(X, Cin, g, T, TH, TW, c, U, ldT, t);
        continue;
      }
      const tw = g % TW, rest = g / TW;
      const th = rest % TH, n = rest / TH;
      for (let c = 0; c < Cin; c++) inputTiles(X, Cin, n, c, th, tw, U, ldT, t, edge, zero);
    }
    for (let xi = 0; xi < 16; xi++) {
      for (let r = o0; r < o1; r += rows) {
        const m = min32(rows, o1 - r);
        const a: usize = V + <usize>xi * vPlane + <usize>r * <usize>Cin * 4;
        gemmAxpy<f32>(m, tb, Cin, a, Cin, 1, U + <usize>xi * uPlane, ldT, Mb + <usize>xi * mPlane + <usize>r * <usize>ldT * 4, ldT, false);
      }
    }
    for (let t = 0; t < tb; t += 4) {
      const g = t0 + t;
      const tw = g % TW, rest = g / TW;
      const th = rest % TH, n = rest / TH;
      for (let o = o0; o < o1; o++) outputTiles(Y, Cout, n, o, th, tw, Mb, ldT, t, any, g, T, TH, TW);
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

/** Where tile g's 2×2 block of dy's channel o starts (0: past the last tile, T). */
@inline function dyTile(DY: usize, Cout: i32, o: i32, g: i32, T: i32, TH: i32, TW: i32): usize {
  return g >= T ? 0 : tileAt(DY, Cout, o, g, TH, TW);
}

/** Element (a, b) of the 2×2 blocks at p0 … p3 (0: zeros) as lanes. */
@inline function eLanes(p0: usize, p1: usize, p2: usize, p3: usize, at: usize): v128 {
  let v = f32x4.splat(p0 != 0 ? load<f32>(p0 + at) : 0);
  v = f32x4.replace_lane(v, 1, p1 != 0 ? load<f32>(p1 + at) : 0);
  v = f32x4.replace_lane(v, 2, p2 != 0 ? load<f32>(p2 + at) : 0);
  return f32x4.replace_lane(v, 3, p3 != 0 ? load<f32>(p3 + at) : 0);
}

/**
 * E[(ξ·Cout + o)·ldT + t] for the four tiles t … t + 3 of dy's channel o: A e Aᵀ. The tiles: tile
 * row th of image n, columns tw … (any false), or tiles g … g + 3 of T (any true: each read on
 * its own, those past T as zeros).
 */
@inline function gradTiles(
  DY: usize, Cout: i32, n: i32, o: i32, th: i32, tw: i32, E: usize, ldT: i32, t: i32,
  any: bool, g: i32, T: i32, TH: i32, TW: i32,
): void {
  const OW = wOW;
  let e00: v128, e01: v128, e10: v128, e11: v128;
  if (any) {
    const p0 = dyTile(DY, Cout, o, g, T, TH, TW), p1 = dyTile(DY, Cout, o, g + 1, T, TH, TW);
    const p2 = dyTile(DY, Cout, o, g + 2, T, TH, TW), p3 = dyTile(DY, Cout, o, g + 3, T, TH, TW);
    const down: usize = <usize>OW * 4;
    e00 = eLanes(p0, p1, p2, p3, 0);
    e01 = eLanes(p0, p1, p2, p3, 4);
    e10 = eLanes(p0, p1, p2, p3, down);
    e11 = eLanes(p0, p1, p2, p3, down + 4);
  } else {
    const row: usize = DY + ((<usize>n * <usize>Cout + <usize>o) * <usize>wOH + <usize>(2 * th)) * <usize>OW * 4 + <usize>(2 * tw) * 4;
    const row1: usize = row + <usize>OW * 4;
    const a0 = v128.load(row), a1 = v128.load(row, 16);
    const b0 = v128.load(row1), b1 = v128.load(row1, 16);
    // e[r][s] of the four tiles
    e00 = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6);
    e01 = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
    e10 = v128.shuffle<f32>(b0, b1, 0, 2, 4, 6);
    e11 = v128.shuffle<f32>(b0, b1, 1, 3, 5, 7);
  }
  // rows of A e: (e0, e0 + e1, e0 − e1, −e1), each then through Aᵀ: (r0, r0 + r1, r0 − r1, −r1)
  const ld = planeBytes(Cout, ldT);
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
 * Z_k[(ξ·Cout + o)·Cin + c] for the output channels o0 … o1 − 1 (o0 even), over the blocks of Tb
 * tiles that partial k holds. U (16·Cin·(Tb + LD_PAD)), E (16·Cout·(Tb + LD_PAD)) and then 64
 * elements for the edge rows are this part's. `any`: as winograd_conv_f32's.
 */
export function winograd_filter_f32(
  X: usize, DY: usize, U: usize, E: usize, Z: usize, N: i32, Cin: i32, Cout: i32,
  H: i32, W: i32, ph: i32, pw: i32, Tb: i32, P: i32, k0: i32, k1: i32, o0: i32, o1: i32, any: bool,
): void {
  wH = H; wW = W; wPH = ph; wPW = pw;
  wOH = H + 2 * ph - 2; wOW = W + 2 * pw - 2;
  const TH = wOH >> 1, TW = wOW >> 1;
  const T = N * TH * TW;
  const nb = (T + Tb - 1) / Tb;
  const ldT = Tb + LD_PAD;
  const uPlane = planeBytes(Cin, ldT);
  const ePlane = planeBytes(Cout, ldT);
  const zPlane: usize = <usize>Cout * <usize>Cin * 4;
  const edge = E + 16 * ePlane, zero = edge + 192;
  v128.store(zero, f32x4.splat(0));
  v128.store(zero, f32x4.splat(0), 16);
  v128.store(zero, f32x4.splat(0), 32);
  for (let k = k0; k < k1; k++) {
    const Zk: usize = Z + <usize>k * 16 * zPlane;
    const bStart = <i32>((<i64>k * <i64>nb) / <i64>P),
      bEnd = <i32>((<i64>(k + 1) * <i64>nb) / <i64>P);
    for (let b = bStart; b < bEnd; b++) {
      const t0 = b * Tb;
      const tb = min32(Tb, T - t0);
      for (let t = 0; t < tb; t += 4) {
        const g = t0 + t;
        const tw = g % TW, rest = g / TW;
        const th = rest % TH, n = rest / TH;
        if (any) for (let c = 0; c < Cin; c++) inputTilesAny(X, Cin, g, T, TH, TW, c, U, ldT, t);
        else for (let c = 0; c < Cin; c++) inputTiles(X, Cin, n, c, th, tw, U, ldT, t, edge, zero);
        for (let o = o0; o < o1; o++) gradTiles(DY, Cout, n, o, th, tw, E, ldT, t, any, g, T, TH, TW);
      }
      const acc = b > bStart;
      const rowA: usize = <usize>o0 * <usize>ldT * 4, rowZ: usize = <usize>o0 * <usize>Cin * 4;
      for (let xi = 0; xi < 16; xi++) {
        gemmDot<f32>(o1 - o0, Cin, tb, E + <usize>xi * ePlane + rowA, ldT, U + <usize>xi * uPlane, ldT, Zk + <usize>xi * zPlane + rowZ, Cin, acc);
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
