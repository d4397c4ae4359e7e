/**
 * The wasm kernel tier (kernel set 'wasm', the default): WebAssembly SIMD kernels for matmul, the
 * conv family and max-pooling (sources: wasm/kernels.as.ts and the gemm, conv, pool and
 * elementwise files it exports from, compiled by scripts/build-wasm.mjs into wasm/kernels.wasm.ts),
 * interchangeable with js.ts and linalg_ref.ts up to floating-point summation order (max-pool
 * selects exactly the same elements; its scatter with overlapping windows stays in js.ts,
 * which sums in float64) — and for the simple elementwise primitives (add, sub, mul, div, max,
 * min, compare, select, neg, abs, sqrt, pow 2), bit-identical to reference.ts: even with the copies in
 * and out, 4 lanes at a time beat V8's scalar loops 2–4× from about a thousand elements on
 * (below `wasmTuning.elementwiseMin` the JS loops run). exp, log, log1p, tanh, mish and mish_grad of float32
 * data run here too, in float64 with the standard library's functions, then rounded: equal to the
 * reference's rounded Math.* in every value the tests try (a difference would be one float32 ulp).
 *
 * The module is compiled and instantiated synchronously when this file is loaded. Where
 * WebAssembly or its SIMD extension is not available, `wasmAvailable` is false and every kernel
 * here is the plain-JS one from js.ts (or the reference's, for the elementwise ones).
 *
 * Precision: float32 in f32x4 lanes with float32 accumulation (as PyTorch's CPU kernels do),
 * float64 in f64x2 lanes with float64 accumulation.
 *
 * Memory: one linear memory, grown on demand and never shrunk (WebAssembly memories cannot
 * shrink): it stays at the high-water mark of the largest call, i.e. the operands, the result
 * and the im2col scratch of that call. `releaseWasmMemory()` drops it (a fresh instance with an
 * empty memory takes its place). Per call, regions are bump-allocated from the start of the
 * heap, the operands copied in, the kernel run, and the result copied out into `out`: nothing
 * in wasm memory outlives a call, and no view of it is handed out.
 */
import type { Buf } from '../dtype.js';
import type { ConvParams, PoolParams } from '../prims.js';
import { jsKernels } from './js.js';
import { reference } from './reference.js';
import { convDims, input, matmulDims, poolDims, type ConvDims } from './linalg_ref.js';
import type { Kernel, KernelTable } from './types.js';
import { WASM_BASE64 } from './wasm/kernels.wasm.js';

type Ptr = number;

// The few WebAssembly types used here (the project's lib settings do not declare them).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
}
const WA: WasmApi | undefined = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

interface Exports {
  readonly memory: WasmMemory;
  readonly heapBase: () => Ptr;
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
  readonly matmul_f32: (batch: number, M: number, N: number, K: number, transA: number, transB: number, A: Ptr, B: Ptr, C: Ptr, scratch: Ptr) => void;
  readonly matmul_f64: (batch: number, M: number, N: number, K: number, transA: number, transB: number, A: Ptr, B: Ptr, C: Ptr, scratch: Ptr) => void;
  readonly conv2d_f32: (X: Ptr, W: Ptr, Y: Ptr, col: Ptr, N: number, C: number, O: number, G: number) => void;
  readonly conv2d_f64: (X: Ptr, W: Ptr, Y: Ptr, col: Ptr, N: number, C: number, O: number, G: number) => void;
  readonly conv2d_input_grad_f32: (DY: Ptr, W: Ptr, DX: Ptr, col: Ptr, N: number, C: number, O: number, G: number) => void;
  readonly conv2d_input_grad_f64: (DY: Ptr, W: Ptr, DX: Ptr, col: Ptr, N: number, C: number, O: number, G: number) => void;
  readonly conv2d_filter_grad_f32: (X: Ptr, DY: Ptr, DW: Ptr, col: Ptr, dyg: Ptr, N: number, C: number, O: number, G: number, per: number) => void;
  readonly conv2d_filter_grad_f64: (X: Ptr, DY: Ptr, DW: Ptr, col: Ptr, dyg: Ptr, N: number, C: number, O: number, G: number, per: number) => void;
  readonly setPool: (KH: number, KW: number, sh: number, sw: number, ph: number, pw: number) => void;
  readonly maxpool_f32: (K: Ptr, V: Ptr, out: Ptr, idx: Ptr, NC: number, H: number, W: number, OH: number, OW: number) => void;
  readonly maxpool_f64: (K: Ptr, V: Ptr, out: Ptr, idx: Ptr, NC: number, H: number, W: number, OH: number, OW: number) => void;
  readonly maxpool_scatter_f32: (K: Ptr, DY: Ptr, DX: Ptr, idx: Ptr, NC: number, H: number, W: number, OH: number, OW: number) => void;
  readonly maxpool_scatter_f64: (K: Ptr, DY: Ptr, DX: Ptr, idx: Ptr, NC: number, H: number, W: number, OH: number, OW: number) => void;
  readonly ew_binary_f32: (op: number, A: Ptr, B: Ptr, O: Ptr, n: number) => void;
  readonly ew_binary_f64: (op: number, A: Ptr, B: Ptr, O: Ptr, n: number) => void;
  readonly ew_unary_f32: (op: number, A: Ptr, O: Ptr, n: number) => void;
  readonly ew_select_f32: (M: Ptr, A: Ptr, B: Ptr, O: Ptr, n: number) => void;
  readonly ew_math_f32: (op: number, A: Ptr, O: Ptr, n: number) => void;
  readonly ew_select_f64: (M: Ptr, A: Ptr, B: Ptr, O: Ptr, n: number) => void;
  readonly ew_unary_f64: (op: number, A: Ptr, O: Ptr, n: number) => void;
}

/** The compiled module (synchronous compilation: the binary is about 35 kB), or null without SIMD. */
let compiled: object | null = null;
try {
  if (WA !== undefined) compiled = new WA.Module(Buffer.from(WASM_BASE64, 'base64'));
} catch {
  compiled = null; // no SIMD (or no WebAssembly): the JS kernels serve
}

function instantiate(): Exports | null {
  if (compiled === null || WA === undefined) return null;
  try {
    return new WA.Instance(compiled, {}).exports as Exports;
  } catch {
    return null;
  }
}

let wasm: Exports | null = instantiate();

/** Whether the kernels of this file run in WebAssembly (else they are js.ts's and the reference's). */
export const wasmAvailable: boolean = wasm !== null;

// ---------------------------------------------------------------------------------------------
// memory: a bump allocator over the linear memory, reset at every call

const ALIGN = 64; // cache-line aligned regions
const PAGE = 65536;
const MAX_BYTES = 4 * 1024 * 1024 * 1024 - PAGE; // wasm32 addresses

let heapBase = 0;
let top = 0;
let f32 = new Float32Array(0);
let f64 = new Float64Array(0);

function resetViews(): void {
  const buf = wasm!.memory.buffer;
  f32 = new Float32Array(buf);
  f64 = new Float64Array(buf);
}

function initHeap(): void {
  if (wasm === null) return;
  heapBase = Math.ceil(wasm.heapBase() / ALIGN) * ALIGN;
  resetViews();
}
initHeap();

/** Start a call's allocations. */
function reset(): void {
  top = heapBase;
}

/** A region of `elems` elements of `bytes` bytes each (the memory is grown later, by `commit`). */
function alloc(elems: number, bytes: number): Ptr {
  const p = top;
  top += Math.ceil((elems * bytes) / ALIGN) * ALIGN;
  return p;
}

/** Grow the memory to hold everything allocated since `reset`; false if it cannot. */
function commit(): boolean {
  const mem = wasm!.memory;
  if (top > MAX_BYTES) return false;
  const have = mem.buffer.byteLength;
  if (top > have) {
    try {
      mem.grow(Math.ceil((top - have) / PAGE));
    } catch {
      return false;
    }
  }
  if (f32.buffer !== mem.buffer) resetViews(); // growing detaches the old buffer
  return true;
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
 * One call into wasm: reserve the inputs (an array passed twice is copied once), the output and
 * the `scratch` regions, copy the inputs in, `run` the kernel with their addresses, copy the
 * output back. False (nothing written) when the memory cannot hold them.
 */
function viaWasm(out: Buf, inputs: readonly Buf[], scratch: readonly Region[], run: (ins: Ptr[], o: Ptr, s: Ptr[], isF32: boolean) => void): boolean {
  const isF32 = out instanceof Float32Array;
  const sz = isF32 ? 4 : 8;
  reset();
  const pIns: Ptr[] = [];
  inputs.forEach((b, i) => {
    const first = inputs.indexOf(b);
    pIns.push(first < i ? pIns[first]! : alloc(b.length, sz));
  });
  const pOut = alloc(out.length, sz);
  const pS = scratch.map((r) => (r.elems === 0 ? 0 : alloc(r.elems, r.int ? 4 : sz)));
  if (!commit()) return false;
  inputs.forEach((b, i) => {
    if (inputs.indexOf(b) === i) put(b, pIns[i]!, isF32);
  });
  run(pIns, pOut, pS, isF32);
  get(out, pOut, isF32);
  return true;
}

/**
 * Drop the linear memory (for long-lived processes after a large one-off computation): the next
 * call starts with a fresh instance and an empty memory.
 */
export function releaseWasmMemory(): void {
  if (wasm === null) return;
  wasm = instantiate();
  initHeap();
}

/** The current size of the linear memory in bytes (0 without WebAssembly). */
export function wasmMemoryBytes(): number {
  return wasm === null ? 0 : wasm.memory.buffer.byteLength;
}

/** Whether the operands and the output share one element type (the wasm kernels need that). */
function uniform(out: Buf, a: Buf, b: Buf): boolean {
  const isF32 = out instanceof Float32Array;
  return a instanceof Float32Array === isF32 && b instanceof Float32Array === isF32;
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
  const ok = viaWasm(out, [a.data, b.data], [{ elems: params.transB ? K * N : 0 }], ([pA, pB], pC, [pS], isF32) =>
    (isF32 ? wasm!.matmul_f32 : wasm!.matmul_f64)(batch, M, N, K, params.transA ? 1 : 0, params.transB ? 1 : 0, pA!, pB!, pC, pS!),
  );
  if (!ok) jsKernels.matmul(out, outShape, inputs, params);
};

function setGeom(d: ConvDims, p: ConvParams): void {
  wasm!.setGeom(d.H, d.W, d.KH, d.KW, d.OH, d.OW, p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1]);
}

function isPointwise(d: ConvDims, p: ConvParams): boolean {
  return d.KH === 1 && d.KW === 1 && p.stride[0] === 1 && p.stride[1] === 1 && p.padding[0] === 0 && p.padding[1] === 0;
}

export const conv2d: Kernel<'conv2d'> = (out, outShape, inputs, p) => {
  const x = input(inputs, 0, 'conv2d');
  const w = input(inputs, 1, 'conv2d');
  const d = convDims(x.shape, w.shape, outShape, p, 'conv2d');
  if (wasm === null || !uniform(out, x.data, w.data)) return jsKernels.conv2d(out, outShape, inputs, p);
  if (out.length === 0) return;
  const col = isPointwise(d, p) ? 0 : d.Cg * d.KH * d.KW * d.OH * d.OW;
  const ok = viaWasm(out, [x.data, w.data], [{ elems: col }], ([pX, pW], pY, [pCol], isF32) => {
    setGeom(d, p);
    (isF32 ? wasm!.conv2d_f32 : wasm!.conv2d_f64)(pX!, pW!, pY, pCol!, d.N, d.C, d.O, d.G);
  });
  if (!ok) jsKernels.conv2d(out, outShape, inputs, p);
};

export const conv2d_input_grad: Kernel<'conv2d_input_grad'> = (out, outShape, inputs, p) => {
  const dy = input(inputs, 0, 'conv2d_input_grad');
  const w = input(inputs, 1, 'conv2d_input_grad');
  const d = convDims(outShape, w.shape, dy.shape, p, 'conv2d_input_grad');
  if (wasm === null || !uniform(out, dy.data, w.data)) return jsKernels.conv2d_input_grad(out, outShape, inputs, p);
  if (out.length === 0) return;
  const col = isPointwise(d, p) ? 0 : d.Cg * d.KH * d.KW * d.OH * d.OW;
  const ok = viaWasm(out, [dy.data, w.data], [{ elems: col }], ([pDY, pW], pDX, [pCol], isF32) => {
    setGeom(d, p);
    (isF32 ? wasm!.conv2d_input_grad_f32 : wasm!.conv2d_input_grad_f64)(pDY!, pW!, pDX, pCol!, d.N, d.C, d.O, d.G);
  });
  if (!ok) jsKernels.conv2d_input_grad(out, outShape, inputs, p);
};

/**
 * Tuning knobs, exported so that tests can force the rarely taken paths.
 * filterGradChunk: most elements that the filter gradient gathers at once (im2col columns and
 * dy rows of a chunk of images; 4 Mi elements = 16 MiB in float32).
 * elementwiseMin: fewest output elements for which the elementwise kernels run in wasm (the
 * copies make smaller calls no faster than the JS loops); mathMin: the same for the float32
 * transcendental kernels (each element costs far more than its copy).
 */
export const wasmTuning = { filterGradChunk: 1 << 22, elementwiseMin: 512, mathMin: 64 };

export const conv2d_filter_grad: Kernel<'conv2d_filter_grad'> = (out, outShape, inputs, p) => {
  const x = input(inputs, 0, 'conv2d_filter_grad');
  const dy = input(inputs, 1, 'conv2d_filter_grad');
  const d = convDims(x.shape, outShape, dy.shape, p, 'conv2d_filter_grad');
  if (wasm === null || !uniform(out, x.data, dy.data)) return jsKernels.conv2d_filter_grad(out, outShape, inputs, p);
  if (out.length === 0) return;
  const OHW = d.OH * d.OW;
  const CKK = d.Cg * d.KH * d.KW;
  // images per chunk: their columns and dy rows side by side, one dot-form GEMM per chunk
  const per = Math.max(1, Math.min(d.N, Math.floor(wasmTuning.filterGradChunk / Math.max(1, (CKK + d.Og) * OHW))));
  const col = isPointwise(d, p) && per === 1 ? 0 : CKK * per * OHW;
  const dyg = per > 1 ? d.Og * per * OHW : 0;
  const ok = viaWasm(out, [x.data, dy.data], [{ elems: col }, { elems: dyg }], ([pX, pDY], pDW, [pCol, pDyg], isF32) => {
    setGeom(d, p);
    (isF32 ? wasm!.conv2d_filter_grad_f32 : wasm!.conv2d_filter_grad_f64)(pX!, pDY!, pDW, pCol!, pDyg!, d.N, d.C, d.O, d.G, per);
  });
  if (!ok) jsKernels.conv2d_filter_grad(out, outShape, inputs, p);
};

function setPool(p: PoolParams): void {
  wasm!.setPool(p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1]);
}

export const maxpool2d: Kernel<'maxpool2d'> = (out, outShape, inputs, p) => {
  const key = input(inputs, 0, 'maxpool2d');
  const val = input(inputs, 1, 'maxpool2d');
  const [NC, H, W, OH, OW] = poolDims(key.shape, outShape, 'maxpool2d');
  if (wasm === null || !uniform(out, key.data, val.data)) return jsKernels.maxpool2d(out, outShape, inputs, p);
  if (out.length === 0) return;
  // max_pool2d(x) = maxpool2d(x, x): the same array is copied once
  const ok = viaWasm(out, [key.data, val.data], [{ elems: out.length, int: true }], ([pK, pV], pOut, [pIdx], isF32) => {
    setPool(p);
    (isF32 ? wasm!.maxpool_f32 : wasm!.maxpool_f64)(pK!, pV!, pOut, pIdx!, NC, H, W, OH, OW);
  });
  if (!ok) jsKernels.maxpool2d(out, outShape, inputs, p);
};

export const maxpool2d_scatter: Kernel<'maxpool2d_scatter'> = (out, outShape, inputs, p) => {
  const key = input(inputs, 0, 'maxpool2d_scatter');
  const dy = input(inputs, 1, 'maxpool2d_scatter');
  const [NC, H, W, OH, OW] = poolDims(outShape, dy.shape, 'maxpool2d_scatter');
  // Overlapping windows add several contributions to an element: js.ts sums those in float64.
  const overlap = p.stride[0] < p.kernel[0] || p.stride[1] < p.kernel[1];
  if (wasm === null || overlap || !uniform(out, key.data, dy.data)) return jsKernels.maxpool2d_scatter(out, outShape, inputs, p);
  if (out.length === 0) return;
  const ok = viaWasm(out, [key.data, dy.data], [{ elems: dy.data.length, int: true }], ([pK, pDY], pDX, [pIdx], isF32) => {
    setPool(p);
    (isF32 ? wasm!.maxpool_scatter_f32 : wasm!.maxpool_scatter_f64)(pK!, pDY!, pDX, pIdx!, NC, H, W, OH, OW);
  });
  if (!ok) jsKernels.maxpool2d_scatter(out, outShape, inputs, p);
};

// ---------------------------------------------------------------------------------------------
// elementwise (op codes of wasm/elementwise.as.ts)

const BINARY = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5, gt: 6, ge: 7, lt: 8, le: 9, eq: 10, ne: 11 } as const;
const UNARY = { neg: 0, abs: 1, sqrt: 2, square: 3 } as const;

/** out = a op b in wasm; false (nothing done) when the JS loop should run instead. */
function binaryWasm(op: number, out: Buf, a: Buf, b: Buf): boolean {
  if (wasm === null || out.length < wasmTuning.elementwiseMin || a.length !== out.length || b.length !== out.length || !uniform(out, a, b))
    return false;
  return viaWasm(out, [a, b], [], ([pA, pB], pO, _, isF32) => (isF32 ? wasm!.ew_binary_f32 : wasm!.ew_binary_f64)(op, pA!, pB!, pO, out.length));
}

/** out = op(a) in wasm; false (nothing done) when the JS loop should run instead. */
function unaryWasm(op: number, out: Buf, a: Buf): boolean {
  if (wasm === null || out.length < wasmTuning.elementwiseMin || a.length !== out.length || !uniform(out, a, a)) return false;
  return viaWasm(out, [a], [], ([pA], pO, _, isF32) => (isF32 ? wasm!.ew_unary_f32 : wasm!.ew_unary_f64)(op, pA!, pO, out.length));
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

const MATH = { exp: 0, log: 1, log1p: 2, tanh: 3, mish: 4, mish_grad: 5 } as const;
type MathPrim = keyof typeof MATH;

/**
 * exp, log, log1p, tanh, mish, mish_grad of float32 data in wasm (the standard library's float64 functions, about
 * twice as fast as V8's Math.* even with the copies); float64 data keeps the reference's Math.*.
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
    if (!viaWasm(out, [a], [], ([pA], pO) => wasm!.ew_math_f32(op, pA!, pO, out.length))) js(out, outShape, inputs, params);
  };
};

export const select: Kernel<'select'> = (out, outShape, inputs, params) => {
  const m = inputs[0]!.data,
    a = inputs[1]!.data,
    b = inputs[2]!.data;
  if (wasm === null || out.length < wasmTuning.elementwiseMin || m.length !== out.length || !uniform(out, m, a) || !uniform(out, b, b)) {
    return reference.select(out, outShape, inputs, params);
  }
  const ok = viaWasm(out, [m, a, b], [], ([pM, pA, pB], pO, _, isF32) =>
    (isF32 ? wasm!.ew_select_f32 : wasm!.ew_select_f64)(pM!, pA!, pB!, pO, out.length),
  );
  if (!ok) reference.select(out, outShape, inputs, params);
};

export const pow: Kernel<'pow'> = (out, outShape, inputs, params) => {
  if (params.exponent !== 2 || !unaryWasm(UNARY.square, out, inputs[0]!.data)) reference.pow(out, outShape, inputs, params);
};

/**
 * The 'wasm' kernel set: every primitive. matmul, the conv family and max-pooling in wasm (each
 * falls back to js.ts's: no SIMD, mixed dtypes, too large, or an overlapping pool scatter); the
 * elementwise kernels in wasm (each falls back to reference.ts's: small, mixed or no SIMD);
 * reduce_sum from js.ts; the rest from reference.ts.
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
  sqrt: unaryKernel('sqrt'),
  abs: unaryKernel('abs'),
  mish: mathKernel('mish'),
  mish_grad: mathKernel('mish_grad'),
  pow,
  compare,
  select,
  cast: reference.cast,
  stop_gradient: reference.stop_gradient,
  reduce_sum: jsKernels.reduce_sum,
  reduce_max: reference.reduce_max,
  reshape: reference.reshape,
  broadcast: reference.broadcast,
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
