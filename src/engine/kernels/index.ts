/**
 * The active kernel table. `fast` is the reference table with fast paths for matmul and the conv
 * family (WebAssembly SIMD where available, else plain JS), max-pooling, reduce_sum and (in
 * WebAssembly, bit-identical to the reference) the simple elementwise primitives on large arrays;
 * `js` is the same without WebAssembly; `reference` is the executable specification that tests compare them against.
 */
import { elementwiseFast, linalgFast } from './fast.js';
import { reference } from './reference.js';
import type { KernelTable } from './types.js';
import { elementwiseWasm, linalgWasm } from './wasm.js';

export type KernelSet = 'fast' | 'js' | 'reference';

const TABLES: Record<KernelSet, KernelTable> = {
  reference,
  js: { ...reference, ...elementwiseFast, ...linalgFast },
  fast: { ...reference, ...elementwiseFast, ...linalgFast, ...linalgWasm, ...elementwiseWasm },
};

let active: KernelSet = 'fast';
export let kernels: KernelTable = TABLES.fast;

export function setKernels(set: KernelSet): void {
  active = set;
  kernels = TABLES[set];
}

export function activeKernels(): KernelSet {
  return active;
}

/** Run `f` with a kernel set, restoring the previous one afterwards. */
export function withKernels<T>(set: KernelSet, f: () => T): T {
  const prev = active;
  setKernels(set);
  try {
    return f();
  } finally {
    setKernels(prev);
  }
}

export type { Kernel, KernelTable, KIn } from './types.js';

/** Floating-point operations of one kernel call: 2 per multiply-add in matmul and the conv family, 1 per output element elsewhere. */
function flopsOf(prim: keyof KernelTable, outShape: readonly number[], inputs: readonly { shape: readonly number[] }[], params: unknown): number {
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const out = size(outShape);
  switch (prim) {
    case 'matmul': {
      const a = inputs[0]!.shape;
      const { transA } = params as { transA: boolean };
      return 2 * out * (transA ? a[a.length - 2]! : a[a.length - 1]!);
    }
    case 'conv2d': // out × (C/groups · KH · KW)
      return 2 * out * size(inputs[1]!.shape.slice(1));
    case 'conv2d_input_grad': {
      const w = inputs[1]!.shape; // each dy element meets O/groups… : total = |dy| × C/groups × KH × KW
      return 2 * size(inputs[0]!.shape) * size(w.slice(1));
    }
    case 'conv2d_filter_grad': // |dy| × C/groups × KH × KW
      return 2 * size(inputs[1]!.shape) * size(outShape.slice(1));
    default:
      return out;
  }
}

/** Something that sees every kernel call of `withKernelHook`: it must call `run()` exactly once. */
export type KernelHook = (prim: keyof KernelTable, outShape: readonly number[], inputs: readonly { shape: readonly number[] }[], params: unknown, run: () => void) => void;

/** Run `f` with every kernel call passed through `hook` (for counting and profiling). */
export function withKernelHook<T>(hook: KernelHook, f: () => T): T {
  const prev = kernels;
  const hooked = {} as Record<string, unknown>;
  for (const [name, k] of Object.entries(prev)) {
    hooked[name] = (out: never, outShape: readonly number[], inputs: readonly { shape: readonly number[] }[], params: never) =>
      hook(name as keyof KernelTable, outShape, inputs, params, () => (k as (o: never, s: unknown, i: unknown, p: never) => void)(out, outShape, inputs, params));
  }
  kernels = hooked as unknown as KernelTable;
  try {
    return f();
  } finally {
    kernels = prev;
  }
}

/** Run `f` and count the floating-point operations its kernels performed. */
export function measureFlops<T>(f: () => T): { result: T; flops: number } {
  let flops = 0;
  const result = withKernelHook((prim, outShape, inputs, params, run) => {
    flops += flopsOf(prim, outShape, inputs, params);
    run();
  }, f);
  return { result, flops };
}

/** Run `f` and time its kernel calls, by primitive and output shape (milliseconds and calls). */
export function profileKernels<T>(f: () => T): { result: T; rows: { prim: string; shape: string; ms: number; calls: number }[] } {
  const acc = new Map<string, { prim: string; shape: string; ms: number; calls: number }>();
  const result = withKernelHook((prim, outShape, inputs, _params, run) => {
    const t0 = performance.now();
    run();
    const key = `${prim} ${inputs.map((i) => i.shape.join('x')).join(',')}→${outShape.join('x')}`;
    const r = acc.get(key) ?? { prim, shape: key.slice(prim.length + 1), ms: 0, calls: 0 };
    r.ms += performance.now() - t0;
    r.calls++;
    acc.set(key, r);
  }, f);
  return { result, rows: [...acc.values()].sort((a, b) => b.ms - a.ms) };
}
