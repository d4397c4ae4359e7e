/**
 * The statistics the report draws, computed from sweep/results.jsonl itself (so every number on a
 * figure matches its points), with the definitions of the sweep's summary.json
 * (docs/sweep-format.md): the log-log fit of per-tensor bracket RMS against gradient RMS with one
 * intercept per pair, the pair-factor × tensor-factor model's R², and per-feature
 * non-commutativity scores over pairs and probes.
 */
import type { ResultRow, TensorRow } from './load.js';
import { groupedSlopeFit, twoWayFit } from '../study/sweep-stats.js';

/** A tensor's gradient RMS for one example: given, else ‖g‖/√size with size = (‖B‖/RMS(B))². */
function gradRms(t: TensorRow, which: 'X' | 'Y'): number | null {
  const given = which === 'X' ? t.gradRmsX : t.gradRmsY;
  if (given !== null) return given;
  const norm = which === 'X' ? t.gradNormX : t.gradNormY;
  if (norm === null || t.bracketNorm === null || t.bracketRms === null || !(t.bracketRms > 0)) return null;
  return norm / (t.bracketNorm / t.bracketRms);
}

export interface TensorPoint {
  step: number;
  x: number;
  y: number;
  tensor: string;
  /** √(gradRMS_x · gradRMS_y): the geometric mean of the two examples' gradient RMS. */
  gradRms: number;
  bracketRms: number;
}

export function tensorPoints(results: readonly ResultRow[]): TensorPoint[] {
  const out: TensorPoint[] = [];
  for (const r of results) {
    for (const [tensor, t] of Object.entries(r.tensors)) {
      const gx = gradRms(t, 'X');
      const gy = gradRms(t, 'Y');
      if (gx === null || gy === null || t.bracketRms === null) continue;
      const g = Math.sqrt(gx * gy);
      if (g > 0 && t.bracketRms > 0) out.push({ step: r.step, x: r.x, y: r.y, tensor, gradRms: g, bracketRms: t.bracketRms });
    }
  }
  return out;
}

export interface GroupedFit {
  /** Points (tensor × group). */
  n: number;
  groups: number;
  /** The common slope of ln RMS(B) on ln gradient RMS. */
  slope: number;
  slopeStderr: number;
  /** 1 − SSE/Σ(y − ȳ)²: explained by the per-group intercepts and the slope. */
  r2: number;
  /** 1 − SSE/Σ(y − ȳ_group)²: explained by the slope within groups. */
  withinR2: number;
  /** √(SSE/(n − groups − 1)), natural-log units. */
  residualSd: number;
  /** Per group key: its intercept α_g (natural log) and its range of ln gradient RMS. */
  intercepts: Map<string, { alpha: number; xMin: number; xMax: number }>;
}

/**
 * ln RMS(B_t) = α_g + slope · ln ĝ_t + e, pooled over groups g with one intercept each (the
 * sweep summary's `gradientFit`): the bracket tracks the gradient tensor by tensor, times a
 * factor e^α_g of the group. Null with no within-group spread of x.
 */
export function groupedFit(points: readonly TensorPoint[], groupOf: (p: TensorPoint) => string): GroupedFit | null {
  const groups = new Map<string, { x: number[]; y: number[] }>();
  for (const p of points) {
    const k = groupOf(p);
    if (!groups.has(k)) groups.set(k, { x: [], y: [] });
    groups.get(k)!.x.push(Math.log(p.gradRms));
    groups.get(k)!.y.push(Math.log(p.bracketRms));
  }
  const keys = [...groups.keys()];
  const fit = groupedSlopeFit(keys.map((k) => groups.get(k)!));
  if (!Number.isFinite(fit.slope)) return null;
  const intercepts = new Map<string, { alpha: number; xMin: number; xMax: number }>();
  keys.forEach((k, i) => {
    const g = groups.get(k)!;
    intercepts.set(k, { alpha: fit.intercepts[i]!, xMin: Math.min(...g.x), xMax: Math.max(...g.x) });
  });
  return {
    n: fit.n,
    groups: fit.groups,
    slope: fit.slope,
    slopeStderr: fit.slopeStderr,
    r2: Number.isFinite(fit.r2) ? fit.r2 : 1,
    withinR2: Number.isFinite(fit.withinR2) ? fit.withinR2 : 1,
    residualSd: fit.residualSd,
    intercepts,
  };
}

/**
 * R² of ln bracketRMS[pair, tensor] ≈ μ + a_pair + c_tensor (bracket = pair factor × tensor
 * factor), by two-way least squares (twoWayFit) on the pairs that have every tensor; null when
 * fewer than 2 pairs or 2 tensors.
 */
export function factorModelR2(points: readonly TensorPoint[]): number | null {
  const tensors = [...new Set(points.map((p) => p.tensor))].sort();
  const byPair = new Map<string, Map<string, number>>();
  for (const p of points) {
    const k = `${p.x},${p.y}`;
    if (!byPair.has(k)) byPair.set(k, new Map());
    byPair.get(k)!.set(p.tensor, Math.log(p.bracketRms));
  }
  const rows = [...byPair.values()].filter((m) => tensors.every((t) => m.has(t))).map((m) => tensors.map((t) => m.get(t)!));
  if (rows.length < 2 || tensors.length < 2) return null;
  const r2 = twoWayFit(rows).r2; // NaN when there is no variance: everything explained
  return Number.isFinite(r2) ? r2 : 1;
}

export interface FeatureStepScore {
  step: number;
  feature: number;
  /** Mean over pairs of (mean over probes of |J_f(z)·B|). */
  mean: number;
  /** Standard error of that mean over pairs (NaN with one pair). */
  stderr: number;
  /** The same, each pair's score divided by ‖g_x‖‖g_y‖ (null when the norms are missing). */
  normalized: number | null;
  pairs: number;
}

function meanSe(xs: readonly number[]): [number, number] {
  const n = xs.length;
  const m = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return [m, NaN];
  return [m, Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1) / n)];
}

/** Per checkpoint and output feature: the non-commutativity score over the sweep's pairs. */
export function featureScoresByStep(results: readonly ResultRow[], k: number): FeatureStepScore[] {
  const steps = [...new Set(results.map((r) => r.step))].sort((a, b) => a - b);
  const out: FeatureStepScore[] = [];
  for (const step of steps) {
    const rows = results.filter((r) => r.step === step && r.probeEffects && r.probeEffects.length > 0);
    for (let f = 0; f < k; f++) {
      const raw: number[] = [];
      const norm: number[] = [];
      for (const r of rows) {
        const vals = r.probeEffects!.map((e) => e[f]).filter((v): v is number => typeof v === 'number');
        if (vals.length === 0) continue;
        const s = vals.reduce((a, v) => a + Math.abs(v), 0) / vals.length;
        raw.push(s);
        if (r.gradNormX !== null && r.gradNormY !== null && r.gradNormX * r.gradNormY > 0) norm.push(s / (r.gradNormX * r.gradNormY));
      }
      if (raw.length === 0) continue;
      const [m, se] = meanSe(raw);
      out.push({ step, feature: f, mean: m, stderr: se, normalized: norm.length === raw.length ? meanSe(norm)[0] : null, pairs: raw.length });
    }
  }
  return out;
}

/** Features ranked by score at the last checkpoint that has scores, highest first. */
export function rankFeaturesAtLastStep(scores: readonly FeatureStepScore[]): FeatureStepScore[] {
  if (scores.length === 0) return [];
  const last = Math.max(...scores.map((s) => s.step));
  return scores.filter((s) => s.step === last).sort((a, b) => b.mean - a.mean);
}
