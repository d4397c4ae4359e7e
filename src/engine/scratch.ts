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
 * The contract: nothing computed inside `f` may outlive it except through `f`'s result (a tree of
 * values, src/engine/tree.ts). A tensor smuggled out another way (a closure, a mutated object)
 * would see its memory reused. `new Scratch({ poison: true })` fills released buffers with NaN, so
 * tests catch such an escape.
 */
import { allocBuf, type Buf, type DType } from './dtype.js';
import { Tensor, type Val } from './tensor.js';
import { treeMap, type Tree } from './tree.js';

/** Outputs smaller than this many elements are allocated normally (small allocations are cheap). */
export const SCRATCH_MIN_ELEMS = 16384;

export class Scratch {
  private readonly free = new Map<string, Buf[]>();
  private readonly owned = new WeakSet<Buf>();
  private used: Buf[] = [];
  private readonly poison: boolean;

  constructor(opts: { poison?: boolean } = {}) {
    this.poison = opts.poison ?? false;
  }

  /** A buffer from the pool (or a new one that joins it), zero-filled unless `zero` is false. */
  alloc(dtype: DType, size: number, zero = true): Buf {
    const list = this.free.get(`${dtype}:${size}`);
    let b = list?.pop();
    if (b === undefined) {
      b = allocBuf(dtype, size);
      this.owned.add(b);
    } else if (zero) {
      b.fill(0);
    }
    this.used.push(b);
    return b;
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
export function withScratch<T extends Tree>(s: Scratch, f: () => T): T {
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
  const out = treeMap(result, (v: Val) => (v instanceof Tensor && s.owns(v.data) ? new Tensor(v.data.slice(), v.shape) : v)) as T;
  s.release(mark);
  return out;
}
