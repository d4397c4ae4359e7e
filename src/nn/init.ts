/**
 * PyTorch's default initialisation for Linear and Conv2d: kaiming_uniform_(a = √5) for weights,
 * which is U(−1/√fan_in, 1/√fan_in), and the same bound for biases. Seeded and deterministic
 * (the distribution matches PyTorch's; the random stream is our own).
 */
import type { DType } from '../engine/dtype.js';
import { Rng } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';

/** fan_in of a weight: shape[1] × the receptive field (PyTorch's _calculate_fan_in_and_fan_out). */
export function fanIn(shape: readonly number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}

export function kaimingUniform(rng: Rng, shape: readonly number[], fan: number, dtype: DType): Tensor {
  const bound = 1 / Math.sqrt(fan);
  return rng.uniformTensor(shape, -bound, bound, dtype);
}

/** Initialise every tensor of a parameter layout: `X.weight` by its fan-in, `X.bias` by X.weight's. */
export function initParams(shapes: Record<string, readonly number[]>, seed: number, dtype: DType): Record<string, Tensor> {
  const rng = new Rng(seed);
  const out: Record<string, Tensor> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const owner = name.replace(/\.bias$/, '.weight');
    const w = shapes[owner];
    const fan = name.endsWith('.bias') && w ? fanIn(w) : fanIn(shape);
    out[name] = kaimingUniform(rng, shape, fan, dtype);
  }
  return out;
}
