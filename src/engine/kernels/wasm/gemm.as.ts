/**
 * WebAssembly SIMD kernels for matmul, the conv family and max-pooling (AssemblyScript; compiled by
 * scripts/build-wasm.mjs into kernels.wasm.ts, which wasm.ts instantiates).
 *
 * No runtime, no GC objects, no static data: every function works on raw linear memory at byte
 * addresses that the JS side (wasm.ts) allocates and fills. Each kernel is written once,
 * generic over the element type T (f32 or f64), and exported for both; a v128 holds
 * L = 16 / sizeof<T>() lanes (f32x4 or f64x2) and sums are accumulated in T.
 *
 * GEMM comes in two forms:
 *  - axpy form, C(i, j) (+)= Σ_p A(i, p) · B[p, j]: A read through two strides (any storage
 *    order, one element broadcast at a time), B with contiguous rows, vectorised along j.
 *    Register tiles of 4 rows × 2 vectors (8 accumulators), B swept in column panels of 2L
 *    so that the panel stays in L1 while all row blocks of A pass over it. When it fits in a
 *    static 64 KiB buffer, A is first packed in blocks of 4 rows (gemmAxpyP), so the inner loop
 *    moves one pointer per operand and reads A with constant offsets.
 *  - dot form, C(i, j) (+)= Σ_p A[i, p] · B[j, p]: both operands contiguous along p (the
 *    A·Bᵀ case), vectorised along p: 2 × 4 tiles of vector accumulators, summed across lanes
 *    at the end.
 * The conv family is im2col / col2im around these, as in fast.ts.
 *
 * Elementwise kernels (add, sub, mul, div, max, min, the comparisons; neg, abs, sqrt, square)
 * work lane-wise in T: each result is the correctly rounded T of the exact value, as the JS
 * loops give by computing in float64 and rounding once, so they agree bit for bit; max/min and
 * the comparisons use the reference kernels' exact rules (NaN, ties).
 */

// ---------------------------------------------------------------------------------------------
// helpers

@inline function vzero<T>(): v128 {
  return v128.splat<T>(<T>0);
}

/** a + x · b, lane-wise. */
@inline function madd<T>(a: v128, x: v128, b: v128): v128 {
  return v128.add<T>(a, v128.mul<T>(x, b));
}

/** The sum of the lanes of v. */
@inline function hsum<T>(v: v128): T {
  if (sizeof<T>() == 4) {
    return <T>((f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3)));
  }
  return <T>(f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1));
}

/** Stores v at c, or adds it to what is there. */
@inline function putT<T>(c: usize, v: v128, acc: bool): void {
  if (acc) v128.store(c, v128.add<T>(v128.load(c), v));
  else v128.store(c, v);
}

/** Store (or accumulate) a 4-row × 2-vector tile of C at c, rows ldcB bytes apart. */
@inline function putTile4x2<T>(c: usize, ldcB: usize, c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128, c30: v128, c31: v128, acc: bool): void {
  putT<T>(c, c00, acc);
  putT<T>(c + 16, c01, acc);
  putT<T>(c + ldcB, c10, acc);
  putT<T>(c + ldcB + 16, c11, acc);
  putT<T>(c + 2 * ldcB, c20, acc);
  putT<T>(c + 2 * ldcB + 16, c21, acc);
  putT<T>(c + 3 * ldcB, c30, acc);
  putT<T>(c + 3 * ldcB + 16, c31, acc);
}

/** Store (or accumulate) a 4-row × 1-vector tile of C at c. */
@inline function putTile4x1<T>(c: usize, ldcB: usize, c0: v128, c1: v128, c2: v128, c3: v128, acc: bool): void {
  putT<T>(c, c0, acc);
  putT<T>(c + ldcB, c1, acc);
  putT<T>(c + 2 * ldcB, c2, acc);
  putT<T>(c + 3 * ldcB, c3, acc);
}

@inline function putS<T>(c: usize, s: T, acc: bool): void {
  if (acc) store<T>(c, load<T>(c) + s);
  else store<T>(c, s);
}

/** ⌊a / b⌋ for b > 0. */
@inline function floorDiv(a: i32, b: i32): i32 {
  return a >= 0 ? a / b : -((b - 1 - a) / b);
}

/** ⌈a / b⌉ for b > 0. */
@inline function ceilDiv(a: i32, b: i32): i32 {
  return -floorDiv(-a, b);
}

@inline function min32(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

@inline function max32(a: i32, b: i32): i32 {
  return a > b ? a : b;
}

// ---------------------------------------------------------------------------------------------
// GEMM, axpy form

/**
 * C[i·ldc + j] (+)= Σ_p A[i·ai + p·ap] · B[p·ldb + j] for i < M, j < N, p < K (element strides,
 * byte addresses).
 */
function gemmAxpy<T>(
  M: i32, N: i32, K: i32,
  A: usize, ai: i32, ap: i32,
  B: usize, ldb: i32,
  C: usize, ldc: i32, acc: bool,
): void {
  const sz: usize = sizeof<T>();
  if (K > 1) {
    const M4 = M & ~3;
    if (M4 > 0 && <usize>M4 * <usize>K * sz <= PACK_BYTES) {
      gemmAxpyP<T>(M4, N, K, A, ai, ap, B, ldb, C, ldc, acc);
      for (let i = M4; i < M; i++) {
        gemmAxpyRow<T>(N, K, A + <usize>i * <usize>ai * sz, <usize>ap * sz, B, <usize>ldb * sz, C + <usize>i * <usize>ldc * sz, acc);
      }
      return;
    }
  }
  gemmAxpy4<T>(M, N, K, A, ai, ap, B, ldb, C, ldc, acc);
}

/** Bytes of the static buffer that gemmAxpyP packs A into. */
const PACK_BYTES: usize = 65536;
const PACK: usize = memory.data(<i32>PACK_BYTES, 16);

/**
 * The axpy form for M a multiple of 4 (M·K·sizeof<T>() ≤ PACK_BYTES): A is packed first into
 * blocks of 4 rows, PACK[(i/4)·4K + p·4 + i%4] = A[i·ai + p·ap], so that the micro-kernel reads
 * both operands through one moving pointer each with constant offsets; 4 × 2L register tiles
 * (6-row tiles and unrolling K by 2 measured slower: V8 spills or schedules worse).
 */
function gemmAxpyP<T>(
  M: i32, N: i32, K: i32,
  A: usize, ai: i32, ap: i32,
  B: usize, ldb: i32,
  C: usize, ldc: i32, acc: bool,
): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  const NR: i32 = 2 * L;
  const aiB: usize = <usize>ai * sz;
  const apB: usize = <usize>ap * sz;
  const ldbB: usize = <usize>ldb * sz;
  const ldcB: usize = <usize>ldc * sz;
  const blk: usize = 4 * <usize>K * sz;
  // pack
  for (let i = 0; i < M; i += 4) {
    let dst = PACK + <usize>(i >> 2) * blk;
    const a0 = A + <usize>i * aiB;
    const a1 = a0 + aiB;
    const a2 = a1 + aiB;
    const a3 = a2 + aiB;
    let pa: usize = 0;
    for (let p = 0; p < K; p++) {
      store<T>(dst, load<T>(a0 + pa));
      store<T>(dst, load<T>(a1 + pa), sz);
      store<T>(dst, load<T>(a2 + pa), 2 * sz);
      store<T>(dst, load<T>(a3 + pa), 3 * sz);
      dst += 4 * sz;
      pa += apB;
    }
  }
  let j = 0;
  for (; j + NR <= N; j += NR) {
    const bj = B + <usize>j * sz;
    for (let i = 0; i < M; i += 4) {
      let pa = PACK + <usize>(i >> 2) * blk;
      const pe = pa + blk;
      let c00 = vzero<T>(), c01 = vzero<T>(), c10 = vzero<T>(), c11 = vzero<T>();
      let c20 = vzero<T>(), c21 = vzero<T>(), c30 = vzero<T>(), c31 = vzero<T>();
      let b = bj;
      while (pa < pe) {
        let b0 = v128.load(b);
        let b1 = v128.load(b, 16);
        let x = v128.load_splat<T>(pa);
        c00 = madd<T>(c00, x, b0);
        c01 = madd<T>(c01, x, b1);
        x = v128.load_splat<T>(pa, sz);
        c10 = madd<T>(c10, x, b0);
        c11 = madd<T>(c11, x, b1);
        x = v128.load_splat<T>(pa, 2 * sz);
        c20 = madd<T>(c20, x, b0);
        c21 = madd<T>(c21, x, b1);
        x = v128.load_splat<T>(pa, 3 * sz);
        c30 = madd<T>(c30, x, b0);
        c31 = madd<T>(c31, x, b1);
        pa += 4 * sz;
        b += ldbB;
      }
      putTile4x2<T>(C + <usize>i * ldcB + <usize>j * sz, ldcB, c00, c01, c10, c11, c20, c21, c30, c31, acc);
    }
  }
  for (; j + L <= N; j += L) {
    const bj = B + <usize>j * sz;
    for (let i = 0; i < M; i += 4) {
      let pa = PACK + <usize>(i >> 2) * blk;
      const pe = pa + blk;
      let c0 = vzero<T>(), c1 = vzero<T>(), c2 = vzero<T>(), c3 = vzero<T>();
      let b = bj;
      while (pa < pe) {
        const b0 = v128.load(b);
        c0 = madd<T>(c0, v128.load_splat<T>(pa), b0);
        c1 = madd<T>(c1, v128.load_splat<T>(pa, sz), b0);
        c2 = madd<T>(c2, v128.load_splat<T>(pa, 2 * sz), b0);
        c3 = madd<T>(c3, v128.load_splat<T>(pa, 3 * sz), b0);
        pa += 4 * sz;
        b += ldbB;
      }
      putTile4x1<T>(C + <usize>i * ldcB + <usize>j * sz, ldcB, c0, c1, c2, c3, acc);
    }
  }
  for (; j < N; j++) {
    const bj = B + <usize>j * sz;
    for (let i = 0; i < M; i += 4) {
      let pa = PACK + <usize>(i >> 2) * blk;
      const pe = pa + blk;
      let s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0;
      let b = bj;
      while (pa < pe) {
        const y = load<T>(b);
        s0 += load<T>(pa) * y;
        s1 += load<T>(pa, sz) * y;
        s2 += load<T>(pa, 2 * sz) * y;
        s3 += load<T>(pa, 3 * sz) * y;
        pa += 4 * sz;
        b += ldbB;
      }
      const c = C + <usize>i * ldcB + <usize>j * sz;
      putS<T>(c, s0, acc);
      putS<T>(c + ldcB, s1, acc);
      putS<T>(c + 2 * ldcB, s2, acc);
      putS<T>(c + 3 * ldcB, s3, acc);
    }
  }
}

/** The axpy form with 4 × 2L register tiles, A read in place. */
function gemmAxpy4<T>(
  M: i32, N: i32, K: i32,
  A: usize, ai: i32, ap: i32,
  B: usize, ldb: i32,
  C: usize, ldc: i32, acc: bool,
): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  const NR: i32 = 2 * L;
  const aiB: usize = <usize>ai * sz;
  const apB: usize = <usize>ap * sz;
  const ldbB: usize = <usize>ldb * sz;
  const ldcB: usize = <usize>ldc * sz;
  if (K == 1) {
    gemmOuter<T>(M, N, A, aiB, B, C, ldcB, acc);
    return;
  }
  const M4 = M & ~3;
  if (M4 > 0) {
    let j = 0;
    // 4 × 2L tiles
    for (; j + NR <= N; j += NR) {
      const bj = B + <usize>j * sz;
      for (let i = 0; i < M4; i += 4) {
        const a0 = A + <usize>i * aiB;
        const a1 = a0 + aiB;
        const a2 = a1 + aiB;
        const a3 = a2 + aiB;
        let c00 = vzero<T>(), c01 = vzero<T>(), c10 = vzero<T>(), c11 = vzero<T>();
        let c20 = vzero<T>(), c21 = vzero<T>(), c30 = vzero<T>(), c31 = vzero<T>();
        let b = bj;
        let pa: usize = 0;
        for (let p = 0; p < K; p++) {
          const b0 = v128.load(b);
          const b1 = v128.load(b, 16);
          let x = v128.load_splat<T>(a0 + pa);
          c00 = madd<T>(c00, x, b0);
          c01 = madd<T>(c01, x, b1);
          x = v128.load_splat<T>(a1 + pa);
          c10 = madd<T>(c10, x, b0);
          c11 = madd<T>(c11, x, b1);
          x = v128.load_splat<T>(a2 + pa);
          c20 = madd<T>(c20, x, b0);
          c21 = madd<T>(c21, x, b1);
          x = v128.load_splat<T>(a3 + pa);
          c30 = madd<T>(c30, x, b0);
          c31 = madd<T>(c31, x, b1);
          pa += apB;
          b += ldbB;
        }
        putTile4x2<T>(C + <usize>i * ldcB + <usize>j * sz, ldcB, c00, c01, c10, c11, c20, c21, c30, c31, acc);
      }
    }
    // 4 × L tiles
    for (; j + L <= N; j += L) {
      const bj = B + <usize>j * sz;
      for (let i = 0; i < M4; i += 4) {
        const a0 = A + <usize>i * aiB;
        const a1 = a0 + aiB;
        const a2 = a1 + aiB;
        const a3 = a2 + aiB;
        let c0 = vzero<T>(), c1 = vzero<T>(), c2 = vzero<T>(), c3 = vzero<T>();
        let b = bj;
        let pa: usize = 0;
        for (let p = 0; p < K; p++) {
          const b0 = v128.load(b);
          c0 = madd<T>(c0, v128.load_splat<T>(a0 + pa), b0);
          c1 = madd<T>(c1, v128.load_splat<T>(a1 + pa), b0);
          c2 = madd<T>(c2, v128.load_splat<T>(a2 + pa), b0);
          c3 = madd<T>(c3, v128.load_splat<T>(a3 + pa), b0);
          pa += apB;
          b += ldbB;
        }
        putTile4x1<T>(C + <usize>i * ldcB + <usize>j * sz, ldcB, c0, c1, c2, c3, acc);
      }
    }
    // single columns
    for (; j < N; j++) {
      const bj = B + <usize>j * sz;
      for (let i = 0; i < M4; i += 4) {
        const a0 = A + <usize>i * aiB;
        const a1 = a0 + aiB;
        const a2 = a1 + aiB;
        const a3 = a2 + aiB;
        let s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0;
        let b = bj;
        let pa: usize = 0;
        for (let p = 0; p < K; p++) {
          const y = load<T>(b);
          s0 += load<T>(a0 + pa) * y;
          s1 += load<T>(a1 + pa) * y;
          s2 += load<T>(a2 + pa) * y;
          s3 += load<T>(a3 + pa) * y;
          pa += apB;
          b += ldbB;
        }
        const c = C + <usize>i * ldcB + <usize>j * sz;
        putS<T>(c, s0, acc);
        putS<T>(c + ldcB, s1, acc);
        putS<T>(c + 2 * ldcB, s2, acc);
        putS<T>(c + 3 * ldcB, s3, acc);
      }
    }
  }
  for (let i = M4; i < M; i++) gemmAxpyRow<T>(N, K, A + <usize>i * aiB, apB, B, ldbB, C + <usize>i * ldcB, acc);
}

/** The outer product C[i·ldc + j] (+)= a[i·ai] · b[j] (the axpy form with K = 1; store-bound). */
function gemmOuter<T>(M: i32, N: i32, A: usize, aiB: usize, B: usize, C: usize, ldcB: usize, acc: bool): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  for (let i = 0; i < M; i++) {
    const x = v128.load_splat<T>(A + <usize>i * aiB);
    const xs = load<T>(A + <usize>i * aiB);
    const c = C + <usize>i * ldcB;
    let j = 0;
    for (; j + 2 * L <= N; j += 2 * L) {
      const o = <usize>j * sz;
      putT<T>(c + o, v128.mul<T>(x, v128.load(B + o)), acc);
      putT<T>(c + o + 16, v128.mul<T>(x, v128.load(B + o, 16)), acc);
    }
    for (; j < N; j++) putS<T>(c + <usize>j * sz, xs * load<T>(B + <usize>j * sz), acc);
  }
}

/** One row of the axpy form: C[j] (+)= Σ_p a[p·ap] · B[p·ldb + j], tiles of 1 × 4L, 1 × L, 1 × 1. */
function gemmAxpyRow<T>(N: i32, K: i32, a: usize, apB: usize, B: usize, ldbB: usize, C: usize, acc: bool): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  let j = 0;
  for (; j + 4 * L <= N; j += 4 * L) {
    let c0 = vzero<T>(), c1 = vzero<T>(), c2 = vzero<T>(), c3 = vzero<T>();
    let b = B + <usize>j * sz;
    let pa = a;
    for (let p = 0; p < K; p++) {
      const x = v128.load_splat<T>(pa);
      c0 = madd<T>(c0, x, v128.load(b));
      c1 = madd<T>(c1, x, v128.load(b, 16));
      c2 = madd<T>(c2, x, v128.load(b, 32));
      c3 = madd<T>(c3, x, v128.load(b, 48));
      pa += apB;
      b += ldbB;
    }
    const c = C + <usize>j * sz;
    putT<T>(c, c0, acc);
    putT<T>(c + 16, c1, acc);
    putT<T>(c + 32, c2, acc);
    putT<T>(c + 48, c3, acc);
  }
  for (; j + L <= N; j += L) {
    let c0 = vzero<T>();
    let b = B + <usize>j * sz;
    let pa = a;
    for (let p = 0; p < K; p++) {
      c0 = madd<T>(c0, v128.load_splat<T>(pa), v128.load(b));
      pa += apB;
      b += ldbB;
    }
    putT<T>(C + <usize>j * sz, c0, acc);
  }
  for (; j < N; j++) {
    let s: T = 0;
    let b = B + <usize>j * sz;
    let pa = a;
    for (let p = 0; p < K; p++) {
      s += load<T>(pa) * load<T>(b);
      pa += apB;
      b += ldbB;
    }
    putS<T>(C + <usize>j * sz, s, acc);
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM, dot form

/** Σ_p a[p] · b[p] for p < K: vector lanes, then the lanes summed, then the tail. */
@inline function dot<T>(a: usize, b: usize, K: i32, KL: i32): T {
  const sz: usize = sizeof<T>();
  let v0 = vzero<T>(), v1 = vzero<T>();
  const L: i32 = 16 / <i32>sz;
  let p = 0;
  for (; p + 2 * L <= KL; p += 2 * L) {
    const o = <usize>p * sz;
    v0 = madd<T>(v0, v128.load(a + o), v128.load(b + o));
    v1 = madd<T>(v1, v128.load(a + o, 16), v128.load(b + o, 16));
  }
  if (p < KL) {
    const o = <usize>p * sz;
    v0 = madd<T>(v0, v128.load(a + o), v128.load(b + o));
  }
  let s = hsum<T>(v128.add<T>(v0, v1));
  for (p = KL; p < K; p++) s += load<T>(a + <usize>p * sz) * load<T>(b + <usize>p * sz);
  return s;
}

/** C[i·ldc + j] (+)= Σ_p A[i·lda + p] · B[j·ldb + p]. */
function gemmDot<T>(
  M: i32, N: i32, K: i32,
  A: usize, lda: i32,
  B: usize, ldb: i32,
  C: usize, ldc: i32, acc: bool,
): void {
  const sz: usize = sizeof<T>();
  const L: i32 = 16 / <i32>sz;
  const KL = K & ~(L - 1);
  const ldaB: usize = <usize>lda * sz;
  const ldbB: usize = <usize>ldb * sz;
  const ldcB: usize = <usize>ldc * sz;
  const M2 = M & ~1;
  let j = 0;
  for (; j + 4 <= N; j += 4) {
    const b0 = B + <usize>j * ldbB;
    const b1 = b0 + ldbB;
    const b2 = b1 + ldbB;
    const b3 = b2 + ldbB;
    let i = 0;
    for (; i < M2; i += 2) {
      const a0 = A + <usize>i * ldaB;
      const a1 = a0 + ldaB;
      let c00 = vzero<T>(), c01 = vzero<T>(), c02 = vzero<T>(), c03 = vzero<T>();
      let c10 = vzero<T>(), c11 = vzero<T>(), c12 = vzero<T>(), c13 = vzero<T>();
      for (let p = 0; p < KL; p += L) {
        const o = <usize>p * sz;
        const x0 = v128.load(a0 + o);
        const x1 = v128.load(a1 + o);
        let y = v128.load(b0 + o);
        c00 = madd<T>(c00, x0, y);
        c10 = madd<T>(c10, x1, y);
        y = v128.load(b1 + o);
        c01 = madd<T>(c01, x0, y);
        c11 = madd<T>(c11, x1, y);
        y = v128.load(b2 + o);
        c02 = madd<T>(c02, x0, y);
        c12 = madd<T>(c12, x1, y);
        y = v128.load(b3 + o);
        c03 = madd<T>(c03, x0, y);
        c13 = madd<T>(c13, x1, y);
      }
      let s00 = hsum<T>(c00), s01 = hsum<T>(c01), s02 = hsum<T>(c02), s03 = hsum<T>(c03);
      let s10 = hsum<T>(c10), s11 = hsum<T>(c11), s12 = hsum<T>(c12), s13 = hsum<T>(c13);
      for (let p = KL; p < K; p++) {
        const o = <usize>p * sz;
        const x0 = load<T>(a0 + o);
        const x1 = load<T>(a1 + o);
        let y = load<T>(b0 + o);
        s00 += x0 * y;
        s10 += x1 * y;
        y = load<T>(b1 + o);
        s01 += x0 * y;
        s11 += x1 * y;
        y = load<T>(b2 + o);
        s02 += x0 * y;
        s12 += x1 * y;
        y = load<T>(b3 + o);
        s03 += x0 * y;
        s13 += x1 * y;
      }
      const c = C + <usize>i * ldcB + <usize>j * sz;
      putS<T>(c, s00, acc);
      putS<T>(c + sz, s01, acc);
      putS<T>(c + 2 * sz, s02, acc);
      putS<T>(c + 3 * sz, s03, acc);
      putS<T>(c + ldcB, s10, acc);
      putS<T>(c + ldcB + sz, s11, acc);
      putS<T>(c + ldcB + 2 * sz, s12, acc);
      putS<T>(c + ldcB + 3 * sz, s13, acc);
    }
    if (i < M) {
      // the last row: 1 × 4, two vector accumulators per column to hide the add latency
      const a0 = A + <usize>i * ldaB;
      let c0 = vzero<T>(), c1 = vzero<T>(), c2 = vzero<T>(), c3 = vzero<T>();
      let d0 = vzero<T>(), d1 = vzero<T>(), d2 = vzero<T>(), d3 = vzero<T>();
      let p = 0;
      for (; p + 2 * L <= KL; p += 2 * L) {
        const o = <usize>p * sz;
        const x0 = v128.load(a0 + o);
        const x1 = v128.load(a0 + o, 16);
        c0 = madd<T>(c0, x0, v128.load(b0 + o));
        d0 = madd<T>(d0, x1, v128.load(b0 + o, 16));
        c1 = madd<T>(c1, x0, v128.load(b1 + o));
        d1 = madd<T>(d1, x1, v128.load(b1 + o, 16));
        c2 = madd<T>(c2, x0, v128.load(b2 + o));
        d2 = madd<T>(d2, x1, v128.load(b2 + o, 16));
        c3 = madd<T>(c3, x0, v128.load(b3 + o));
        d3 = madd<T>(d3, x1, v128.load(b3 + o, 16));
      }
      if (p < KL) {
        const o = <usize>p * sz;
        const x0 = v128.load(a0 + o);
        c0 = madd<T>(c0, x0, v128.load(b0 + o));
        c1 = madd<T>(c1, x0, v128.load(b1 + o));
        c2 = madd<T>(c2, x0, v128.load(b2 + o));
        c3 = madd<T>(c3, x0, v128.load(b3 + o));
      }
      let s0 = hsum<T>(v128.add<T>(c0, d0)), s1 = hsum<T>(v128.add<T>(c1, d1));
      let s2 = hsum<T>(v128.add<T>(c2, d2)), s3 = hsum<T>(v128.add<T>(c3, d3));
      for (p = KL; p < K; p++) {
        const o = <usize>p * sz;
        const x = load<T>(a0 + o);
        s0 += x * load<T>(b0 + o);
        s1 += x * load<T>(b1 + o);
        s2 += x * load<T>(b2 + o);
        s3 += x * load<T>(b3 + o);
      }
      const c = C + <usize>i * ldcB + <usize>j * sz;
      putS<T>(c, s0, acc);
      putS<T>(c + sz, s1, acc);
      putS<T>(c + 2 * sz, s2, acc);
      putS<T>(c + 3 * sz, s3, acc);
    }
  }
  for (; j < N; j++) {
    const b0 = B + <usize>j * ldbB;
    for (let i = 0; i < M; i++) {
      putS<T>(C + <usize>i * ldcB + <usize>j * sz, dot<T>(A + <usize>i * ldaB, b0, K, KL), acc);
    }
  }
}

/** dst[p·N + j] = src[j·K + p]: an [N, K] matrix transposed into [K, N]. */
function transpose<T>(src: usize, N: i32, K: i32, dst: usize): void {
  const sz: usize = sizeof<T>();
  // blocks of 8 × 8 to keep both sides in cache
  for (let j0 = 0; j0 < N; j0 += 8) {
    const j1 = min32(N, j0 + 8);
    for (let p0 = 0; p0 < K; p0 += 8) {
      const p1 = min32(K, p0 + 8);
      for (let j = j0; j < j1; j++) {
        for (let p = p0; p < p1; p++) {
          store<T>(dst + (<usize>p * <usize>N + <usize>j) * sz, load<T>(src + (<usize>j * <usize>K + <usize>p) * sz));
        }
      }
    }
  }
}

/** Below this inner dimension, A·Bᵀ transposes B and takes the axpy form. */
const DOT_MIN_K: i32 = 16;

/**
 * batch × (C_t [M, N] = op(A_t) op(B_t)), op(A) stored [M, K] (or [K, M] when transA), op(B)
 * stored [K, N] (or [N, K] when transB); `scratch` holds K·N elements when transB.
 */
function matmul<T>(batch: i32, M: i32, N: i32, K: i32, transA: bool, transB: bool, A: usize, B: usize, C: usize, scratch: usize): void {
  const sz: usize = sizeof<T>();
  const aS: usize = <usize>M * <usize>K * sz;
  const bS: usize = <usize>K * <usize>N * sz;
  const cS: usize = <usize>M * <usize>N * sz;
  for (let t = 0; t < batch; t++) {
    const a = A + <usize>t * aS;
    const b = B + <usize>t * bS;
    const c = C + <usize>t * cS;
    if (!transB) {
      gemmAxpy<T>(M, N, K, a, transA ? 1 : K, transA ? M : 1, b, N, c, N, false);
    } else if (!transA && K >= DOT_MIN_K) {
      gemmDot<T>(M, N, K, a, K, b, K, c, N, false);
    } else {
      transpose<T>(b, N, K, scratch);
      gemmAxpy<T>(M, N, K, a, transA ? 1 : K, transA ? M : 1, scratch, N, c, N, false);
    }
  }
}

export function matmul_f32(batch: i32, M: i32, N: i32, K: i32, transA: bool, transB: bool, A: usize, B: usize, C: usize, scratch: usize): void {
  matmul<f32>(batch, M, N, K, transA, transB, A, B, C, scratch);
}

export function matmul_f64(batch: i32, M: i32, N: i32, K: i32, transA: bool, transB: bool, A: usize, B: usize, C: usize, scratch: usize): void {
  matmul<f64>(batch, M, N, K, transA, transB, A, B, C, scratch);
}

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
 * The transpose of im2col for one image (ld = OH·OW): DX[…] += col[…] at the in-bounds positions.
 * col is scratch: in the "same" geometry its out-of-bounds entries are overwritten with 0.
 */
function col2im<T>(col: usize, Cg: i32, DX: usize): void {
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
          row += <usize>OHW * sz;
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
        row += <usize>OHW * sz;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// conv family (geometry from setGeom; x [N, C, H, W], w [O, C/G, KH, KW], y [N, O, OH, OW])

/** y_g[n] [Og, OHW] = w_g [Og, CKK] · col(x_g[n]) [CKK, OHW]; col holds CKK·OHW elements. */
function conv2d<T>(X: usize, Wt: usize, Y: usize, col: usize, N: i32, C: i32, O: i32, G: i32): void {
  const sz: usize = sizeof<T>();
  const Cg = C / G, Og = O / G;
  const HW = gH * gW, OHW = gOH * gOW, CKK = Cg * gKH * gKW;
  const pw = pointwise();
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const x = X + <usize>((n * C + g * Cg) * HW) * sz;
      const y = Y + <usize>((n * O + g * Og) * OHW) * sz;
      const w = Wt + <usize>(g * Og * CKK) * sz;
      if (pw) {
        gemmAxpy<T>(Og, OHW, CKK, w, CKK, 1, x, OHW, y, OHW, false);
      } else {
        im2col<T>(x, Cg, col, OHW);
        gemmAxpy<T>(Og, OHW, CKK, w, CKK, 1, col, OHW, y, OHW, false);
      }
    }
  }
}

/** col [CKK, OHW] = w_gᵀ · dy_g[n], then col2im onto dx (zeroed first); col holds CKK·OHW elements. */
function conv2dInputGrad<T>(DY: usize, Wt: usize, DX: usize, col: usize, N: i32, C: i32, O: i32, G: i32): void {
  const sz: usize = sizeof<T>();
  const Cg = C / G, Og = O / G;
  const HW = gH * gW, OHW = gOH * gOW, CKK = Cg * gKH * gKW;
  const pw = pointwise();
  if (!pw) memory.fill(DX, 0, <usize>(N * C * HW) * sz);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const dy = DY + <usize>((n * O + g * Og) * OHW) * sz;
      const dx = DX + <usize>((n * C + g * Cg) * HW) * sz;
      const w = Wt + <usize>(g * Og * CKK) * sz;
      if (pw) {
        // dx_g [Cg, HW] = w_gᵀ [Cg, Og] · dy_g [Og, HW]
        gemmAxpy<T>(Cg, OHW, Og, w, 1, CKK, dy, OHW, dx, OHW, false);
      } else {
        gemmAxpy<T>(CKK, OHW, Og, w, 1, CKK, dy, OHW, col, OHW, false);
        col2im<T>(col, Cg, dx);
      }
    }
  }
}

/**
 * dw_g [Og, CKK] = Σ_n dy_g[n] [Og, OHW] · col(x_g[n])ᵀ, as dot-form GEMMs over the images of
 * a chunk laid side by side (L = nb·OHW): col holds CKK·per·OHW elements, dyg Og·per·OHW
 * (used when per > 1). Chunks after the first accumulate.
 */
function conv2dFilterGrad<T>(X: usize, DY: usize, DW: usize, col: usize, dyg: usize, N: i32, C: i32, O: i32, G: i32, per: i32): void {
  const sz: usize = sizeof<T>();
  const Cg = C / G, Og = O / G;
  const HW = gH * gW, OHW = gOH * gOW, CKK = Cg * gKH * gKW;
  const pw = pointwise();
  for (let n0 = 0; n0 < N; n0 += per) {
    const nb = min32(per, N - n0);
    const L = nb * OHW;
    for (let g = 0; g < G; g++) {
      const dw = DW + <usize>(g * Og * CKK) * sz;
      let a: usize;
      let b: usize;
      if (nb == 1) {
        a = DY + <usize>((n0 * O + g * Og) * OHW) * sz;
        const x = X + <usize>((n0 * C + g * Cg) * HW) * sz;
        if (pw) {
          b = x;
        } else {
          im2col<T>(x, Cg, col, L);
          b = col;
        }
      } else {
        for (let k = 0; k < nb; k++) {
          im2col<T>(X + <usize>(((n0 + k) * C + g * Cg) * HW) * sz, Cg, col + <usize>(k * OHW) * sz, L);
          for (let o = 0; o < Og; o++) {
            memory.copy(dyg + <usize>(o * L + k * OHW) * sz, DY + <usize>((((n0 + k) * O + g * Og + o) * OHW)) * sz, <usize>OHW * sz);
          }
        }
        a = dyg;
        b = col;
      }
      gemmDot<T>(Og, CKK, L, a, L, b, L, dw, CKK, n0 > 0);
    }
  }
}

export function conv2d_f32(X: usize, Wt: usize, Y: usize, col: usize, N: i32, C: i32, O: i32, G: i32): void {
  conv2d<f32>(X, Wt, Y, col, N, C, O, G);
}

export function conv2d_f64(X: usize, Wt: usize, Y: usize, col: usize, N: i32, C: i32, O: i32, G: i32): void {
  conv2d<f64>(X, Wt, Y, col, N, C, O, G);
}

export function conv2d_input_grad_f32(DY: usize, Wt: usize, DX: usize, col: usize, N: i32, C: i32, O: i32, G: i32): void {
  conv2dInputGrad<f32>(DY, Wt, DX, col, N, C, O, G);
}

export function conv2d_input_grad_f64(DY: usize, Wt: usize, DX: usize, col: usize, N: i32, C: i32, O: i32, G: i32): void {
  conv2dInputGrad<f64>(DY, Wt, DX, col, N, C, O, G);
}

export function conv2d_filter_grad_f32(X: usize, DY: usize, DW: usize, col: usize, dyg: usize, N: i32, C: i32, O: i32, G: i32, per: i32): void {
  conv2dFilterGrad<f32>(X, DY, DW, col, dyg, N, C, O, G, per);
}

export function conv2d_filter_grad_f64(X: usize, DY: usize, DW: usize, col: usize, dyg: usize, N: i32, C: i32, O: i32, G: i32, per: i32): void {
  conv2dFilterGrad<f64>(X, DY, DW, col, dyg, N, C, O, G, per);
}

/** The first free byte after the module's own data (where the JS side starts allocating). */
export function heapBase(): usize {
  return __heap_base;
}

// ---------------------------------------------------------------------------------------------
// max pooling (the selection rule of linalg_ref.ts: scanning the in-bounds window elements in
// row-major order, the candidate is replaced when k > best or k is NaN, starting from best = −∞
// and the first in-bounds element; a window without in-bounds elements selects nothing)

let pKH: i32 = 2, pKW: i32 = 2, pSH: i32 = 2, pSW: i32 = 2, pPH: i32 = 0, pPW: i32 = 0;

export function setPool(KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32): void {
  pKH = KH; pKW = KW; pSH = sh; pSW = sw; pPH = ph; pPW = pw;
}

/**
 * idx[o] = the element index (into the NC·H·W planes of key) that window o selects, −1 if none,
 * for the NC·OH·OW windows in output order.
 */
function poolArgmax<T>(Kp: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, idx: usize): void {
  const sz: usize = sizeof<T>();
  const KH = pKH, KW = pKW, sh = pSH, sw = pSW, ph = pPH, pw = pPW;
  let o: usize = idx;
  if (KH == 2 && KW == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0) {
    // every window in bounds; candidates in row-major order
    // (branch-free: after a ReLU the comparisons are unpredictable; f32 takes 4 windows at a time)
    const OW4 = sizeof<T>() == 4 ? OW & ~3 : 0;
    const step = i32x4(0, 2, 4, 6);
    const one = i32x4.splat(1);
    const wv = i32x4.splat(W);
    for (let q = 0; q < NC; q++) {
      for (let oh = 0; oh < OH; oh++) {
        const r0 = q * H * W + 2 * oh * W;
        let ow = 0;
        for (; ow < OW4; ow += 4) {
          const i0 = r0 + 2 * ow;
          const p0 = Kp + <usize>i0 * sz;
          const p2 = p0 + <usize>W * sz;
          const u0 = v128.load(p0), u1 = v128.load(p0, 16);
          const w0 = v128.load(p2), w1 = v128.load(p2, 16);
          // even and odd columns of the two rows
          const a = v128.shuffle<f32>(u0, u1, 0, 2, 4, 6);
          const b = v128.shuffle<f32>(u0, u1, 1, 3, 5, 7);
          const c = v128.shuffle<f32>(w0, w1, 0, 2, 4, 6);
          const d = v128.shuffle<f32>(w0, w1, 1, 3, 5, 7);
          const ia = i32x4.add(i32x4.splat(i0), step);
          const ic = i32x4.add(ia, wv);
          let best = a;
          let arg = ia;
          let m = v128.or(f32x4.gt(b, best), f32x4.ne(b, b));
          best = v128.bitselect(b, best, m);
          arg = v128.bitselect(i32x4.add(ia, one), arg, m);
          m = v128.or(f32x4.gt(c, best), f32x4.ne(c, c));
          best = v128.bitselect(c, best, m);
          arg = v128.bitselect(ic, arg, m);
          m = v128.or(f32x4.gt(d, best), f32x4.ne(d, d));
          arg = v128.bitselect(i32x4.add(ic, one), arg, m);
          v128.store(o, arg);
          o += 16;
        }
        for (; ow < OW; ow++) {
          const i0 = r0 + 2 * ow;
          const i2 = i0 + W;
          let arg = i0;
          let best = load<T>(Kp + <usize>i0 * sz);
          let v = load<T>(Kp + <usize>(i0 + 1) * sz);
          let m = v > best || v != v;
          best = select<T>(v, best, m);
          arg = select<i32>(i0 + 1, arg, m);
          v = load<T>(Kp + <usize>i2 * sz);
          m = v > best || v != v;
          best = select<T>(v, best, m);
          arg = select<i32>(i2, arg, m);
          v = load<T>(Kp + <usize>(i2 + 1) * sz);
          m = v > best || v != v;
          arg = select<i32>(i2 + 1, arg, m);
          store<i32>(o, arg);
          o += 4;
        }
      }
    }
    return;
  }
  for (let q = 0; q < NC; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = max32(0, oh * sh - ph);
      const ih1 = min32(H, oh * sh - ph + KH);
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = max32(0, ow * sw - pw);
        const iw1 = min32(W, ow * sw - pw + KW);
        let arg = -1;
        if (ih0 < ih1 && iw0 < iw1) {
          arg = base + ih0 * W + iw0;
          let best = <T>(-Infinity);
          for (let ih = ih0; ih < ih1; ih++) {
            const r = base + ih * W;
            for (let iw = iw0; iw < iw1; iw++) {
              const v = load<T>(Kp + <usize>(r + iw) * sz);
              if (v > best || v != v) {
                best = v;
                arg = r + iw;
              }
            }
          }
        }
        store<i32>(o, arg);
        o += 4;
      }
    }
  }
}

/** out[o] = val[selected element of window o] (0 where a window selects nothing). */
function maxpool<T>(Kp: usize, V: usize, Out: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  const sz: usize = sizeof<T>();
  poolArgmax<T>(Kp, NC, H, W, OH, OW, idx);
  const n = NC * OH * OW;
  for (let o = 0; o < n; o++) {
    const a = load<i32>(idx + (<usize>o << 2));
    store<T>(Out + <usize>o * sz, a < 0 ? <T>0 : load<T>(V + <usize>a * sz));
  }
}

/**
 * dx (zeroed here) with dy[o] added at the element that window o selects, in output order. The
 * JS side uses this only for non-overlapping windows (one contribution per element, so the
 * result is exact in any precision).
 */
function maxpoolScatter<T>(Kp: usize, DY: usize, DX: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  const sz: usize = sizeof<T>();
  poolArgmax<T>(Kp, NC, H, W, OH, OW, idx);
  memory.fill(DX, 0, <usize>(NC * H * W) * sz);
  const n = NC * OH * OW;
  for (let o = 0; o < n; o++) {
    const a = load<i32>(idx + (<usize>o << 2));
    if (a >= 0) {
      const d = DX + <usize>a * sz;
      store<T>(d, load<T>(d) + load<T>(DY + <usize>o * sz));
    }
  }
}

export function maxpool_f32(Kp: usize, V: usize, Out: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  maxpool<f32>(Kp, V, Out, idx, NC, H, W, OH, OW);
}

export function maxpool_f64(Kp: usize, V: usize, Out: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  maxpool<f64>(Kp, V, Out, idx, NC, H, W, OH, OW);
}

export function maxpool_scatter_f32(Kp: usize, DY: usize, DX: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  maxpoolScatter<f32>(Kp, DY, DX, idx, NC, H, W, OH, OW);
}

export function maxpool_scatter_f64(Kp: usize, DY: usize, DX: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  maxpoolScatter<f64>(Kp, DY, DX, idx, NC, H, W, OH, OW);
}

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

// transcendental: 0 exp, 1 log, 2 log1p, 3 tanh, 4 mish, 5 mish_grad — float32 data computed in float64 with the
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
    default: return mishGrad64(x);
  }
}

/** O[i] = op(A[i]) for i < n, float32 arrays. */
export function ew_math_f32(op: i32, A: usize, O: usize, n: i32): void {
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
