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
 * Accumulating kernels (reductions, pad, the conv and pooling family) are not here. A test runs
 * each of these kernels on a NaN-filled output (src/engine/kernels/overwrite.test.ts).
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
  'pow',
  'channel_affine',
  'compare',
  'select',
  'cast',
  'stop_gradient',
  'reshape',
  'broadcast',
  'transpose',
  'slice',
  'concatenate',
]);
