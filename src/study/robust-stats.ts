/**
 * Statistics a referee asks for, on top of the sweep statistics (sweep-stats.ts):
 *
 * - hierarchicalBootstrap: a two-level cluster bootstrap (seeds, then images within each drawn seed);
 * - holm: Holm–Bonferroni adjusted p-values;
 * - signTest: the exact two-sided sign (binomial p = ½) test;
 * - partialSpearman: Spearman's ρ of x and y controlling for z;
 * - magnitude-law placebos: the per-pair-intercept fit of log bracket RMS on log gradient RMS with the
 *   real gradients, with the tensor-mean gradient profile, and with another pair's gradients; and the
 *   two-way (pair + tensor) fixed-effects fit with the gradient as a covariate;
 * - clusteredSlopeSE / clusterBootstrapSlope: an OLS slope with a cluster-robust standard error;
 * - excludedEffect: the words for what a null result's interval of a log ratio excludes.
 *
 * Every function is pure; the random ones are deterministic given their seed (engine/random.ts Rng).
 */
import { Rng } from '../engine/random.js';
import { groupedSlopeFit, mean, pearson, quantileSorted, ranks, sd, twoWayFit, type GradFit } from './sweep-stats.js';

// ------------------------------------------------------------------------------------------------
// Bootstrap

export interface BootstrapOptions {
  /** Bootstrap resamples (default 2000). */
  samples?: number;
  /** Seed of the generator (default 0). */
  seed?: number;
  /** Coverage of the percentile interval (default 0.95). */
  level?: number;
}

export interface BootstrapResult {
  /** The statistic on the full data. */
  estimate: number;
  /** Percentile interval of the resamples' statistics at `level`. */
  interval: [number, number];
  /** Standard deviation of the resamples' statistics (the bootstrap standard error). */
  sd: number;
  /** Resamples whose statistic was finite (the interval and sd are over these). */
  samples: number;
  level: number;
  /**
   * Two-sided bootstrap p-value of "the statistic is 0": 2·min(#{draws ≤ 0} + 1, #{draws ≥ 0} + 1) /
   * (samples + 1), capped at 1 — the smallest level at which a percentile interval would exclude 0,
   * with the +1 that keeps a finite number of resamples from claiming p = 0. NaN without finite draws.
   */
  pValue: number;
}

function options(o: BootstrapOptions): Required<BootstrapOptions> {
  const r = { samples: o.samples ?? 2000, seed: o.seed ?? 0, level: o.level ?? 0.95 };
  if (!Number.isInteger(r.samples) || r.samples < 1) throw new Error(`bootstrap: samples must be a positive integer, got ${r.samples}`);
  if (!(r.level > 0 && r.level < 1)) throw new Error(`bootstrap: level must lie in (0, 1), got ${r.level}`);
  return r;
}

function summarize(estimate: number, draws: readonly number[], level: number): BootstrapResult {
  const s = draws.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const below = s.filter((v) => v <= 0).length;
  const above = s.filter((v) => v >= 0).length;
  return {
    estimate,
    interval: [quantileSorted(s, (1 - level) / 2), quantileSorted(s, 1 - (1 - level) / 2)],
    sd: sd(s),
    samples: s.length,
    level,
    pValue: s.length > 0 ? Math.min(1, (2 * (Math.min(below, above) + 1)) / (s.length + 1)) : NaN,
  };
}

/** One seed's units; each unit names the image it belongs to. */
export interface SeedUnits<U extends { image: string }> {
  seed: string;
  units: readonly U[];
}

/** Nested data: seeds → (images →) units. The images of a seed are the distinct `image` ids of its units. */
export type NestedData<U extends { image: string }> = readonly SeedUnits<U>[];

/**
 * Two-level cluster bootstrap of `stat`: each resample draws as many seeds as there are, with
 * replacement; within each drawn seed it draws as many images as that seed has, with replacement,
 * and takes all the units of each drawn image. The statistic of the full data is the estimate; the
 * interval is the percentile interval of the resamples' statistics.
 *
 * Assumes seeds are exchangeable and independent, and images are exchangeable within a seed (units
 * of one image may be arbitrarily dependent). The resample has the input's shape: a seed drawn twice
 * appears twice (same `seed` id), an image drawn twice contributes its units twice (same `image`
 * id, the same unit objects), so `stat` must weight by array entries and must not merge by id.
 */
export function hierarchicalBootstrap<U extends { image: string }>(
  data: NestedData<U>,
  stat: (sample: NestedData<U>) => number,
  opts: BootstrapOptions = {},
): BootstrapResult {
  const { samples, seed, level } = options(opts);
  const images = data.map((s) => {
    const byImage = new Map<string, U[]>();
    for (const u of s.units) {
      const list = byImage.get(u.image);
      if (list) list.push(u);
      else byImage.set(u.image, [u]);
    }
    return [...byImage.values()];
  });
  const rng = new Rng(seed);
  const draws: number[] = [];
  for (let b = 0; b < samples; b++) {
    const sample: SeedUnits<U>[] = [];
    for (let k = 0; k < data.length; k++) {
      const j = rng.int(data.length);
      const imgs = images[j]!;
      const units: U[] = [];
      for (let i = 0; i < imgs.length; i++) units.push(...imgs[rng.int(imgs.length)]!);
      sample.push({ seed: data[j]!.seed, units });
    }
    draws.push(stat(sample));
  }
  return summarize(stat(data), draws, level);
}

/** The mean of all units' `value`, pooled over seeds and images (a `stat` for hierarchicalBootstrap). */
export function pooledMean(sample: NestedData<{ image: string; value: number }>): number {
  return mean(sample.flatMap((s) => s.units.map((u) => u.value)));
}

// ------------------------------------------------------------------------------------------------
// Tests and multiplicity

/**
 * Holm–Bonferroni step-down adjusted p-values, in the input order: with p₍₁₎ ≤ … ≤ p₍ₘ₎,
 * p̃₍ᵢ₎ = min(1, maxⱼ≤ᵢ (m − j + 1)·p₍ⱼ₎). Rejecting where p̃ ≤ α controls the family-wise error at α
 * under any dependence between the tests. Assumes every p lies in [0, 1].
 */
export function holm(pValues: readonly number[]): number[] {
  const m = pValues.length;
  for (const p of pValues) if (!(p >= 0 && p <= 1)) throw new Error(`holm: p-values must lie in [0, 1], got ${p}`);
  const order = [...pValues.keys()].sort((i, j) => pValues[i]! - pValues[j]! || i - j);
  const out = new Array<number>(m);
  let running = 0;
  order.forEach((i, r) => {
    running = Math.max(running, Math.min(1, (m - r) * pValues[i]!));
    out[i] = running;
  });
  return out;
}

/**
 * Exact two-sided sign test: the probability, under Binomial(n, ½), of a count at least as far from
 * n/2 as `successes` (2·P(X ≤ min(k, n − k)), capped at 1). Assumes independent trials, ties dropped
 * before counting; 0 of 0 gives 1.
 */
export function signTest(successes: number, n: number): number {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(successes) || successes < 0 || successes > n)
    throw new Error(`signTest: need integers 0 ≤ successes ≤ n, got ${successes} of ${n}`);
  const k = Math.min(successes, n - successes);
  // Σ_{j ≤ k} C(n, j) / 2ⁿ, with C(n, j) in logs so large n neither overflows nor underflows at j = 0
  let logC = 0;
  let tail = 0;
  for (let j = 0; j <= k; j++) {
    tail += Math.exp(logC - n * Math.LN2);
    logC += Math.log(n - j) - Math.log(j + 1);
  }
  return Math.min(1, 2 * tail);
}

// ------------------------------------------------------------------------------------------------
// Partial rank correlation

/**
 * Spearman correlation of x and y controlling for z: the Pearson partial correlation of the ranks
 * (ties share their average rank), (r_xy − r_xz·r_yz) / √((1 − r_xz²)(1 − r_yz²)). Removes the part
 * of the rank association that is linear in z's ranks; NaN when x or y is a rank-linear function of z.
 */
export function partialSpearman(x: readonly number[], y: readonly number[], z: readonly number[]): number {
  if (x.length !== y.length || x.length !== z.length) throw new Error('partialSpearman: lengths differ');
  const [rx, ry, rz] = [ranks(x), ranks(y), ranks(z)];
  const rxy = pearson(rx, ry);
  const rxz = pearson(rx, rz);
  const ryz = pearson(ry, rz);
  const d = (1 - rxz * rxz) * (1 - ryz * ryz);
  return d > 0 ? (rxy - rxz * ryz) / Math.sqrt(d) : NaN;
}

// ------------------------------------------------------------------------------------------------
// Magnitude law and its placebos

/** One (pair, tensor) cell: b = log bracket RMS, g = log gradient RMS (natural logs). */
export interface MagnitudeCell {
  pair: string;
  tensor: string;
  b: number;
  g: number;
}

const finiteCell = (c: MagnitudeCell) => Number.isFinite(c.b) && Number.isFinite(c.g);

function firstSeen(keys: Iterable<string>): string[] {
  return [...new Set(keys)];
}

/** groupedSlopeFit of b on g with one intercept per pair; `pairs` gives the order of `intercepts`. */
export type PairSlopeFit = GradFit & { pairs: string[] };

/**
 * Fit b = α_pair + β·g + e over the cells (one intercept per pair, a common slope), by
 * groupedSlopeFit. Cells with a non-finite b or g are dropped (counted in `dropped`).
 */
export function pairSlopeFit(cells: readonly MagnitudeCell[]): PairSlopeFit {
  const pairs = firstSeen(cells.map((c) => c.pair));
  const at = new Map(pairs.map((p, i) => [p, i]));
  const groups = pairs.map(() => ({ x: [] as number[], y: [] as number[] }));
  let dropped = 0;
  for (const c of cells) {
    if (!finiteCell(c)) {
      dropped++;
      continue;
    }
    const g = groups[at.get(c.pair)!]!;
    g.x.push(c.g);
    g.y.push(c.b);
  }
  return { ...groupedSlopeFit(groups, dropped), pairs };
}

/**
 * Placebo (b): each cell's g replaced by its tensor's mean g over the pairs (finite g only), so the
 * gradient keeps its tensor profile but loses everything pair-specific. A tensor with no finite g
 * gets NaN.
 */
export function tensorMeanCells(cells: readonly MagnitudeCell[]): MagnitudeCell[] {
  const sum = new Map<string, [number, number]>();
  for (const c of cells) {
    if (!Number.isFinite(c.g)) continue;
    const s = sum.get(c.tensor) ?? [0, 0];
    sum.set(c.tensor, [s[0] + c.g, s[1] + 1]);
  }
  return cells.map((c) => {
    const s = sum.get(c.tensor);
    return { ...c, g: s ? s[0] / s[1] : NaN };
  });
}

/**
 * Placebo (c): each pair's g replaced, tensor by tensor, by the g of a donor pair — a seeded random
 * cyclic permutation of the pairs (Sattolo's algorithm), hence a derangement: no pair keeps its own
 * gradients. A cell whose donor lacks that tensor gets g = NaN. Needs at least two pairs.
 * `donors[p]` is the pair whose gradients p received.
 */
export function derangedCells(cells: readonly MagnitudeCell[], seed: number): { cells: MagnitudeCell[]; donors: Record<string, string> } {
  const pairs = firstSeen(cells.map((c) => c.pair));
  if (pairs.length < 2) throw new Error(`derangedCells: need at least 2 pairs, got ${pairs.length}`);
  const perm = pairs.map((_, i) => i);
  const rng = new Rng(seed);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = rng.int(i);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const donors = Object.fromEntries(pairs.map((p, i) => [p, pairs[perm[i]!]!]));
  const g = new Map(cells.map((c) => [`${c.pair}\u0000${c.tensor}`, c.g]));
  return { cells: cells.map((c) => ({ ...c, g: g.get(`${donors[c.pair]!}\u0000${c.tensor}`) ?? NaN })), donors };
}

export interface MagnitudePlacebos {
  /** (a) The real gradients. */
  real: PairSlopeFit;
  /** (b) Each pair's g replaced by the tensor-mean profile. */
  tensorMean: PairSlopeFit;
  /** (c) Each pair's g replaced by its donor pair's g. */
  deranged: PairSlopeFit;
  donors: Record<string, string>;
}

/** pairSlopeFit on the real cells and on the two placebos (the derangement from `seed`). */
export function magnitudePlacebos(cells: readonly MagnitudeCell[], seed = 0): MagnitudePlacebos {
  const d = derangedCells(cells, seed);
  return { real: pairSlopeFit(cells), tensorMean: pairSlopeFit(tensorMeanCells(cells)), deranged: pairSlopeFit(d.cells), donors: d.donors };
}

export interface PairTensorSlopeFit {
  /** Cells used (finite b and g). */
  n: number;
  pairs: number;
  tensors: number;
  /** R² of b = μ + a_pair + c_tensor alone. */
  r2FixedEffects: number;
  /** R² of b = μ + a_pair + c_tensor + β·g. */
  r2: number;
  /** β (NaN where g has no variation left after the fixed effects, e.g. the tensor-mean placebo). */
  slope: number;
  /** Classical standard error of β, √(SSE / (n − pairs − tensors)) / √Σ g̃². */
  slopeStderr: number;
  /** What the pair's own gradient adds: 1 − SSE(with β) / SSE(fixed effects only); 0 where β is NaN. */
  partialR2: number;
  /** √(SSE / (n − pairs − tensors)). */
  residualSd: number;
  /** Cells left out: a non-finite b or g. */
  dropped: number;
}

/**
 * Least-squares fit of b = μ + a_pair + c_tensor + β·g + e (two-way fixed effects plus the
 * covariate), by Frisch–Waugh–Lovell: b and g are each residualized on pair + tensor (twoWayFit,
 * alternating means, which handles missing cells), and β is the slope of b̃ on g̃. Assumes at most
 * one cell per (pair, tensor) and a connected design (degrees of freedom n − pairs − tensors).
 */
export function pairTensorSlopeFit(cells: readonly MagnitudeCell[]): PairTensorSlopeFit {
  const used = cells.filter(finiteCell);
  const pairs = firstSeen(used.map((c) => c.pair));
  const tensors = firstSeen(used.map((c) => c.tensor));
  const pi = new Map(pairs.map((p, i) => [p, i]));
  const ti = new Map(tensors.map((t, i) => [t, i]));
  const tb = pairs.map(() => new Array<number | null>(tensors.length).fill(null));
  const tg = pairs.map(() => new Array<number | null>(tensors.length).fill(null));
  for (const c of used) {
    const [r, k] = [pi.get(c.pair)!, ti.get(c.tensor)!];
    if (tb[r]![k] !== null) throw new Error(`pairTensorSlopeFit: two cells for pair ${c.pair}, tensor ${c.tensor}`);
    tb[r]![k] = c.b;
    tg[r]![k] = c.g;
  }
  const fb = twoWayFit(tb);
  const fg = twoWayFit(tg);
  const resid = (f: ReturnType<typeof twoWayFit>, v: number, r: number, k: number) => v - f.mean - f.rowEffects[r]! - f.colEffects[k]!;
  let sxx = 0;
  let sxy = 0;
  let sseFe = 0;
  let sst = 0;
  let sgg = 0;
  const mb = mean(used.map((c) => c.b));
  const mg = mean(used.map((c) => c.g));
  for (const c of used) {
    const [r, k] = [pi.get(c.pair)!, ti.get(c.tensor)!];
    const eb = resid(fb, c.b, r, k);
    const eg = resid(fg, c.g, r, k);
    sxx += eg * eg;
    sxy += eg * eb;
    sseFe += eb * eb;
    sst += (c.b - mb) ** 2;
    sgg += (c.g - mg) ** 2;
  }
  const n = used.length;
  const identified = sxx > 1e-12 * Math.max(sgg, Number.MIN_VALUE);
  const slope = identified ? sxy / sxx : NaN;
  const sse = identified ? Math.max(0, sseFe - (sxy * sxy) / sxx) : sseFe;
  const df = n - pairs.length - tensors.length;
  const residualSd = df > 0 ? Math.sqrt(sse / df) : NaN;
  return {
    n,
    pairs: pairs.length,
    tensors: tensors.length,
    r2FixedEffects: sst > 0 ? 1 - sseFe / sst : NaN,
    r2: sst > 0 ? 1 - sse / sst : NaN,
    slope,
    slopeStderr: identified && df > 0 ? residualSd / Math.sqrt(sxx) : NaN,
    partialR2: !identified ? 0 : sseFe > 0 ? 1 - sse / sseFe : NaN,
    residualSd,
    dropped: cells.length - n,
  };
}

// ------------------------------------------------------------------------------------------------
// Cluster-robust slope

export interface ClusteredSlope {
  n: number;
  clusters: number;
  intercept: number;
  slope: number;
  /** Classical OLS standard error (independent, homoskedastic errors), df n − 2. */
  naiveStderr: number;
  /**
   * CR1 (Liang–Zeger sandwich) standard error: √(c · Σ_g (Σ_{i∈g} (x_i − x̄) e_i)² / Sxx²) with the
   * small-sample factor c = G/(G − 1) · (n − 1)/(n − 2); NaN below two clusters.
   */
  clusteredStderr: number;
}

function clusterIndex(clusters: readonly (string | number)[]): number[][] {
  const at = new Map<string | number, number[]>();
  clusters.forEach((c, i) => {
    const list = at.get(c);
    if (list) list.push(i);
    else at.set(c, [i]);
  });
  return [...at.values()];
}

/**
 * OLS of y = a + β·x with a cluster-robust (CR1) standard error of β beside the naive one. Assumes
 * errors independent between clusters, arbitrarily correlated and heteroskedastic within; the
 * approximation wants many clusters (a few dozen), not many points.
 */
export function clusteredSlopeSE(x: readonly number[], y: readonly number[], clusters: readonly (string | number)[]): ClusteredSlope {
  const n = x.length;
  if (y.length !== n || clusters.length !== n) throw new Error('clusteredSlopeSE: lengths differ');
  const fit = groupedSlopeFit([{ x, y }]);
  const intercept = fit.intercepts[0] ?? NaN;
  const mx = mean(x);
  let sxx = 0;
  for (const v of x) sxx += (v - mx) ** 2;
  const groups = clusterIndex(clusters);
  let meat = 0;
  for (const idx of groups) {
    let s = 0;
    for (const i of idx) s += (x[i]! - mx) * (y[i]! - intercept - fit.slope * x[i]!);
    meat += s * s;
  }
  const G = groups.length;
  const c = G > 1 && n > 2 ? (G / (G - 1)) * ((n - 1) / (n - 2)) : NaN;
  return {
    n,
    clusters: G,
    intercept,
    slope: fit.slope,
    naiveStderr: fit.slopeStderr,
    clusteredStderr: sxx > 0 ? Math.sqrt((c * meat) / (sxx * sxx)) : NaN,
  };
}

/**
 * Cluster bootstrap of the OLS slope of y on x: each resample draws as many clusters as there are,
 * with replacement, taking all points of each drawn cluster. Same assumptions as clusteredSlopeSE;
 * a resample whose x does not vary gives NaN and is left out of the interval.
 */
export function clusterBootstrapSlope(
  x: readonly number[],
  y: readonly number[],
  clusters: readonly (string | number)[],
  opts: BootstrapOptions = {},
): BootstrapResult {
  const n = x.length;
  if (y.length !== n || clusters.length !== n) throw new Error('clusterBootstrapSlope: lengths differ');
  const { samples, seed, level } = options(opts);
  const groups = clusterIndex(clusters);
  const rng = new Rng(seed);
  const draws: number[] = [];
  for (let b = 0; b < samples; b++) {
    const bx: number[] = [];
    const by: number[] = [];
    for (let k = 0; k < groups.length; k++)
      for (const i of groups[rng.int(groups.length)]!) {
        bx.push(x[i]!);
        by.push(y[i]!);
      }
    draws.push(groupedSlopeFit([{ x: bx, y: by }]).slope);
  }
  return summarize(groupedSlopeFit([{ x, y }]).slope, draws, level);
}

// ------------------------------------------------------------------------------------------------
// Reporting a null

export interface ExcludedEffect {
  /** exp of the interval bound on that side (e.g. ×1.23); Infinity where the bound is infinite. */
  k: number;
  text: string;
}

/**
 * What a null result excludes: from an interval [lo, hi] of a natural-log ratio (e.g. log of
 * treated / control), a shrink larger than ×k = e^(−lo), or a growth larger than ×k = e^(hi), is
 * excluded at the interval's level. k is printed rounded up (`digits` decimals, default 2) so the
 * sentence never claims more than the interval shows. Where the interval lies wholly on the other
 * side of 0 (k ≤ 1) the sentence says any shrink (growth) is excluded.
 */
export function excludedEffect(
  ci: readonly [number, number],
  direction: 'shrink' | 'growth',
  { level = 0.95, digits = 2 }: { level?: number; digits?: number } = {},
): ExcludedEffect {
  const [lo, hi] = ci;
  if (Number.isNaN(lo) || Number.isNaN(hi) || lo > hi) throw new Error(`excludedEffect: not an interval: [${lo}, ${hi}]`);
  const k = Math.exp(direction === 'shrink' ? -lo : hi);
  const at = `at ${+(level * 100).toFixed(1)}%`;
  if (!Number.isFinite(k)) return { k, text: `no ${direction} is excluded ${at}` };
  if (k <= 1) return { k, text: `any ${direction} is excluded ${at}` };
  const scale = 10 ** digits;
  // round up; the small relative slack keeps an exact decimal (e.g. 1.35) from being bumped by float error
  const shown = (Math.ceil(k * scale * (1 - 1e-12)) / scale).toFixed(digits);
  return { k, text: `a ${direction} larger than ×${shown} is excluded ${at}` };
}
