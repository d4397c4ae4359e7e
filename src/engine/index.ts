/** The engine: tensors, primitives, differentiable ops and composites, and transformations. */
export * from './dtype.js';
export * from './shape.js';
export * from './tensor.js';
export * from './ops.js';
export * from './composites.js';
export * from './transforms.js';
export * from './tree.js';
export { PRIMS, type Prim, type PrimParams, type ConvParams, type PoolParams } from './prims.js';
export { setKernels, withKernels, activeKernels, type KernelSet } from './kernels/index.js';
export { setThreads, threads } from './kernels/index.js';
export { Tracer, primalValue, markKink } from './trace.js';
export { Rng } from './random.js';
export { checkGrads, type GradCheckReport } from './testing.js';
