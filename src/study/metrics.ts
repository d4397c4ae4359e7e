/** Evaluation metrics on held-out predictions: per-output accuracy and ROC AUC (the `eval` of a metrics.jsonl line, src/study/train.ts). */
import { z } from 'zod';
import { jsonNumber } from '../file-schema.js';

/** Area under the ROC curve by the rank-sum (Mann–Whitney) statistic, ties counted half; NaN if one class is absent. */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[idx[k]!]! > 0.5) {
        pos++;
        rankSum += avgRank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

export const outputMetricsSchema = z.object({
  /** Per output: fraction of examples where (p > 0.5) matches the target. */
  accuracy: z.array(jsonNumber),
  /** Per output: ROC AUC of p against the target (NaN, written null, when one class is absent). */
  auc: z.array(jsonNumber),
  /** For class labels: fraction where the most probable output is the true class. */
  classAccuracy: jsonNumber.optional(),
});
export type OutputMetrics = z.infer<typeof outputMetricsSchema>;

/** Metrics from probabilities and targets, both [N, K] row-major. */
export function outputMetrics(probs: ArrayLike<number>, targets: ArrayLike<number>, n: number, k: number, classLabels: boolean): OutputMetrics {
  const accuracy: number[] = [];
  const aucs: number[] = [];
  for (let j = 0; j < k; j++) {
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    let correct = 0;
    for (let i = 0; i < n; i++) {
      s[i] = probs[i * k + j]!;
      y[i] = targets[i * k + j]!;
      if (s[i]! > 0.5 === y[i]! > 0.5) correct++;
    }
    accuracy.push(correct / n);
    aucs.push(auc(s, y));
  }
  const out: OutputMetrics = { accuracy, auc: aucs };
  if (classLabels) {
    let correct = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (probs[i * k + j]! > probs[i * k + best]!) best = j;
      if (targets[i * k + best]! > 0.5) correct++;
    }
    out.classAccuracy = correct / n;
  }
  return out;
}
