/**
 * Pair brackets at given weights, with their prediction effects: for each pair (x, y), B and its
 * per-tensor statistics, and J_f(z)·B — the change of every output logit of probe inputs z along
 * B, which is what the two orders' predictions differ by at order ε². Per output feature, a
 * non-commutativity score ranks the features: mean |J_f(z)·B| over pairs and probes, and the same
 * normalised by the gradients' scale ‖g_x‖‖g_y‖.
 */
import { batch, type Dataset } from '../data/dataset.js';
import type { DType } from '../engine/dtype.js';
import { Scratch, withScratch } from '../engine/scratch.js';
import type { ForwardState } from '../nn/layers.js';
import type { Loss } from '../nn/losses.js';
import type { Model } from '../nn/models.js';
import { bracket, logitEffect, modelLoss, type Example } from './bracket.js';
import { pairStats, type PairStats } from './pair-stats.js';
import type { Vec } from './vec.js';

export interface AnalysisInput {
  readonly model: Model;
  readonly loss: Loss;
  readonly dtype: DType;
  readonly params: Vec;
  readonly forward: () => ForwardState;
  /** Where the example indices point. */
  readonly data: Dataset;
  /** Where probe indices point. */
  readonly probes: Dataset;
}

export interface PairAnalysis extends PairStats {
  /** J_f(z)·B for each probe z: [probes][outputs]. */
  probeEffects?: number[][];
}

export interface FeatureScore {
  feature: string;
  /** Mean over pairs of (mean over probes of |J_f(z)·B|). */
  meanAbsEffect: number;
  /** Standard error of that mean over pairs. */
  stderr: number;
  /** The same, each pair's effect divided by ‖g_x‖‖g_y‖. */
  normalized: number;
  normalizedStderr: number;
}

export interface Analysis {
  pairs: PairAnalysis[];
  probeIndices: number[];
  /** Sorted by meanAbsEffect, highest first (when probes were given). */
  features: FeatureScore[];
  vectors?: { x: number; y: number; bracket: Vec }[];
}

/** All pairs (i < j) among the first k indices — the seed study's "first 6 test examples". */
export function firstKPairs(k: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) out.push([i, j]);
  return out;
}

function meanStderr(xs: readonly number[]): [number, number] {
  const n = xs.length;
  const m = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return [m, NaN];
  const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1);
  return [m, Math.sqrt(v / n)];
}

export function featureScores(pairs: readonly PairAnalysis[], labels: readonly string[]): FeatureScore[] {
  const withEffects = pairs.filter((p) => p.probeEffects && p.probeEffects.length > 0);
  if (withEffects.length === 0) return [];
  return labels
    .map((feature, k) => {
      const raw = withEffects.map((p) => p.probeEffects!.reduce((a, row) => a + Math.abs(row[k]!), 0) / p.probeEffects!.length);
      const norm = withEffects.map((p, i) => raw[i]! / Math.max(p.gradNormX * p.gradNormY, 1e-300));
      const [m, se] = meanStderr(raw);
      const [mn, sen] = meanStderr(norm);
      return { feature, meanAbsEffect: m, stderr: se, normalized: mn, normalizedStderr: sen };
    })
    .sort((a, b) => b.meanAbsEffect - a.meanAbsEffect);
}

export function analyzePairs(
  input: AnalysisInput,
  pairs: readonly [number, number][],
  opts: { probeIndices?: readonly number[]; keepVectors?: boolean; onPair?: () => void; scratch?: Scratch } = {},
): Analysis {
  const lossFn = modelLoss(input.model, input.loss, input.forward());
  const example = (i: number): Example => batch(input.data, [i], input.dtype);
  for (const [x, y] of pairs) {
    example(x);
    example(y); // fail on a bad index before any long work
  }
  const probeIndices = [...(opts.probeIndices ?? [])];
  const z = probeIndices.length > 0 ? batch(input.probes, probeIndices, input.dtype).x : undefined;
  const vectors: { x: number; y: number; bracket: Vec }[] = [];
  // each pair's intermediates are recycled for the next (src/engine/scratch.ts): only its
  // statistics and, when kept, its bracket vector leave the scope
  const scratch = opts.scratch ?? new Scratch();
  let out: PairAnalysis[];
  try {
    out = pairs.map(([x, y]) => {
      const { stats, kept } = withScratch(scratch, () => {
        const r = bracket(lossFn, input.params, example(x), example(y));
        const stats: PairAnalysis = pairStats(x, y, r);
        if (z) {
          const eff = logitEffect(input.model, input.params, z, r.bracket, input.forward());
          const k = eff.shape[1]!;
          stats.probeEffects = probeIndices.map((_, p) => Array.from(eff.data.subarray(p * k, (p + 1) * k)));
        }
        return { stats, kept: opts.keepVectors ? r.bracket : null };
      });
      if (kept) vectors.push({ x, y, bracket: kept });
      opts.onPair?.();
      return stats;
    });
  } finally {
    if (opts.scratch === undefined) scratch.dispose(); // its buffers back to their source now, not when collected
  }
  const result: Analysis = { pairs: out, probeIndices, features: featureScores(out, input.data.labelNames) };
  if (opts.keepVectors) result.vectors = vectors;
  return result;
}
