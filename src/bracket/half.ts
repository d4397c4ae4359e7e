/**
 * The two halves of a bracket [v_x, v_y] = H_y g_x − H_x g_y, shared by the thread that asks for
 * it and the engine instance in a worker thread that computes y's half (parallel.ts): the loss
 * of a model on an example, one example's gradient with its Hessian-vector product, and B.
 */
import { sub as opsSub, mean, sum } from '../engine/ops.js';
import type { Tensor, Val } from '../engine/tensor.js';
import { concrete, gradHvp } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { evalState, type ForwardState } from '../nn/layers.js';
import type { Loss } from '../nn/losses.js';
import type { Model } from '../nn/models.js';
import type { Vec } from './vec.js';

/** A per-example loss as a function of the parameters. */
export type LossFn<E> = (params: Params, example: E) => Val;

/** An example for the reference models: input [1, ...inputShape] and target [1, K]. */
export interface Example {
  readonly x: Tensor;
  readonly t: Tensor;
}

/** What a loss from `modelLossOf` is made of: enough to build it again in another engine instance. */
export interface ModelLossParts {
  readonly model: Model;
  readonly loss: Loss;
  readonly state: ForwardState;
  /** Over the examples of a batch: the sum (`modelLoss`) or the mean (minibatch.ts's `meanModelLoss`). */
  readonly reduce: 'sum' | 'mean';
}

const parts = new WeakMap<object, ModelLossParts>();

/** The loss of `model` under `loss` on an example or batch, reduced over its rows as `reduce` says. */
export function modelLossOf(model: Model, loss: Loss, state: ForwardState, reduce: 'sum' | 'mean'): LossFn<Example> {
  const r = reduce === 'sum' ? sum : mean;
  const f: LossFn<Example> = (p, ex) => r(loss.perExample(model.apply(p, ex.x, state), ex.t));
  parts.set(f, { model, loss, state, reduce });
  return f;
}

/** The parts of a loss that `modelLossOf` made (undefined for any other function). */
export function modelLossParts(f: object): ModelLossParts | undefined {
  return parts.get(f);
}

/**
 * The loss of a model on an example (summed over its batch axis, so a one-example batch gives the
 * per-example loss). `state` carries BatchNorm buffers; brackets use eval mode (the seed study's
 * choice: the vector field of an example then does not depend on the other examples of a batch).
 */
export function modelLoss(model: Model, loss: Loss, state: ForwardState = evalState()): LossFn<Example> {
  return modelLossOf(model, loss, state, 'sum');
}

/**
 * One example's half of a bracket: its loss, its gradient g, and v ↦ H v, its Hessian along any
 * direction (reverse-over-reverse: the gradient's pullback, PyTorch's double backward). Each half
 * needs only its own example, so the two halves of a bracket can run at once (parallel.ts); the
 * second phase, H_y g_x and H_x g_y, needs the other half's gradient.
 */
export interface BracketHalf {
  loss: Val;
  grad: Params;
  hvp: (v: Params) => Params;
}

export function bracketHalf<E>(loss: LossFn<E>, params: Params, ex: E): BracketHalf {
  const h = gradHvp((p: Params) => loss(p, ex), params);
  return { loss: h.value, grad: h.grad, hvp: h.hvp };
}

/** A tree of finished values as a Vec (each leaf a concrete tensor). */
export function asVec(p: Params): Vec {
  const out: Vec = {};
  for (const [k, v] of Object.entries(p)) out[k] = concrete(v);
  return out;
}

/** B = H_y g_x − H_x g_y by parameter name (the engine's SIMD subtraction), in H_y g_x's key order. */
export function bracketOf(hygx: Params, hxgy: Params): Vec {
  const B: Vec = {};
  for (const k of Object.keys(hygx)) B[k] = concrete(opsSub(hygx[k]!, hxgy[k]!));
  return B;
}
