/**
 * The WebAssembly SIMD kernels (AssemblyScript): the entry file that scripts/build-wasm.mjs
 * compiles into kernels.wasm.ts, which wasm.ts instantiates. Its exports are the module's:
 *
 *   gemm.as.ts          matmul (GEMM in axpy and dot form; also used by the conv family)
 *   conv.as.ts          conv2d, conv2d_input_grad, conv2d_filter_grad (im2col / col2im + GEMM)
 *   pool.as.ts          maxpool2d and its scatter (overlapping windows summed in float64)
 *   elementwise.as.ts   the elementwise kernels (op codes shared with wasm.ts) and the Adam update
 *   structural.as.ts    reduce_sum and broadcast over three coalesced axes
 *   winograd.as.ts      float32 3×3 stride-1 convolutions by Winograd F(2×2, 3×3) (conv2d, input and filter gradients)
 *   normalize.as.ts     BatchNorm's bn_normalize, bn_normalize_jvp, channel_moments, channel_sums,
 *                       bn_affine, bn_sums and bn_affine_jvp
 *   common.as.ts        inlined helpers
 *
 * No runtime and no GC objects: every function works on raw linear memory at byte addresses
 * that the JS side (wasm.ts) allocates and fills. The only static data is gemm.as.ts's 64 KiB
 * packing buffer, below `heapBase()` (and the math library's constant tables). Each kernel is
 * written once, generic over the element type T (f32 or f64), and exported for both.
 *
 * The memory is imported and shared (env.memory, a shared WebAssembly.Memory): the kernel worker
 * threads of threads.ts each instantiate this module on the same memory and run parts of one
 * call. Module globals (the conv and pool geometry, the packing buffer's address) are per
 * instance, so each thread sets its own; the only shared static state is read-only.
 */

export { matmul_f32, matmul_f64, setPack, simd_peak_f32 } from './gemm.as';
export {
  setGeom,
  conv2d_f32, conv2d_f64,
  conv2d_input_grad_f32, conv2d_input_grad_f64,
  conv2d_filter_grad_f32, conv2d_filter_grad_f64,
  conv2d_implicit_f32, conv2d_implicit_f64,
  conv2d_pack_f32, conv2d_pack_f64,
} from './conv.as';
export { heapBase } from './common.as';
export {
  setPool,
  maxpool_f32,
  maxpool_f64,
  maxpool_scatter_f32,
  maxpool_scatter_f64,
  maxpool_scatter_overlap_f32,
  maxpool_scatter_overlap_f64,
} from './pool.as';
export { mish_vjp_f32, adam_f32, adam_f64, channel_affine_f32, channel_affine_f64, ew_select_f32, ew_select_f64, ew_math_f32, ew_binary_f32, ew_binary_f64, ew_unary_f32, ew_unary_f64 } from './elementwise.as';
export {
  bn_normalize_f32, bn_normalize_f64,
  bn_normalize_jvp_f32, bn_normalize_jvp_f64,
  channel_moments_f32, channel_moments_f64,
  channel_sums_f32, channel_sums_f64,
  bn_affine_f32, bn_affine_f64,
  bn_sums_f32, bn_sums_f64,
  bn_affine_jvp_f32, bn_affine_jvp_f64,
} from './normalize.as';
export { winograd_conv_f32, winograd_filter_f32, winograd_filter_out_f32, winograd_weights_f32 } from './winograd.as';
export { reduce_sum_f32, reduce_sum_f64, broadcast_f32, broadcast_f64 } from './structural.as';
