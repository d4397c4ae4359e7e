/**
 * The wasm kernel tier (kernel set 'wasm', the default): WebAssembly SIMD kernels for matmul, the
 * conv family and max-pooling (sources: wasm/kernels.as.ts and the gemm, conv, pool,
 * elementwise and structural files it exports from, compiled by scripts/build-wasm.mjs into wasm/kernels.wasm.ts),
 * interchangeable with js.ts and linalg_ref.ts up to floating-point summation order (max-pool
 * selects exactly the same elements; its scatter with overlapping windows sums in float64 in
 * js.ts's order, so it is bit-identical to js.ts). conv2d, and the input gradient of stride-1
 * convolutions, take an implicit GEMM where it was measured faster (conv.as.ts convImplicit, see
 * implicitOk), else im2col and a GEMM per image. For the simple elementwise primitives (add, sub,
 * mul, div, max, min, compare, select, neg, abs, sqrt, pow 2), channel_affine and broadcast the
 * kernels are bit-identical to reference.ts, and reduce_sum to js.ts: even with the copies in
 * and out, 4 lanes at a time beat V8's scalar loops 2–4× from about a thousand elements on
 * (below `wasmTuning.elementwiseMin` the JS loops run). exp, log, log1p, tanh of float32 data run
 * here too, in float64 with the standard library's functions, then rounded: equal to the
 * reference's rounded Math.* in every value the tests try (a difference would be one float32
 * ulp); mish, mish_grad and mish_grad2 of float32 data run in float32 lanes, four at a time, within a few
 * float32 ulps of the reference (elementwise.as.ts). BatchNorm's bn_normalize, bn_normalize_jvp
 * and channel_moments compute in float64 as reference.ts does, with the sums in another order
 * and, for float32 data, the moments from one pass of shifted sums (normalize.as.ts): within a
 * float32 ulp of the reference.
 *
 * The module is compiled and instantiated synchronously when this file is loaded. Where
 * WebAssembly or its SIMD extension is not available, `wasmAvailable` is false and every kernel
 * here is the plain-JS one from js.ts (or the reference's, for the elementwise ones).
 *
 * Two builds of the same sources (`wasmVariant()`): where the runtime validates the relaxed-SIMD
 * module (Node 22+ / V8 ≥ 11.4 ship relaxed SIMD; Node 20 only with
 * --experimental-wasm-relaxed-simd), it runs, and float32 matmul and the conv family use a fused
 * multiply-add (f32x4.relaxed_madd) in their GEMM micro-kernels: within float32 rounding of the
 * plain build, float64 and everything else bit-identical to it. Elsewhere the plain SIMD module runs.
 *
 * Precision: float32 in f32x4 lanes with float32 accumulation (as PyTorch's CPU kernels do),
 * float64 in f64x2 lanes with float64 accumulation.
 *
 * Memory: one linear memory (a shared WebAssembly.Memory), grown on demand and never shrunk
 * (WebAssembly memories cannot shrink). Its bottom holds the resident buffers: the scratch pools'
 * buffers (src/engine/scratch.ts, e.g. a training step's or a bracket's intermediates, and a
 * training run's parameters and Adam moments, src/study/train.ts StepBuffers) are
 * typed-array views of it, so the kernels here read a resident operand and write a resident output
 * where they are. Above them, per call, regions are bump-allocated for the other operands (copied
 * in), a non-resident result (copied out into `out`) and the call's scratch: nothing there
 * outlives a call. The memory stays at the high-water mark of the resident buffers plus the
 * largest call. `releaseWasmMemory()` drops it (a fresh instance with an empty memory takes its
 * place, and the kernel threads are stopped); buffers of the old memory stay valid as plain
 * shared arrays, no longer resident, so the kernels copy them again.
 *
 * Threads (threads.ts: `setThreads`, default all cores): a call whose work reaches
 * `wasmTuning.parallelMinFlops` (matmul, the conv family) or `parallelMinElements` /
 * `parallelMinMath` (max-pooling, elementwise) per part is split into up to `threads()` parts,
 * run by the calling thread and kernel worker threads on the same memory, each part with its own
 * scratch (im2col columns, packing buffer). The parts partition the OUTPUT elements, never a sum:
 * matmul by output rows of the batch × M rows (or by columns when there are few rows), conv2d by
 * images × groups (or by output channels), its input gradient by images × groups (or by input
 * channels), its filter gradient by groups, input channels or output channels (the sum over the
 * batch stays whole in each part, in the same order), max-pooling and its scatter by planes, the
 * elementwise kernels by contiguous ranges. Every output element is computed by the same
 * instructions in the same order as in a single-thread call, so results are bit-identical for
 * every thread count. (The copies in and out of non-resident buffers stay on the calling thread.)
 */
import type { Buf, DType } from '../dtype.js';
import { setBufferSource } from '../scratch.js';
import type { ConvParams, PoolParams } from '../prims.js';
import { jsKernels } from './js.js';
import { broadcastSrcStrides, channelLayout, reduceDstStrides, reference } from './reference.js';
import { convDims, input, matmulDims, poolDims, type ConvDims } from './linalg_ref.js';
import { coalesce } from './strided.js';
import { stridesOf } from '../shape.js';
import { runParts, shutdownThreads, threads, type Call, type ThreadTarget } from './threads.js';
import type { Kernel, KernelTable } from './types.js';
import { WASM_BASE64, WASM_RELAXED_BASE64 } from './wasm/kernels.wasm.js';

type Ptr = number;

// The few WebAssembly types used here (the project's lib settings do not declare them).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  readonly validate: (bytes: Uint8Array) => boolean;
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
  readonly Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
const WA: WasmApi | undefined = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

interface Exports {
  readonly heapBase: () => Ptr;
  readonly setPack: (p: Ptr) => void;
  readonly setGeom: (
    H: number,
    W: number,
    KH: number,
    KW: number,
    OH: number,
    OW: number,
    sh: number,
    sw: number,
    ph: number,
    pw: number,
    dh: number,
    dw: number,
  ) => void;
  // (the kernels' argument lists: gemm.as.ts, conv.as.ts, pool.as.ts and elementwise.as.ts; they
  // are called through `Call`s, [name, ...args], on this thread or on a kernel worker thread)
  readonly setPool: (KH: number, KW: number, sh: number, sw: number, ph: number, pw: number) => void;
  readonly simd_peak_f32: (n: number) => number;
}

/**
 * Which build of the kernels runs: 'relaxed-simd' (the same sources compiled with relaxed SIMD as
 * well: the float32 GEMM micro-kernels, and so matmul and the conv family in float32, use
 * f32x4.relaxed_madd, a fused multiply-add where the hardware has one; float32 results then differ
 * from the plain build's within float32 rounding, float64 results are identical), 'simd' (plain
 * WebAssembly SIMD), or 'none' (no WebAssembly SIMD: the JS kernels serve).
 */
export type WasmVariant = 'relaxed-simd' | 'simd' | 'none';

/** Base64 → bytes: Node's Buffer where there is one, else atob (a browser, where the explorer's bundle runs). */
function decodeBase64(s: string): Uint8Array {
  const B = (globalThis as { Buffer?: { from(s: string, enc: 'base64'): Uint8Array } }).Buffer;
  if (B !== undefined) return B.from(s, 'base64');
  const bin = (globalThis as unknown as { atob: (s: string) => string }).atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The compiled module of a variant, or null where this runtime rejects it. */
function compileVariant(v: 'relaxed-simd' | 'simd'): object | null {
  if (WA === undefined) return null;
  try {
    const bytes = decodeBase64(v === 'relaxed-simd' ? WASM_RELAXED_BASE64 : WASM_BASE64);
    // validate first: a runtime without relaxed SIMD (Node 20 without --experimental-wasm-relaxed-simd)
    // rejects that module, and the plain one is the fallback
    return WA.validate(bytes) ? new WA.Module(bytes) : null;
  } catch {
    return null; // no SIMD, threads (shared memory) or WebAssembly: the JS kernels serve
  }
}

/**
 * The compiled module (synchronous compilation: the binary is about 35 kB), or null without SIMD:
 * the relaxed-SIMD build where the runtime validates it, else the plain one. The kernel worker
 * threads instantiate this same module object (ThreadTarget.module), so they run the same variant.
 */
let variant: WasmVariant = 'none';
let compiled: object | null = compileVariant('relaxed-simd');
if (compiled !== null) variant = 'relaxed-simd';
else {
  compiled = compileVariant('simd');
  if (compiled !== null) variant = 'simd';
}

/** The module's memory: its initial size (--initialMemory of scripts/build-wasm.mjs) and maximum (wasm32's 4 GiB). */
const INITIAL_PAGES = 4;
const MAX_PAGES = 65536;

/** The calling thread's instance, its shared memory, and the target of the kernel threads. */
interface Ctx {
  readonly ex: Exports;
  readonly memory: WasmMemory;
  readonly target: ThreadTarget;
}

function instantiate(): Ctx | null {
  if (compiled === null || WA === undefined) return null;
  try {
    const memory = new WA.Memory({ initial: INITIAL_PAGES, maximum: MAX_PAGES, shared: true });
    const ex = new WA.Instance(compiled, { env: { memory } }).exports as Exports & Record<string, (...a: number[]) => void>;
    const names = Object.keys(ex).filter((k) => typeof ex[k] === 'function');
    const local = (c: Call): void => {
      const [name, ...args] = c;
      ex[name]!(...args);
    };
    return { ex, memory, target: { module: compiled, memory, names, local } };
  } catch {
    return null;
  }
}

let ctx: Ctx | null = instantiate();
let wasm: Exports | null = ctx === null ? null : ctx.ex;

/** Whether the kernels of this file run in WebAssembly (else they are js.ts's and the reference's). */
export const wasmAvailable: boolean = wasm !== null;
if (wasm === null) variant = 'none';

/** Which build of the kernels runs now (see WasmVariant). */
export function wasmVariant(): WasmVariant {
  return variant;
}

/** Whether this runtime accepts the relaxed-SIMD module (Node 20: only with --experimental-wasm-relaxed-simd). */
export function wasmRelaxedSupported(): boolean {
  return compileVariant('relaxed-simd') !== null;
}

/**
 * Switch to another build of the kernels, for tests and benchmarks that compare them in one
 * process ('relaxed-simd' only where the runtime validates it): the kernel threads are stopped
 * (their instances run the old module) and a fresh instance with an empty memory takes over, as
 * in releaseWasmMemory. Returns false, changing nothing, where the variant cannot run here.
 */
export function useWasmVariant(v: 'relaxed-simd' | 'simd'): boolean {
  if (wasm === null) return false;
  if (v === variant) return true;
  const m = compileVariant(v);
  if (m === null) return false;
  shutdownThreads();
  compiled = m;
  variant = v;
  ctx = instantiate();
  wasm = ctx === null ? null : ctx.ex;
  initHeap();
  return true;
}

// ---------------------------------------------------------------------------------------------
// memory: resident buffers at the bottom of the heap, then a bump allocator reset at every call
//
// [heapBase, poolTop): the blocks of the resident buffers (residentSource: the scratch pools'
// buffers, src/engine/scratch.ts), each a typed-array view of the memory handed out for as long
// as its pool holds it, then kept on a free list for the next block of its size; [poolTop, top):
// one call's operands, output and scratch, reset at every call. A kernel reads a resident operand
// and writes a resident output in place (their byte offsets are their addresses): no copies.

const ALIGN = 64; // cache-line aligned regions
const PAGE = 65536;
const MAX_BYTES = 4 * 1024 * 1024 * 1024 - PAGE; // wasm32 addresses
/** The most bytes of resident buffers (the rest of the address space stays for the calls). */
const POOL_MAX_BYTES = 2 * 1024 * 1024 * 1024;

let heapBase = 0;
let poolTop = 0;
let top = 0;
let f32 = new Float32Array(0);
let f64 = new Float64Array(0);
/** The ArrayBuffer objects of the current memory (one per size it has had): a view on one of them is resident. */
let memBuffers = new WeakSet<ArrayBufferLike>();
/** Free resident blocks of the current memory, by byte size. */
let freeBlocks = new Map<number, Ptr[]>();
/** Each resident buffer's block and the memory it lives in (a buffer of a dropped memory is not given back). */
const blockOf = new WeakMap<Buf, { p: Ptr; bytes: number; gen: number }>();
let gen = 0;

function resetViews(): void {
  const buf = ctx!.memory.buffer;
  memBuffers.add(buf);
  f32 = new Float32Array(buf);
  f64 = new Float64Array(buf);
}

function initHeap(): void {
  gen++;
  memBuffers = new WeakSet();
  freeBlocks = new Map();
  if (wasm === null) return;
  heapBase = Math.ceil(wasm.heapBase() / ALIGN) * ALIGN;
  poolTop = heapBase;
  resetViews();
}
initHeap();

/** Grow the memory to `bytes` if it is smaller; false if it cannot. */
function ensure(bytes: number): boolean {
  const mem = ctx!.memory;
  if (bytes > MAX_BYTES) return false;
  const have = mem.buffer.byteLength;
  if (bytes > have) {
    try {
      mem.grow(Math.ceil((bytes - have) / PAGE));
    } catch {
      return false;
    }
  }
  if (f32.buffer.byteLength !== mem.buffer.byteLength) resetViews(); // growing makes a longer buffer
  return true;
}

/** The address of `b` when it is a view of the current memory (a resident buffer, or part of one), else null. */
function residentPtr(b: Buf): Ptr | null {
  return memBuffers.has(b.buffer) ? b.byteOffset : null;
}

/**
 * The scratch pools' source of new buffers (scratch.ts's BufferSource): blocks of the linear
 * memory, so that the kernels here use them in place. Null (a plain array instead) past
 * POOL_MAX_BYTES or when the memory cannot grow.
 */
const residentSource = {
  alloc(dtype: DType, size: number): Buf | null {
    if (wasm === null) return null;
    const sz = dtype === 'float32' ? 4 : 8;
    const bytes = Math.max(ALIGN, Math.ceil((size * sz) / ALIGN) * ALIGN);
    let p = freeBlocks.get(bytes)?.pop();
    if (p === undefined) {
      if (poolTop - heapBase + bytes > POOL_MAX_BYTES || !ensure(poolTop + bytes)) return null;
      p = poolTop;
      poolTop += bytes;
    }
    const buf = ctx!.memory.buffer;
    memBuffers.add(buf);
    const b: Buf = dtype === 'float32' ? new Float32Array(buf, p, size) : new Float64Array(buf, p, size);
    blockOf.set(b, { p, bytes, gen });
    return b;
  },
  free(b: Buf): void {
    const blk = blockOf.get(b);
    if (blk === undefined || blk.gen !== gen) return; // not ours, or of a memory since dropped
    blockOf.delete(b);
    const l = freeBlocks.get(blk.bytes);
    if (l) l.push(blk.p);
    else freeBlocks.set(blk.bytes, [blk.p]);
  },
};
if (wasm !== null) setBufferSource(residentSource);

/** Bytes of the linear memory that resident buffers occupy (in use or free), for tests. */
export function wasmResidentBytes(): number {
  return poolTop - heapBase;
}

/** Start a call's allocations. */
function reset(): void {
  top = poolTop;
}

/** A region of `elems` elements of `bytes` bytes each (the memory is grown later, by `commit`). */
function alloc(elems: number, bytes: number): Ptr {
  const p = top;
  top += Math.ceil((elems * bytes) / ALIGN) * ALIGN;
  return p;
}

/** Grow the memory to hold everything allocated since `reset`; false if it cannot. */
function commit(): boolean {
  return ensure(top);
}

/** Copy `src` into wasm memory at `p` (same element type as the views chosen by `isF32`). */
function put(src: Buf, p: Ptr, isF32: boolean): void {
  if (isF32) f32.set(src, p / 4);
  else f64.set(src, p / 8);
}

/** Copy `out.length` elements at `p` into `out`. */
function get(out: Buf, p: Ptr, isF32: boolean): void {
  if (isF32) out.set(f32.subarray(p / 4, p / 4 + out.length));
  else out.set(f64.subarray(p / 8, p / 8 + out.length));
}

/** A scratch region of one wasm call: `elems` elements of the data's type (4-byte ints if `int`); 0 elements: none (address 0). */
interface Region {
  elems: number;
  int?: boolean;
}

/**
 * One call into wasm: reserve the inputs (an array passed twice is copied once; a resident one is
 * used where it is), the output (resident: written in place) and the `scratch` regions, copy the
 * other inputs in, `run` the kernel with their addresses, copy a non-resident output back. False
 * (nothing written) when the memory cannot hold them.
 */
function viaWasm(out: Buf, inputs: readonly Buf[], scratch: readonly Region[], run: (ins: Ptr[], o: Ptr, s: Ptr[], isF32: boolean) => void): boolean {
  const isF32 = out instanceof Float32Array;
  const sz = isF32 ? 4 : 8;
  reset();
  const pIns: Ptr[] = [];
  const copyIn: boolean[] = [];
  inputs.forEach((b, i) => {
    const first = inputs.indexOf(b);
    const r = first < i ? null : residentPtr(b);
    pIns.push(first < i ? pIns[first]! : (r ?? alloc(b.length, sz)));
    copyIn.push(first === i && r === null);
  });
  const rOut = residentPtr(out);
  const pOut = rOut ?? alloc(out.length, sz);
  const pS = scratch.map((r) => (r.elems === 0 ? 0 : alloc(r.elems, r.int ? 4 : sz)));
  if (!commit()) return false;
  inputs.forEach((b, i) => {
    if (copyIn[i]) put(b, pIns[i]!, isF32);
  });
  run(pIns, pOut, pS, isF32);
  if (rOut === null) get(out, pOut, isF32);
  return true;
}

/**
 * Drop the linear memory (for long-lived processes after a large one-off computation): the next
 * call starts with a fresh instance and an empty memory.
 */
export function releaseWasmMemory(): void {
  if (wasm === null) return;
  shutdownThreads(); // their instances hold the old memory
  ctx = instantiate();
  wasm = ctx === null ? null : ctx.ex;
  initHeap();
}

/**
 * The float32 multiply-add rate (GFLOP/s) that the running build reaches on this thread with
 * everything in registers: the ceiling for the GEMM and conv kernels' rates (best of `rounds`
 * timings of `n` rounds of 12 independent f32x4 multiply-adds; 0 without WebAssembly).
 */
export function wasmSimdPeakGflops(n = 2_000_000, rounds = 5): number {
  if (wasm === null) return 0;
  wasm.simd_peak_f32(n / 10); // compile and warm up
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    wasm.simd_peak_f32(n);
    best = Math.min(best, performance.now() - t0);
  }
  return (n * 12 * 8) / (best * 1e6);
}

/** The current size of the linear memory in bytes (0 without WebAssembly). */
export function wasmMemoryBytes(): number {
  return ctx === null ? 0 : ctx.memory.buffer.byteLength;
}

/** Whether the operands and the output share one element type (the wasm kernels need that). */
function uniform(out: Buf, a: Buf, b: Buf): boolean {
  const isF32 = out instanceof Float32Array;
  return a instanceof Float32Array === isF32 && b instanceof Float32Array === isF32;
}

// ---------------------------------------------------------------------------------------------
// parts: how a call is split over the threads

/**
 * Tuning knobs, exported so that tests can force the rarely taken paths.
 * filterGradChunk: most elements that the filter gradient (and the batched input gradient)
 * gathers at once (im2col columns and dy rows of a chunk of images; 1 Mi elements = 4 MiB in float32: measured a little faster than
 * 16 MiB on the xresnet's shapes, the chunk staying nearer the caches).
 * implicitConv: conv2d, and the input gradient of stride-1 convolutions, by the implicit GEMM
 * where implicitOk allows; false: im2col and GEMM per image everywhere.
 * winograd: float32 3×3 stride-1 convolutions and their input and filter gradients by Winograd
 * F(2×2, 3×3) where winogradOk allows (before the implicit GEMM and im2col); winogradTiles: the
 * tiles of a block (a multiple of 4); winogradMinTiles: fewest tiles in all for which it is used
 * where the output's width is a multiple of 8 (four tiles of a tile row per vector);
 * winogradMinTilesAny: the same for other widths (small images, whose tiles are gathered one by
 * one; there the direct paths also multiply the most padding: 144 products per channel pair of a
 * 4×4 image where 100 are not zeros, 36 where 16 are at 2×2). 64 takes the xresnet's 4×4 layers
 * at batch 32 (128 tiles; its step measured 0.953 of the time without, at 1 thread, and 0.990 at
 * 2, scripts/step-ab.mjs, 30 pairs each) and not its 2×2 ones (32 tiles: with them too, 1.005 of
 * the time with 64: the weights' transform, 16·256·256 values per call, costs what the products
 * save). winogradMinChannels, winogradMinChannelsAny: fewest input and output channels, for the
 * two kinds of widths (the transforms cost in proportion to the channels, the products to their
 * product; gathering tiles one by one costs about as much per channel as 16·32 products: the
 * convnet's 16→32 layer on 14×14 images at batch 32 made its step 1.12× slower, and its 1→16
 * layer on 28×28 ones 1.29× slower, with its bracket 1.27×, before these bounds; 4 is the bound
 * on output channels that the row-vector path had before). winogradMinTiles stays 512, above
 * the per-example 32×32 layers (256 tiles): with 256 the xresnet bracket took 0.906 of the time
 * at 1 thread but 1.144 and 1.091 at 2 (step-ab.mjs, 40 pairs each), and the path must not
 * depend on the thread count.
 * inputGradBatched: the input gradient of small outputs (≤ 64 positions, ≥ 128 columns in all,
 * one group), where neither Winograd nor the implicit GEMM serves it (stride 2), as one GEMM over
 * the images' columns side by side per chunk instead of one per image (conv.as.ts,
 * conv2dInputGradBatched); false: one per image.
 * elementwiseMin: fewest output elements for which the elementwise kernels run in wasm (the
 * copies make smaller calls no faster than the JS loops); mathMin: the same for the float32
 * transcendental kernels (each element costs far more than its copy).
 * parallelMinFlops: fewest floating-point operations per thread for which matmul and the conv
 * family split a call over threads (1 Mi flops ≈ 30–60 µs of work; a float64 flop counts twice,
 * partsForFlops). Below it a split cost more
 * than it saved: the convnet bracket at 2 threads took 4.0–4.1 ms with 512 Ki against 2.3–2.4 ms
 * with 1 Mi or 2 Mi and 2.5–2.6 ms on 1 thread (two runs of 300 alternating rounds), its 21
 * calls of 1.8 Mflop being split at 512 Ki only; the xresnet bracket has no call between 1 and 2
 * Mflop, so 512 Ki and 1 Mi split it alike (against 4 Mi, 512 Ki took 0.87× the time there on an
 * earlier machine; 2 Mi measured 1.00–1.07× of 512 Ki here, within the drift);
 * parallelMinElements: the same in output elements for max-pooling and the simple elementwise
 * kernels; parallelMinMath: for the transcendental ones.
 */
export const wasmTuning = {
  filterGradChunk: 1 << 20,
  implicitConv: true,
  winograd: true,
  winogradTiles: 128,
  winogradMinTiles: 512,
  winogradMinTilesAny: 64,
  winogradMinChannels: 4,
  winogradMinChannelsAny: 64,
  inputGradBatched: true,
  elementwiseMin: 512,
  mathMin: 64,
  parallelMinFlops: 1 << 20,
  parallelMinElements: 1 << 18,
  parallelMinMath: 1 << 14,
};

/** Into how many parts a call of `work` units may be split: 1 below `minPerPart` units per part, at most `threads()`. */
function partsFor(work: number, minPerPart: number): number {
  const t = threads();
  if (t <= 1) return 1;
  return Math.max(1, Math.min(t, Math.floor(work / Math.max(1, minPerPart))));
}

/**
 * partsFor for matmul and the conv family, a call of `flops` into `out`: a float64 flop counts
 * twice (two lanes a vector against four, so about twice the time), so float64 calls split from
 * half of `parallelMinFlops`. The convnet's float64 bracket at 2 threads (its 1.8 Mflop
 * convolutions then split) took a median 0.889, 0.895 and 1.004 of its time with float64 flops
 * counted once, per block of `scripts/threshold-ab.mjs` (three runs of 60 blocks of 10 brackets),
 * and 0.973 at 1 thread, where nothing splits (the run-to-run noise).
 */
function partsForFlops(flops: number, out: Buf): number {
  return partsFor(out instanceof Float64Array ? 2 * flops : flops, wasmTuning.parallelMinFlops);
}

/** [0, n) in at most `parts` contiguous non-empty ranges whose inner bounds are multiples of q. */
function ranges(n: number, parts: number, q = 1): [number, number][] {
  const out: [number, number][] = [];
  let lo = 0;
  for (let k = 1; k <= parts && lo < n; k++) {
    const hi = k === parts ? n : Math.min(n, Math.max(lo, Math.round((n * k) / parts / q) * q));
    if (hi > lo) out.push([lo, hi]);
    lo = hi;
  }
  return out;
}

/** Run the parts (part 0 on this thread; one part: no threads involved). */
function exec(parts: Call[][]): void {
  if (parts.length === 1) {
    for (const c of parts[0]!) ctx!.target.local(c);
  } else {
    try {
      runParts(ctx!.target, parts);
    } finally {
      wasm!.setPack(0); // this thread may have run a part with another part's buffer: back to its static one
    }
  }
}

/** Bytes of gemm.as.ts's packing buffer: each worker's part packs into its own (setPack). */
const PACK_BYTES = 65536 + 131072;

/**
 * `parts` scratch regions of `elems` elements each (4-byte ints if `int`), and the packing
 * buffers of the parts after the first (part 0 packs into the static buffer), in viaWasm's list.
 */
function perPart(parts: number, elems: number, int = false): Region[] {
  const r: Region[] = [];
  for (let k = 0; k < parts; k++) r.push({ elems, ...(int ? { int } : {}) });
  for (let k = 1; k < parts; k++) r.push({ elems: PACK_BYTES / 4, int: true });
  return r;
}

/**
 * The k-th part's calls: its packing buffer first (part 0: the static one; any thread may run
 * any part, so each part names its own), then `calls`.
 */
function withPack(k: number, parts: number, s: readonly Ptr[], calls: Call[]): Call[] {
  return parts === 1 ? calls : [['setPack', k === 0 ? 0 : s[parts + k - 1]!], ...calls];
}

// ---------------------------------------------------------------------------------------------
// kernels

export const matmul: Kernel<'matmul'> = (out, outShape, inputs, params) => {
  const a = input(inputs, 0, 'matmul');
  const b = input(inputs, 1, 'matmul');
  const [batch, M, N, K] = matmulDims(a.shape, b.shape, outShape, params.transA, params.transB);
  if (wasm === null || !uniform(out, a.data, b.data)) return jsKernels.matmul(out, outShape, inputs, params);
  if (out.length === 0) return;
  if (K === 0) {
    out.fill(0);
    return;
  }
  // rows of the batch × M rows (bounds at multiples of 4 within each matrix: the dot form pairs
  // rows), else columns (multiples of 4: the dot form groups them by 4)
  const R = batch * M;
  let parts = partsForFlops(2 * R * N * K, out);
  let rows: [number, number][] = [[0, R]];
  let cols: [number, number][] = [[0, N]];
  if (parts > 1 && R >= 8 * parts) {
    const bound = (r: number): number => {
      const t = Math.floor(r / M);
      return t * M + Math.min(M, Math.round((r - t * M) / 4) * 4);
    };
    rows = ranges(R, parts).map(([lo, hi]) => [bound(lo), hi === R ? R : bound(hi)]);
    rows = rows.filter(([lo, hi]) => hi > lo);
  } else if (parts > 1 && N >= 16 * parts) {
    cols = ranges(N, parts, 4);
  }
  parts = rows.length * cols.length;
  const tA = params.transA ? 1 : 0,
    tB = params.transB ? 1 : 0;
  const colsMax = Math.max(...cols.map(([lo, hi]) => hi - lo));
  const ok = viaWasm(out, [a.data, b.data], perPart(parts, params.transB ? K * colsMax : 0), ([pA, pB], pC, s, isF32) => {
    const fn = isF32 ? 'matmul_f32' : 'matmul_f64';
    const calls: Call[][] = [];
    for (const [r0, r1] of rows) {
      for (const [j0, j1] of cols) {
        const k = calls.length;
        calls.push(withPack(k, parts, s, [[fn, batch, M, N, K, tA, tB, pA!, pB!, pC, s[k]!, r0, r1, j0, j1]]));
      }
    }
    exec(calls);
  });
  if (!ok) jsKernels.matmul(out, outShape, inputs, params);
};

function geomCall(d: ConvDims, p: ConvParams): Call {
  return ['setGeom', d.H, d.W, d.KH, d.KW, d.OH, d.OW, p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1]];
}

function isPointwise(d: ConvDims, p: ConvParams): boolean {
  return d.KH === 1 && d.KW === 1 && p.stride[0] === 1 && p.stride[1] === 1 && p.padding[0] === 0 && p.padding[1] === 0;
}

/**
 * The parts of a conv2d or input-gradient call: ranges of the units (image, group) when there
 * are enough of them to share evenly, else ranges of the `rows` (channels) of every unit.
 */
function convParts(units: number, rows: number, work: number, out: Buf): { u: [number, number][]; r: [number, number][] } {
  const parts = partsForFlops(work, out);
  if (parts > 1 && units >= parts && (units % parts === 0 || units >= 4 * parts)) return { u: ranges(units, parts), r: [[0, rows]] };
  if (parts > 1 && rows >= 4 * parts) return { u: [[0, units]], r: ranges(rows, parts, 4) };
  return { u: [[0, units]], r: [[0, rows]] };
}

/** KC_MAX of conv.as.ts: the rows of a packed panel of the implicit GEMM (its buffer: KC_MAX · 32 bytes, then 64 for the lanes). */
const KC_MAX = 512;

/**
 * The implicit-GEMM convolution (conv.as.ts, convImplicit) of x [N, Cin, ·, ·] into out
 * [N, Cout, ·, ·] (OHW positions per image, a multiple of the lanes L) in the geometry that
 * `geom` sets, with the weights w as they are (flip false) or flipped and transposed (the input
 * gradient of a stride-1 convolution). Parts: ranges of the N·OHW columns (inner bounds multiples
 * of 2L), else of the output channels (multiples of 4); every output element is summed in the
 * same order whatever the partition. False when the memory cannot hold it.
 */
function implicitConv(out: Buf, x: Buf, w: Buf, N: number, Cin: number, Cout: number, OHW: number, KK: number, flip: boolean, geom: Call): boolean {
  const L = out instanceof Float32Array ? 4 : 2;
  const K = Cin * KK;
  const NT = N * OHW;
  const parts = partsForFlops(2 * out.length * K, out);
  let cols: [number, number][] = [[0, NT]];
  let rows: [number, number][] = [[0, Cout]];
  if (parts > 1 && NT >= 8 * L * parts) cols = ranges(NT, parts, 2 * L);
  else if (parts > 1 && Cout >= 8 * parts) rows = ranges(Cout, parts, 4);
  const n = cols.length * rows.length;
  // the packed weights (all rows, in 4-row blocks: one region for every part), then each part's panel buffer
  const scratch: Region[] = [{ elems: Math.ceil(Cout / 4) * 4 * K }];
  for (let k = 0; k < n; k++) scratch.push({ elems: (KC_MAX * 32 + 64) / (L === 4 ? 4 : 8) });
  return viaWasm(out, [x, w], scratch, ([pX, pW], pY, [pA, ...pB], isF32) => {
    const fn = isF32 ? 'conv2d_implicit_f32' : 'conv2d_implicit_f64';
    exec([[geom, [isF32 ? 'conv2d_pack_f32' : 'conv2d_pack_f64', pW!, Cin, Cout, flip ? 1 : 0, pA!]]]);
    const calls: Call[][] = [];
    for (const [j0, j1] of cols) {
      for (const [o0, o1] of rows) {
        calls.push([geom, [fn, pX!, pA!, pY, pB[calls.length]!, Cin, Cout, j0, j1, o0, o1]]);
      }
    }
    exec(calls);
  });
}

/**
 * Whether the implicit GEMM serves a convolution with `Cout` output channels and `OHW` positions
 * per image: one group, L (the lanes: 4 float32, 2 float64) divides OHW, at least 32 output
 * channels (with fewer, each gathered panel serves too few row blocks), at most 64 positions per
 * image (above, im2col and a GEMM per image measured as fast) and at least 128 columns in all
 * (fewer: packing the weights costs more than it saves). Measured on the xresnet's shapes: 0.5–0.8×
 * the im2col path's time at batch 32 for 8×8 and smaller outputs, 1.8× at batch 1 on 2×2.
 */
function implicitOk(out: Buf, d: ConvDims, Cout: number, OHW: number): boolean {
  return wasmTuning.implicitConv && d.G === 1 && Cout >= 32 && OHW <= 64 && d.N * OHW >= 128 && OHW % (out instanceof Float32Array ? 4 : 2) === 0;
}

/**
 * Whether Winograd F(2×2, 3×3) (winograd.as.ts) serves a convolution of x [N, Cin, H, W] into
 * [N, Cout, OH, OW] with padding ph, pw: float32, a 3×3 kernel of stride 1 and dilation 1 (the
 * caller's winograd3x3), OH and OW even, padding ≤ 2, enough input and output channels
 * (`winogradMinChannels`, or `winogradMinChannelsAny`), and enough
 * tiles: `winogradMinTiles` where a tile row holds a multiple of four tiles (OW a multiple of 8),
 * else `winogradMinTilesAny` (small images, whose tiles are gathered one by one).
 */
function winogradOk(out: Buf, N: number, Cin: number, Cout: number, OH: number, OW: number, ph: number, pw: number): boolean {
  if (!(wasmTuning.winograd && out instanceof Float32Array && OH % 2 === 0 && OW % 2 === 0 && ph <= 2 && pw <= 2)) return false;
  const T = N * (OH / 2) * (OW / 2);
  const rowVectors = OW % 8 === 0;
  if (Math.min(Cin, Cout) < (rowVectors ? wasmTuning.winogradMinChannels : wasmTuning.winogradMinChannelsAny)) return false;
  return rowVectors ? T >= wasmTuning.winogradMinTiles : T >= wasmTuning.winogradMinTilesAny;
}

/** One group, a 3×3 kernel, stride 1 and dilation 1: the convolutions Winograd F(2×2, 3×3) computes. */
function winograd3x3(d: ConvDims, p: ConvParams): boolean {
  return d.G === 1 && d.KH === 3 && d.KW === 3 && p.stride[0] === 1 && p.stride[1] === 1 && p.dilation[0] === 1 && p.dilation[1] === 1;
}

/** LD_PAD and PLANE_PAD of winograd.as.ts: the padding of its per-part buffers' rows and planes. */
const WINOGRAD_LD_PAD = 4;
const WINOGRAD_PLANE_PAD = 16;

/**
 * A Winograd call on x [N, ·, H, W] with padding ph, pw: its block size Tb (`winogradTiles`, or
 * fewer: all the tiles, rounded up to 4), blocks, elements of a 16-plane per-part buffer of
 * `rows` rows, and whether its tiles are gathered one by one (`any`: OW not a multiple of 8).
 * All from the shapes alone.
 */
function winogradGeometry(
  N: number,
  H: number,
  W: number,
  ph: number,
  pw: number,
): { Tb: number; blocks: number; planes: (rows: number) => number; any: boolean } {
  const OW = W + 2 * pw - 2;
  const T = N * ((H + 2 * ph - 2) / 2) * (OW / 2);
  const Tb = Math.min(wasmTuning.winogradTiles, Math.ceil(T / 4) * 4);
  const planes = (rows: number): number => 16 * (rows * (Tb + WINOGRAD_LD_PAD) + WINOGRAD_PLANE_PAD);
  return { Tb, blocks: Math.ceil(T / Tb), planes, any: OW % 8 !== 0 };
}

/**
 * The parts of a Winograd call over `units` (blocks, or the filter gradient's partial sums):
 * ranges of them when there are at least as many as parts, else ranges of the output channels
 * (multiples of 4), every part then taking every unit. Either way each output is computed the
 * same way whatever the thread count.
 */
function winogradParts(units: number, Cout: number, parts: number): { u: [number, number][]; o: [number, number][] } {
  if (parts <= 1) return { u: [[0, units]], o: [[0, Cout]] };
  if (units >= parts) return { u: ranges(units, parts), o: [[0, Cout]] };
  return { u: [[0, units]], o: ranges(Cout, parts, 4) };
}

/**
 * The Winograd convolution of x [N, Cin, H, W] into out [N, Cout, OH, OW] (padding ph, pw), with
 * the weights w as they are (flip false, [Cout, Cin, 3, 3]) or rotated by 180° and transposed
 * (flip true, w [Cin, Cout, 3, 3]: the input gradient). The weights are transformed first (split
 * over output channels), then the tiles go in blocks (winogradGeometry) over the threads, or, with
 * fewer blocks than threads, every block to every part for its output channels; each part has its
 * own transformed-input and product buffers (and packing buffer).
 */
function winogradConv(
  out: Buf,
  x: Buf,
  w: Buf,
  N: number,
  Cin: number,
  Cout: number,
  H: number,
  W: number,
  ph: number,
  pw: number,
  flip: boolean,
): boolean {
  const { Tb, blocks, planes, any } = winogradGeometry(N, H, W, ph, pw);
  const { u, o } = winogradParts(blocks, Cout, partsFor(2 * out.length * Cin * 9, wasmTuning.parallelMinFlops));
  const parts = u.length * o.length;
  // each part's region holds its transformed inputs U, then its products Mb; then the packing
  // buffers of parts 1… (perPart), then the transformed weights V
  const uElems = planes(Cin);
  const scratch = [...perPart(parts, uElems + planes(Cout)), { elems: 16 * Cin * Cout }];
  return viaWasm(out, [x, w], scratch, ([pX, pW], pY, s) => {
    const pV = s[s.length - 1]!;
    const wParts = ranges(Cout, partsFor(16 * Cin * Cout, wasmTuning.parallelMinElements), 4);
    exec(wParts.map(([o0, o1]) => [['winograd_weights_f32', pW!, Cin, Cout, flip ? 1 : 0, pV, o0, o1]]));
    const calls: Call[][] = [];
    for (const [b0, b1] of u) {
      for (const [o0, o1] of o) {
        const k = calls.length;
        const call: Call = ['winograd_conv_f32', pX!, pV, pY, s[k]!, s[k]! + 4 * uElems, N, Cin, Cout, H, W, ph, pw, Tb, b0, b1, o0, o1, any ? 1 : 0];
        calls.push(withPack(k, parts, s, [call]));
      }
    }
    exec(calls);
  });
}

/** The filter gradient's partial sums over tiles (winograd_filter_f32): at most this many, fixed by the tile count alone. */
const WINOGRAD_PARTIALS = 8;

/**
 * The Winograd filter gradient dW [Cout, Cin, 3, 3] of x [N, Cin, H, W] and dy [N, Cout, OH, OW]
 * (padding ph, pw): the tiles' sum in P = min(blocks, WINOGRAD_PARTIALS) partial sums, each over
 * a fixed range of blocks (the parts take whole partials, or, with fewer partials than threads,
 * every partial for their output channels; each part with its own transform buffers), then the
 * partials added in order and transformed back, split over output channels. No split depends on
 * the thread count, so the results do not either.
 */
function winogradFilterGrad(out: Buf, x: Buf, dy: Buf, N: number, Cin: number, Cout: number, H: number, W: number, ph: number, pw: number): boolean {
  const { Tb, blocks, planes, any } = winogradGeometry(N, H, W, ph, pw);
  const P = Math.min(blocks, WINOGRAD_PARTIALS);
  const { u, o } = winogradParts(P, Cout, partsFor(2 * dy.length * Cin * 9, wasmTuning.parallelMinFlops));
  const parts = u.length * o.length;
  const zElems = 16 * Cout * Cin;
  // each part's transformed inputs U and gradients E (and 64 elements for its edge rows), then the partials
  const uElems = planes(Cin);
  const scratch: Region[] = [];
  for (let k = 0; k < parts; k++) scratch.push({ elems: uElems + planes(Cout) + 64 });
  scratch.push({ elems: P * zElems });
  return viaWasm(out, [x, dy], scratch, ([pX, pDY], pDW, s) => {
    const pZ = s[parts]!;
    const calls: Call[][] = [];
    for (const [k0, k1] of u) {
      for (const [o0, o1] of o) {
        const j = calls.length;
        calls.push([
          ['winograd_filter_f32', pX!, pDY!, s[j]!, s[j]! + 4 * uElems, pZ, N, Cin, Cout, H, W, ph, pw, Tb, P, k0, k1, o0, o1, any ? 1 : 0],
        ]);
      }
    }
    exec(calls);
    exec(
      ranges(Cout, partsFor(P * zElems, wasmTuning.parallelMinElements)).map(([o0, o1]) => [
        ['winograd_filter_out_f32', pZ, P, Cin, Cout, pDW, o0, o1],
      ]),
    );
  });
}

export const conv2d: Kernel<'conv2d'> = (out, outShape, inputs, p) => {
  const x = input(inputs, 0, 'conv2d');
  const w = input(inputs, 1, 'conv2d');
  const d = convDims(x.shape, w.shape, outShape, p, 'conv2d');
  if (wasm === null || !uniform(out, x.data, w.data)) return jsKernels.conv2d(out, outShape, inputs, p);
  if (out.length === 0) return;
  if (d.Cg === 0) return void out.fill(0); // (no input channels: nothing to sum; the kernels below write every element otherwise)
  const [ph, pw] = p.padding;
  if (
    winograd3x3(d, p) &&
    winogradOk(out, d.N, d.C, d.O, d.OH, d.OW, ph, pw) &&
    winogradConv(out, x.data, w.data, d.N, d.C, d.O, d.H, d.W, ph, pw, false)
  )
    return;
  if (implicitOk(out, d, d.O, d.OH * d.OW) && implicitConv(out, x.data, w.data, d.N, d.C, d.O, d.OH * d.OW, d.KH * d.KW, false, geomCall(d, p)))
    return;
  const CKK = d.Cg * d.KH * d.KW;
  const { u, r } = convParts(d.N * d.G, d.Og, 2 * out.length * CKK, out);
  const parts = u.length * r.length;
  const col = isPointwise(d, p) ? 0 : CKK * d.OH * d.OW;
  const ok = viaWasm(out, [x.data, w.data], perPart(parts, col), ([pX, pW], pY, s, isF32) => {
    const fn = isF32 ? 'conv2d_f32' : 'conv2d_f64';
    const calls: Call[][] = [];
    for (const [u0, u1] of u) {
      for (const [o0, o1] of r) {
        const k = calls.length;
        calls.push(withPack(k, parts, s, [geomCall(d, p), [fn, pX!, pW!, pY, s[k]!, d.N, d.C, d.O, d.G, u0, u1, o0, o1]]));
      }
    }
    exec(calls);
  });
  if (!ok) jsKernels.conv2d(out, outShape, inputs, p);
};

export const conv2d_input_grad: Kernel<'conv2d_input_grad'> = (out, outShape, inputs, p) => {
  const dy = input(inputs, 0, 'conv2d_input_grad');
  const w = input(inputs, 1, 'conv2d_input_grad');
  const d = convDims(outShape, w.shape, dy.shape, p, 'conv2d_input_grad');
  if (wasm === null || !uniform(out, dy.data, w.data)) return jsKernels.conv2d_input_grad(out, outShape, inputs, p);
  if (out.length === 0) return;
  if (dy.data.length === 0) return void out.fill(0);
  // stride 1, dilation 1: dx = the convolution of dy with the flipped, transposed weights, padding KH−1−ph
  const [ph, pw] = p.padding;
  if (
    winograd3x3(d, p) &&
    ph <= 2 &&
    pw <= 2 &&
    winogradOk(out, d.N, d.O, d.C, d.H, d.W, 2 - ph, 2 - pw) &&
    winogradConv(out, dy.data, w.data, d.N, d.O, d.C, d.OH, d.OW, 2 - ph, 2 - pw, true)
  )
    return;
  if (
    p.stride[0] === 1 &&
    p.stride[1] === 1 &&
    p.dilation[0] === 1 &&
    p.dilation[1] === 1 &&
    ph <= d.KH - 1 &&
    pw <= d.KW - 1 &&
    implicitOk(out, d, d.C, d.H * d.W)
  ) {
    const geom: Call = ['setGeom', d.OH, d.OW, d.KH, d.KW, d.H, d.W, 1, 1, d.KH - 1 - ph, d.KW - 1 - pw, 1, 1];
    if (implicitConv(out, dy.data, w.data, d.N, d.O, d.C, d.H * d.W, d.KH * d.KW, true, geom)) return;
  }
  const KK = d.KH * d.KW;
  const OHW = d.OH * d.OW;
  const work = 2 * dy.data.length * d.Cg * KK;
  // small outputs of one group (e.g. stride 2 onto 4×4 and 2×2 at batch 32): the images' columns
  // side by side in chunks of `per` (fixed by the shapes), the parts splitting the channels
  // (bounds where c·KK is a multiple of 4: every GEMM row on the same path whatever the parts)
  const batched = wasmTuning.inputGradBatched && d.G === 1 && !isPointwise(d, p) && OHW <= 64 && d.N * OHW >= 128;
  const per = batched ? imagesPerChunk(d, KK, OHW) : 0;
  const { u, r }: { u: [number, number][]; r: [number, number][] } = batched
    ? { u: [[0, d.N]], r: channelRanges(d.Cg, KK, partsForFlops(work, out)) ?? [[0, d.Cg]] }
    : convParts(d.N * d.G, d.Cg, work, out);
  const parts = u.length * r.length;
  const ccMax = Math.max(...r.map(([lo, hi]) => hi - lo));
  const col = isPointwise(d, p) ? 0 : batched ? (ccMax * KK + d.Og) * per * OHW : ccMax * KK * OHW;
  const ok = viaWasm(out, [dy.data, w.data], perPart(parts, col), ([pDY, pW], pDX, s, isF32) => {
    const fn = isF32 ? 'conv2d_input_grad_f32' : 'conv2d_input_grad_f64';
    const calls: Call[][] = [];
    for (const [u0, u1] of u) {
      for (const [c0, c1] of r) {
        const k = calls.length;
        calls.push(withPack(k, parts, s, [geomCall(d, p), [fn, pDY!, pW!, pDX, s[k]!, d.N, d.C, d.O, d.G, u0, u1, c0, c1, per]]));
      }
    }
    exec(calls);
  });
  if (!ok) jsKernels.conv2d_input_grad(out, outShape, inputs, p);
};

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Images per chunk where their im2col columns (Cg·KK rows) and dy rows (Og) of OHW positions
 * each sit side by side (the filter gradient, the batched input gradient): at most
 * `filterGradChunk` elements, and the same for every thread count.
 */
function imagesPerChunk(d: ConvDims, KK: number, OHW: number): number {
  return Math.max(1, Math.min(d.N, Math.floor(wasmTuning.filterGradChunk / Math.max(1, (d.Cg * KK + d.Og) * OHW))));
}

/**
 * The Cg channels in `parts` ranges whose bounds c have c·KK a multiple of 4 (the GEMMs' row
 * groups: every row on the same path whatever the parts), or null for one part or too few
 * channels (fewer than 2·q per part).
 */
function channelRanges(Cg: number, KK: number, parts: number): [number, number][] | null {
  const q = 4 / gcd(KK, 4);
  return parts > 1 && Cg >= 2 * q * parts ? ranges(Cg, parts, q) : null;
}

/** SMALL_L of conv.as.ts: the filter gradient's chunks of at most this many terms per sum take the axpy form. */
const FILTER_SMALL_L = 16;

export const conv2d_filter_grad: Kernel<'conv2d_filter_grad'> = (out, outShape, inputs, p) => {
  const x = input(inputs, 0, 'conv2d_filter_grad');
  const dy = input(inputs, 1, 'conv2d_filter_grad');
  const d = convDims(x.shape, outShape, dy.shape, p, 'conv2d_filter_grad');
  if (wasm === null || !uniform(out, x.data, dy.data)) return jsKernels.conv2d_filter_grad(out, outShape, inputs, p);
  if (out.length === 0) return;
  if (dy.data.length === 0) return void out.fill(0);
  const [ph, pw] = p.padding;
  if (
    winograd3x3(d, p) &&
    winogradOk(out, d.N, d.C, d.O, d.OH, d.OW, ph, pw) &&
    winogradFilterGrad(out, x.data, dy.data, d.N, d.C, d.O, d.H, d.W, ph, pw)
  )
    return;
  const OHW = d.OH * d.OW;
  const KK = d.KH * d.KW;
  const CKK = d.Cg * KK;
  // images per chunk: their columns and dy rows side by side, one dot-form GEMM per chunk (the
  // same for every thread count: it fixes the order of the sum over the images)
  const per = imagesPerChunk(d, KK, OHW);
  // parts: groups; else input channels (bounds where c·KK is a multiple of 4, the dot form's
  // column groups: each part gathers only its channels' columns); else output channels (even
  // bounds, the dot form's row pairs)
  const parts = partsForFlops(2 * dy.data.length * CKK, out);
  let g: [number, number][] = [[0, d.G]];
  let o: [number, number][] = [[0, d.Og]];
  let c: [number, number][] = [[0, d.Cg]];
  const cr = channelRanges(d.Cg, KK, parts);
  if (parts > 1 && d.G >= parts && (d.G % parts === 0 || d.G >= 4 * parts)) g = ranges(d.G, parts);
  else if (cr !== null) c = cr;
  else if (parts > 1 && d.Og >= 4 * parts) o = ranges(d.Og, parts, 4);
  const n = g.length * o.length * c.length;
  const ccMax = Math.max(...c.map(([lo, hi]) => hi - lo));
  const ooMax = Math.max(...o.map(([lo, hi]) => hi - lo));
  // (short sums, per·OHW ≤ SMALL_L of conv.as.ts: room for the transposed columns too)
  const col = per * OHW <= FILTER_SMALL_L ? 2 * ccMax * KK * per * OHW : isPointwise(d, p) && per === 1 ? 0 : ccMax * KK * per * OHW;
  const dyg = per > 1 ? ooMax * per * OHW : 0;
  const scratch = perPart(n, col);
  for (let k = 0; k < n; k++) scratch.push({ elems: dyg });
  const ok = viaWasm(out, [x.data, dy.data], scratch, ([pX, pDY], pDW, s, isF32) => {
    const fn = isF32 ? 'conv2d_filter_grad_f32' : 'conv2d_filter_grad_f64';
    const pDyg = s.slice(2 * n - 1);
    const calls: Call[][] = [];
    for (const [g0, g1] of g) {
      for (const [o0, o1] of o) {
        for (const [c0, c1] of c) {
          const k = calls.length;
          const call: Call = [fn, pX!, pDY!, pDW, s[k]!, pDyg[k]!, d.N, d.C, d.O, d.G, per, g0, g1, o0, o1, c0, c1];
          calls.push(withPack(k, n, s, [geomCall(d, p), call]));
        }
      }
    }
    exec(calls);
  });
  if (!ok) jsKernels.conv2d_filter_grad(out, outShape, inputs, p);
};

function poolCall(p: PoolParams): Call {
  return ['setPool', p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1]];
}

/**
 * The parts of a pooling call, by planes: each part's kernel sees its planes only (element
 * indices relative to its first plane), through pointers offset by q0 planes.
 */
function poolParts(NC: number, H: number, W: number, OH: number, OW: number, call: (q0: number, q1: number) => Call): Call[][] {
  return ranges(NC, poolPartCount(NC, H, W, OH, OW)).map(([q0, q1]) => [call(q0, q1)]);
}

/** How many parts poolParts splits a pooling call into (at most). */
function poolPartCount(NC: number, H: number, W: number, OH: number, OW: number): number {
  return partsFor(NC * Math.max(H * W, OH * OW), wasmTuning.parallelMinElements);
}

export const maxpool2d: Kernel<'maxpool2d'> = (out, outShape, inputs, p) => {
  const key = input(inputs, 0, 'maxpool2d');
  const val = input(inputs, 1, 'maxpool2d');
  const [NC, H, W, OH, OW] = poolDims(key.shape, outShape, 'maxpool2d');
  if (wasm === null || !uniform(out, key.data, val.data)) return jsKernels.maxpool2d(out, outShape, inputs, p);
  if (out.length === 0) return;
  // max_pool2d(x) = maxpool2d(x, x): the same array is copied once
  const ok = viaWasm(out, [key.data, val.data], [{ elems: out.length, int: true }], ([pK, pV], pOut, [pIdx], isF32) => {
    const sz = isF32 ? 4 : 8;
    const fn = isF32 ? 'maxpool_f32' : 'maxpool_f64';
    const parts = poolParts(NC, H, W, OH, OW, (q0, q1) => {
      const i = q0 * H * W * sz,
        o = q0 * OH * OW;
      return [fn, pK! + i, pV! + i, pOut + o * sz, pIdx! + o * 4, q1 - q0, H, W, OH, OW];
    });
    exec(parts.map((c) => [poolCall(p), ...c]));
  });
  if (!ok) jsKernels.maxpool2d(out, outShape, inputs, p);
};

export const maxpool2d_scatter: Kernel<'maxpool2d_scatter'> = (out, outShape, inputs, p) => {
  const key = input(inputs, 0, 'maxpool2d_scatter');
  const dy = input(inputs, 1, 'maxpool2d_scatter');
  const [NC, H, W, OH, OW] = poolDims(outShape, dy.shape, 'maxpool2d_scatter');
  // Overlapping windows add several contributions to an element: summed in float64 per plane
  // (a float64 accumulator of one plane per part for float32 data), in output order, as js.ts.
  const overlap = p.stride[0] < p.kernel[0] || p.stride[1] < p.kernel[1];
  if (wasm === null || !uniform(out, key.data, dy.data)) return jsKernels.maxpool2d_scatter(out, outShape, inputs, p);
  if (out.length === 0) return;
  const accElems = overlap && out instanceof Float32Array ? 2 * H * W * poolPartCount(NC, H, W, OH, OW) : 0; // float64 in float32 slots
  const ok = viaWasm(out, [key.data, dy.data], [{ elems: dy.data.length, int: true }, { elems: accElems }], ([pK, pDY], pDX, [pIdx, pAcc], isF32) => {
    const sz = isF32 ? 4 : 8;
    const fn = `maxpool_scatter${overlap ? '_overlap' : ''}_${isF32 ? 'f32' : 'f64'}`;
    let part = 0;
    const parts = poolParts(NC, H, W, OH, OW, (q0, q1) => {
      const i = q0 * H * W * sz,
        o = q0 * OH * OW;
      const head = [fn, pK! + i, pDY! + o * sz, pDX + i, pIdx! + o * 4] as const;
      const acc = pAcc! + part++ * H * W * 8;
      return overlap ? [...head, acc, q1 - q0, H, W, OH, OW] : [...head, q1 - q0, H, W, OH, OW];
    });
    exec(parts.map((c) => [poolCall(p), ...c]));
  });
  if (!ok) jsKernels.maxpool2d_scatter(out, outShape, inputs, p);
};

// ---------------------------------------------------------------------------------------------
// elementwise (op codes of wasm/elementwise.as.ts)

const BINARY = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5, gt: 6, ge: 7, lt: 8, le: 9, eq: 10, ne: 11 } as const;
const UNARY = { neg: 0, abs: 1, sqrt: 2, square: 3 } as const;

/**
 * An elementwise call over n elements in parts of contiguous ranges (bounds at multiples of 16
 * elements): `call(ptrs offset by the range's first element, its length)`.
 */
function ewExec(n: number, ptrs: readonly Ptr[], sz: number, minPerPart: number, call: (p: Ptr[], len: number) => Call): void {
  const parts = partsFor(n, minPerPart);
  exec(
    ranges(n, parts, 16).map(([lo, hi]) => [
      call(
        ptrs.map((q) => q + lo * sz),
        hi - lo,
      ),
    ]),
  );
}

/** out = a op b in wasm; false (nothing done) when the JS loop should run instead. */
function binaryWasm(op: number, out: Buf, a: Buf, b: Buf): boolean {
  if (wasm === null || out.length < wasmTuning.elementwiseMin || a.length !== out.length || b.length !== out.length || !uniform(out, a, b))
    return false;
  return viaWasm(out, [a, b], [], ([pA, pB], pO, _, isF32) =>
    ewExec(out.length, [pA!, pB!, pO], isF32 ? 4 : 8, wasmTuning.parallelMinElements, ([qa, qb, qo], len) => [
      isF32 ? 'ew_binary_f32' : 'ew_binary_f64',
      op,
      qa!,
      qb!,
      qo!,
      len,
    ]),
  );
}

/** out = op(a) in wasm; false (nothing done) when the JS loop should run instead. */
function unaryWasm(op: number, out: Buf, a: Buf): boolean {
  if (wasm === null || out.length < wasmTuning.elementwiseMin || a.length !== out.length || !uniform(out, a, a)) return false;
  return viaWasm(out, [a], [], ([pA], pO, _, isF32) =>
    ewExec(out.length, [pA!, pO], isF32 ? 4 : 8, wasmTuning.parallelMinElements, ([qa, qo], len) => [
      isF32 ? 'ew_unary_f32' : 'ew_unary_f64',
      op,
      qa!,
      qo!,
      len,
    ]),
  );
}

type BinaryPrim = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min';
const binaryKernel = <P extends BinaryPrim>(prim: P): Kernel<P> => {
  const op = BINARY[prim];
  const js = reference[prim] as Kernel<P>;
  return (out, outShape, inputs, params) => {
    if (!binaryWasm(op, out, inputs[0]!.data, inputs[1]!.data)) js(out, outShape, inputs, params);
  };
};

type UnaryPrim = 'neg' | 'abs' | 'sqrt';
const unaryKernel = <P extends UnaryPrim>(prim: P): Kernel<P> => {
  const op = UNARY[prim];
  const js = reference[prim] as Kernel<P>;
  return (out, outShape, inputs, params) => {
    if (!unaryWasm(op, out, inputs[0]!.data)) js(out, outShape, inputs, params);
  };
};

export const compare: Kernel<'compare'> = (out, outShape, inputs, params) => {
  if (!binaryWasm(BINARY[params.op], out, inputs[0]!.data, inputs[1]!.data)) reference.compare(out, outShape, inputs, params);
};

const MATH = { exp: 0, log: 1, log1p: 2, tanh: 3, mish: 4, mish_grad: 5, mish_grad2: 6 } as const;
type MathPrim = keyof typeof MATH;

/**
 * exp, log, log1p, tanh of float32 data in wasm (the standard library's float64 functions, about
 * twice as fast as V8's Math.* even with the copies), mish, mish_grad and mish_grad2 in float32 lanes; float64
 * data keeps the reference's Math.*.
 */
const mathKernel = <P extends MathPrim>(prim: P): Kernel<P> => {
  const op = MATH[prim];
  const js = reference[prim] as Kernel<P>;
  return (out, outShape, inputs, params) => {
    const a = inputs[0]!.data;
    if (
      wasm === null ||
      !(out instanceof Float32Array) ||
      !(a instanceof Float32Array) ||
      out.length < wasmTuning.mathMin ||
      a.length !== out.length
    ) {
      return js(out, outShape, inputs, params);
    }
    const ok = viaWasm(out, [a], [], ([pA], pO) =>
      ewExec(out.length, [pA!, pO], 4, wasmTuning.parallelMinMath, ([qa, qo], len) => ['ew_math_f32', op, qa!, qo!, len]),
    );
    if (!ok) js(out, outShape, inputs, params);
  };
};

/**
 * mish_vjp of float32 data in wasm: mish' in float32 lanes as mish_grad's kernel, then the
 * product with g in float32, so the values are mul(g, mish_grad(x))'s bit for bit; float64 data
 * keeps the reference.
 */
const mish_vjp: Kernel<'mish_vjp'> = (out, outShape, inputs, params) => {
  const a = inputs[0]!.data,
    g = inputs[1]!.data;
  if (
    wasm === null ||
    !(out instanceof Float32Array) ||
    !uniform(out, a, g) ||
    out.length < wasmTuning.mathMin ||
    a.length !== out.length ||
    g.length !== out.length
  )
    return reference.mish_vjp(out, outShape, inputs, params);
  const ok = viaWasm(out, [a, g], [], ([pA, pG], pO) =>
    ewExec(out.length, [pA!, pG!, pO], 4, wasmTuning.parallelMinMath, ([qa, qg, qo], len) => ['mish_vjp_f32', qa!, qg!, qo!, len]),
  );
  if (!ok) reference.mish_vjp(out, outShape, inputs, params);
};

/**
 * channel_affine in wasm: planes (the R elements after `axis` share one scale and shift) split
 * over threads; bit-identical to reference.ts (f32x4/f64x2 multiply, then add, as mul and add).
 */
export const channel_affine: Kernel<'channel_affine'> = (out, outShape, inputs, params) => {
  const x = inputs[0]!.data,
    s = inputs[1]!.data,
    t = inputs[2]!.data;
  if (wasm === null || out.length < wasmTuning.elementwiseMin || !uniform(out, x, s) || !uniform(out, t, t)) {
    return reference.channel_affine(out, outShape, inputs, params);
  }
  const { P, C, R } = channelLayout(outShape, params.axis);
  const ok = viaWasm(out, [x, s, t], [], ([pX, pS, pT], pO, _, isF32) => {
    const fn = isF32 ? 'channel_affine_f32' : 'channel_affine_f64';
    const parts = partsFor(out.length, wasmTuning.parallelMinElements);
    exec(ranges(P * C, parts).map(([p0, p1]) => [[fn, pX!, pS!, pT!, pO, C, R, p0, p1]]));
  });
  if (!ok) reference.channel_affine(out, outShape, inputs, params);
};

/**
 * bn_normalize, bn_normalize_jvp and channel_moments in wasm (normalize.as.ts): the channels split
 * over threads, each channel's sums taken by one thread in one order (the same results for every
 * thread count); float64 sums and arithmetic with reference.ts's output formulas, the sums in
 * another order (float32 data: the moments from one shifted pass, not two).
 */
export const bn_normalize: Kernel<'bn_normalize'> = (out, outShape, inputs, params) => {
  const x = inputs[0]!.data;
  if (wasm === null || out.length < wasmTuning.elementwiseMin || !uniform(out, x, x)) return reference.bn_normalize(out, outShape, inputs, params);
  const { P, C, R } = channelLayout(outShape, params.axis);
  const ok = viaWasm(out, [x], [], ([pX], pO, _, isF32) => {
    const fn = isF32 ? 'bn_normalize_f32' : 'bn_normalize_f64';
    const parts = partsFor(out.length, wasmTuning.parallelMinElements);
    exec(ranges(C, parts).map(([c0, c1]) => [[fn, pX!, pO, P, C, R, params.eps, c0, c1]]));
  });
  if (!ok) reference.bn_normalize(out, outShape, inputs, params);
};

export const bn_normalize_jvp: Kernel<'bn_normalize_jvp'> = (out, outShape, inputs, params) => {
  const x = inputs[0]!.data,
    t = inputs[1]!.data;
  if (wasm === null || out.length < wasmTuning.elementwiseMin || !uniform(out, x, t))
    return reference.bn_normalize_jvp(out, outShape, inputs, params);
  const { P, C, R } = channelLayout(outShape, params.axis);
  const ok = viaWasm(out, [x, t], [], ([pX, pT], pO, _, isF32) => {
    const fn = isF32 ? 'bn_normalize_jvp_f32' : 'bn_normalize_jvp_f64';
    const parts = partsFor(out.length, wasmTuning.parallelMinElements);
    exec(ranges(C, parts).map(([c0, c1]) => [[fn, pX!, pT!, pO, P, C, R, params.eps, c0, c1]]));
  });
  if (!ok) reference.bn_normalize_jvp(out, outShape, inputs, params);
};

export const channel_moments: Kernel<'channel_moments'> = (out, outShape, inputs, params) => {
  const x = inputs[0]!;
  if (wasm === null || x.data.length < wasmTuning.elementwiseMin || !uniform(out, x.data, x.data))
    return reference.channel_moments(out, outShape, inputs, params);
  const { P, C, R } = channelLayout(x.shape, params.axis);
  const ok = viaWasm(out, [x.data], [], ([pX], pO, _, isF32) => {
    const fn = isF32 ? 'channel_moments_f32' : 'channel_moments_f64';
    const parts = partsFor(x.data.length, wasmTuning.parallelMinElements);
    exec(ranges(C, parts).map(([c0, c1]) => [[fn, pX!, pO, P, C, R, c0, c1]]));
  });
  if (!ok) reference.channel_moments(out, outShape, inputs, params);
};

/**
 * The fused training-mode BatchNorm in wasm (normalize.as.ts): bn_affine, bn_sums and
 * bn_affine_jvp, the statistics read from their m operand; the channels split over threads, each
 * channel's sums taken by one thread in one order. bn_affine and bn_affine_jvp compute with
 * reference.ts's formulas in the same order (float64, rounded once), so they are bit-identical
 * to it; bn_sums differs from it only in the order of its float64 sums.
 */
export const bn_affine: Kernel<'bn_affine'> = (out, outShape, inputs, params) => {
  const [x, m, w, b] = inputs.map((i) => i.data) as [Buf, Buf, Buf, Buf];
  if (wasm === null || out.length < wasmTuning.elementwiseMin || !uniform(out, x, m) || !uniform(out, w, b))
    return reference.bn_affine(out, outShape, inputs, params);
  const { P, C, R } = channelLayout(outShape, params.axis);
  const ok = viaWasm(out, [x, m, w, b], [], ([pX, pM, pW, pB], pO, _, isF32) => {
    const fn = isF32 ? 'bn_affine_f32' : 'bn_affine_f64';
    const parts = partsFor(out.length, wasmTuning.parallelMinElements);
    exec(ranges(C, parts).map(([c0, c1]) => [[fn, pX!, pM!, pW!, pB!, pO, P, C, R, params.eps, c0, c1]]));
  });
  if (!ok) reference.bn_affine(out, outShape, inputs, params);
};

export const bn_sums: Kernel<'bn_sums'> = (out, outShape, inputs, params) => {
  const [x, m, u] = inputs.map((i) => i.data) as [Buf, Buf, Buf];
  if (wasm === null || x.length < wasmTuning.elementwiseMin || !uniform(out, x, m) || !uniform(out, u, u))
    return reference.bn_sums(out, outShape, inputs, params);
  const { P, C, R } = channelLayout(inputs[0]!.shape, params.axis);
  const ok = viaWasm(out, [x, m, u], [], ([pX, pM, pU], pO, _, isF32) => {
    const fn = isF32 ? 'bn_sums_f32' : 'bn_sums_f64';
    const parts = partsFor(x.length, wasmTuning.parallelMinElements);
    exec(ranges(C, parts).map(([c0, c1]) => [[fn, pX!, pM!, pU!, pO, P, C, R, params.eps, c0, c1]]));
  });
  if (!ok) reference.bn_sums(out, outShape, inputs, params);
};

export const bn_affine_jvp: Kernel<'bn_affine_jvp'> = (out, outShape, inputs, params) => {
  const [x, m, w, u, s] = inputs.map((i) => i.data) as [Buf, Buf, Buf, Buf, Buf];
  if (wasm === null || out.length < wasmTuning.elementwiseMin || !uniform(out, x, m) || !uniform(out, w, u) || !uniform(out, s, s))
    return reference.bn_affine_jvp(out, outShape, inputs, params);
  const { P, C, R } = channelLayout(outShape, params.axis);
  const ok = viaWasm(out, [x, m, w, u, s], [], ([pX, pM, pW, pU, pS], pO, _, isF32) => {
    const fn = isF32 ? 'bn_affine_jvp_f32' : 'bn_affine_jvp_f64';
    const parts = partsFor(out.length, wasmTuning.parallelMinElements);
    exec(ranges(C, parts).map(([c0, c1]) => [[fn, pX!, pM!, pW!, pU!, pS!, pO, P, C, R, params.eps, c0, c1]]));
  });
  if (!ok) reference.bn_affine_jvp(out, outShape, inputs, params);
};

/** The coefficients of one Adam/AdamW update (nn/optim.ts's adamKernel computes them). */
export interface AdamCoeffs {
  readonly b1: number;
  readonly a1: number;
  readonly b2: number;
  readonly a2: number;
  readonly eps: number;
  readonly negStep: number;
  readonly bc2Sqrt: number;
  readonly wd: number;
  readonly shrink: number;
  /** 0 Adam, 1 Adam with L2 weight decay, 2 AdamW. */
  readonly mode: 0 | 1 | 2;
}

/**
 * One Adam/AdamW update in wasm (elementwise.as.ts adam): float64 lanes with the JS loop's
 * formulas and order, so the results are bit-identical to it; the elements split over threads.
 * False (nothing written) without WebAssembly, below `elementwiseMin` elements, for mixed dtypes
 * or when the memory cannot hold the seven arrays: the caller runs its JS loop.
 */
export function wasmAdam(ins: readonly [Buf, Buf, Buf, Buf], outs: readonly [Buf, Buf, Buf], c: AdamCoeffs): boolean {
  const n = ins[0].length;
  if (wasm === null || n < wasmTuning.elementwiseMin) return false;
  const isF32 = ins[0] instanceof Float32Array;
  const all = [...ins, ...outs];
  if (all.some((b) => b.length !== n || b instanceof Float32Array !== isF32)) return false;
  const sz = isF32 ? 4 : 8;
  reset();
  const ptrs = all.map((b) => residentPtr(b) ?? alloc(n, sz));
  if (!commit()) return false;
  ins.forEach((b, i) => {
    if (residentPtr(b) === null) put(b, ptrs[i]!, isF32);
  });
  const fn = isF32 ? 'adam_f32' : 'adam_f64';
  const parts = partsFor(n, wasmTuning.parallelMinElements);
  exec(ranges(n, parts, 2).map(([i0, i1]) => [[fn, ...ptrs, i0, i1, c.b1, c.a1, c.b2, c.a2, c.eps, c.negStep, c.bc2Sqrt, c.wd, c.shrink, c.mode]]));
  outs.forEach((b, i) => {
    if (residentPtr(b) === null) get(b, ptrs[4 + i]!, isF32);
  });
  return true;
}

/** channel_sums in wasm (normalize.as.ts): channels over threads, float64 sums in one order per channel. */
export const channel_sums: Kernel<'channel_sums'> = (out, outShape, inputs, params) => {
  const u = inputs[0]!,
    x = inputs[1]!;
  if (wasm === null || x.data.length < wasmTuning.elementwiseMin || !uniform(out, u.data, x.data))
    return reference.channel_sums(out, outShape, inputs, params);
  const { P, C, R } = channelLayout(x.shape, params.axis);
  const ok = viaWasm(out, [u.data, x.data], [], ([pU, pX], pO, _, isF32) => {
    const fn = isF32 ? 'channel_sums_f32' : 'channel_sums_f64';
    const parts = partsFor(x.data.length, wasmTuning.parallelMinElements);
    exec(ranges(C, parts).map(([c0, c1]) => [[fn, pU!, pX!, pO, P, C, R, c0, c1]]));
  });
  if (!ok) reference.channel_sums(out, outShape, inputs, params);
};

export const select: Kernel<'select'> = (out, outShape, inputs, params) => {
  const m = inputs[0]!.data,
    a = inputs[1]!.data,
    b = inputs[2]!.data;
  if (wasm === null || out.length < wasmTuning.elementwiseMin || m.length !== out.length || !uniform(out, m, a) || !uniform(out, b, b)) {
    return reference.select(out, outShape, inputs, params);
  }
  const ok = viaWasm(out, [m, a, b], [], ([pM, pA, pB], pO, _, isF32) =>
    ewExec(out.length, [pM!, pA!, pB!, pO], isF32 ? 4 : 8, wasmTuning.parallelMinElements, ([qm, qa, qb, qo], len) => [
      isF32 ? 'ew_select_f32' : 'ew_select_f64',
      qm!,
      qa!,
      qb!,
      qo!,
      len,
    ]),
  );
  if (!ok) reference.select(out, outShape, inputs, params);
};

export const pow: Kernel<'pow'> = (out, outShape, inputs, params) => {
  if (params.exponent !== 2 || !unaryWasm(UNARY.square, out, inputs[0]!.data)) reference.pow(out, outShape, inputs, params);
};

// ---------------------------------------------------------------------------------------------
// structural: reduce_sum and broadcast over three coalesced axes (wasm/structural.as.ts)

/**
 * reduce_sum where the coalesced axes (strided.ts) are [A, B, R] with B kept and A, R summed
 * (fewer axes: the missing ones of extent 1): in wasm, bit-identical to js.ts's (the same float64
 * runs and roundings), split over threads by ranges of the kept elements. Else js.ts's.
 */
export const reduce_sum: Kernel<'reduce_sum'> = (out, outShape, inputs, params) => {
  const a = inputs[0]!;
  if (wasm === null || a.data.length < wasmTuning.elementwiseMin || !uniform(out, a.data, a.data))
    return jsKernels.reduce_sum(out, outShape, inputs, params);
  const { axes } = params;
  const [sh, ds, ss] = coalesce(a.shape, reduceDstStrides(a.shape, axes), stridesOf(a.shape));
  let A = 1,
    B = 1,
    R = 1;
  const pat = ds.map((d) => (d === 0 ? 'r' : 'k')).join('');
  if (pat === 'r') R = sh[0]!;
  else if (pat === 'k') B = sh[0]!;
  else if (pat === 'kr') [B, R] = [sh[0]!, sh[1]!];
  else if (pat === 'rk') [A, B] = [sh[0]!, sh[1]!];
  else if (pat === 'rkr') [A, B, R] = [sh[0]!, sh[1]!, sh[2]!];
  else return jsKernels.reduce_sum(out, outShape, inputs, params);
  // the kept axis steps by 1 in the output, the source is contiguous
  const same = (x: readonly number[], y: readonly number[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  const contiguous = sh.map((_, i) => sh.slice(i + 1).reduce((x, y) => x * y, 1));
  if (
    !same(
      ds,
      [...pat].map((c) => (c === 'r' ? 0 : 1)),
    ) ||
    !same(ss, contiguous)
  )
    return jsKernels.reduce_sum(out, outShape, inputs, params);
  const parts = B > 1 ? Math.min(partsFor(a.data.length, wasmTuning.parallelMinElements), B) : 1;
  const ok = viaWasm(out, [a.data], [], ([pA], pO, _, isF32) => {
    const fn = isF32 ? 'reduce_sum_f32' : 'reduce_sum_f64';
    exec(ranges(B, parts).map(([b0, b1]) => [[fn, pA!, pO, A, B, R, b0, b1]]));
  });
  if (!ok) jsKernels.reduce_sum(out, outShape, inputs, params);
};

/**
 * broadcast where the coalesced axes of the output are at most three, [A, B, R] (the source's
 * strides any): in wasm, split over threads by ranges of the A·B planes. A single value (a fill)
 * and small outputs stay in JS.
 */
export const broadcast: Kernel<'broadcast'> = (out, outShape, inputs, params) => {
  const a = inputs[0]!;
  if (wasm === null || a.data.length === 1 || out.length < wasmTuning.elementwiseMin || !uniform(out, a.data, a.data)) {
    return reference.broadcast(out, outShape, inputs, params);
  }
  const [sh, ds, ss] = coalesce(outShape, stridesOf(outShape), broadcastSrcStrides(a.shape, outShape.length, params.dims));
  if (sh.length === 0 || sh.length > 3) return reference.broadcast(out, outShape, inputs, params);
  const pad = 3 - sh.length;
  const [A, B, R] = [...new Array<number>(pad).fill(1), ...sh] as [number, number, number];
  const [sA, sB, sR] = [...new Array<number>(pad).fill(0), ...ss] as [number, number, number];
  const d3 = [...new Array<number>(pad).fill(0), ...ds];
  if ((B > 1 && d3[1] !== R) || (R > 1 && d3[2] !== 1) || (A > 1 && d3[0] !== B * R)) return reference.broadcast(out, outShape, inputs, params);
  const planes = A * B;
  const parts = Math.min(partsFor(out.length, wasmTuning.parallelMinElements), planes);
  const ok = viaWasm(out, [a.data], [], ([pA], pO, _, isF32) => {
    const fn = isF32 ? 'broadcast_f32' : 'broadcast_f64';
    exec(ranges(planes, parts).map(([p0, p1]) => [[fn, pA!, pO, B, R, sA, sB, sR, p0, p1]]));
  });
  if (!ok) reference.broadcast(out, outShape, inputs, params);
};

/**
 * The 'wasm' kernel set: every primitive. matmul, the conv family and max-pooling in wasm (each
 * falls back to js.ts's: no SIMD, mixed dtypes or too large); the
 * elementwise kernels, reduce_sum and broadcast in wasm (each falls back to reference.ts's or
 * js.ts's: small, mixed, a pattern of more than three coalesced axes, or no SIMD); the rest from
 * reference.ts.
 */
export const wasmKernels: KernelTable = {
  add: binaryKernel('add'),
  sub: binaryKernel('sub'),
  mul: binaryKernel('mul'),
  div: binaryKernel('div'),
  max: binaryKernel('max'),
  min: binaryKernel('min'),
  neg: unaryKernel('neg'),
  exp: mathKernel('exp'),
  log: mathKernel('log'),
  log1p: mathKernel('log1p'),
  tanh: mathKernel('tanh'),
  erf: reference.erf,
  sqrt: unaryKernel('sqrt'),
  abs: unaryKernel('abs'),
  channel_affine,
  bn_normalize,
  bn_normalize_jvp,
  channel_moments,
  channel_sums,
  bn_affine,
  bn_sums,
  bn_affine_jvp,
  mish: mathKernel('mish'),
  mish_grad: mathKernel('mish_grad'),
  mish_grad2: mathKernel('mish_grad2'),
  mish_vjp,
  pow,
  compare,
  select,
  cast: reference.cast,
  stop_gradient: reference.stop_gradient,
  reduce_sum,
  reduce_max: reference.reduce_max,
  reshape: reference.reshape,
  broadcast,
  transpose: reference.transpose,
  slice: reference.slice,
  pad: reference.pad,
  concatenate: reference.concatenate,
  matmul,
  conv2d,
  conv2d_input_grad,
  conv2d_filter_grad,
  maxpool2d,
  maxpool2d_scatter,
};
