/** Robust statistics on constructed data with known answers. */
import { describe, expect, test } from 'vitest';
import { Rng } from '../engine/random.js';
import {
  clusterBootstrapSlope,
  clusteredSlopeSE,
  derangedCells,
  excludedEffect,
  hierarchicalBootstrap,
  holm,
  magnitudePlacebos,
  pairSlopeFit,
  pairTensorSlopeFit,
  partialSpearman,
  pooledMean,
  signTest,
  tensorMeanCells,
  type MagnitudeCell,
  type SeedUnits,
} from './robust-stats.js';
import { bootstrapIndices, mean, quantileSorted, sd, spearman } from './sweep-stats.js';

/** n standard-normal draws shifted and scaled to sample mean 0 and sample sd exactly 1. */
function standardized(rng: Rng, n: number): number[] {
  const v = Array.from({ length: n }, () => rng.normal());
  const m = mean(v);
  const s = sd(v);
  return v.map((x) => (x - m) / s);
}

/** Naive bootstrap of the mean treating every value as independent (the wrong model for nested data). */
function naiveInterval(values: readonly number[], samples: number, seed: number): [number, number] {
  const draws = bootstrapIndices(values.length, samples, seed)
    .map((idx) => idx.reduce((s, i) => s + values[i]!, 0) / values.length)
    .sort((a, b) => a - b);
  return [quantileSorted(draws, 0.025), quantileSorted(draws, 0.975)];
}

type Unit = { image: string; value: number };

describe('hierarchicalBootstrap', () => {
  // 10 seeds with effects of sample sd exactly 1; 200 images each, 2 units per image; small noise
  const rng = new Rng(1);
  const effects = standardized(rng, 10);
  const data: SeedUnits<Unit>[] = effects.map((e, s) => ({
    seed: `s${s}`,
    units: Array.from({ length: 400 }, (_, u) => ({ image: `i${u >> 1}`, value: e + 0.3 * rng.normal() })),
  }));

  test('the interval of the mean has the between-seed width ±1.96/√10 and is far wider than a naive unit bootstrap', () => {
    const r = hierarchicalBootstrap(data, pooledMean, { samples: 2000, seed: 3 });
    const values = data.flatMap((s) => s.units.map((u) => u.value));
    expect(r.estimate).toBeCloseTo(mean(values), 12);
    expect(r.samples).toBe(2000);
    expect(r.level).toBe(0.95);
    const analytic = 2 * 1.96 * (1 / Math.sqrt(10));
    const width = r.interval[1] - r.interval[0];
    expect(Math.abs(width / analytic - 1)).toBeLessThan(0.25);
    expect(Math.abs(r.sd / (1 / Math.sqrt(10)) - 1)).toBeLessThan(0.25);
    expect(r.interval[0]).toBeLessThan(r.estimate);
    expect(r.interval[1]).toBeGreaterThan(r.estimate);
    const naive = naiveInterval(values, 2000, 3);
    expect(width).toBeGreaterThan(5 * (naive[1] - naive[0]));
  });

  test('images are resampled as clusters: one seed, 50 images of 20 identical units', () => {
    const imgRng = new Rng(2);
    const imageEffects = standardized(imgRng, 50);
    const one: SeedUnits<Unit>[] = [
      { seed: 'only', units: imageEffects.flatMap((e, i) => Array.from({ length: 20 }, () => ({ image: `i${i}`, value: e }))) },
    ];
    const r = hierarchicalBootstrap(one, pooledMean, { samples: 2000, seed: 4 });
    const width = r.interval[1] - r.interval[0];
    expect(Math.abs(width / ((2 * 1.96) / Math.sqrt(50)) - 1)).toBeLessThan(0.25);
    const naive = naiveInterval(
      one[0]!.units.map((u) => u.value),
      2000,
      4,
    );
    expect(width).toBeGreaterThan(3 * (naive[1] - naive[0]));
  });

  test('pValue: two-sided share of resamples on the far side of 0, with the +1 correction', () => {
    // seed effects of mean 0: a p-value near 1; shifted by 3 between-seed standard errors: small; by 10: the floor 2/(B + 1)
    const shifted = (d: number) => data.map((s) => ({ ...s, units: s.units.map((u) => ({ ...u, value: u.value + d })) }));
    const p0 = hierarchicalBootstrap(data, pooledMean, { samples: 2000, seed: 5 }).pValue;
    const p3 = hierarchicalBootstrap(shifted(3 / Math.sqrt(10)), pooledMean, { samples: 2000, seed: 5 }).pValue;
    const p10 = hierarchicalBootstrap(shifted(10 / Math.sqrt(10)), pooledMean, { samples: 2000, seed: 5 }).pValue;
    expect(p0).toBeGreaterThan(0.7);
    expect(p3).toBeGreaterThan(2 / 2001);
    expect(p3).toBeLessThan(0.03);
    expect(p10).toBeCloseTo(2 / 2001, 12);
    // by hand: draws of a constant statistic 1 → none ≤ 0; of 0 → all on both sides, p = 1
    const one: SeedUnits<Unit>[] = [{ seed: 'a', units: [{ image: 'x', value: 1 }] }];
    expect(hierarchicalBootstrap(one, pooledMean, { samples: 9 }).pValue).toBeCloseTo(0.2, 12);
    expect(hierarchicalBootstrap(one, () => 0, { samples: 9 }).pValue).toBe(1);
    expect(hierarchicalBootstrap(one, () => NaN, { samples: 9 }).pValue).toBeNaN();
  });

  test('deterministic given the seed; the resample keeps the nested shape', () => {
    const a = hierarchicalBootstrap(data, pooledMean, { samples: 200, seed: 7 });
    const b = hierarchicalBootstrap(data, pooledMean, { samples: 200, seed: 7 });
    const c = hierarchicalBootstrap(data, pooledMean, { samples: 200, seed: 8 });
    expect(b).toEqual(a);
    expect(c.interval).not.toEqual(a.interval);
    const shapes: number[][] = [];
    hierarchicalBootstrap(
      data,
      (s) => {
        shapes.push(s.map((x) => x.units.length));
        return 0;
      },
      { samples: 3, seed: 1 },
    );
    // the full data, then 3 resamples: 10 seeds of 400 units each (every image has 2 units)
    expect(shapes).toHaveLength(4);
    for (const sh of shapes) expect(sh).toEqual(new Array<number>(10).fill(400));
  });
});

describe('holm', () => {
  test('hand-computed examples', () => {
    const r = holm([0.01, 0.04, 0.03, 0.005]);
    [0.03, 0.06, 0.06, 0.02].forEach((v, i) => expect(r[i]).toBeCloseTo(v, 12));
    // sorted: 0.02·3 = 0.06, 0.5·2 = 1, then 0.9·1 = 0.9 is raised to the running maximum 1 (monotone)
    const s = holm([0.9, 0.02, 0.5]);
    [1, 0.06, 1].forEach((v, i) => expect(s[i]).toBeCloseTo(v, 12));
    expect(holm([])).toEqual([]);
    expect(holm([0.2])).toEqual([0.2]);
  });

  test('rejects values outside [0, 1]', () => {
    expect(() => holm([0.1, 1.2])).toThrow(/\[0, 1\]/);
    expect(() => holm([NaN])).toThrow();
  });
});

describe('signTest', () => {
  test('exact two-sided binomial p', () => {
    expect(signTest(5, 5)).toBeCloseTo(0.0625, 14);
    expect(signTest(0, 5)).toBeCloseTo(0.0625, 14);
    expect(signTest(0, 0)).toBe(1);
    expect(signTest(1, 10)).toBeCloseTo(22 / 1024, 14);
    expect(signTest(7, 10)).toBeCloseTo(352 / 1024, 14);
    expect(signTest(5, 10)).toBe(1);
    // large n: 0 of 2000 is ≈ 2·2⁻²⁰⁰⁰ (underflows to 0, not NaN); 1000 of 2000 is 1
    expect(signTest(0, 2000)).toBe(0);
    expect(signTest(1000, 2000)).toBe(1);
  });

  test('rejects impossible counts', () => {
    expect(() => signTest(6, 5)).toThrow();
    expect(() => signTest(1.5, 5)).toThrow();
  });
});

describe('partialSpearman', () => {
  test('x and y that depend on z only: partial ≈ 0 while plain Spearman is large', () => {
    const rng = new Rng(5);
    const z = Array.from({ length: 3000 }, () => rng.random());
    const x = z.map((v) => v + 0.1 * rng.random());
    const y = z.map((v) => Math.exp(3 * v) + 0.3 * rng.random());
    expect(spearman(x, y)).toBeGreaterThan(0.8);
    expect(Math.abs(partialSpearman(x, y, z))).toBeLessThan(0.05);
  });

  test('a hand-computed case: r_xy = 0.3, r_xz = r_yz = 0.8 → (0.3 − 0.64)/(1 − 0.64) = −17/18', () => {
    const z = [1, 2, 3, 4, 5];
    const x = [2, 1, 4, 3, 5];
    const y = [1, 3, 2, 5, 4];
    expect(partialSpearman(x, y, z)).toBeCloseTo(-17 / 18, 12);
    // ranks only: monotone transforms change nothing
    expect(
      partialSpearman(
        x.map((v) => v ** 3),
        y.map((v) => Math.exp(v)),
        z.map((v) => -1 / v),
      ),
    ).toBeCloseTo(-17 / 18, 12);
    expect(() => partialSpearman([1, 2], [1, 2, 3], [1, 2, 3])).toThrow();
  });
});

describe('magnitude-law placebos', () => {
  const P = 30;
  const T = 12;
  /** Cells with tensor profile h_t (sd ≈ 1), g = h_t + spread·u_pt, and b from `bOf`. */
  function cells(seed: number, spread: number, bOf: (a: number, c: number, g: number, e: number) => number): MagnitudeCell[] {
    const rng = new Rng(seed);
    const h = Array.from({ length: T }, () => rng.normal());
    const a = Array.from({ length: P }, () => rng.normal());
    const out: MagnitudeCell[] = [];
    for (let p = 0; p < P; p++)
      for (let t = 0; t < T; t++) {
        const g = h[t]! + spread * rng.normal();
        out.push({ pair: `p${p}`, tensor: `t${t}`, g, b: bOf(a[p]!, h[t]!, g, 0.1 * rng.normal()) });
      }
    return out;
  }

  test('b = pair + tensor + noise (g matters only through its tensor profile): no added partial R², placebo (b) fits as well', () => {
    const data = cells(11, 0.3, (a, c, _g, e) => a + c + e);
    const fe = pairTensorSlopeFit(data);
    expect(fe.n).toBe(P * T);
    expect(fe.pairs).toBe(P);
    expect(fe.tensors).toBe(T);
    expect(fe.r2FixedEffects).toBeGreaterThan(0.99);
    expect(fe.partialR2).toBeLessThan(0.02);
    expect(Math.abs(fe.slope)).toBeLessThan(0.1);
    expect(fe.r2 - fe.r2FixedEffects).toBeLessThan(0.001);
    const pl = magnitudePlacebos(data, 1);
    expect(pl.tensorMean.r2).toBeGreaterThan(pl.real.r2 - 0.02);
    expect(pl.deranged.r2).toBeGreaterThan(pl.real.r2 - 0.05);
  });

  test('b = 0.9·g + pair + noise with g varying within tensor: slope 0.9, clear added R², placebos worse', () => {
    const data = cells(12, 0.5, (a, _c, g, e) => 0.9 * g + a + e);
    const fe = pairTensorSlopeFit(data);
    expect(fe.slope).toBeCloseTo(0.9, 1);
    expect(Math.abs(fe.slope - 0.9) / fe.slopeStderr).toBeLessThan(4);
    expect(fe.partialR2).toBeGreaterThan(0.8);
    expect(fe.r2).toBeGreaterThan(fe.r2FixedEffects + 0.02);
    expect(fe.residualSd).toBeCloseTo(0.1, 1);
    const pl = magnitudePlacebos(data, 1);
    expect(pl.real.slope).toBeCloseTo(0.9, 1);
    expect(pl.real.withinR2).toBeGreaterThan(0.98);
    expect(pl.tensorMean.withinR2).toBeLessThan(pl.real.withinR2 - 0.1);
    expect(pl.tensorMean.r2).toBeLessThan(pl.real.r2 - 0.05);
    expect(pl.deranged.r2).toBeLessThan(pl.real.r2 - 0.05);
  });

  test('the tensor-mean placebo leaves no within-tensor variation: pairTensorSlopeFit reports β as unidentified', () => {
    const data = tensorMeanCells(cells(13, 0.5, (a, _c, g, e) => 0.9 * g + a + e));
    for (const c of data.filter((c) => c.tensor === 't0')) expect(c.g).toBeCloseTo(data[0]!.g, 12);
    const fe = pairTensorSlopeFit(data);
    expect(fe.slope).toBeNaN();
    expect(fe.partialR2).toBe(0);
    expect(fe.r2).toBe(fe.r2FixedEffects);
  });

  test('derangement: no pair keeps its own gradients; seeded; missing donor cells become NaN and are dropped', () => {
    const data = cells(14, 0.5, (a, _c, g) => g + a);
    const d = derangedCells(data, 5);
    expect(derangedCells(data, 5)).toEqual(d);
    for (const [p, donor] of Object.entries(d.donors)) expect(donor).not.toBe(p);
    expect(new Set(Object.values(d.donors)).size).toBe(P);
    const gOf = new Map(data.map((c) => [`${c.pair}/${c.tensor}`, c.g]));
    for (const c of d.cells) expect(c.g).toBe(gOf.get(`${d.donors[c.pair]}/${c.tensor}`));
    // drop one cell of pair p1: its receiver gets a NaN there, which pairSlopeFit counts as dropped
    const holed = data.filter((c) => !(c.pair === 'p1' && c.tensor === 't3'));
    const h = derangedCells(holed, 5);
    expect(h.cells.filter((c) => Number.isNaN(c.g))).toHaveLength(1);
    expect(pairSlopeFit(h.cells).dropped).toBe(1);
    expect(pairTensorSlopeFit(h.cells).dropped).toBe(1);
    expect(() => derangedCells(data.slice(0, T), 1)).toThrow(/2 pairs/);
    expect(() => pairTensorSlopeFit([...data, data[0]!])).toThrow(/two cells/);
  });
});

describe('clusteredSlopeSE', () => {
  test('hand-computed: x = 0…3, y = [0, 2, 1, 3], clusters {0,3} and {1,2}', () => {
    // β = 0.8, a = 0.3, residuals [−0.3, 0.9, −0.9, 0.3]; naive Var = (1.8/2)/5 = 0.18;
    // scores Σ(x−x̄)e per cluster: 0.9 and −0.9 → meat 1.62; CR1: 3 · 1.62 / 25 = 0.1944
    const r = clusteredSlopeSE([0, 1, 2, 3], [0, 2, 1, 3], ['a', 'b', 'b', 'a']);
    expect(r.slope).toBeCloseTo(0.8, 12);
    expect(r.intercept).toBeCloseTo(0.3, 12);
    expect(r.clusters).toBe(2);
    expect(r.naiveStderr).toBeCloseTo(Math.sqrt(0.18), 12);
    expect(r.clusteredStderr).toBeCloseTo(Math.sqrt(0.1944), 12);
  });

  /** G clusters of m points, x constant within a cluster, error = ρ-part shared + independent part. */
  function clustered(seed: number, G: number, m: number, shared: number, own: number) {
    const rng = new Rng(seed);
    const x: number[] = [];
    const y: number[] = [];
    const c: number[] = [];
    for (let g = 0; g < G; g++) {
      const xg = rng.normal();
      const u = shared * rng.normal();
      for (let i = 0; i < m; i++) {
        x.push(xg);
        y.push(2 + 0.5 * xg + u + own * rng.normal());
        c.push(g);
      }
    }
    return { x, y, c };
  }

  test('strongly within-cluster-correlated errors with x constant in clusters: clustered SE several times the naive', () => {
    const { x, y, c } = clustered(21, 40, 25, 1, 0.1);
    const r = clusteredSlopeSE(x, y, c);
    expect(r.n).toBe(1000);
    expect(r.clusters).toBe(40);
    expect(r.clusteredStderr / r.naiveStderr).toBeGreaterThan(3);
    const b = clusterBootstrapSlope(x, y, c, { samples: 1000, seed: 2 });
    expect(b.estimate).toBeCloseTo(r.slope, 12);
    expect(Math.abs(b.sd / r.clusteredStderr - 1)).toBeLessThan(0.25);
  });

  test('independent errors: clustered and naive SE agree within 20%', () => {
    const { x, y, c } = clustered(22, 400, 5, 0, 1);
    const r = clusteredSlopeSE(x, y, c);
    expect(Math.abs(r.clusteredStderr / r.naiveStderr - 1)).toBeLessThan(0.2);
    const b = clusterBootstrapSlope(x, y, c, { samples: 1000, seed: 3 });
    expect(Math.abs(b.sd / r.naiveStderr - 1)).toBeLessThan(0.2);
    expect(clusterBootstrapSlope(x, y, c, { samples: 50, seed: 3 })).toEqual(clusterBootstrapSlope(x, y, c, { samples: 50, seed: 3 }));
  });
});

describe('excludedEffect', () => {
  test('wording and k, rounded up', () => {
    const s = excludedEffect([-0.2, 0.3], 'shrink');
    expect(s.k).toBeCloseTo(Math.exp(0.2), 14);
    expect(s.text).toBe('a shrink larger than ×1.23 is excluded at 95%');
    const g = excludedEffect([-0.2, 0.3], 'growth');
    expect(g.k).toBeCloseTo(Math.exp(0.3), 14);
    expect(g.text).toBe('a growth larger than ×1.35 is excluded at 95%');
    expect(excludedEffect([-Math.log(2), 0.1], 'shrink').text).toBe('a shrink larger than ×2.00 is excluded at 95%');
    expect(excludedEffect([-0.05, 0.05], 'growth', { level: 0.9, digits: 3 }).text).toBe('a growth larger than ×1.052 is excluded at 90%');
  });

  test('one-sided and unbounded intervals', () => {
    expect(excludedEffect([0.1, 0.4], 'shrink').text).toBe('any shrink is excluded at 95%');
    expect(excludedEffect([-Infinity, 0.4], 'shrink').text).toBe('no shrink is excluded at 95%');
    expect(() => excludedEffect([0.4, 0.1], 'growth')).toThrow();
  });
});
