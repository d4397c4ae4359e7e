/**
 * Helpers shared by the AssemblyScript kernel sources (gemm, conv, pool, elementwise): all
 * inlined, and heapBase, which kernels.as.ts exports from the module.
 */

@inline export function vzero<T>(): v128 {
  return v128.splat<T>(<T>0);
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
