/**
 * Scratch memory for the intermediate tensors of a bounded, repeated computation (a training
 * step): `withScratch(s, f)` runs `f` with every large kernel output drawn from `s`'s pool of
 * recycled buffers, copies the tensors of `f`'s result that live in the pool into fresh memory,
 * and then returns every buffer `f` drew to the pool for the next call.
 *
 * Why: each fresh multi-megabyte typed array costs the page faults of new memory, and its
 * garbage the collector's time; recycled buffers are already mapped (zero-filled on reuse where
 * the kernel contract asks). On the convnet training step this is about 15%.
 *
 * The contract: nothing computed inside `f` may outlive it except through `f`'s result (plain
 * objects and arrays are searched for tensors; other values pass as they are). A tensor smuggled
 * out another way (a closure, a mutated object, a class instance) would see its memory reused.
 * `new Scratch({ poison: true })` fills released buffers with NaN, so tests catch such an escape;
 * the environment variable LIE_BRACKET_POISON_SCRATCH=1 makes that the default (the test suite
 * sets it).
 */
import { allocBuf, type Buf, type DType } from './dtype.js';
import { Tensor } from './tensor.js';

/**
 * Outputs smaller than this many elements are allocated normally. (Pooling from 1,024 rather than
 * 16,384 elements measured 4% faster on the xresnet bracket, batch 1: thousands of small outputs
 * per bracket, each a fresh array for the collector and a copy into WebAssembly memory at its next
 * use.)
 */
export const SCRATCH_MIN_ELEMS = 1024;

/**
 * Where a pool's new buffers come from, when not fresh typed arrays: the wasm kernel tier installs
 * one (wasm.ts) that places them in its linear memory, so that its kernels read and write them in
 * place instead of copying them in and out at every call. `alloc` returns null when it cannot
 * (the pool then allocates a plain array); `free` takes back a buffer it gave, once the pool that
 * held it is disposed of or collected.
 */
export interface BufferSource {
  alloc(dtype: DType, size: number): Buf | null;
  free(b: Buf): void;
}

let source: BufferSource | null = null;

/** Install (or, with null, remove) the source of new pool buffers. */
export function setBufferSource(s: BufferSource | null): void {
  source = s;
}

/** A collected pool's buffers go back to their source (the list does not reference the pool). */
const returned = new FinalizationRegistry<{ source: BufferSource; bufs: Buf[] }>(({ source: src, bufs }) => {
  for (const b of bufs) src.free(b);
});

const POISON_DEFAULT: boolean =
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.['LIE_BRACKET_POISON_SCRATCH'] === '1';

export class Scratch {
  private readonly free = new Map<string, Buf[]>();
  private readonly owned = new WeakSet<Buf>();
  private used: Buf[] = [];
  private readonly poison: boolean;
  /** The buffers that came from a BufferSource, per source (returned on dispose or collection). */
  private sourced = new Map<BufferSource, Buf[]>();

  constructor(opts: { poison?: boolean } = {}) {
    this.poison = opts.poison ?? POISON_DEFAULT;
  }

  /** A buffer from the pool (or a new one that joins it), zero-filled unless `zero` is false. */
  alloc(dtype: DType, size: number, zero = true): Buf {
    const list = this.free.get(`${dtype}:${size}`);
    let b = list?.pop();
    if (b === undefined) {
      const src = source;
      const s = src?.alloc(dtype, size) ?? null;
      if (s !== null && src !== null) {
        b = s;
        if (zero) b.fill(0);
        let l = this.sourced.get(src);
        if (l === undefined) {
          l = [];
          this.sourced.set(src, l);
          returned.register(this, { source: src, bufs: l }, this);
        }
        l.push(b);
      } else {
        b = allocBuf(dtype, size);
      }
      this.owned.add(b);
    } else if (zero) {
      b.fill(0);
    }
    this.used.push(b);
    return b;
  }

  /**
   * Give every buffer back (those from a BufferSource to it) and empty the pool. Only between
   * `withScratch` scopes: nothing drawn from the pool may be used afterwards.
   */
  dispose(): void {
    if (this.used.length > 0) throw new Error('Scratch.dispose: buffers are still in use (inside withScratch)');
    returned.unregister(this);
    for (const [src, bufs] of this.sourced) for (const b of bufs) src.free(b);
    this.sourced = new Map();
    this.free.clear();
  }

  /** Whether `b` is one of this pool's buffers. */
  owns(b: Buf): boolean {
    return this.owned.has(b);
  }

  /** Return the buffers drawn since `mark` (an index from `mark()`) to the pool. */
  release(mark: number): void {
    for (let i = mark; i < this.used.length; i++) {
      const b = this.used[i]!;
      if (this.poison) b.fill(NaN);
      const key = `${b instanceof Float32Array ? 'float32' : 'float64'}:${b.length}`;
      const list = this.free.get(key);
      if (list) list.push(b);
      else this.free.set(key, [b]);
    }
    this.used.length = mark;
  }

  mark(): number {
    return this.used.length;
  }

  /** Buffers held (in use or free) and their total bytes. */
  get stats(): { buffers: number; bytes: number } {
    let buffers = this.used.length;
    let bytes = this.used.reduce((a, b) => a + b.byteLength, 0);
    for (const l of this.free.values()) {
      buffers += l.length;
      bytes += l.reduce((a, b) => a + b.byteLength, 0);
    }
    return { buffers, bytes };
  }
}

let active: Scratch | null = null;

/**
 * The output buffer of a kernel call: from the active scratch pool when large enough, and then
 * zero-filled only if `zero` (see WRITES_EVERY_ELEMENT in kernels/types.ts).
 */
export function kernelOutput(dtype: DType, size: number, zero = true): Buf {
  return active !== null && size >= SCRATCH_MIN_ELEMS ? active.alloc(dtype, size, zero) : allocBuf(dtype, size);
}

/**
 * Run `f` with kernel outputs drawn from `s`; the tensors of its result that live in the pool
 * are copied out, then everything `f` drew goes back to the pool. Nests (an inner scope releases
 * only its own buffers).
 */
export function withScratch<T>(s: Scratch, f: () => T): T {
  const prev = active;
  const mark = s.mark();
  active = s;
  let result: T;
  try {
    result = f();
  } catch (e) {
    active = prev;
    s.release(mark);
    throw e;
  }
  active = prev;
  const out = copyOut(s, result) as T;
  s.release(mark);
  return out;
}

/**
 * Inside `withScratch`: `tree` (a record of tensors, e.g. a model's parameters) with each tensor
 * of at least SCRATCH_MIN_ELEMS elements that is not already in the pool copied into a pool
 * buffer, for a computation that reads them many times (a bracket reads each weight in about
 * eight kernel calls): the wasm kernels then read them in place instead of copying them into
 * WebAssembly memory at every call. The copies go back to the pool with the scope's other
 * buffers. Outside a scope, `tree` itself.
 */
export function residentCopy<T extends Readonly<Record<string, Tensor>>>(tree: T): T {
  const s = active;
  if (s === null) return tree;
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tree)) {
    if (t.size < SCRATCH_MIN_ELEMS || s.owns(t.data)) {
      out[k] = t;
      continue;
    }
    const b = s.alloc(t.dtype, t.size, false);
    b.set(t.data);
    out[k] = new Tensor(b, t.shape);
  }
  return out as T;
}

/** `v` with every tensor (or bare buffer) that lives in `s` copied, searching plain objects and arrays. */
function copyOut(s: Scratch, v: unknown): unknown {
  if (v instanceof Tensor) return s.owns(v.data) ? new Tensor(v.data.slice(), v.shape) : v;
  if (v instanceof Float32Array || v instanceof Float64Array) return s.owns(v) ? v.slice() : v;
  if (Array.isArray(v)) return v.map((x) => copyOut(s, x));
  if (v !== null && typeof v === 'object') {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) return v;
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = copyOut(s, x);
    return o;
  }
  return v;
}
