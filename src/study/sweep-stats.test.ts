/** Sweep statistics on constructed inputs with known answers. */
import { describe, expect, test } from 'vitest';
import {
  compareRankings,
  compareSweeps,
  gradientFit,
  groupedSlopeFit,
  rankFeaturesOverPairs,
  ranks,
  spearman,
  summarizeSweep,
  tensorModel,
  twoWayFit,
  type SweepData,
} from './sweep-stats.js';
import type { SweepParams } from './sweep.js';
import type { UnitRecord } from './sweep-unit.js';

const TENSORS = ['a.weight', 'a.bias', 'b.weight', 'b.bias'];
const OUTPUTS = ['f0', 'f1', 'f2', 'f3', 'f4'];

/** A unit record whose tensor t has gradient RMS g[t] (both examples) and bracket RMS b[t]. */
function record(step: number, x: number, y: number, g: readonly number[], b: readonly number[], effects: number[][] = [], gradNorm = 1): UnitRecord {
  return {
    step,
    x,
    y,
    lossX: 1,
    lossY: 1,
    gradNormX: gradNorm,
    gradNormY: gradNorm,
    bracketNorm: 1,
    gradCosine: 0,
    tensors: Object.fromEntries(
      TENSORS.map((t, i) => [t, { bracketNorm: b[i]!, bracketRms: b[i]!, gradNormX: g[i]!, gradNormY: g[i]!, gradRmsX: g[i]!, gradRmsY: g[i]! }]),
    ),
    probeEffects: effects,
  };
}

function params(steps: number[], pairs: [number, number][]): SweepParams {
  return {
    format: 'lie-bracket sweep v1',
    runDir: '/run',
    model: 'test',
    paramCount: 0,
    tensors: TENSORS,
    outputs: OUTPUTS,
    steps,
    pairs,
    probeIndices: [0, 1],
    options: { bn: 'eval', dtype: 'float64', saveVectors: false },
    checkpoints: {},
    units: steps.length * pairs.length,
    shard: null,
  };
}

const PAIRS: [number, number][] = [
  [0, 1],
  [0, 2],
  [1, 2],
  [0, 3],
  [1, 3],
  [2, 3],
];
const G = [0.3, 2, 0.05, 7]; // gradient RMS per tensor
const A = [-1, 0.5, 2, -3, 0.25, 1.5]; // log pair factors

describe('(a) bracket RMS against gradient RMS', () => {
  test('b_pt = e^{a_p}·g_t exactly: slope 1, R² 1, no residual, the intercepts are a_p', () => {
    const recs = PAIRS.map(([x, y], p) =>
      record(
        0,
        x,
        y,
        G,
        G.map((g) => Math.exp(A[p]!) * g),
      ),
    );
    const fit = gradientFit(recs, TENSORS);
    expect(fit.n).toBe(24);
    expect(fit.groups).toBe(6);
    expect(fit.slope).toBeCloseTo(1, 12);
    expect(fit.r2).toBeCloseTo(1, 12);
    expect(fit.withinR2).toBeCloseTo(1, 12);
    expect(fit.residualSd).toBeLessThan(1e-7);
    fit.intercepts.forEach((a, p) => expect(a).toBeCloseTo(A[p]!, 10));
  });

  test('b_pt = e^{a_p}·g_t^0.5: slope 0.5; the gradient RMS is the geometric mean of the two examples', () => {
    const recs = PAIRS.map(([x, y], p) => {
      const r = record(
        0,
        x,
        y,
        G,
        G.map((g) => Math.exp(A[p]!) * Math.sqrt(g)),
      );
      for (const [i, t] of TENSORS.entries()) Object.assign(r.tensors[t]!, { gradRmsX: G[i]! * 4, gradRmsY: G[i]! / 4 });
      return r;
    });
    expect(gradientFit(recs, TENSORS).slope).toBeCloseTo(0.5, 12);
  });

  test('a hand-computed fit; zero and non-finite RMS values are dropped', () => {
    const f = groupedSlopeFit([{ x: [0, 1, 2], y: [0, 3, 4] }]);
    expect(f.slope).toBeCloseTo(2, 14);
    expect(f.residualSd).toBeCloseTo(Math.sqrt(2 / 3), 14); // SSE 2/3 on 3 − 1 − 1 degrees of freedom
    expect(f.slopeStderr).toBeCloseTo(Math.sqrt(2 / 3) / Math.sqrt(2), 14);
    expect(f.intercepts[0]).toBeCloseTo(7 / 3 - 2, 14);
    const recs = PAIRS.slice(0, 2).map(([x, y], p) =>
      record(
        0,
        x,
        y,
        G,
        G.map((g) => Math.exp(A[p]!) * g),
      ),
    );
    recs[0]!.tensors['a.bias']!.bracketRms = 0;
    recs[1]!.tensors['b.bias']!.gradRmsX = Number.NaN;
    const fit = gradientFit(recs, TENSORS);
    expect([fit.n, fit.dropped]).toEqual([6, 2]);
    expect(fit.slope).toBeCloseTo(1, 12);
  });
});

describe('(b) pair factor × tensor factor', () => {
  const rowsA = [0.5, -1, 2, 0];
  const colsC = [1, -2, 0.5];
  const additive = rowsA.map((a) => colsC.map((c) => 3 + a + c));

  test('an additive table is explained entirely (R² 1), with its effects recovered', () => {
    const f = twoWayFit(additive);
    expect(f.r2).toBeCloseTo(1, 12);
    expect(f.r2Rows).toBeLessThan(1);
    expect(f.r2Cols).toBeLessThan(1);
    const cMean = colsC.reduce((s, v) => s + v, 0) / 3;
    f.colEffects.forEach((c, i) => expect(c).toBeCloseTo(colsC[i]! - cMean, 12));
    f.rowEffects.forEach((a, i) => expect(f.mean + a! + f.colEffects[0]!).toBeCloseTo(additive[i]![0]!, 12));
    expect(f.iterations).toBeLessThanOrEqual(3);
  });

  test('with missing cells the alternating fit still finds the additive model', () => {
    const t = additive.map((r) => [...r] as (number | null)[]);
    t[0]![1] = null;
    t[2]![0] = null;
    const f = twoWayFit(t);
    expect(f.n).toBe(10);
    expect(f.r2).toBeCloseTo(1, 10);
  });

  test('a pure interaction is not explained (R² 0); the one-factor R²s add up on a balanced table', () => {
    expect(
      twoWayFit([
        [1, -1],
        [-1, 1],
      ]).r2,
    ).toBeCloseTo(0, 14);
    const noisy = [
      [1, 2, 4],
      [2, 2, 7],
      [0, 5, 1],
    ];
    const f = twoWayFit(noisy);
    expect(f.r2).toBeCloseTo(f.r2Rows + f.r2Cols, 12);
  });

  test('on records: log b_pt = a_p + c_t gives R² 1 and the tensor factors', () => {
    const c = [0.2, -1, 1.4, -0.6];
    const recs = PAIRS.map(([x, y], p) =>
      record(
        0,
        x,
        y,
        G,
        c.map((ct) => Math.exp(A[p]! + ct)),
      ),
    );
    const m = tensorModel(recs, TENSORS);
    expect(m.r2).toBeCloseTo(1, 12);
    TENSORS.forEach((t, i) => expect(m.tensorFactors[t]).toBeCloseTo(c[i]!, 12)); // c already has mean 0
  });
});

describe('(c) feature ranking and (d) comparison', () => {
  test('ranks and Spearman: identical order 1, reversed −1, ties share ranks', () => {
    expect(spearman([1, 2, 3, 4, 5], [10, 20, 35, 40, 1000])).toBeCloseTo(1, 14);
    expect(spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])).toBeCloseTo(-1, 14);
    expect(ranks([3, 1, 1, 2])).toEqual([4, 1.5, 1.5, 3]);
    expect(spearman([1, 2, 3], [1, 1, 1])).toBeNaN();
  });

  test('a known ranking, with bootstrap intervals that are reproducible and contain the mean', () => {
    // pair i's score for feature f: (f + 1) · (1 + 0.1 i): feature 4 first
    const raw = Array.from({ length: 8 }, (_, i) => OUTPUTS.map((_, f) => (f + 1) * (1 + 0.1 * i)));
    const r = rankFeaturesOverPairs(OUTPUTS, raw, raw);
    expect(r.map((f) => f.feature)).toEqual(['f4', 'f3', 'f2', 'f1', 'f0']);
    expect(r.map((f) => f.rank)).toEqual([1, 2, 3, 4, 5]);
    const f0 = r.find((f) => f.feature === 'f0')!;
    expect(f0.meanAbsEffect).toBeCloseTo(1.35, 12);
    expect(f0.stderr).toBeCloseTo(Math.sqrt(0.06) / Math.sqrt(8), 12); // sd of 1, 1.1, … 1.7 is √0.06
    expect(f0.ci90[0]).toBeLessThan(1.35);
    expect(f0.ci90[1]).toBeGreaterThan(1.35);
    expect(rankFeaturesOverPairs(OUTPUTS, raw, raw)).toEqual(r);
    const constant = rankFeaturesOverPairs(
      OUTPUTS,
      [
        [1, 2, 3, 4, 5],
        [1, 2, 3, 4, 5],
      ],
      [
        [1, 2, 3, 4, 5],
        [1, 2, 3, 4, 5],
      ],
    );
    expect(constant[0]!.ci90).toEqual([5, 5]);
  });

  test('comparison: B = 2·A paired gives ρ = 1 and ratio 2 exactly; a reversed ranking gives ρ = −1', () => {
    const rawA = Array.from({ length: 6 }, (_, i) => OUTPUTS.map((_, f) => (f + 1) * (1 + 0.3 * ((i * 7) % 5))));
    const rawB = rawA.map((r) => r.map((v) => 2 * v));
    const c = compareRankings(OUTPUTS, { raw: rawA, normalized: rawA }, { raw: rawB, normalized: rawB }, true);
    expect(c.spearman).toBeCloseTo(1, 14);
    expect(c.spearmanCi90).toEqual([1, 1]);
    for (const f of c.features) {
      expect(f.ratio).toBeCloseTo(2, 14);
      expect(f.ratioCi90[0]).toBeCloseTo(2, 14);
      expect(f.ratioCi90[1]).toBeCloseTo(2, 14);
      expect(f.rankA).toBe(f.rankB);
    }
    const rev = rawA.map((r) => [...r].reverse());
    expect(compareRankings(OUTPUTS, { raw: rawA, normalized: rawA }, { raw: rev, normalized: rev }, true).spearman).toBeCloseTo(-1, 14);
  });

  test('summary and comparison of constructed sweeps', () => {
    const steps = [0, 10];
    const data = (scale: (f: number) => number): SweepData => ({
      dir: '/sweep',
      params: params(steps, PAIRS),
      records: steps.flatMap((s, si) =>
        PAIRS.map(([x, y], p) => {
          const k = Math.exp(A[p]! - si); // the pair factor shrinks over training
          const eff = [OUTPUTS.map((_, f) => scale(f) * k), OUTPUTS.map((_, f) => -scale(f) * k)];
          return record(
            s,
            x,
            y,
            G,
            G.map((g) => k * g),
            eff,
            2,
          );
        }),
      ),
    });
    const a = data((f) => f + 1);
    const s = summarizeSweep(a);
    expect(s.sweep).toMatchObject({ units: 12, unitsPresent: 12, complete: true, pairs: 6, probes: 2 });
    expect(s.checkpoints.map((c) => c.step)).toEqual([0, 10]);
    for (const c of s.checkpoints) {
      expect(c.gradientFit.slope).toBeCloseTo(1, 10);
      expect(c.tensorModel.r2).toBeCloseTo(1, 10);
      expect(c.features[0]!.feature).toBe('f4');
    }
    expect(s.overall.gradientFit.slope).toBeCloseTo(1, 10);
    expect(s.overall.gradientFit.groups).toBe(12);
    expect(s.overall.factorByStep.map((f) => f.mean)).toEqual([
      expect.closeTo(A.reduce((x, y) => x + y) / 6, 10),
      expect.closeTo(A.reduce((x, y) => x + y) / 6 - 1, 10),
    ]);
    expect(s.overall.features.map((f) => f.feature)).toEqual(['f4', 'f3', 'f2', 'f1', 'f0']);
    const f4 = s.overall.features[0]!;
    // per pair: mean over checkpoints of 5·e^{a_p − s}; normalised by ‖g_x‖‖g_y‖ = 4
    const perPair = A.map((ap) => (5 * Math.exp(ap) + 5 * Math.exp(ap - 1)) / 2);
    expect(f4.meanAbsEffect).toBeCloseTo(perPair.reduce((x, y) => x + y) / 6, 10);
    expect(f4.normalized).toBeCloseTo(f4.meanAbsEffect / 4, 10);
    expect(summarizeSweep(a)).toEqual(s); // deterministic bootstrap

    const same = compareSweeps(
      a,
      data((f) => 3 * (f + 1)),
    );
    expect(same.paired).toBe(true);
    expect(same.overall.spearman).toBeCloseTo(1, 12);
    expect(same.overall.features[0]!.ratio).toBeCloseTo(3, 12);
    expect(same.checkpoints.map((c) => c.step)).toEqual([0, 10]);
    const reversed = compareSweeps(
      a,
      data((f) => 5 - f),
    );
    expect(reversed.overall.spearman).toBeCloseTo(-1, 12);
    expect(reversed.overall.spearmanNormalized).toBeCloseTo(-1, 12);
    const other = { ...a, params: { ...a.params, outputs: ['g0', 'g1', 'g2', 'g3', 'g4'] } };
    expect(() => compareSweeps(a, other)).toThrow(/rank different outputs/);
  });
});
