/**
 * Helpers shared by the AssemblyScript kernel sources (gemm, conv, pool, elementwise): all
 * inlined, and heapBase, which kernels.as.ts exports from the module.
 */

@inline export function vzero<T>(): v128 {
  return v128.splat<T>(<T>0);
}

/** The two elements of type T at a as float64 lanes (float32 promoted exactly). */
@inline export function ld2<T>(a: usize): v128 {
  if (sizeof<T>() == 4) return f64x2.promote_low_f32x4(v128.load64_zero(a));
  return v128.load(a);
}

/** Store two float64 lanes at a as elements of type T (float32: rounded to nearest). */
@inline export function st2<T>(a: usize, v: v128): void {
  if (sizeof<T>() == 4) v128.store64_lane(a, f32x4.demote_f64x2_zero(v), 0);
  else v128.store(a, v);
}

/** ⌊a / b⌋ for b > 0. */
@inline export function floorDiv(a: i32, b: i32): i32 {
  return a >= 0 ? a / b : -((b - 1 - a) / b);
}

/** ⌈a / b⌉ for b > 0. */
@inline export function ceilDiv(a: i32, b: i32): i32 {
  return -floorDiv(-a, b);
}

@inline export function min32(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

@inline export function max32(a: i32, b: i32): i32 {
  return a > b ? a : b;
}

/** The first free byte after the module's own data (where the JS side starts allocating). */
export function heapBase(): usize {
  return __heap_base;
}
