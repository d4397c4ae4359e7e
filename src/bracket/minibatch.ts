/**
 * Minibatch brackets. A minibatch A defines the vector field v_A = −∇L_A of its mean loss
 * L_A = (1/|A|) Σ_{i∈A} L_i, so one SGD step on A then B differs from B then A by ε²[v_A, v_B] + O(ε³),
 *   [v_A, v_B] = H_B g_A − H_A g_B.
 * Because g_A and H_A are the averages of the per-example gradients and Hessians, the bracket is
 * bilinear: [v_A, v_B] = (1/|A||B|) Σ_{i∈A, j∈B} [v_i, v_j] (tested in minibatch.test.ts).
 *
 * With BatchNorm in training mode the examples of a batch interact and the bilinearity no longer
 * holds; the default forward state is eval mode, as for single-example brackets.
 */
import { evalState, type ForwardState } from '../nn/layers.js';
import type { Loss } from '../nn/losses.js';
import type { Model } from '../nn/models.js';
import { bracket, modelLossOf, type BracketResult, type Example, type LossFn } from './bracket.js';
import type { Vec } from './vec.js';

/** A minibatch: inputs [n, ...inputShape] and targets [n, K] (an `Example` with n ≥ 1 rows). */
export type Minibatch = Example;

/** The mean per-example loss of a model on a minibatch, as a function of the parameters. */
export function meanModelLoss(model: Model, loss: Loss, state: ForwardState = evalState()): LossFn<Minibatch> {
  return modelLossOf(model, loss, state, 'mean');
}

/**
 * [v_A, v_B] = H_B g_A − H_A g_B for the mean losses of minibatches A and B (two gradients and two
 * Hessian-vector products over the batches, bracket.ts). `lossX`/`lossY` are the mean losses, `gradX`/`gradY`
 * the mean-loss gradients g_A, g_B.
 */
export function minibatchBracket(
  model: Model,
  loss: Loss,
  params: Vec,
  a: Minibatch,
  b: Minibatch,
  state: ForwardState = evalState(),
): BracketResult {
  for (const [name, m] of [
    ['A', a],
    ['B', b],
  ] as const) {
    const n = m.x.shape[0];
    if (n === undefined || n < 1 || m.t.shape[0] !== n) {
      throw new Error(
        `minibatchBracket: minibatch ${name} has inputs ${JSON.stringify(m.x.shape)} and targets ${JSON.stringify(m.t.shape)}; need n ≥ 1 rows in both`,
      );
    }
  }
  return bracket(meanModelLoss(model, loss, state), params, a, b);
}
