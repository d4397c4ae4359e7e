/**
 * Elementwise kernels in WebAssembly SIMD (add, sub, mul, div, max, min, the comparisons; neg,
 * abs, sqrt, square; select; exp, log, log1p, tanh, mish, mish_grad of float32 data). The
 * lane-wise ones work in T: each result is the correctly rounded T of the exact value, as the JS
 * loops give by computing in float64 and rounding once, so they agree bit for bit; max/min and
 * the comparisons use the reference kernels' exact rules (NaN, ties).
 */
import { ld2, st2, vzero } from './common.as';

// ---------------------------------------------------------------------------------------------
// elementwise (op codes shared with wasm.ts)

// binary: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 gt, 7 ge, 8 lt, 9 le, 10 eq, 11 ne
@inline function binV<T>(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case 0: return v128.add<T>(a, b);
    case 1: return v128.sub<T>(a, b);
    case 2: return v128.mul<T>(a, b);
    case 3: return v128.div<T>(a, b);
    // max/min as the reference: a if a > b (a < b) or a is NaN, else b (so ties give b)
    case 4: return v128.bitselect(a, b, v128.or(v128.gt<T>(a, b), v128.ne<T>(a, a)));
    case 5: return v128.bitselect(a, b, v128.or(v128.lt<T>(a, b), v128.ne<T>(a, a)));
    case 6: return v128.and(v128.gt<T>(a, b), v128.splat<T>(<T>1));
    case 7: return v128.and(v128.ge<T>(a, b), v128.splat<T>(<T>1));
    case 8: return v128.and(v128.lt<T>(a, b), v128.splat<T>(<T>1));
    case 9: return v128.and(v128.le<T>(a, b), v128.splat<T>(<T>1));
    case 10: return v128.and(v128.eq<T>(a, b), v128.splat<T>(<T>1));
    default: return v128.and(v128.ne<T>(a, b), v128.splat<T>(<T>1));
  }
}

@inline function binS<T>(op: i32, a: T, b: T): T {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return a > b || a != a ? a : b;
    case 5: return a < b || a != a ? a : b;
    case 6: return a > b ? <T>1 : <T>0;
    case 7: return a >= b ? <T>1 : <T>0;
    case 8: return a < b ? <T>1 : <T>0;
    case 9: return a <= b ? <T>1 : <T>0;
    case 10: return a == b ? <T>1 : <T>0;
    default: return a != b ? <T>1 : <T>0;
  }
}

/** O[i] = A[i] op B[i] for i < n. */
function binary<T>(op: i32, A: usize, B: usize, O: usize, n: i32): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  let i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    const o: usize = <usize>i * sz;
    v128.store(O + o, binV<T>(op, v128.load(A + o), v128.load(B + o)));
    v128.store(O + o, binV<T>(op, v128.load(A + o, 16), v128.load(B + o, 16)), 16);
    v128.store(O + o, binV<T>(op, v128.load(A + o, 32), v128.load(B + o, 32)), 32);
    v128.store(O + o, binV<T>(op, v128.load(A + o, 48), v128.load(B + o, 48)), 48);
  }
  for (; i < n; i++) {
    const o: usize = <usize>i * sz;
    store<T>(O + o, binS<T>(op, load<T>(A + o), load<T>(B + o)));
  }
}

// unary: 0 neg, 1 abs, 2 sqrt, 3 square
@inline function unV<T>(op: i32, a: v128): v128 {
  switch (op) {
    case 0: return v128.neg<T>(a);
    case 1: return v128.abs<T>(a);
    case 2: return v128.sqrt<T>(a);
    default: return v128.mul<T>(a, a);
  }
}

@inline function unS<T>(op: i32, a: T): T {
  switch (op) {
    case 0: return -a;
    case 1: return <T>abs<T>(a);
    case 2: return <T>sqrt<T>(a);
    default: return a * a;
  }
}

/** O[i] = op(A[i]) for i < n. */
function unary<T>(op: i32, A: usize, O: usize, n: i32): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  let i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    const o: usize = <usize>i * sz;
    v128.store(O + o, unV<T>(op, v128.load(A + o)));
    v128.store(O + o, unV<T>(op, v128.load(A + o, 16)), 16);
    v128.store(O + o, unV<T>(op, v128.load(A + o, 32)), 32);
    v128.store(O + o, unV<T>(op, v128.load(A + o, 48)), 48);
  }
  for (; i < n; i++) {
    const o: usize = <usize>i * sz;
    store<T>(O + o, unS<T>(op, load<T>(A + o)));
  }
}

/** O[i] = M[i] != 0 ? A[i] : B[i] for i < n (a NaN mask selects A, −0 selects B, as the reference). */
function selectMask<T>(M: usize, A: usize, B: usize, O: usize, n: i32): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  const zero = vzero<T>();
  let i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    const o: usize = <usize>i * sz;
    v128.store(O + o, v128.bitselect(v128.load(A + o), v128.load(B + o), v128.ne<T>(v128.load(M + o), zero)));
    v128.store(O + o, v128.bitselect(v128.load(A + o, 16), v128.load(B + o, 16), v128.ne<T>(v128.load(M + o, 16), zero)), 16);
  }
  for (; i < n; i++) {
    const o: usize = <usize>i * sz;
    store<T>(O + o, load<T>(M + o) != 0 ? load<T>(A + o) : load<T>(B + o));
  }
}

export function ew_select_f32(M: usize, A: usize, B: usize, O: usize, n: i32): void {
  selectMask<f32>(M, A, B, O, n);
}

export function ew_select_f64(M: usize, A: usize, B: usize, O: usize, n: i32): void {
  selectMask<f64>(M, A, B, O, n);
}

/** Mish in float64 with one exponential, as reference.ts's mish64. */
@inline function mish64(x: f64): f64 {
  if (x <= 0) {
    const u = NativeMath.exp(x);
    const n = u * (u + 2);
    return (x * n) / (n + 2);
  }
  const w = NativeMath.exp(-x);
  const a = 1 + 2 * w;
  return (x * a) / (a + 2 * w * w);
}

/** Mish's derivative in float64 with one exponential, as reference.ts's mishGrad64. */
@inline function mishGrad64(x: f64): f64 {
  if (x <= 0) {
    const u = NativeMath.exp(x);
    const n = u * (u + 2);
    const d = n + 2;
    return n / d + (x * 4 * (n + 1) * u) / (d * d * (1 + u));
  }
  const w = NativeMath.exp(-x);
  const a = 1 + 2 * w;
  const b = a + 2 * w * w;
  return a / b + (x * 2 * w * w * (a + b)) / (b * b * (1 + w));
}

/** Mish's second derivative in float64 with one exponential, as reference.ts's mishGrad2_64 (0 at ±∞). */
@inline function mishGrad2_64(x: f64): f64 {
  if (x == Infinity || x == -Infinity) return 0;
  let T: f64, S: f64, s: f64, sc: f64;
  if (x <= 0) {
    const u = NativeMath.exp(x);
    const n = u * (u + 2);
    const d = n + 2;
    T = n / d;
    S = (4 * (n + 1)) / (d * d);
    s = u / (1 + u);
    sc = 1 / (1 + u);
  } else {
    const w = NativeMath.exp(-x);
    const a = 1 + 2 * w;
    const b = a + 2 * w * w;
    T = a / b;
    S = (2 * w * w * (a + b)) / (b * b);
    s = 1 / (1 + w);
    sc = w / (1 + w);
  }
  return S * s * (2 + x * (sc - 2 * T * s));
}

// transcendental: 0 exp, 1 log, 2 log1p, 3 tanh, 4 mish, 5 mish_grad, 6 mish_grad2 — float32 data computed in float64 with the
// standard library's (musl's) functions, then rounded: the reference computes Math.* in float64
// and rounds too, so the two agree to the last float32 bit unless a value falls within a
// float64 ulp of a float32 rounding boundary (not seen in the tests' millions of values)
@inline function mathS(op: i32, x: f64): f64 {
  switch (op) {
    case 0: return NativeMath.exp(x);
    case 1: return NativeMath.log(x);
    case 2: return NativeMath.log1p(x);
    case 3: return NativeMath.tanh(x);
    case 4: return mish64(x);
    case 5: return mishGrad64(x);
    default: return mishGrad2_64(x);
  }
}

// ---------------------------------------------------------------------------------------------
// Mish and its derivative in float32 lanes (f32x4), four at a time: the same branch-free formulas
// with e^(−|x|) from a float32 polynomial (degree 7 after reducing by multiples of ln 2, within
// about an ulp), so each result is within a few float32 ulps of the exactly rounded one (the
// derivative: within a few ulps of its terms, P/Q and x·R/D, where they nearly cancel, around
// its zero at x ≈ −1.19). Lanes with |x| > 80 or NaN (rare) take the float64 scalar path.

const LOG2E_F: f32 = 1.44269504;
const LN2_HI_F: f32 = 0.693359375; // few significant bits: k·LN2_HI_F is exact for |k| ≤ 128
const LN2_LO_F: f32 = -2.12194440e-4;

/** e^t for float32 lanes −80 ≤ t ≤ 0. */
@inline function expNeg4(t: v128): v128 {
  const k = f32x4.nearest(f32x4.mul(t, f32x4.splat(LOG2E_F)));
  const r = f32x4.sub(f32x4.sub(t, f32x4.mul(k, f32x4.splat(LN2_HI_F))), f32x4.mul(k, f32x4.splat(LN2_LO_F)));
  // 1 + r + … + r⁷/7! by Estrin's scheme
  const r2 = f32x4.mul(r, r);
  const r4 = f32x4.mul(r2, r2);
  const q0 = f32x4.add(f32x4.splat(1.0), r);
  const q1 = f32x4.add(f32x4.splat(0.5), f32x4.mul(r, f32x4.splat(<f32>(1.0 / 6.0))));
  const q2 = f32x4.add(f32x4.splat(<f32>(1.0 / 24.0)), f32x4.mul(r, f32x4.splat(<f32>(1.0 / 120.0))));
  const q3 = f32x4.add(f32x4.splat(<f32>(1.0 / 720.0)), f32x4.mul(r, f32x4.splat(<f32>(1.0 / 5040.0))));
  const p = f32x4.add(f32x4.add(q0, f32x4.mul(q1, r2)), f32x4.mul(f32x4.add(q2, f32x4.mul(q3, r2)), r4));
  // 2^k from its bits: (k + 127) << 23, k ≥ −116 here
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(k), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

/**
 * Mish (op 4), its derivative (op 5) or its second derivative (op 6) of four float32 lanes with
 * |x| ≤ 80: T = P/Q, and for op 6 mish'' = (1 − T²)·σ·(2 + x(1 − σ − 2Tσ)) with 1 − T², σ and
 * 1 − σ from the same e = e^(−|x|), as in mishGrad2_64.
 */
@inline function mish4(op: i32, x: v128): v128 {
  const one = f32x4.splat(1.0), two = f32x4.splat(2.0);
  const e = expNeg4(f32x4.neg(f32x4.abs(x)));
  const neg = f32x4.le(x, f32x4.splat(0.0));
  const n = f32x4.mul(e, f32x4.add(e, two));
  const a = f32x4.add(one, f32x4.mul(two, e));
  const ww2 = f32x4.mul(f32x4.mul(two, e), e);
  const P = v128.bitselect(n, a, neg);
  const Q = v128.bitselect(f32x4.add(n, two), f32x4.add(a, ww2), neg);
  if (op == 4) return f32x4.div(f32x4.mul(x, P), Q);
  if (op == 6) {
    const Sn = v128.bitselect(f32x4.mul(f32x4.splat(4.0), f32x4.add(n, one)), f32x4.mul(ww2, f32x4.add(a, Q)), neg);
    const ope = f32x4.add(one, e);
    const T = f32x4.div(P, Q);
    const S = f32x4.div(Sn, f32x4.mul(Q, Q));
    const s = f32x4.div(v128.bitselect(e, one, neg), ope);
    const sc = f32x4.div(v128.bitselect(one, e, neg), ope);
    const g = f32x4.add(two, f32x4.mul(x, f32x4.sub(sc, f32x4.mul(f32x4.mul(two, T), s))));
    return f32x4.mul(f32x4.mul(S, s), g);
  }
  const R = v128.bitselect(f32x4.mul(f32x4.mul(f32x4.splat(4.0), f32x4.add(n, one)), e), f32x4.mul(ww2, f32x4.add(P, Q)), neg);
  const D = f32x4.mul(f32x4.mul(Q, Q), f32x4.add(one, e));
  return f32x4.add(f32x4.div(P, Q), f32x4.div(f32x4.mul(x, R), D));
}

/**
 * O[i] = mish(A[i]) (op 4), mish'(A[i]) (op 5) or mish''(A[i]) (op 6) for i < n, float32 arrays,
 * in float32 lanes; with G ≠ 0, each result times G[i] (a float32 product: mish_vjp).
 */
function mishF32x4(op: i32, A: usize, G: usize, O: usize, n: i32): void {
  const lim = f32x4.splat(80.0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o: usize = <usize>i << 2;
    const v = v128.load(A + o);
    if (v128.any_true(v128.not(f32x4.le(f32x4.abs(v), lim)))) {
      for (let j = 0; j < 4; j++) {
        const q: usize = o + (<usize>j << 2);
        const y = <f32>mathS(op, <f64>load<f32>(A + q));
        store<f32>(O + q, G != 0 ? y * load<f32>(G + q) : y);
      }
      continue;
    }
    const y = mish4(op, v);
    v128.store(O + o, G != 0 ? f32x4.mul(y, v128.load(G + o)) : y);
  }
  for (; i < n; i++) {
    const o: usize = <usize>i << 2;
    const y = <f32>mathS(op, <f64>load<f32>(A + o));
    store<f32>(O + o, G != 0 ? y * load<f32>(G + o) : y);
  }
}

/** O[i] = G[i]·mish'(A[i]) for i < n, float32 arrays: mish' as mishF32x4's op 5, then a float32 product. */
export function mish_vjp_f32(A: usize, G: usize, O: usize, n: i32): void {
  mishF32x4(5, A, G, O, n);
}

/** O[i] = op(A[i]) for i < n, float32 arrays. */
export function ew_math_f32(op: i32, A: usize, O: usize, n: i32): void {
  if (op >= 4) {
    mishF32x4(op, A, 0, O, n);
    return;
  }
  for (let i = 0; i < n; i++) {
    const o: usize = <usize>i << 2;
    store<f32>(O + o, <f32>mathS(op, <f64>load<f32>(A + o)));
  }
}

export function ew_binary_f32(op: i32, A: usize, B: usize, O: usize, n: i32): void {
  binary<f32>(op, A, B, O, n);
}

export function ew_binary_f64(op: i32, A: usize, B: usize, O: usize, n: i32): void {
  binary<f64>(op, A, B, O, n);
}

export function ew_unary_f32(op: i32, A: usize, O: usize, n: i32): void {
  unary<f32>(op, A, O, n);
}

export function ew_unary_f64(op: i32, A: usize, O: usize, n: i32): void {
  unary<f64>(op, A, O, n);
}

// ---------------------------------------------------------------------------------------------
// channel_affine: O[p·R + r] = X[p·R + r]·S[p mod C] + T[p mod C] for the planes p ∈ [p0, p1)
// (R elements each), the product rounded before the sum (as mul then add)

function channelAffine<T>(X: usize, S: usize, Tv: usize, O: usize, C: i32, R: i32, p0: i32, p1: i32): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  for (let p = p0; p < p1; p++) {
    const c = p % C;
    const s = load<T>(S + <usize>c * sz), t = load<T>(Tv + <usize>c * sz);
    const vs = v128.splat<T>(s), vt = v128.splat<T>(t);
    const base: usize = <usize>p * <usize>R * sz;
    const x = X + base, o = O + base;
    let r = 0;
    for (; r + 2 * L <= R; r += 2 * L) {
      const q: usize = <usize>r * sz;
      v128.store(o + q, v128.add<T>(v128.mul<T>(v128.load(x + q), vs), vt));
      v128.store(o + q, v128.add<T>(v128.mul<T>(v128.load(x + q, 16), vs), vt), 16);
    }
    for (; r < R; r++) {
      const q: usize = <usize>r * sz;
      store<T>(o + q, load<T>(x + q) * s + t);
    }
  }
}

export function channel_affine_f32(X: usize, S: usize, Tv: usize, O: usize, C: i32, R: i32, p0: i32, p1: i32): void {
  channelAffine<f32>(X, S, Tv, O, C, R, p0, p1);
}

export function channel_affine_f64(X: usize, S: usize, Tv: usize, O: usize, C: i32, R: i32, p0: i32, p1: i32): void {
  channelAffine<f64>(X, S, Tv, O, C, R, p0, p1);
}

// ---------------------------------------------------------------------------------------------
// Adam / AdamW update of the elements [i0, i1): in float64 lanes (float32 data promoted, the
// results rounded once), with the formulas and operation order of nn/optim.ts's adamKernel, so
// that the results are bit-identical to it. mode 0: Adam, 1: Adam with L2 weight decay
// (g + wd·p), 2: AdamW (p·shrink).

function adam<T>(
  P: usize, G: usize, M: usize, V: usize, OP: usize, OM: usize, OV: usize, i0: i32, i1: i32,
  b1: f64, a1: f64, b2: f64, a2: f64, eps: f64, negStep: f64, bc2Sqrt: f64, wd: f64, shrink: f64, mode: i32,
): void {
  const sz: usize = sizeof<T>();
  const vb1 = f64x2.splat(b1), va1 = f64x2.splat(a1), vb2 = f64x2.splat(b2), va2 = f64x2.splat(a2);
  const veps = f64x2.splat(eps), vneg = f64x2.splat(negStep), vbc = f64x2.splat(bc2Sqrt);
  const vwd = f64x2.splat(wd), vsh = f64x2.splat(shrink);
  let i = i0;
  for (; i + 2 <= i1; i += 2) {
    const o: usize = <usize>i * sz;
    let p = ld2<T>(P + o);
    let g = ld2<T>(G + o);
    if (mode == 1) g = f64x2.add(g, f64x2.mul(vwd, p));
    else if (mode == 2) p = f64x2.mul(p, vsh);
    const m = f64x2.add(f64x2.mul(vb1, ld2<T>(M + o)), f64x2.mul(va1, g));
    const v = f64x2.add(f64x2.mul(vb2, ld2<T>(V + o)), f64x2.mul(f64x2.mul(va2, g), g));
    st2<T>(OM + o, m);
    st2<T>(OV + o, v);
    st2<T>(OP + o, f64x2.add(p, f64x2.div(f64x2.mul(vneg, m), f64x2.add(f64x2.div(f64x2.sqrt(v), vbc), veps))));
  }
  for (; i < i1; i++) {
    const o: usize = <usize>i * sz;
    let p = <f64>load<T>(P + o);
    let g = <f64>load<T>(G + o);
    if (mode == 1) g = g + wd * p;
    else if (mode == 2) p = p * shrink;
    const m = b1 * <f64>load<T>(M + o) + a1 * g;
    const v = b2 * <f64>load<T>(V + o) + a2 * g * g;
    store<T>(OM + o, <T>m);
    store<T>(OV + o, <T>v);
    store<T>(OP + o, <T>(p + (negStep * m) / (Math.sqrt(v) / bc2Sqrt + eps)));
  }
}

export function adam_f32(
  P: usize, G: usize, M: usize, V: usize, OP: usize, OM: usize, OV: usize, i0: i32, i1: i32,
  b1: f64, a1: f64, b2: f64, a2: f64, eps: f64, negStep: f64, bc2Sqrt: f64, wd: f64, shrink: f64, mode: i32,
): void {
  adam<f32>(P, G, M, V, OP, OM, OV, i0, i1, b1, a1, b2, a2, eps, negStep, bc2Sqrt, wd, shrink, mode);
}

export function adam_f64(
  P: usize, G: usize, M: usize, V: usize, OP: usize, OM: usize, OV: usize, i0: i32, i1: i32,
  b1: f64, a1: f64, b2: f64, a2: f64, eps: f64, negStep: f64, bc2Sqrt: f64, wd: f64, shrink: f64, mode: i32,
): void {
  adam<f64>(P, G, M, V, OP, OM, OV, i0, i1, b1, a1, b2, a2, eps, negStep, bc2Sqrt, wd, shrink, mode);
}
