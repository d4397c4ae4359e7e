/**
 * The training-example Lie bracket. With v_x = −∇L_x the SGD vector field of example x,
 *   [v_x, v_y] = (v_x·∇)v_y − (v_y·∇)v_x = H_y g_x − H_x g_y,
 * and one SGD step on x then y differs from y then x by ε²[v_x, v_y] + O(ε³).
 * Cost: one gradient and two forward-over-reverse Hessian-vector products, all exact.
 */
import type { Tensor, Val } from '../engine/tensor.js';
import { concrete, hvp, jvp, valueAndGrad } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { sub as opsSub, sum } from '../engine/ops.js';
import { residentCopy } from '../engine/scratch.js';
import type { Loss } from '../nn/losses.js';
import type { Model } from '../nn/models.js';
import { evalState, type ForwardState } from '../nn/layers.js';
import type { Vec } from './vec.js';

export interface BracketResult {
  /** B = H_y g_x − H_x g_y, by parameter name. */
  bracket: Vec;
  gradX: Vec;
  gradY: Vec;
  lossX: number;
  lossY: number;
}

/** A per-example loss as a function of the parameters. */
export type LossFn<E> = (params: Params, example: E) => Val;

const asVec = (p: Params): Vec => {
  const out: Vec = {};
  for (const [k, v] of Object.entries(p)) out[k] = concrete(v);
  return out;
};

export function bracket<E>(loss: LossFn<E>, params0: Vec, x: E, y: E): BracketResult {
  const params = residentCopy(params0); // (inside withScratch: read in place by the wasm kernels)
  const fx = (p: Params) => loss(p, x);
  const fy = (p: Params) => loss(p, y);
  const [lx, gx] = valueAndGrad(fx)(params);
  const hy = hvp(fy, params, gx); // ∇L_y and H_y g_x
  const hx = hvp(fx, params, hy.grad); // H_x g_y
  const B: Vec = {};
  for (const k of Object.keys(hy.hvp)) B[k] = concrete(opsSub(hy.hvp[k]!, hx.hvp[k]!)); // the engine's (SIMD) kernel
  return {
    bracket: B,
    gradX: asVec(gx),
    gradY: asVec(hy.grad),
    lossX: concrete(lx).item(),
    lossY: concrete(hy.value).item(),
  };
}

/** An example for the reference models: input [1, ...inputShape] and target [1, K]. */
export interface Example {
  readonly x: Tensor;
  readonly t: Tensor;
}

/**
 * The loss of a model on an example (summed over its batch axis, so a one-example batch gives the
 * per-example loss). `state` carries BatchNorm buffers; brackets use eval mode (the seed study's
 * choice: the vector field of an example then does not depend on the other examples of a batch).
 */
export function modelLoss(model: Model, loss: Loss, state: ForwardState = evalState()): LossFn<Example> {
  return (p, ex) => sum(loss.perExample(model.apply(p, ex.x, state), ex.t));
}

/** J_f(z)·v: the change of the model's logits at inputs z [N, ...] along the parameter direction v ([N, K]). */
export function logitEffect(model: Model, params: Vec, z: Tensor, v: Vec, state: ForwardState = evalState()): Tensor {
  const [, dz] = jvp((p: Params) => model.apply(p, z, state), residentCopy(params) as Params, v as Params);
  return concrete(dz);
}

/**
 * J_{p∘f}(z)·v: the change of the per-output probabilities at inputs z [N, ...] along the parameter
 * direction v, as the loss models them (`loss.probabilities`: sigmoids for bce, a softmax for ce,
 * per-group softmaxes for grouped), [N, K]. Unlike logits, probabilities are comparable across
 * losses: under `ce` a logit effect common to every output changes nothing (a plain softmax is
 * shift-invariant), and this measure says so. (A `grouped` group with a "none" option is not
 * shift-invariant: that option's logit is pinned at 0, so a common shift moves probability between
 * "none" and the members.)
 */
export function probabilityEffect(model: Model, loss: Loss, params: Vec, z: Tensor, v: Vec, state: ForwardState = evalState()): Tensor {
  // the tangent tree in the parameters' key order (a checkpoint file stores them sorted by name)
  const tangent: Vec = {};
  for (const k of Object.keys(params)) {
    const t = v[k];
    if (!t) throw new Error(`probabilityEffect: the direction lacks parameter ${k}`);
    tangent[k] = t;
  }
  const [, dp] = jvp((p: Params) => loss.probabilities(model.apply(p, z, state)), params as Params, tangent as Params);
  return concrete(dp);
}
