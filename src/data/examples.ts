/** Turning a loaded image data set into model examples: input [N,1,rows,cols] and one-hot targets [N,K]. */
import type { DType } from '../engine/dtype.js';
import { allocBuf } from '../engine/dtype.js';
import { Tensor } from '../engine/tensor.js';
import { UserError } from '../errors.js';
import type { MnistLike } from './idx.js';

export interface Batch {
  /** [N, 1, rows, cols], pixels as float32(uint8)/255, in the requested dtype. */
  readonly x: Tensor;
  /** One-hot [N, K]. */
  readonly t: Tensor;
  readonly labels: readonly number[];
}

export function batchOf(data: MnistLike, indices: readonly number[], dtype: DType, numClasses = 10): Batch {
  const px = data.rows * data.cols;
  const x = allocBuf(dtype, indices.length * px);
  const t = allocBuf(dtype, indices.length * numClasses);
  const labels: number[] = [];
  indices.forEach((idx, k) => {
    if (!Number.isInteger(idx) || idx < 0 || idx >= data.n) {
      throw new UserError(`example index ${idx} is out of range: the split has ${data.n} examples (0…${data.n - 1})`);
    }
    x.set(data.images.subarray(idx * px, (idx + 1) * px), k * px);
    const label = data.labels[idx]!;
    t[k * numClasses + label] = 1;
    labels.push(label);
  });
  return { x: new Tensor(x, [indices.length, 1, data.rows, data.cols]), t: new Tensor(t, [indices.length, numClasses]), labels };
}
