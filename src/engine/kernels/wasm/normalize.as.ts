/**
 * BatchNorm's statistics and normalisation (bn_normalize, bn_normalize_jvp, channel_moments,
 * channel_sums)
 * over x laid out as [P, C, R] around the channel axis: channel c is the P runs of R elements at
 * (p·C + c)·R. A call handles the channels [c0, c1); each channel's sums are taken by one thread
 * in one order (within a run in two float64x2 lane pairs, runs in order), so the results are the
 * same for every thread count. Everything is computed in float64 (float32 data promoted) and
 * rounded once at the store, with the formulas of reference.ts. Float64 data take the
 * reference's two passes for the moments (the mean, then the centred squares); float32 data one
 * pass of sums shifted by the channel's first element (d = x − x₀: var = mean(d²) − mean(d)²,
 * whose float64 rounding error, a few 2⁻⁵³ of var + (μ − x₀)², is far below float32's), and
 * bn_normalize_jvp gathers Σt and Σd·t in the same pass. Only the order of the sums (and, for
 * float32, this shift) differs from the reference.
 */

import { ld2, st2 } from './common.as';

/** The sum of a float64 vector's two lanes. */
@inline
function hsum(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

// the second result of runSums2
let second: f64 = 0;

/** Σ (x − mu) (square false) or Σ (x − mu)² (square true) over the R elements at x. */
@inline
function runSum<T>(x: usize, R: i32, mu: f64, square: bool): f64 {
  const sz: usize = sizeof<T>();
  let s0 = f64x2.splat(0),
    s1 = f64x2.splat(0);
  const m = f64x2.splat(mu);
  let r = 0;
  for (; r + 4 <= R; r += 4) {
    const q = x + <usize>r * sz;
    let lo = f64x2.sub(ld2<T>(q), m),
      hi = f64x2.sub(ld2<T>(q + 2 * sz), m);
    if (square) {
      lo = f64x2.mul(lo, lo);
      hi = f64x2.mul(hi, hi);
    }
    s0 = f64x2.add(s0, lo);
    s1 = f64x2.add(s1, hi);
  }
  let t = hsum(f64x2.add(s0, s1));
  for (; r < R; r++) {
    const d = <f64>load<T>(x + <usize>r * sz) - mu;
    t += square ? d * d : d;
  }
  return t;
}

/** Σ t and (in `second`) Σ (x − mu)·rs·t over the R elements at x and t. */
@inline
function runSums2<T>(x: usize, t: usize, R: i32, mu: f64, rs: f64): f64 {
  const sz: usize = sizeof<T>();
  let a0 = f64x2.splat(0),
    a1 = f64x2.splat(0),
    b0 = f64x2.splat(0),
    b1 = f64x2.splat(0);
  const m = f64x2.splat(mu),
    vr = f64x2.splat(rs);
  let r = 0;
  for (; r + 4 <= R; r += 4) {
    const q: usize = <usize>r * sz;
    const tl = ld2<T>(t + q),
      th = ld2<T>(t + q + 2 * sz);
    a0 = f64x2.add(a0, tl);
    a1 = f64x2.add(a1, th);
    b0 = f64x2.add(b0, f64x2.mul(f64x2.mul(f64x2.sub(ld2<T>(x + q), m), vr), tl));
    b1 = f64x2.add(b1, f64x2.mul(f64x2.mul(f64x2.sub(ld2<T>(x + q + 2 * sz), m), vr), th));
  }
  let sa = hsum(f64x2.add(a0, a1));
  let sb = hsum(f64x2.add(b0, b1));
  for (; r < R; r++) {
    const q: usize = <usize>r * sz;
    const tv = <f64>load<T>(t + q);
    sa += tv;
    sb += (<f64>load<T>(x + q) - mu) * rs * tv;
  }
  second = sb;
  return sa;
}

// channel c's mean and biased variance (moments, shiftedStats)
let gMean: f64 = 0;
let gVar: f64 = 0;

/** Channel c's mean and biased variance in two passes (the float64 data's, as the reference). */
@inline
function moments<T>(X: usize, P: i32, C: i32, R: i32, c: i32): void {
  const sz: usize = sizeof<T>();
  const stride: usize = <usize>C * <usize>R * sz;
  const x0 = X + <usize>c * <usize>R * sz;
  let s: f64 = 0;
  let x = x0;
  for (let p = 0; p < P; p++, x += stride) s += runSum<T>(x, R, 0, false);
  const n = <f64>P * <f64>R;
  const mu = s / n;
  let q: f64 = 0;
  x = x0;
  for (let p = 0; p < P; p++, x += stride) q += runSum<T>(x, R, mu, true);
  gMean = mu;
  gVar = q / n;
}

// one pass over channel c (float32 data): Σd, Σd² and, with Tv ≠ 0, Σt and Σd·t, d = x − x₀
let gSt: f64 = 0;
let gSxt: f64 = 0;

@inline
function shiftedStats(X: usize, Tv: usize, P: i32, C: i32, R: i32, c: i32): void {
  const stride: usize = <usize>C * <usize>R * 4;
  let off: usize = <usize>c * <usize>R * 4;
  const k0: f64 = <f64>load<f32>(X + off);
  const k = f64x2.splat(k0);
  let s0 = f64x2.splat(0),
    s1 = f64x2.splat(0),
    q0 = f64x2.splat(0),
    q1 = f64x2.splat(0),
    a0 = f64x2.splat(0),
    a1 = f64x2.splat(0),
    b0 = f64x2.splat(0),
    b1 = f64x2.splat(0);
  let s: f64 = 0,
    q: f64 = 0,
    a: f64 = 0,
    b: f64 = 0;
  for (let p = 0; p < P; p++, off += stride) {
    const x = X + off,
      t = Tv + off;
    let r = 0;
    for (; r + 4 <= R; r += 4) {
      const o: usize = <usize>r << 2;
      const dl = f64x2.sub(ld2<f32>(x + o), k),
        dh = f64x2.sub(ld2<f32>(x + o + 8), k);
      s0 = f64x2.add(s0, dl);
      s1 = f64x2.add(s1, dh);
      q0 = f64x2.add(q0, f64x2.mul(dl, dl));
      q1 = f64x2.add(q1, f64x2.mul(dh, dh));
      if (Tv != 0) {
        const tl = ld2<f32>(t + o),
          th = ld2<f32>(t + o + 8);
        a0 = f64x2.add(a0, tl);
        a1 = f64x2.add(a1, th);
        b0 = f64x2.add(b0, f64x2.mul(dl, tl));
        b1 = f64x2.add(b1, f64x2.mul(dh, th));
      }
    }
    for (; r < R; r++) {
      const d = <f64>load<f32>(x + (<usize>r << 2)) - k0;
      s += d;
      q += d * d;
      if (Tv != 0) {
        const tv = <f64>load<f32>(t + (<usize>r << 2));
        a += tv;
        b += d * tv;
      }
    }
  }
  s += hsum(f64x2.add(s0, s1));
  q += hsum(f64x2.add(q0, q1));
  const n = <f64>P * <f64>R;
  const md = s / n;
  gMean = k0 + md;
  const v = q / n - md * md;
  gVar = v > 0 ? v : 0;
  if (Tv != 0) {
    a += hsum(f64x2.add(a0, a1));
    b += hsum(f64x2.add(b0, b1));
    gSt = a;
    gSxt = b - md * a; // Σ (x − μ)·t
  }
}

/** Channel c's mean and biased variance into gMean, gVar: one shifted pass for float32 data, two passes for float64. */
@inline
function stats<T>(X: usize, P: i32, C: i32, R: i32, c: i32): void {
  if (sizeof<T>() == 4) shiftedStats(X, 0, P, C, R, c);
  else moments<T>(X, P, C, R, c);
}

function channelMoments<T>(X: usize, O: usize, P: i32, C: i32, R: i32, c0: i32, c1: i32): void {
  for (let c = c0; c < c1; c++) {
    stats<T>(X, P, C, R, c);
    store<T>(O + <usize>c * sizeof<T>(), <T>gMean);
    store<T>(O + <usize>(C + c) * sizeof<T>(), <T>gVar);
  }
}

/**
 * O = (X − μ)·rs over channel c's runs (rounded once); with `affine` (a constant at each call),
 * O = (X − μ)·rs·w + b (bn_affine).
 */
@inline
function writeNormalized<T>(X: usize, O: usize, P: i32, C: i32, R: i32, c: i32, mu: f64, rs: f64, affine: bool, w: f64, b: f64): void {
  const sz: usize = sizeof<T>();
  const stride: usize = <usize>C * <usize>R * sz;
  const m = f64x2.splat(mu),
    vr = f64x2.splat(rs),
    vw = f64x2.splat(w),
    vb = f64x2.splat(b);
  let off: usize = <usize>c * <usize>R * sz;
  for (let p = 0; p < P; p++, off += stride) {
    const x = X + off,
      o = O + off;
    let r = 0;
    for (; r + 2 <= R; r += 2) {
      const q: usize = <usize>r * sz;
      const v = f64x2.mul(f64x2.sub(ld2<T>(x + q), m), vr);
      st2<T>(o + q, affine ? f64x2.add(f64x2.mul(v, vw), vb) : v);
    }
    for (; r < R; r++) {
      const q: usize = <usize>r * sz;
      const v = (<f64>load<T>(x + q) - mu) * rs;
      store<T>(o + q, <T>(affine ? v * w + b : v));
    }
  }
}

function normalize<T>(X: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  for (let c = c0; c < c1; c++) {
    stats<T>(X, P, C, R, c);
    writeNormalized<T>(X, O, P, C, R, c, gMean, 1 / Math.sqrt(gVar + eps), false, 1, 0);
  }
}

/** O = k·(T − a − (X − μ)·rs·b) over channel c's runs (rounded once); k = rs for bn_normalize_jvp, w·rs for bn_affine_jvp. */
@inline
function writeJvp<T>(X: usize, Tv: usize, O: usize, P: i32, C: i32, R: i32, c: i32, mu: f64, rs: f64, a: f64, b: f64, k: f64): void {
  const sz: usize = sizeof<T>();
  const stride: usize = <usize>C * <usize>R * sz;
  const m = f64x2.splat(mu),
    vr = f64x2.splat(rs),
    vk = f64x2.splat(k),
    va = f64x2.splat(a),
    vb = f64x2.splat(b);
  let off: usize = <usize>c * <usize>R * sz;
  for (let p = 0; p < P; p++, off += stride) {
    const x = X + off,
      t = Tv + off,
      o = O + off;
    let r = 0;
    for (; r + 2 <= R; r += 2) {
      const q: usize = <usize>r * sz;
      st2<T>(o + q, f64x2.mul(vk, f64x2.sub(f64x2.sub(ld2<T>(t + q), va), f64x2.mul(f64x2.mul(f64x2.sub(ld2<T>(x + q), m), vr), vb))));
    }
    for (; r < R; r++) {
      const q: usize = <usize>r * sz;
      store<T>(o + q, <T>(k * (<f64>load<T>(t + q) - a - (<f64>load<T>(x + q) - mu) * rs * b)));
    }
  }
}

function normalizeJvp<T>(X: usize, Tv: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  const sz: usize = sizeof<T>();
  const stride: usize = <usize>C * <usize>R * sz;
  const n = <f64>P * <f64>R;
  for (let c = c0; c < c1; c++) {
    if (sizeof<T>() == 4) {
      shiftedStats(X, Tv, P, C, R, c);
      const rs = 1 / Math.sqrt(gVar + eps);
      writeJvp<T>(X, Tv, O, P, C, R, c, gMean, rs, gSt / n, (gSxt * rs) / n, rs);
      continue;
    }
    moments<T>(X, P, C, R, c);
    const mu = gMean,
      rs = 1 / Math.sqrt(gVar + eps);
    let sa: f64 = 0,
      sb: f64 = 0;
    let off: usize = <usize>c * <usize>R * sz;
    for (let p = 0; p < P; p++, off += stride) {
      sa += runSums2<T>(X + off, Tv + off, R, mu, rs);
      sb += second;
    }
    writeJvp<T>(X, Tv, O, P, C, R, c, mu, rs, sa / n, sb / n, rs);
  }
}

export function channel_moments_f32(X: usize, O: usize, P: i32, C: i32, R: i32, c0: i32, c1: i32): void {
  channelMoments<f32>(X, O, P, C, R, c0, c1);
}
export function channel_moments_f64(X: usize, O: usize, P: i32, C: i32, R: i32, c0: i32, c1: i32): void {
  channelMoments<f64>(X, O, P, C, R, c0, c1);
}
export function bn_normalize_f32(X: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  normalize<f32>(X, O, P, C, R, eps, c0, c1);
}
export function bn_normalize_f64(X: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  normalize<f64>(X, O, P, C, R, eps, c0, c1);
}
export function bn_normalize_jvp_f32(X: usize, Tv: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  normalizeJvp<f32>(X, Tv, O, P, C, R, eps, c0, c1);
}
export function bn_normalize_jvp_f64(X: usize, Tv: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  normalizeJvp<f64>(X, Tv, O, P, C, R, eps, c0, c1);
}

// channel_sums: O[c] = Σ u·x, O[C + c] = Σ u over channel c's runs (float64 sums, products of
// promoted float32 values exact)
function channelSums<T>(U: usize, X: usize, O: usize, P: i32, C: i32, R: i32, c0: i32, c1: i32): void {
  const sz: usize = sizeof<T>();
  const stride: usize = <usize>C * <usize>R * sz;
  for (let c = c0; c < c1; c++) {
    let s0 = f64x2.splat(0),
      s1 = f64x2.splat(0),
      a0 = f64x2.splat(0),
      a1 = f64x2.splat(0);
    let s: f64 = 0,
      a: f64 = 0;
    let off: usize = <usize>c * <usize>R * sz;
    for (let p = 0; p < P; p++, off += stride) {
      const u = U + off,
        x = X + off;
      let r = 0;
      for (; r + 4 <= R; r += 4) {
        const q: usize = <usize>r * sz;
        const ul = ld2<T>(u + q),
          uh = ld2<T>(u + q + 2 * sz),
          xl = ld2<T>(x + q),
          xh = ld2<T>(x + q + 2 * sz);
        s0 = f64x2.add(s0, f64x2.mul(ul, xl));
        s1 = f64x2.add(s1, f64x2.mul(uh, xh));
        a0 = f64x2.add(a0, ul);
        a1 = f64x2.add(a1, uh);
      }
      for (; r < R; r++) {
        const q: usize = <usize>r * sz;
        const uv = <f64>load<T>(u + q);
        s += uv * <f64>load<T>(x + q);
        a += uv;
      }
    }
    const sv = f64x2.add(s0, s1),
      av = f64x2.add(a0, a1);
    store<T>(O + <usize>c * sz, <T>(s + f64x2.extract_lane(sv, 0) + f64x2.extract_lane(sv, 1)));
    store<T>(O + <usize>(C + c) * sz, <T>(a + f64x2.extract_lane(av, 0) + f64x2.extract_lane(av, 1)));
  }
}

export function channel_sums_f32(U: usize, X: usize, O: usize, P: i32, C: i32, R: i32, c0: i32, c1: i32): void {
  channelSums<f32>(U, X, O, P, C, R, c0, c1);
}
export function channel_sums_f64(U: usize, X: usize, O: usize, P: i32, C: i32, R: i32, c0: i32, c1: i32): void {
  channelSums<f64>(U, X, O, P, C, R, c0, c1);
}

// ---------------------------------------------------------------------------------------------
// The fused training-mode BatchNorm (bn_affine, bn_sums, bn_affine_jvp): the channel's mean and
// biased variance read from M = channel_moments(x) ([2, C]: no pass to recompute them), the
// arithmetic in float64 with reference.ts's formulas and order, rounded once at the store.

/** Channel c's μ (gMean) and r = 1/√(σ² + eps) (returned) from M. */
@inline
function fromMoments<T>(M: usize, C: i32, c: i32, eps: f64): f64 {
  const sz: usize = sizeof<T>();
  gMean = <f64>load<T>(M + <usize>c * sz);
  return 1 / Math.sqrt(<f64>load<T>(M + <usize>(C + c) * sz) + eps);
}

function bnAffine<T>(X: usize, M: usize, Wv: usize, Bv: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  const sz: usize = sizeof<T>();
  for (let c = c0; c < c1; c++) {
    const rs = fromMoments<T>(M, C, c, eps);
    writeNormalized<T>(X, O, P, C, R, c, gMean, rs, true, <f64>load<T>(Wv + <usize>c * sz), <f64>load<T>(Bv + <usize>c * sz));
  }
}

function bnSums<T>(X: usize, M: usize, U: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  const sz: usize = sizeof<T>();
  const stride: usize = <usize>C * <usize>R * sz;
  for (let c = c0; c < c1; c++) {
    const rs = fromMoments<T>(M, C, c, eps);
    const mu = gMean;
    let sa: f64 = 0,
      sb: f64 = 0;
    let off: usize = <usize>c * <usize>R * sz;
    for (let p = 0; p < P; p++, off += stride) {
      sa += runSums2<T>(X + off, U + off, R, mu, rs);
      sb += second;
    }
    store<T>(O + <usize>c * sz, <T>sb);
    store<T>(O + <usize>(C + c) * sz, <T>sa);
  }
}

function bnAffineJvp<T>(X: usize, M: usize, Wv: usize, U: usize, S: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  const sz: usize = sizeof<T>();
  const n = <f64>P * <f64>R;
  for (let c = c0; c < c1; c++) {
    const rs = fromMoments<T>(M, C, c, eps);
    const a = <f64>load<T>(S + <usize>(C + c) * sz) / n,
      b = <f64>load<T>(S + <usize>c * sz) / n;
    writeJvp<T>(X, U, O, P, C, R, c, gMean, rs, a, b, <f64>load<T>(Wv + <usize>c * sz) * rs);
  }
}

export function bn_affine_f32(X: usize, M: usize, Wv: usize, Bv: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  bnAffine<f32>(X, M, Wv, Bv, O, P, C, R, eps, c0, c1);
}
export function bn_affine_f64(X: usize, M: usize, Wv: usize, Bv: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  bnAffine<f64>(X, M, Wv, Bv, O, P, C, R, eps, c0, c1);
}
export function bn_sums_f32(X: usize, M: usize, U: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  bnSums<f32>(X, M, U, O, P, C, R, eps, c0, c1);
}
export function bn_sums_f64(X: usize, M: usize, U: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  bnSums<f64>(X, M, U, O, P, C, R, eps, c0, c1);
}
export function bn_affine_jvp_f32(X: usize, M: usize, Wv: usize, U: usize, S: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  bnAffineJvp<f32>(X, M, Wv, U, S, O, P, C, R, eps, c0, c1);
}
export function bn_affine_jvp_f64(X: usize, M: usize, Wv: usize, U: usize, S: usize, O: usize, P: i32, C: i32, R: i32, eps: f64, c0: i32, c1: i32): void {
  bnAffineJvp<f64>(X, M, Wv, U, S, O, P, C, R, eps, c0, c1);
}
