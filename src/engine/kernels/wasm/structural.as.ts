/**
 * reduce_sum and broadcast over (at most) three coalesced axes [A, B, R] (strided.ts's coalesce:
 * extent-1 axes dropped, axes contiguous in both buffers merged), bit-identical to strided.ts's
 * loops, which js.ts and the reference use:
 *
 * - reduce_sum_T keeps axis B and sums A and R (dst strides [0, 1, 0]; the source contiguous):
 *   for each kept element b, in the order of the JS odometer, acc = 0 (the JS loops start from the
 *   zero-filled output), then for each a,
 *   acc += the float64 sum of the run of R elements (four interleaved partial sums, a0 + a1 +
 *   (a2 + a3), as strided.ts's sumRun), then O[b] = acc rounded to T. A part computes the kept
 *   elements [b0, b1): each output element is computed whole by one part, in the same order
 *   whatever the split, so results are identical for every thread count.
 * - broadcast_T writes O[(a·B + b)·R + r] = I[a·sA + b·sB + r·sR] for (a, b) planes
 *   [p0, p1) of the A·B planes (copies: exact).
 */

/** The float64 sum of the f32 run at P of n elements, as strided.ts's sumRun (four partial sums). */
@inline function sumRunF32(P: usize, n: i32): f64 {
  // lanes (a0, a1) take elements 4k, 4k + 1; (a2, a3) take 4k + 2, 4k + 3
  let s01 = f64x2.splat(0.0);
  let s23 = f64x2.splat(0.0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(P + (<usize>i << 2));
    s01 = f64x2.add(s01, f64x2.promote_low_f32x4(v));
    s23 = f64x2.add(s23, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
  }
  let a0 = f64x2.extract_lane(s01, 0);
  for (; i < n; i++) a0 += <f64>load<f32>(P + (<usize>i << 2));
  return a0 + f64x2.extract_lane(s01, 1) + (f64x2.extract_lane(s23, 0) + f64x2.extract_lane(s23, 1));
}

@inline function sumRunF64(P: usize, n: i32): f64 {
  let s01 = f64x2.splat(0.0);
  let s23 = f64x2.splat(0.0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = P + (<usize>i << 3);
    s01 = f64x2.add(s01, v128.load(q));
    s23 = f64x2.add(s23, v128.load(q, 16));
  }
  let a0 = f64x2.extract_lane(s01, 0);
  for (; i < n; i++) a0 += load<f64>(P + (<usize>i << 3));
  return a0 + f64x2.extract_lane(s01, 1) + (f64x2.extract_lane(s23, 0) + f64x2.extract_lane(s23, 1));
}

/** O[b] = Σ_a Σ_r I[(a·B + b)·R + r] for b in [b0, b1), float32 data (see the file header). */
export function reduce_sum_f32(I: usize, O: usize, A: i32, B: i32, R: i32, b0: i32, b1: i32): void {
  for (let b = b0; b < b1; b++) {
    const q = O + (<usize>b << 2);
    let acc: f32 = 0; // the JS loops start from the zero-filled output
    for (let a = 0; a < A; a++) {
      const run = I + ((<usize>a * <usize>B + <usize>b) * <usize>R << 2);
      acc = <f32>(<f64>acc + sumRunF32(run, R));
    }
    store<f32>(q, acc);
  }
}

export function reduce_sum_f64(I: usize, O: usize, A: i32, B: i32, R: i32, b0: i32, b1: i32): void {
  for (let b = b0; b < b1; b++) {
    const q = O + (<usize>b << 3);
    let acc: f64 = 0;
    for (let a = 0; a < A; a++) {
      const run = I + ((<usize>a * <usize>B + <usize>b) * <usize>R << 3);
      acc = acc + sumRunF64(run, R);
    }
    store<f64>(q, acc);
  }
}

/** One plane's run of R elements: a fill (sR = 0), a copy (sR = 1) or a strided gather. */
@inline function runOf<T>(I: usize, O: usize, R: i32, sR: i32): void {
  const sz: usize = sizeof<T>();
  if (sR == 0) {
    const v = load<T>(I);
    const w = v128.splat<T>(v);
    const L: i32 = 16 / <i32>sz;
    let r = 0;
    for (; r + L <= R; r += L) v128.store(O + <usize>r * sz, w);
    for (; r < R; r++) store<T>(O + <usize>r * sz, v);
  } else if (sR == 1) {
    memory.copy(O, I, <usize>R * sz);
  } else {
    for (let r = 0; r < R; r++) store<T>(O + <usize>r * sz, load<T>(I + <usize>r * <usize>sR * sz));
  }
}

@inline function broadcast<T>(I: usize, O: usize, B: i32, R: i32, sA: i32, sB: i32, sR: i32, p0: i32, p1: i32): void {
  const sz: usize = sizeof<T>();
  for (let p = p0; p < p1; p++) {
    const a = p / B;
    const b = p - a * B;
    runOf<T>(I + (<usize>a * <usize>sA + <usize>b * <usize>sB) * sz, O + <usize>p * <usize>R * sz, R, sR);
  }
}

/** O[(a·B + b)·R + r] = I[a·sA + b·sB + r·sR] for the planes p = a·B + b in [p0, p1). */
export function broadcast_f32(I: usize, O: usize, B: i32, R: i32, sA: i32, sB: i32, sR: i32, p0: i32, p1: i32): void {
  broadcast<f32>(I, O, B, R, sA, sB, sR, p0, p1);
}

export function broadcast_f64(I: usize, O: usize, B: i32, R: i32, sA: i32, sB: i32, sR: i32, p0: i32, p1: i32): void {
  broadcast<f64>(I, O, B, R, sA, sB, sR, p0, p1);
}
