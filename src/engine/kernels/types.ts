/**
 * The narrow interface between the engine and its kernels. A kernel receives the output buffer
 * (freshly allocated, zero-filled, of the output dtype) and its shape, and the concrete inputs.
 * Kernels know nothing of autodiff.
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
