/**
 * Values. `Val` is anything a primitive accepts: a concrete `Tensor` (a row-major typed array)
 * or a tracer of an autodiff transformation (see trace.ts). Memory belongs to the garbage
 * collector; nothing is ever disposed by hand (scratch.ts recycles the intermediates of a scope
 * whose results it copies out).
 */
import { allocBuf, dtypeOf, type Buf, type DType } from './dtype.js';
import { assertShape, fmtShape, sizeOf, type Shape } from './shape.js';

export abstract class Val {
  abstract readonly shape: Shape;
  abstract readonly dtype: DType;
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return sizeOf(this.shape);
  }
}

export class Tensor extends Val {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly data: Buf;

  /** Wraps `data` without copying; `shape` must not be mutated afterwards. */
  constructor(data: Buf, shape: Shape) {
    super();
    let n = 1;
    let ok = true;
    for (const d of shape) {
      n *= d;
      ok &&= d >= 0 && Number.isInteger(d);
    }
    if (!ok || data.length !== n) {
      assertShape(shape);
      throw new Error(`tensor data has ${data.length} elements but shape ${fmtShape(shape)} needs ${sizeOf(shape)}`);
    }
    this.data = data;
    this.shape = shape;
    this.dtype = dtypeOf(data);
  }

  /** Element at a multi-index (slow; for tests and small reads). */
  at(...idx: number[]): number {
    let off = 0;
    for (let i = 0; i < this.shape.length; i++) off = off * this.shape[i]! + (idx[i] ?? 0);
    return this.data[off]!;
  }

  /** The single element of a tensor with one element. */
  item(): number {
    if (this.data.length !== 1) throw new Error(`item() needs one element, tensor has shape ${fmtShape(this.shape)}`);
    return this.data[0]!;
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  override toString(): string {
    return `Tensor(${this.dtype}, ${fmtShape(this.shape)})`;
  }
}

export function tensor(values: ArrayLike<number> | Buf, shape?: Shape, dtype: DType = 'float64'): Tensor {
  const s = shape ?? [values.length];
  const buf = allocBuf(dtype, values.length);
  buf.set(values);
  return new Tensor(buf, s);
}

export function scalar(v: number, dtype: DType = 'float64'): Tensor {
  return tensor([v], [], dtype);
}

export function zeros(shape: Shape, dtype: DType = 'float64'): Tensor {
  return new Tensor(allocBuf(dtype, sizeOf(shape)), shape);
}

export function full(shape: Shape, value: number, dtype: DType = 'float64'): Tensor {
  const b = allocBuf(dtype, sizeOf(shape));
  b.fill(value);
  return new Tensor(b, shape);
}

export function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}
