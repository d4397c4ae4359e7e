/**
 * Per-example losses on logits z [N, K] and targets t [N, K] (one-hot for class labels):
 * the bracket needs one loss per example, so these return [N].
 *  - bce: Σ_k binary cross-entropy with logits — independent sigmoids per output;
 *  - ce:  −Σ_k t_k log_softmax(z)_k — one softmax over the classes.
 */
import { bceWithLogits, sigmoid, softmax, softmaxCrossEntropy } from '../engine/composites.js';
import * as o from '../engine/ops.js';
import type { Val } from '../engine/tensor.js';

export type LossName = 'bce' | 'ce';

export interface Loss {
  readonly name: LossName;
  readonly description: string;
  /** Per-example loss [N]. */
  perExample(z: Val, t: Val): Val;
  /** Per-output probabilities [N, K] as this loss models them. */
  probabilities(z: Val): Val;
}

export const LOSSES: Readonly<Record<LossName, Loss>> = {
  bce: {
    name: 'bce',
    description: 'sum over outputs of binary cross-entropy with logits (independent sigmoids)',
    perExample: (z, t) => o.sum(bceWithLogits(z, t), -1),
    probabilities: sigmoid,
  },
  ce: {
    name: 'ce',
    description: 'softmax cross-entropy over the classes',
    perExample: (z, t) => softmaxCrossEntropy(z, t),
    probabilities: (z) => softmax(z, -1),
  },
};

export function getLoss(name: string): Loss {
  if (name !== 'bce' && name !== 'ce') throw new Error(`unknown loss "${name}"; choose bce or ce`);
  return LOSSES[name];
}
