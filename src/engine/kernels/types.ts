/**
 * The narrow interface between the engine and its kernels. A kernel receives the output buffer
 * (of the output dtype; zero-filled, except for the primitives of `WRITES_EVERY_ELEMENT`) and its
 * shape, and the concrete inputs. Kernels know nothing of autodiff.
 */
import type { Buf } from '../dtype.js';
import type { Prim, PrimParams } from '../prims.js';
import type { Shape } from '../shape.js';

export interface KIn {
  readonly data: Buf;
  readonly shape: Shape;
}

export type Kernel<P extends Prim> = (out: Buf, outShape: Shape, inputs: readonly KIn[], params: PrimParams[P]) => void;

export type KernelTable = { readonly [P in Prim]: Kernel<P> };

/**
 * Primitives whose kernels, in every kernel set, write every output element without reading it
 * first: their output buffer may hold garbage (a recycled scratch buffer is not zero-filled).
 * Accumulating kernels (reductions, pad, the pooling scatter) are not here. The conv family is:
 * its wasm kernels write every element, and the JS and reference ones zero their output first
 * (`overwriting`). A test runs each of these kernels on a NaN-filled output
 * (src/engine/kernels/overwrite.test.ts).
 */
export const WRITES_EVERY_ELEMENT: ReadonlySet<Prim> = new Set<Prim>([
  'add',
  'sub',
  'mul',
  'div',
  'max',
  'min',
  'neg',
  'exp',
  'log',
  'log1p',
  'tanh',
  'erf',
  'sqrt',
  'abs',
  'mish',
  'mish_grad',
  'mish_grad2',
  'mish_vjp',
  'pow',
  'channel_affine',
  'bn_normalize',
  'bn_normalize_jvp',
  'channel_moments',
  'channel_sums',
  'bn_affine',
  'bn_sums',
  'bn_affine_jvp',
  'compare',
  'select',
  'cast',
  'stop_gradient',
  'reshape',
  'broadcast',
  'transpose',
  'slice',
  'concatenate',
  'conv2d',
  'conv2d_input_grad',
  'conv2d_filter_grad',
]);

/** `k` after a zero-fill of its output: a kernel that accumulates into its output, made to write every element. */
export function overwriting<P extends Prim>(k: Kernel<P>): Kernel<P> {
  return (out, shape, inputs, params) => {
    out.fill(0);
    k(out, shape, inputs, params);
  };
}
