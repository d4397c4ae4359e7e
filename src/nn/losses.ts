/**
 * Per-example losses on logits z [N, K] and targets t [N, K] in {0, 1}; the bracket needs one loss
 * per example, so each returns [N].
 *  - bce:     Σ_k binary cross-entropy with logits — an independent sigmoid per output;
 *  - ce:      −Σ_k t_k log_softmax(z)_k — one softmax over all outputs (class labels);
 *  - grouped: a softmax over each declared group of mutually exclusive outputs (with an implicit
 *             "none of them" logit fixed at 0 when the group may be empty) plus independent
 *             sigmoids for the other outputs — the loss that can say "one or the other".
 */
import { bceWithLogits, logSoftmax, sigmoid, softmax, softmaxCrossEntropy } from '../engine/composites.js';
import * as o from '../engine/ops.js';
import { Tensor, type Val } from '../engine/tensor.js';
import { UserError } from '../errors.js';
import { withLossRecipe } from './recipe.js';

export type LossName = 'bce' | 'ce' | 'grouped';

export interface OutputGroup {
  readonly name: string;
  /** Output indices of the mutually exclusive members. */
  readonly members: readonly number[];
  /** Whether no member may be true (adds a "none" option with logit 0). */
  readonly allowNone: boolean;
}

export interface Loss {
  readonly name: LossName;
  readonly description: string;
  /** Per-example loss [N]. */
  perExample(z: Val, t: Val): Val;
  /** Per-output probabilities [N, K] as this loss models them. */
  probabilities(z: Val): Val;
}

export const bce: Loss = withLossRecipe<Loss>(
  {
    name: 'bce',
    description: 'sum over outputs of binary cross-entropy with logits (independent sigmoids)',
    perExample: (z, t) => o.sum(bceWithLogits(z, t), -1),
    probabilities: sigmoid,
  },
  { name: 'bce' },
);

export const ce: Loss = withLossRecipe<Loss>(
  {
    name: 'ce',
    description: 'softmax cross-entropy over the outputs',
    perExample: (z, t) => softmaxCrossEntropy(z, t),
    probabilities: (z) => softmax(z, -1),
  },
  { name: 'ce' },
);

/** A [K, m] 0/1 matrix that selects columns `cols` of a [N, K] matrix by z·S. */
function selector(k: number, cols: readonly number[], like: Val): Tensor {
  const s = new (like.dtype === 'float32' ? Float32Array : Float64Array)(k * cols.length);
  cols.forEach((c, j) => (s[c * cols.length + j] = 1));
  return new Tensor(s, [k, cols.length]);
}

export function groupedLoss(groups: readonly OutputGroup[], numOutputs: number): Loss {
  const seen = new Set<number>();
  for (const g of groups) {
    if (g.members.length === 0) throw new UserError(`loss grouped: group ${g.name} has no members`);
    if (g.members.length === 1 && !g.allowNone)
      throw new UserError(`loss grouped: group ${g.name} has one member and no "none" option, so it is always true`);
    for (const m of g.members) {
      if (!Number.isInteger(m) || m < 0 || m >= numOutputs)
        throw new UserError(`loss grouped: group ${g.name} names output ${m}, but there are ${numOutputs} outputs`);
      if (seen.has(m)) throw new UserError(`loss grouped: output ${m} is in more than one group`);
      seen.add(m);
    }
  }
  const rest = Array.from({ length: numOutputs }, (_, i) => i).filter((i) => !seen.has(i));
  /** Group logits [N, m] (plus a zero "none" column) and the matching targets. */
  const groupLogits = (z: Val, g: OutputGroup): Val => {
    const zg = o.matmul(z, selector(numOutputs, g.members, z));
    return g.allowNone ? o.concatenate([zg, o.zerosLike(o.sliceAxis(zg, 1, 0, 1))], 1) : zg;
  };
  const loss: Loss = {
    name: 'grouped',
    description: `softmax over ${groups.length} exclusive group(s) (${groups.map((g) => g.name).join(', ')}), independent sigmoids for the other ${rest.length} output(s)`,
    perExample: (z, t) => {
      const terms: Val[] = [];
      for (const g of groups) {
        let tg = o.matmul(t, selector(numOutputs, g.members, t));
        if (g.allowNone) tg = o.concatenate([tg, o.sub(1, o.sum(tg, -1, true))], 1);
        terms.push(o.neg(o.sum(o.mul(tg, logSoftmax(groupLogits(z, g), -1)), -1)));
      }
      if (rest.length > 0) {
        const s = selector(numOutputs, rest, z);
        terms.push(o.sum(bceWithLogits(o.matmul(z, s), o.matmul(t, s)), -1));
      }
      return terms.reduce((a, b) => o.add(a, b));
    },
    probabilities: (z) => {
      // scatter each part back to its outputs with the transposed selector
      const parts: Val[] = groups.map((g) => {
        const p = softmax(groupLogits(z, g), -1);
        const pm = g.allowNone ? o.sliceAxis(p, 1, 0, g.members.length) : p;
        return o.matmul(pm, selector(numOutputs, g.members, z), { transB: true });
      });
      if (rest.length > 0) parts.push(o.matmul(sigmoid(o.matmul(z, selector(numOutputs, rest, z))), selector(numOutputs, rest, z), { transB: true }));
      return parts.reduce((a, b) => o.add(a, b));
    },
  };
  const copy = groups.map((g) => ({ name: g.name, members: [...g.members], allowNone: g.allowNone }));
  return withLossRecipe(loss, { name: 'grouped', groups: copy, numOutputs });
}

export const LOSSES: Readonly<Record<'bce' | 'ce', Loss>> = { bce, ce };

/** A loss by name; `grouped` needs the output groups (from the data set or the config). */
export function getLoss(name: string, opts: { groups?: readonly OutputGroup[]; numOutputs?: number } = {}): Loss {
  if (name === 'bce') return bce;
  if (name === 'ce') return ce;
  if (name === 'grouped') {
    if (!opts.groups || opts.groups.length === 0 || opts.numOutputs === undefined) {
      throw new UserError('loss grouped needs groups of mutually exclusive outputs (from the data set, or "groups" in the config)');
    }
    return groupedLoss(opts.groups, opts.numOutputs);
  }
  throw new UserError(`unknown loss "${name}"; choose bce, ce or grouped`);
}
