/**
 * GEMM (matmul and the products inside the conv family) in WebAssembly SIMD. Each kernel is
 * written once, generic over the element type T (f32 or f64); a v128 holds L = 16 / sizeof<T>()
 * lanes (f32x4 or f64x2) and sums are accumulated in T.
 *
 * Two forms:
 *  - axpy form, C(i, j) (+)= Σ_p A(i, p) · B[p, j]: A read through two strides (any storage
 *    order, one element broadcast at a time), B with contiguous rows, vectorised along j.
 *    Register tiles of 4 rows × 2 vectors (8 accumulators), B swept in column panels of 2L
 *    so that the panel stays in L1 while all row blocks of A pass over it. When it fits in a
 *    static 64 KiB buffer (PACK, the module's only static data), A is first packed in blocks
 *    of 4 rows (gemmAxpyP), so the inner loop moves one pointer per operand and reads A with
 *    constant offsets. (A kernel worker thread packs into a buffer of its own: setPack.)
 *  - dot form, C(i, j) (+)= Σ_p A[i, p] · B[j, p]: both operands contiguous along p (the
 *    A·Bᵀ case), vectorised along p: 2 × 4 tiles of vector accumulators, summed across lanes
 *    at the end.
 */
import { max32, min32, vzero } from './common.as';

/**
 * a + x · b, lane-wise. In the relaxed-SIMD build (compiled with `--enable relaxed-simd`, so
 * ASC_FEATURE_RELAXED_SIMD is true; the second module of scripts/build-wasm.mjs) the f32 case is
 * f32x4.relaxed_madd: fused (one rounding) where the hardware has FMA, so its sums differ from the
 * plain build's by float32 rounding; the f64 case stays the plain multiply and add in both builds,
 * so float64 results are identical across them.
 */
@inline export function madd<T>(a: v128, x: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD && sizeof<T>() == 4) return f32x4.relaxed_madd(x, b, a);
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

/** Stores (or adds) the rows < rows of a 4-row tile's vector at c (rows ldcB bytes apart). */
@inline function putRows<T>(c: usize, ldcB: usize, r0: v128, r1: v128, r2: v128, r3: v128, rows: i32, acc: bool): void {
  if (acc) {
    v128.store(c, v128.add<T>(v128.load(c), r0));
    if (rows > 1) v128.store(c + ldcB, v128.add<T>(v128.load(c + ldcB), r1));
    if (rows > 2) v128.store(c + 2 * ldcB, v128.add<T>(v128.load(c + 2 * ldcB), r2));
    if (rows > 3) v128.store(c + 3 * ldcB, v128.add<T>(v128.load(c + 3 * ldcB), r3));
  } else {
    v128.store(c, r0);
    if (rows > 1) v128.store(c + ldcB, r1);
    if (rows > 2) v128.store(c + 2 * ldcB, r2);
    if (rows > 3) v128.store(c + 3 * ldcB, r3);
  }
}

/**
 * The 4 × 2L micro-kernel: A packed in a 4-row block from pa to pe (4 elements per step), B rows
 * of two vectors ldbB bytes apart from b; the rows < rows of the tile's first vector go to c0,
 * of its second (when `two`) to c1, rows ldcB bytes apart, stored or (acc) added.
 */
@inline export function tile4x2<T>(
  pa: usize, pe: usize, b: usize, ldbB: usize, c0: usize, c1: usize, ldcB: usize, rows: i32, two: bool, acc: bool,
): void {
  const sz: usize = sizeof<T>();
  let c00 = vzero<T>(), c01 = vzero<T>(), c10 = vzero<T>(), c11 = vzero<T>();
  let c20 = vzero<T>(), c21 = vzero<T>(), c30 = vzero<T>(), c31 = vzero<T>();
  while (pa < pe) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
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
  putRows<T>(c0, ldcB, c00, c10, c20, c30, rows, acc);
  if (two) putRows<T>(c1, ldcB, c01, c11, c21, c31, rows, acc);
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

// ---------------------------------------------------------------------------------------------
// GEMM, axpy form

/**
 * C[i·ldc + j] (+)= Σ_p A[i·ai + p·ap] · B[p·ldb + j] for i < M, j < N, p < K (element strides,
 * byte addresses).
 */
export function gemmAxpy<T>(
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

/** Bytes of the buffer that gemmAxpyP packs A into. */
const PACK_BYTES: usize = 65536;

/**
 * Rows of A (K elements each) that one gemmAxpy call packs: a multiple of 4, at least 4, at most
 * PACK_BYTES of them. Callers that split M into chunks of these, from a row that is a multiple of
 * 4, send every row down the same path (packed 4-row tiles; single rows only at M's end) however
 * else they split the rows.
 */
@inline export function packRows<T>(K: i32): i32 {
  return max<i32>(4, (<i32>(PACK_BYTES / sizeof<T>()) / K) & ~3);
}
/** Bytes after the A pack for a packed panel of B (K × 2L elements: K ≤ 4096). */
const PACKB_BYTES: usize = 131072;
/** The calling thread's static packing buffer (below heapBase): A's pack, then B's panel. */
const PACK: usize = memory.data(<i32>(PACK_BYTES + PACKB_BYTES), 16);
/**
 * This instance's packing buffer: PACK, or (in a kernel worker thread, whose instance shares the
 * memory with the calling thread's) a PACK_BYTES region of its own that the JS side sets per task.
 */
let gPack: usize = PACK;

/** Use the PACK_BYTES bytes at p (16-byte aligned) as this instance's packing buffer; 0: the static one. */
export function setPack(p: usize): void {
  gPack = p == 0 ? PACK : p;
}

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
  const pack = gPack;
  // pack
  for (let i = 0; i < M; i += 4) {
    let dst = pack + <usize>(i >> 2) * blk;
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
  const packB = <usize>K * 32 <= PACKB_BYTES && M >= 8;
  const bp = pack + PACK_BYTES;
  const ldbP: usize = packB ? 32 : ldbB;
  for (; j + NR <= N; j += NR) {
    let bj = B + <usize>j * sz;
    if (packB) {
      let s = bj, d = bp;
      for (let p = 0; p < K; p++) {
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
        s += ldbB;
        d += 32;
      }
      bj = bp;
    }
    for (let i = 0; i < M; i += 4) {
      const pa = pack + <usize>(i >> 2) * blk;
      const c = C + <usize>i * ldcB + <usize>j * sz;
      tile4x2<T>(pa, pa + blk, bj, ldbP, c, c + 16, ldcB, 4, true, acc);
    }
  }
  for (; j + L <= N; j += L) {
    const bj = B + <usize>j * sz;
    for (let i = 0; i < M; i += 4) {
      let pa = pack + <usize>(i >> 2) * blk;
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
      let pa = pack + <usize>(i >> 2) * blk;
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
export function gemmDot<T>(
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
export function transpose<T>(src: usize, N: i32, K: i32, dst: usize): void {
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
 * stored [K, N] (or [N, K] when transB), restricted to the output rows r ∈ [r0, r1) of the batch
 * × M rows (r = t·M + i) and the columns j ∈ [j0, j1); `scratch` holds K·(j1 − j0) elements when
 * transB. Every output element is summed in the same order whatever the range (the axpy form
 * sums each element along p alone; the dot form pairs rows and groups columns by 4, so the
 * threads' ranges start at multiples of 4 within each matrix): results are bit-identical for
 * any partition of the rows and columns.
 */
function matmul<T>(
  batch: i32, M: i32, N: i32, K: i32, transA: bool, transB: bool, A: usize, B: usize, C: usize, scratch: usize,
  r0: i32, r1: i32, j0: i32, j1: i32,
): void {
  const sz: usize = sizeof<T>();
  const aS: usize = <usize>M * <usize>K * sz;
  const bS: usize = <usize>K * <usize>N * sz;
  const cS: usize = <usize>M * <usize>N * sz;
  const nn = j1 - j0;
  if (nn <= 0 || M <= 0) return;
  for (let t = r0 / M; t < batch && t * M < r1; t++) {
    const i0 = max32(r0 - t * M, 0);
    const i1 = min32(r1 - t * M, M);
    if (i0 >= i1) continue;
    const mm = i1 - i0;
    const a = A + <usize>t * aS + <usize>i0 * (transA ? 1 : <usize>K) * sz;
    const b = B + <usize>t * bS;
    const c = C + <usize>t * cS + (<usize>i0 * <usize>N + <usize>j0) * sz;
    if (!transB) {
      gemmAxpy<T>(mm, nn, K, a, transA ? 1 : K, transA ? M : 1, b + <usize>j0 * sz, N, c, N, false);
    } else if (!transA && K >= DOT_MIN_K) {
      gemmDot<T>(mm, nn, K, a, K, b + <usize>j0 * <usize>K * sz, K, c, N, false);
    } else {
      transpose<T>(b + <usize>j0 * <usize>K * sz, nn, K, scratch);
      gemmAxpy<T>(mm, nn, K, a, transA ? 1 : K, transA ? M : 1, scratch, nn, c, N, false);
    }
  }
}

export function matmul_f32(
  batch: i32, M: i32, N: i32, K: i32, transA: bool, transB: bool, A: usize, B: usize, C: usize, scratch: usize,
  r0: i32, r1: i32, j0: i32, j1: i32,
): void {
  matmul<f32>(batch, M, N, K, transA, transB, A, B, C, scratch, r0, r1, j0, j1);
}

export function matmul_f64(
  batch: i32, M: i32, N: i32, K: i32, transA: bool, transB: bool, A: usize, B: usize, C: usize, scratch: usize,
  r0: i32, r1: i32, j0: i32, j1: i32,
): void {
  matmul<f64>(batch, M, N, K, transA, transB, A, B, C, scratch, r0, r1, j0, j1);
}

/**
 * The float32 multiply-add peak of this build on one thread: `n` rounds of 12 independent f32x4
 * accumulators a ← a + x·b (madd: fused in the relaxed build), all in registers, so nothing but
 * the arithmetic is timed (8 flops per accumulator and round: 4 lanes × multiply and add). The
 * result only keeps the work from being optimised away. For the benchmark's "% of peak".
 */
export function simd_peak_f32(n: i32): f32 {
  const x = f32x4.splat(0.999999), b = f32x4.splat(1e-7);
  let a0 = f32x4.splat(1), a1 = f32x4.splat(2), a2 = f32x4.splat(3), a3 = f32x4.splat(4);
  let a4 = f32x4.splat(5), a5 = f32x4.splat(6), a6 = f32x4.splat(7), a7 = f32x4.splat(8);
  let a8 = f32x4.splat(9), a9 = f32x4.splat(10), a10 = f32x4.splat(11), a11 = f32x4.splat(12);
  for (let i = 0; i < n; i++) {
    a0 = madd<f32>(a0, x, b); a1 = madd<f32>(a1, x, b); a2 = madd<f32>(a2, x, b); a3 = madd<f32>(a3, x, b);
    a4 = madd<f32>(a4, x, b); a5 = madd<f32>(a5, x, b); a6 = madd<f32>(a6, x, b); a7 = madd<f32>(a7, x, b);
    a8 = madd<f32>(a8, x, b); a9 = madd<f32>(a9, x, b); a10 = madd<f32>(a10, x, b); a11 = madd<f32>(a11, x, b);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  return hsum<f32>(f32x4.add(s, f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11))));
}
