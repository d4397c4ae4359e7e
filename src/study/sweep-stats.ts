/**
 * Statistics of a sweep (summary.json), per checkpoint and overall:
 *
 * (a) gradient fit — log RMS(B_t) = α_p + β · log ĝ_t + e across parameter tensors t, pooled over
 *     pairs p with one intercept per pair (per (step, pair) unit overall), where
 *     ĝ_t = √(RMS(g_x,t) · RMS(g_y,t)) is the geometric mean of the two examples' gradient RMS on
 *     tensor t. β ≈ 1 with R² ≈ 1 is the seed's "the bracket tracks the gradient, times a pair- and
 *     time-dependent factor" (that factor is e^α_p);
 * (b) pair × tensor model — log RMS(B)_{pt} = μ + a_p + c_t + e, a two-way additive fit in logs
 *     (least squares, by alternating means, which also handles missing cells): the variance
 *     explained by both factors, by the pair factor alone and by the tensor factor alone;
 * (c) per-output non-commutativity ranking — per unit, mean over probes of |J_f(z)·B| (and the
 *     same divided by ‖g_x‖‖g_y‖); per checkpoint the mean over pairs with its standard error and a
 *     bootstrap 90% interval over pairs (fixed seed); overall, each pair's values are first
 *     averaged over checkpoints and the statistics are over pairs;
 * (d) comparison of two sweeps — Spearman rank correlation of the features' scores, and per
 *     feature the ratio B/A of the scores with bootstrap 90% intervals (paired over pairs when both
 *     sweeps used the same pairs, independent otherwise).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/random.js';
import { UserError } from '../errors.js';
import { z } from 'zod';
import { index, jsonNumber, readJsonFile } from '../file-schema.js';
import { readParams, type SweepParams } from './sweep.js';
import { parseUnitRecord, type UnitRecord } from './sweep-unit.js';

export const SUMMARY_FORMAT = 'lie-bracket sweep summary v1' as const;
export const COMPARISON_FORMAT = 'lie-bracket sweep comparison v1';

// ------------------------------------------------------------------------------------------------
// Small numerics

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Standard error of the mean (sample standard deviation / √n); NaN below 2 values. */
export function stderr(xs: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1) / n);
}

export function sd(xs: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1));
}

/** Linear-interpolated quantile of sorted values. */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function interval(samples: number[], level: number): [number, number] {
  const s = samples.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  return [quantileSorted(s, (1 - level) / 2), quantileSorted(s, 1 - (1 - level) / 2)];
}

/** Ranks 1…n (1 = smallest), ties sharing their average rank. */
export function ranks(xs: readonly number[]): number[] {
  const order = xs.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(xs.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) r[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

export function pearson(a: readonly number[], b: readonly number[]): number {
  const ma = mean(a);
  const mb = mean(b);
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb);
    saa += (a[i]! - ma) ** 2;
    sbb += (b[i]! - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : NaN;
}

/** Spearman's rank correlation (Pearson correlation of the average ranks). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error('spearman: lengths differ');
  return pearson(ranks(a), ranks(b));
}

/** `samples` resamples of n indices with replacement, from a seeded generator. */
export function bootstrapIndices(n: number, samples: number, seed: number): Int32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: samples }, () => {
    const idx = new Int32Array(n);
    for (let i = 0; i < n; i++) idx[i] = rng.int(n);
    return idx;
  });
}

// ------------------------------------------------------------------------------------------------
// (a) Gradient fit with one intercept per group

export const gradFitSchema = z.strictObject({
  /** Points (tensor × group) used. */
  n: index,
  /** Groups (pairs, or (step, pair) units) with at least one point. */
  groups: index,
  slope: jsonNumber,
  slopeStderr: jsonNumber,
  /** 1 − SSE / Σ(y − ȳ)²: variance of log RMS(B) explained by the intercepts and the slope. */
  r2: jsonNumber,
  /** 1 − SSE / Σ(y − ȳ_group)²: what the slope explains within groups. */
  withinR2: jsonNumber,
  /** √(SSE / (n − groups − 1)), in natural-log units. */
  residualSd: jsonNumber,
  /** Per group, α_g (the log of the group's factor), in group order (null for an empty group). */
  intercepts: z.array(z.number().nullable()),
  /** Points left out: a zero or non-finite RMS. */
  dropped: index,
});
export type GradFit = z.infer<typeof gradFitSchema>;

/** Fit y = α_g + β x pooled over groups (per-group intercepts, common slope). */
export function groupedSlopeFit(groups: readonly { x: readonly number[]; y: readonly number[] }[], dropped = 0): GradFit {
  let n = 0;
  let ng = 0;
  let sxx = 0;
  let sxy = 0;
  let syyWithin = 0;
  let sy = 0;
  let syy = 0;
  const means = groups.map((g) => {
    if (g.x.length === 0) return null;
    ng++;
    const mx = mean(g.x);
    const my = mean(g.y);
    for (let i = 0; i < g.x.length; i++) {
      const dx = g.x[i]! - mx;
      const dy = g.y[i]! - my;
      sxx += dx * dx;
      sxy += dx * dy;
      syyWithin += dy * dy;
      sy += g.y[i]!;
      syy += g.y[i]! ** 2;
      n++;
    }
    return [mx, my] as const;
  });
  const slope = sxx > 0 ? sxy / sxx : NaN;
  const sse = Math.max(0, syyWithin - (sxx > 0 ? (sxy * sxy) / sxx : 0));
  const sst = syy - (n > 0 ? (sy * sy) / n : 0);
  const df = n - ng - 1;
  const residualSd = df > 0 ? Math.sqrt(sse / df) : NaN;
  return {
    n,
    groups: ng,
    slope,
    slopeStderr: df > 0 && sxx > 0 ? residualSd / Math.sqrt(sxx) : NaN,
    r2: sst > 0 ? 1 - sse / sst : NaN,
    withinR2: syyWithin > 0 ? 1 - sse / syyWithin : NaN,
    residualSd,
    intercepts: means.map((m) => (m === null ? null : m[1] - slope * m[0])),
    dropped,
  };
}

const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** (a) on unit records: one group per record; x = log ĝ_t, y = log RMS(B_t). */
export function gradientFit(records: readonly UnitRecord[], tensors: readonly string[]): GradFit {
  let dropped = 0;
  const groups = records.map((r) => {
    const x: number[] = [];
    const y: number[] = [];
    for (const t of tensors) {
      const s = r.tensors[t];
      const g = s ? Math.sqrt(s.gradRmsX * s.gradRmsY) : NaN;
      if (s && positive(s.bracketRms) && positive(g)) {
        x.push(Math.log(g));
        y.push(Math.log(s.bracketRms));
      } else dropped++;
    }
    return { x, y };
  });
  return groupedSlopeFit(groups, dropped);
}

// ------------------------------------------------------------------------------------------------
// (b) Two-way additive model in logs

export interface TwoWayFit {
  rows: number;
  cols: number;
  /** Cells used. */
  n: number;
  /** Variance explained by μ + a_row + c_col. */
  r2: number;
  /** By μ + a_row alone (row means). */
  r2Rows: number;
  /** By μ + c_col alone (column means). */
  r2Cols: number;
  /** √(SSE / (n − rows − cols + 1)). */
  residualSd: number;
  mean: number;
  rowEffects: (number | null)[];
  colEffects: (number | null)[];
  iterations: number;
}

/** Least-squares fit of y_rc = μ + a_r + c_c by alternating means (exact in one pass for a full table). */
export function twoWayFit(table: readonly (readonly (number | null)[])[]): TwoWayFit {
  const R = table.length;
  const C = Math.max(0, ...table.map((r) => r.length));
  const cells: [number, number, number][] = [];
  table.forEach((row, r) => row.forEach((v, c) => v !== null && Number.isFinite(v) && cells.push([r, c, v])));
  const n = cells.length;
  const mu = mean(cells.map((c) => c[2]));
  const a = new Float64Array(R);
  const b = new Float64Array(C);
  const rowN = new Float64Array(R);
  const colN = new Float64Array(C);
  for (const [r, c] of cells) {
    rowN[r]!++;
    colN[c]!++;
  }
  let sst = 0;
  for (const [, , v] of cells) sst += (v - mu) ** 2;
  const sseOf = (f: (r: number, c: number) => number) => cells.reduce((s, [r, c, v]) => s + (v - f(r, c)) ** 2, 0);
  // one-factor models
  const rowMean = new Float64Array(R);
  const colMean = new Float64Array(C);
  for (const [r, c, v] of cells) {
    rowMean[r]! += v / rowN[r]!;
    colMean[c]! += v / colN[c]!;
  }
  const sseRows = sseOf((r) => rowMean[r]!);
  const sseCols = sseOf((_, c) => colMean[c]!);
  // alternating means
  let it = 0;
  const tol = 1e-13 * Math.max(1, Math.sqrt(sst / Math.max(1, n)));
  for (; it < 10_000; it++) {
    let change = 0;
    const na = new Float64Array(R);
    for (const [r, c, v] of cells) na[r]! += (v - mu - b[c]!) / rowN[r]!;
    for (let r = 0; r < R; r++) {
      change = Math.max(change, Math.abs(na[r]! - a[r]!));
      a[r] = na[r]!;
    }
    const nb = new Float64Array(C);
    for (const [r, c, v] of cells) nb[c]! += (v - mu - a[r]!) / colN[c]!;
    for (let c = 0; c < C; c++) {
      change = Math.max(change, Math.abs(nb[c]! - b[c]!));
      b[c] = nb[c]!;
    }
    if (change <= tol) break;
  }
  // centre the column effects (weighted by cell counts) into the row effects; μ + a_r + c_c is unchanged
  const cShift = cells.reduce((s, [, c]) => s + b[c]!, 0) / Math.max(1, n);
  const sse = sseOf((r, c) => mu + a[r]! + b[c]!);
  const df = n - R - C + 1;
  return {
    rows: R,
    cols: C,
    n,
    r2: sst > 0 ? 1 - sse / sst : NaN,
    r2Rows: sst > 0 ? 1 - sseRows / sst : NaN,
    r2Cols: sst > 0 ? 1 - sseCols / sst : NaN,
    residualSd: df > 0 ? Math.sqrt(sse / df) : NaN,
    mean: mu,
    rowEffects: Array.from(a, (v, r) => (rowN[r]! > 0 ? v + cShift : null)),
    colEffects: Array.from(b, (v, c) => (colN[c]! > 0 ? v - cShift : null)),
    iterations: it + 1,
  };
}

/** summary.json's `tensorModel`: a TwoWayFit without its row and column effects, with the tensor factors. */
export const tensorModelSchema = z.strictObject({
  rows: index,
  cols: index,
  /** Cells used. */
  n: index,
  r2: jsonNumber,
  r2Rows: jsonNumber,
  r2Cols: jsonNumber,
  residualSd: jsonNumber,
  mean: jsonNumber,
  iterations: index,
  /** c_t: each tensor's log factor (centred), natural log. */
  tensorFactors: z.record(z.string(), z.number().nullable()),
  dropped: index,
});
export type TensorModel = z.infer<typeof tensorModelSchema>;

/** (b) on unit records: rows = records, columns = tensors, cells = log RMS(B). */
export function tensorModel(records: readonly UnitRecord[], tensors: readonly string[]): TensorModel {
  let dropped = 0;
  const table = records.map((r) =>
    tensors.map((t) => {
      const v = r.tensors[t]?.bracketRms;
      if (positive(v)) return Math.log(v);
      dropped++;
      return null;
    }),
  );
  const { rowEffects: _r, colEffects, ...fit } = twoWayFit(table);
  return { ...fit, tensorFactors: Object.fromEntries(tensors.map((t, i) => [t, colEffects[i] ?? null])), dropped };
}

// ------------------------------------------------------------------------------------------------
// (c) Feature ranking

const interval90 = z.tuple([jsonNumber, jsonNumber]);

export const featureRankSchema = z.strictObject({
  feature: z.string(),
  /** 1 = most order-sensitive by meanAbsEffect. */
  rank: index,
  meanAbsEffect: jsonNumber,
  stderr: jsonNumber,
  ci90: interval90,
  /** Rank by the normalised score. */
  rankNormalized: index,
  normalized: jsonNumber,
  normalizedStderr: jsonNumber,
  normalizedCi90: interval90,
});
export type FeatureRank = z.infer<typeof featureRankSchema>;

/** Per unit, per feature: mean over probes of |J_f(z)·B|, raw and divided by ‖g_x‖‖g_y‖. */
export function unitFeatureValues(r: UnitRecord, k: number): { raw: number[]; normalized: number[] } {
  const raw = new Array<number>(k).fill(0);
  const rows = r.probeEffects;
  for (const row of rows) for (let f = 0; f < k; f++) raw[f]! += Math.abs(row[f] ?? NaN) / rows.length;
  const scale = Math.max(r.gradNormX * r.gradNormY, 1e-300);
  return { raw, normalized: raw.map((v) => v / scale) };
}

export const bootstrapSchema = z.strictObject({ samples: index, seed: index, level: z.number() });
export type BootstrapOptions = z.infer<typeof bootstrapSchema>;

export const DEFAULT_BOOTSTRAP: BootstrapOptions = { samples: 2000, seed: 0, level: 0.9 };

/** Rank features over a set of pairs; values[i][f] is pair i's score of feature f. */
export function rankFeaturesOverPairs(
  labels: readonly string[],
  raw: readonly (readonly number[])[],
  normalized: readonly (readonly number[])[],
  boot: BootstrapOptions = DEFAULT_BOOTSTRAP,
): FeatureRank[] {
  const n = raw.length;
  if (n === 0) return [];
  const draws = bootstrapIndices(n, boot.samples, boot.seed);
  const col = (m: readonly (readonly number[])[], f: number) => m.map((row) => row[f]!);
  const bootMeans = (xs: readonly number[]) => draws.map((idx) => idx.reduce((s, i) => s + xs[i]!, 0) / n);
  const rows = labels.map((feature, f) => {
    const r = col(raw, f);
    const z = col(normalized, f);
    return {
      feature,
      rank: 0,
      meanAbsEffect: mean(r),
      stderr: stderr(r),
      ci90: interval(bootMeans(r), boot.level),
      rankNormalized: 0,
      normalized: mean(z),
      normalizedStderr: stderr(z),
      normalizedCi90: interval(bootMeans(z), boot.level),
    };
  });
  const order = (key: 'meanAbsEffect' | 'normalized') => [...rows.keys()].sort((i, j) => rows[j]![key] - rows[i]![key] || i - j);
  order('meanAbsEffect').forEach((i, r) => (rows[i]!.rank = r + 1));
  order('normalized').forEach((i, r) => (rows[i]!.rankNormalized = r + 1));
  return rows.sort((p, q) => p.rank - q.rank);
}

// ------------------------------------------------------------------------------------------------
// Summary

export interface SweepData {
  dir: string;
  params: SweepParams;
  records: UnitRecord[];
}

export const checkpointSummarySchema = z.strictObject({
  step: index,
  pairs: index,
  gradientFit: gradFitSchema,
  tensorModel: tensorModelSchema,
  features: z.array(featureRankSchema),
});
export type CheckpointSummary = z.infer<typeof checkpointSummarySchema>;

/** summary.json (docs/sweep-format.md), written by the sweep, merge and `lie-bracket stats`; read by the study and the report. */
export const summarySchema = z.strictObject({
  format: z.literal(SUMMARY_FORMAT),
  sweep: z.strictObject({
    runDir: z.string(),
    model: z.string(),
    steps: z.array(index),
    pairs: index,
    probes: index,
    outputs: z.array(z.string()),
    units: index,
    unitsPresent: index,
    complete: z.boolean(),
  }),
  definitions: z.record(z.string(), z.string()),
  bootstrap: bootstrapSchema,
  checkpoints: z.array(checkpointSummarySchema),
  overall: z.strictObject({
    units: index,
    pairs: index,
    /** One intercept per (step, pair) unit. */
    gradientFit: gradFitSchema.omit({ intercepts: true }),
    /** The units' log factors α (intercepts of the overall fit) by checkpoint: how the factor moves over training. */
    factorByStep: z.array(z.strictObject({ step: index, mean: jsonNumber, sd: jsonNumber })),
    /** Rows = (step, pair) units. */
    tensorModel: tensorModelSchema,
    /** Each pair's values averaged over checkpoints; statistics over pairs. */
    features: z.array(featureRankSchema),
  }),
});
export type Summary = z.infer<typeof summarySchema>;

/** A summary.json under its schema, or a one-line error naming the file and the field. */
export function readSummary(path: string): Summary {
  return readJsonFile(summarySchema, path);
}

export const DEFINITIONS: Record<string, string> = {
  gradientRms: 'per tensor t and pair (x,y): sqrt(gradRmsX·gradRmsY), the geometric mean of the two examples’ gradient RMS (‖g‖/√size) on t',
  gradientFit:
    'log bracketRms_t = α_group + slope·log gradientRms_t + e over tensors, pooled over groups (pairs per checkpoint; (step, pair) units overall) with one intercept each; natural logs',
  tensorModel:
    'log bracketRms_{p,t} = μ + a_p + c_t + e by least squares; r2: both factors, r2Rows: pair factor alone, r2Cols: tensor factor alone; tensorFactors: c_t',
  features:
    'per unit: mean over probes of |J_f(z)·B| (normalized: divided by ‖g_x‖‖g_y‖); per checkpoint: mean over pairs ± standard error, bootstrap interval over pairs; overall: each pair averaged over checkpoints first',
};

function featureMatrices(recs: readonly UnitRecord[], k: number): { raw: number[][]; normalized: number[][] } {
  const v = recs.filter((r) => r.probeEffects.length > 0).map((r) => unitFeatureValues(r, k));
  return { raw: v.map((u) => u.raw), normalized: v.map((u) => u.normalized) };
}

/** Per-pair feature values averaged over the checkpoints present. */
function pairAveragedFeatures(
  p: SweepParams,
  records: readonly UnitRecord[],
): { pairs: [number, number][]; raw: number[][]; normalized: number[][] } {
  const k = p.outputs.length;
  const pairs: [number, number][] = [];
  const raw: number[][] = [];
  const normalized: number[][] = [];
  for (const [x, y] of p.pairs) {
    const m = featureMatrices(
      records.filter((r) => r.x === x && r.y === y),
      k,
    );
    if (m.raw.length === 0) continue;
    pairs.push([x, y]);
    raw.push(Array.from({ length: k }, (_, f) => mean(m.raw.map((row) => row[f]!))));
    normalized.push(Array.from({ length: k }, (_, f) => mean(m.normalized.map((row) => row[f]!))));
  }
  return { pairs, raw, normalized };
}

function indexRecords(records: readonly UnitRecord[]): Map<string, UnitRecord> {
  return new Map(records.map((r) => [`${r.step}:${r.x},${r.y}`, r]));
}

export function summarizeSweep(d: SweepData, boot: BootstrapOptions = DEFAULT_BOOTSTRAP): Summary {
  const p = d.params;
  const k = p.outputs.length;
  const byUnit = indexRecords(d.records);
  const at = (step: number) => p.pairs.map(([x, y]) => byUnit.get(`${step}:${x},${y}`)).filter((r): r is UnitRecord => r !== undefined);
  const checkpoints: CheckpointSummary[] = [];
  for (const step of p.steps) {
    const recs = at(step);
    if (recs.length === 0) continue;
    const fm = featureMatrices(recs, k);
    checkpoints.push({
      step,
      pairs: recs.length,
      gradientFit: gradientFit(recs, p.tensors),
      tensorModel: tensorModel(recs, p.tensors),
      features: rankFeaturesOverPairs(p.outputs, fm.raw, fm.normalized, boot),
    });
  }
  const ordered = checkpoints.flatMap((c) => at(c.step));
  const { intercepts, ...overallFit } = gradientFit(ordered, p.tensors);
  const factorByStep = checkpoints.map((c) => {
    const a = ordered
      .map((r, i) => (r.step === c.step ? intercepts[i] : null))
      .filter((v): v is number => v !== null && v !== undefined && Number.isFinite(v));
    return { step: c.step, mean: mean(a), sd: sd(a) };
  });
  const pa = pairAveragedFeatures(p, ordered);
  return {
    format: SUMMARY_FORMAT,
    sweep: {
      runDir: p.runDir,
      model: p.model,
      steps: p.steps,
      pairs: p.pairs.length,
      probes: p.probeIndices.length,
      outputs: p.outputs,
      units: p.units,
      unitsPresent: ordered.length,
      complete: ordered.length === p.units,
    },
    definitions: DEFINITIONS,
    bootstrap: boot,
    checkpoints,
    overall: {
      units: ordered.length,
      pairs: pa.pairs.length,
      gradientFit: overallFit,
      factorByStep,
      tensorModel: tensorModel(ordered, p.tensors),
      features: rankFeaturesOverPairs(p.outputs, pa.raw, pa.normalized, boot),
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Reading a sweep directory

/** A sweep directory (or a run directory holding sweep/) with its sweep.json and results.jsonl. */
export function readSweep(dirOrRun: string): SweepData {
  const dir = existsSync(join(dirOrRun, 'sweep.json'))
    ? dirOrRun
    : existsSync(join(dirOrRun, 'sweep', 'sweep.json'))
      ? join(dirOrRun, 'sweep')
      : undefined;
  if (!dir)
    throw new UserError(
      `${dirOrRun}: not a sweep directory (no sweep.json here or in ${join(dirOrRun, 'sweep')}); run lie-bracket sweep first, or lie-bracket merge for shards`,
    );
  const params = readParams(join(dir, 'sweep.json'));
  const rf = join(dir, 'results.jsonl');
  if (!existsSync(rf)) throw new UserError(`${rf}: missing; run the sweep (or merge its shards) first`);
  const text = readFileSync(rf, 'utf8');
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  const records: UnitRecord[] = [];
  complete.split('\n').forEach((l, i) => {
    if (l !== '') records.push(parseUnitRecord(l, `${rf}:${i + 1}`));
  });
  return { dir, params, records };
}

// ------------------------------------------------------------------------------------------------
// (d) Comparison of two sweeps

export interface FeatureComparison {
  feature: string;
  rankA: number;
  rankB: number;
  a: number;
  b: number;
  /** b / a. */
  ratio: number;
  ratioCi90: [number, number];
  normalizedA: number;
  normalizedB: number;
  normalizedRatio: number;
  normalizedRatioCi90: [number, number];
}

export interface RankComparison {
  pairsA: number;
  pairsB: number;
  /** Spearman ρ of the features' meanAbsEffect in A and B. */
  spearman: number;
  spearmanCi90: [number, number];
  spearmanNormalized: number;
  spearmanNormalizedCi90: [number, number];
  features: FeatureComparison[];
}

export interface Comparison {
  format: string;
  a: { dir: string; runDir: string; model: string };
  b: { dir: string; runDir: string; model: string };
  /** Both sweeps used the same pairs: the bootstrap resamples them jointly. */
  paired: boolean;
  bootstrap: BootstrapOptions;
  overall: RankComparison;
  /** At the checkpoint steps both sweeps have. */
  checkpoints: ({ step: number } & RankComparison)[];
}

/** Compare two sets of per-pair feature values (rows: pairs). With `paired`, row i of A and B is the same pair. */
export function compareRankings(
  labels: readonly string[],
  A: { raw: readonly (readonly number[])[]; normalized: readonly (readonly number[])[] },
  B: { raw: readonly (readonly number[])[]; normalized: readonly (readonly number[])[] },
  paired: boolean,
  boot: BootstrapOptions = DEFAULT_BOOTSTRAP,
): RankComparison {
  const k = labels.length;
  const nA = A.raw.length;
  const nB = B.raw.length;
  if (paired && nA !== nB) throw new Error('compareRankings: paired sets differ in size');
  const colMeans = (m: readonly (readonly number[])[], idx?: Int32Array) => {
    const rows = idx ? Array.from(idx, (i) => m[i]!) : m;
    return Array.from({ length: k }, (_, f) => mean(rows.map((r) => r[f]!)));
  };
  const drawsA = bootstrapIndices(nA, boot.samples, boot.seed);
  const drawsB = paired ? drawsA : bootstrapIndices(nB, boot.samples, boot.seed + 1);
  const mA = colMeans(A.raw);
  const mB = colMeans(B.raw);
  const zA = colMeans(A.normalized);
  const zB = colMeans(B.normalized);
  const ratioSamples = labels.map(() => [] as number[]);
  const nratioSamples = labels.map(() => [] as number[]);
  const rho: number[] = [];
  const rhoN: number[] = [];
  for (let s = 0; s < boot.samples; s++) {
    const a = colMeans(A.raw, drawsA[s]);
    const b = colMeans(B.raw, drawsB[s]);
    const an = colMeans(A.normalized, drawsA[s]);
    const bn = colMeans(B.normalized, drawsB[s]);
    for (let f = 0; f < k; f++) {
      ratioSamples[f]!.push(b[f]! / a[f]!);
      nratioSamples[f]!.push(bn[f]! / an[f]!);
    }
    rho.push(spearman(a, b));
    rhoN.push(spearman(an, bn));
  }
  const rankOf = (v: readonly number[]) => {
    const r = ranks(v.map((x) => -x));
    return r.map((x) => Math.round(x * 2) / 2);
  };
  const rA = rankOf(mA);
  const rB = rankOf(mB);
  const features = labels
    .map((feature, f) => ({
      feature,
      rankA: rA[f]!,
      rankB: rB[f]!,
      a: mA[f]!,
      b: mB[f]!,
      ratio: mB[f]! / mA[f]!,
      ratioCi90: interval(ratioSamples[f]!, boot.level),
      normalizedA: zA[f]!,
      normalizedB: zB[f]!,
      normalizedRatio: zB[f]! / zA[f]!,
      normalizedRatioCi90: interval(nratioSamples[f]!, boot.level),
    }))
    .sort((p, q) => p.rankA - q.rankA);
  return {
    pairsA: nA,
    pairsB: nB,
    spearman: spearman(mA, mB),
    spearmanCi90: interval(rho, boot.level),
    spearmanNormalized: spearman(zA, zB),
    spearmanNormalizedCi90: interval(rhoN, boot.level),
    features,
  };
}

export function compareSweeps(A: SweepData, B: SweepData, boot: BootstrapOptions = DEFAULT_BOOTSTRAP): Comparison {
  const pa = A.params;
  const pb = B.params;
  if (JSON.stringify(pa.outputs) !== JSON.stringify(pb.outputs)) {
    throw new UserError(
      `${A.dir} and ${B.dir} rank different outputs (${pa.outputs.length} vs ${pb.outputs.length}: ${pa.outputs.slice(0, 3).join(', ')}… vs ${pb.outputs.slice(0, 3).join(', ')}…)`,
    );
  }
  const k = pa.outputs.length;
  const paired = JSON.stringify(pa.pairs) === JSON.stringify(pb.pairs);
  const fa = pairAveragedFeatures(pa, A.records);
  const fb = pairAveragedFeatures(pb, B.records);
  if (fa.raw.length === 0 || fb.raw.length === 0)
    throw new UserError('comparison needs probe effects in both sweeps (they were run with --probes 0)');
  const jointly = paired && JSON.stringify(fa.pairs) === JSON.stringify(fb.pairs);
  const ia = indexRecords(A.records);
  const ib = indexRecords(B.records);
  const checkpoints: Comparison['checkpoints'] = [];
  for (const step of pa.steps.filter((s) => pb.steps.includes(s))) {
    const at = (byUnit: Map<string, UnitRecord>, pairs: readonly [number, number][]) =>
      featureMatrices(
        pairs.map(([x, y]) => byUnit.get(`${step}:${x},${y}`)).filter((r): r is UnitRecord => r !== undefined),
        k,
      );
    const ma = at(ia, pa.pairs);
    const mb = at(ib, pb.pairs);
    if (ma.raw.length === 0 || mb.raw.length === 0) continue;
    checkpoints.push({
      step,
      ...compareRankings(pa.outputs, ma, mb, paired && ma.raw.length === pa.pairs.length && mb.raw.length === pb.pairs.length, boot),
    });
  }
  return {
    format: COMPARISON_FORMAT,
    a: { dir: A.dir, runDir: pa.runDir, model: pa.model },
    b: { dir: B.dir, runDir: pb.runDir, model: pb.model },
    paired: jointly,
    bootstrap: boot,
    overall: compareRankings(pa.outputs, fa, fb, jointly, boot),
    checkpoints,
  };
}
