/**
 * The training-example Lie bracket. With v_x = −∇L_x the SGD vector field of example x,
 *   [v_x, v_y] = (v_x·∇)v_y − (v_y·∇)v_x = H_y g_x − H_x g_y,
 * and one SGD step on x then y differs from y then x by ε²[v_x, v_y] + O(ε³).
 * Cost: two gradients and two Hessian-vector products (reverse-over-reverse), all exact.
 */
import type { Tensor } from '../engine/tensor.js';
import { concrete, jvp } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { residentCopy } from '../engine/scratch.js';
import type { Loss } from '../nn/losses.js';
import type { Model } from '../nn/models.js';
import { evalState, type ForwardState } from '../nn/layers.js';
import { asVec, bracketHalf, bracketOf, type LossFn } from './half.js';
import { noteSerialBracket, parallelBracket } from './parallel.js';
import type { Vec } from './vec.js';

export { bracketHalf, bracketOf, modelLoss, modelLossOf, modelLossParts, type BracketHalf, type Example, type LossFn } from './half.js';

export interface BracketResult {
  /** B = H_y g_x − H_x g_y, by parameter name. */
  bracket: Vec;
  gradX: Vec;
  gradY: Vec;
  lossX: number;
  lossY: number;
}

/**
 * [v_x, v_y] at `params0` (with both gradients and losses). Cost: two gradients recorded for a
 * second backward pass, then one backward pass over each. With `threads()` ≥ 2, a loss from
 * `modelLoss` and a bracket large enough to gain (parallel.ts bracketTuning), y's half runs on a
 * second engine instance in a worker thread (parallel.ts), with bit-identical results; otherwise
 * both halves run here, one after the other.
 */
export function bracket<E>(loss: LossFn<E>, params0: Vec, x: E, y: E): BracketResult {
  const parallel = parallelBracket(loss, params0, x, y);
  if (parallel) return parallel;
  const t0 = performance.now();
  const params = residentCopy(params0); // (inside withScratch: read in place by the wasm kernels)
  const hx = bracketHalf(loss, params, x);
  const hy = bracketHalf(loss, params, y);
  const hygx = hy.hvp(hx.grad); // H_y g_x
  const hxgy = hx.hvp(hy.grad); // H_x g_y
  const B = bracketOf(hygx, hxgy);
  noteSerialBracket(loss, performance.now() - t0);
  return {
    bracket: B,
    gradX: asVec(hx.grad),
    gradY: asVec(hy.grad),
    lossX: concrete(hx.loss).item(),
    lossY: concrete(hy.loss).item(),
  };
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
