/**
 * The active kernel table, one of three kernel sets, each one table of every primitive
 * (a `KernelTable`: a missing kernel is a compile error):
 * - `wasm` (the default, wasm.ts): WebAssembly SIMD for matmul, the conv family, max-pooling and
 *   (bit-identical to the reference) the simple elementwise primitives on large arrays, with the
 *   js kernels where WebAssembly SIMD is unavailable;
 * - `js` (js.ts): the same fast paths for matmul, the conv family, max-pooling and reduce_sum in
 *   plain JS, without WebAssembly;
 * - `reference` (reference.ts, linalg_ref.ts): the executable specification that tests compare
 *   the others against.
 */
import { jsKernels } from './js.js';
import { reference } from './reference.js';
import type { KernelTable } from './types.js';
import type { Buf } from '../dtype.js';
import { useWasmVariant, wasmAdam, wasmKernels, wasmTuning, wasmVariant, type AdamCoeffs, type WasmVariant } from './wasm.js';

export type KernelSet = 'wasm' | 'js' | 'reference';

/** The kernel sets, in the order of their speed. */
export const KERNEL_SETS: readonly KernelSet[] = ['wasm', 'js', 'reference'];

/**
 * The former name of the 'wasm' set: `setKernels('fast')` and `withKernels('fast', …)` still select
 * it, since the engine entry point (package export './engine') exports both.
 * @deprecated Use 'wasm'.
 */
export type LegacyKernelSet = 'fast';

const TABLES: Record<KernelSet, KernelTable> = { wasm: wasmKernels, js: jsKernels, reference };

function canonical(set: KernelSet | LegacyKernelSet): KernelSet {
  const s = set === 'fast' ? 'wasm' : set;
  if (!Object.hasOwn(TABLES, s)) throw new Error(`unknown kernel set "${String(set)}": expected ${KERNEL_SETS.join(', ')}`);
  return s;
}

let active: KernelSet = 'wasm';
export let kernels: KernelTable = TABLES.wasm;

export function setKernels(set: KernelSet | LegacyKernelSet): void {
  active = canonical(set);
  kernels = TABLES[active];
}

export function activeKernels(): KernelSet {
  return active;
}

/** Run `f` with a kernel set, restoring the previous one afterwards. */
export function withKernels<T>(set: KernelSet | LegacyKernelSet, f: () => T): T {
  const prev = active;
  setKernels(set);
  try {
    return f();
  } finally {
    setKernels(prev);
  }
}

/**
 * One Adam/AdamW update of a parameter tensor (nn/optim.ts): with the wasm kernel set, in
 * WebAssembly, bit-identical to the JS loop (wasm.ts wasmAdam); false when that did not run (another
 * kernel set, no WebAssembly, a small tensor), so that the caller runs the loop itself.
 */
export function fusedAdam(ins: readonly [Buf, Buf, Buf, Buf], outs: readonly [Buf, Buf, Buf], c: AdamCoeffs): boolean {
  return active === 'wasm' && wasmAdam(ins, outs, c);
}
export type { AdamCoeffs } from './wasm.js';

export type { Kernel, KernelTable, KIn } from './types.js';

/**
 * Intra-op parallelism of the wasm kernels (threads.ts): `setThreads(n)` (an integer ≥ 1; 1 = one
 * thread, no workers), `threads()` (the current count), `defaultThreads()` (LIE_BRACKET_THREADS,
 * else `os.availableParallelism()`; 1 inside worker threads), `shutdownThreads()`, and the
 * diagnostic counters of the split calls, `threadStats()` / `resetThreadStats()`.
 */
export { defaultThreads, resetThreadStats, setThreads, shutdownThreads, threads, threadStats, withThreadLimit, type ThreadStats } from './threads.js';

/**
 * Everything process-wide that can change a kernel's result bits: the kernel set, the wasm
 * build, and the tuning knobs that choose between algorithms (wasm.ts wasmTuning). A second engine
 * instance (a worker thread computing half of a bracket) applies it to compute what this one
 * would. `hooked`: a `withKernelHook` (profiling, flop counting) sees this instance's calls only.
 */
export interface EngineSettings {
  kernels: KernelSet;
  variant: WasmVariant;
  tuning: Record<string, number | boolean>;
  hooked: boolean;
}

export function engineSettings(): EngineSettings {
  return { kernels: active, variant: wasmVariant(), tuning: { ...wasmTuning }, hooked: kernels !== TABLES[active] };
}

/** Make this instance compute as `s` says (the wasm build where it is not yet the one running); throws where it cannot. */
export function applyEngineSettings(s: EngineSettings): void {
  setKernels(s.kernels);
  if (s.variant !== 'none' && s.variant !== wasmVariant() && !useWasmVariant(s.variant)) {
    throw new Error(`the ${s.variant} kernels cannot run in this thread`);
  }
  Object.assign(wasmTuning, s.tuning);
}

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
export type KernelHook = (
  prim: keyof KernelTable,
  outShape: readonly number[],
  inputs: readonly { shape: readonly number[] }[],
  params: unknown,
  run: () => void,
) => void;

/** Run `f` with every kernel call passed through `hook` (for counting and profiling). */
export function withKernelHook<T>(hook: KernelHook, f: () => T): T {
  const prev = kernels;
  const hooked = {} as Record<string, unknown>;
  for (const [name, k] of Object.entries(prev)) {
    hooked[name] = (out: never, outShape: readonly number[], inputs: readonly { shape: readonly number[] }[], params: never) =>
      hook(name as keyof KernelTable, outShape, inputs, params, () =>
        (k as (o: never, s: unknown, i: unknown, p: never) => void)(out, outShape, inputs, params),
      );
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
