import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Rng } from '../engine/random.js';
import { UserError } from '../errors.js';
import { batch, describeDataset, groupViolation } from './dataset.js';
import { openDataset } from './registry.js';
import {
  SYNTHETIC_GROUPS,
  SYNTHETIC_LABELS,
  SYNTHETIC_RATES,
  SyntheticDataset,
  ambiguityUniform,
  exampleSeed,
  hairLabel,
  latentTargets,
  renderSynthetic,
  sampleLatent,
  syntheticGeometry,
  type SyntheticLatent,
} from './synthetic.js';

function bytes(x: Float32Array): Buffer {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

describe('synthetic data', () => {
  it('has the declared shape, labels and group', () => {
    const ds = new SyntheticDataset('train');
    expect(ds.length).toBe(4000);
    expect(new SyntheticDataset('test').length).toBe(1000);
    expect(ds.inputShape).toEqual([3, 32, 32]);
    expect(ds.labelNames).toEqual([...SYNTHETIC_LABELS]);
    expect(ds.labelKind).toBe('binary');
    expect(ds.groups).toEqual([{ name: 'hair', members: ['black_hair', 'brown_hair'], allowNone: true }]);
    const { x, y } = ds.get(7);
    expect(x.length).toBe(3 * 32 * 32);
    expect(y.length).toBe(6);
    const big = new SyntheticDataset('test', { size: 48, length: 3 });
    expect(big.inputShape).toEqual([3, 48, 48]);
    expect(big.get(2).x.length).toBe(3 * 48 * 48);
  });

  it('is deterministic: same seed, same bytes (any index alone); other seeds and splits differ', () => {
    const a = new SyntheticDataset('train', { seed: 5, length: 50 });
    const b = new SyntheticDataset('train', { seed: 5, length: 50 });
    for (const i of [49, 0, 17]) expect(bytes(b.get(i).x).equals(bytes(a.get(i).x))).toBe(true);
    // A longer split extends a shorter one, example for example.
    expect(bytes(new SyntheticDataset('train', { seed: 5, length: 10_000 }).get(17).x).equals(bytes(a.get(17).x))).toBe(true);
    const other = new SyntheticDataset('train', { seed: 6, length: 50 });
    for (const i of [0, 17, 49]) expect(bytes(other.get(i).x).equals(bytes(a.get(i).x))).toBe(false);
    expect(a.fingerprint()).toBe(b.fingerprint());
    expect(a.fingerprint()).not.toBe(other.fingerprint());
    expect(a.fingerprint()).not.toBe(new SyntheticDataset('train', { seed: 5, length: 51 }).fingerprint());
    expect(a.fingerprint()).not.toBe(new SyntheticDataset('train', { seed: 5, length: 50, difficulty: 2 }).fingerprint());
  });

  it('train and test never share an example (distinct random streams by construction)', () => {
    const seeds = new Set<number>();
    for (const split of ['train', 'test'] as const) for (let i = 0; i < 20_000; i++) seeds.add(exampleSeed(3, split, i));
    expect(seeds.size).toBe(40_000);
    const train = new SyntheticDataset('train', { seed: 3, length: 200 });
    const test = new SyntheticDataset('test', { seed: 3, length: 200 });
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(bytes(train.get(i).x).toString('base64'));
    for (let i = 0; i < 200; i++) expect(seen.has(bytes(test.get(i).x).toString('base64'))).toBe(false);
  });

  it('keeps hair exclusive in every example, and targets(i) matches get(i).y', () => {
    const ds = new SyntheticDataset('train', { seed: 1, length: 300 });
    for (let i = 0; i < ds.length; i++) {
      const { y } = ds.get(i);
      expect(y[0]! + y[1]!).toBeLessThanOrEqual(1);
      expect(groupViolation(ds.labelNames, SYNTHETIC_GROUPS, y)).toBeUndefined();
      expect(Array.from(ds.targets(i))).toEqual(Array.from(y));
    }
    const big = new SyntheticDataset('train', { seed: 2 });
    for (let i = 0; i < big.length; i++) {
      const y = big.targets(i);
      expect(y[0]! + y[1]!).toBeLessThanOrEqual(1);
    }
  });

  it('hits the target rates, with independent attributes uncorrelated', () => {
    const ds = new SyntheticDataset('train', { seed: 11 });
    const n = ds.length;
    const cols: Float64Array[] = SYNTHETIC_LABELS.map(() => new Float64Array(n));
    let none = 0;
    for (let i = 0; i < n; i++) {
      const y = ds.targets(i);
      cols.forEach((c, j) => (c[i] = y[j]!));
      if (y[0] === 0 && y[1] === 0) none++;
    }
    const summary = describeDataset(ds);
    for (const name of SYNTHETIC_LABELS) expect(Math.abs(summary.positiveRate[name]! - SYNTHETIC_RATES[name])).toBeLessThan(0.035);
    expect(Math.abs(none / n - 0.2)).toBeLessThan(0.03);
    const corr = (a: Float64Array, b: Float64Array) => {
      const ma = a.reduce((s, v) => s + v, 0) / n;
      const mb = b.reduce((s, v) => s + v, 0) / n;
      let sab = 0;
      let saa = 0;
      let sbb = 0;
      for (let i = 0; i < n; i++) {
        sab += (a[i]! - ma) * (b[i]! - mb);
        saa += (a[i]! - ma) ** 2;
        sbb += (b[i]! - mb) ** 2;
      }
      return sab / Math.sqrt(saa * sbb);
    };
    // Every pair involving an independent attribute (2..5) is uncorrelated (4000 draws: sd ≈ 0.016).
    for (let j = 2; j < 6; j++) for (let k = 0; k < j; k++) expect(Math.abs(corr(cols[j]!, cols[k]!))).toBeLessThan(0.06);
    // The exclusive pair is strongly anti-correlated: P(both) = 0, rates 0.4 each → r = −2/3.
    expect(corr(cols[0]!, cols[1]!)).toBeCloseTo(-2 / 3, 1);
  });

  it('keeps pixels in [0, 1]', () => {
    for (const difficulty of [0.25, 1]) {
      const ds = new SyntheticDataset('test', { seed: 4, length: 100, difficulty });
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < ds.length; i++) {
        for (const v of ds.get(i).x) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThanOrEqual(1);
      expect(hi - lo).toBeGreaterThan(0.5);
    }
  });

  it('matches difficulty: every cue (brown vs black hair, each attribute on vs off) has the same L2 energy', () => {
    for (const size of [16, 32, 40]) {
      for (const difficulty of [1, 3]) {
        const geom = syntheticGeometry(size, difficulty);
        const rng = new Rng(size * 10 + difficulty);
        for (let t = 0; t < 3; t++) {
          const base = sampleLatent(rng);
          const dist = (a: SyntheticLatent, b: SyntheticLatent) => {
            const x = renderSynthetic(a, geom, { noise: false, clip: false });
            const y = renderSynthetic(b, geom, { noise: false, clip: false });
            let s = 0;
            for (let k = 0; k < x.length; k++) s += (x[k]! - y[k]!) ** 2;
            return Math.sqrt(s) / base.brightness;
          };
          const energies = [dist({ ...base, hair: 1 }, { ...base, hair: 2 })];
          for (const cue of ['glasses', 'mole', 'bg_patch', 'stripe'] as const) {
            energies.push(dist({ ...base, cues: { ...base.cues, [cue]: true } }, { ...base, cues: { ...base.cues, [cue]: false } }));
          }
          for (const e of energies) expect(e).toBeCloseTo(geom.energy, 4);
        }
        expect(geom.energy).toBeCloseTo((0.02 * Math.sqrt((3 * size * size) / 16)) / difficulty, 10);
      }
    }
    const l = sampleLatent(new Rng(1));
    expect(Array.from(latentTargets({ ...l, hair: 2 }).subarray(0, 2))).toEqual([0, 1]);
    expect(Array.from(latentTargets({ ...l, hair: 0 }).subarray(0, 2))).toEqual([0, 0]);
  });

  it('batches and validates its options', () => {
    const ds = new SyntheticDataset('train', { length: 10 });
    const b = batch(ds, [3, 9], 'float32');
    expect(b.x.shape).toEqual([2, 3, 32, 32]);
    expect(b.t.shape).toEqual([2, 6]);
    expect(Array.from(b.t.data.subarray(0, 6))).toEqual(Array.from(ds.targets(3)));
    for (const bad of [{ size: 8 }, { size: 20.5 }, { seed: -1 }, { length: -3 }, { difficulty: 0 }, { difficulty: Number.NaN }]) {
      expect(() => new SyntheticDataset('train', bad)).toThrow(UserError);
    }
    expect(() => ds.get(10)).toThrow(/example index 10 is out of range for the train split of synthetic/);
  });
});

/** sha256 of the pixels and labels of examples 0…n−1, in order. */
function digest(ds: SyntheticDataset, n: number): string {
  const h = createHash('sha256');
  for (let i = 0; i < n; i++) {
    const { x, y } = ds.get(i);
    h.update(bytes(x));
    h.update(bytes(y));
  }
  return h.digest('hex');
}

/** The hair label of y: 0 none, 1 black, 2 brown. */
function hairOf(y: Float32Array): number {
  return y[0] === 1 ? 1 : y[1] === 1 ? 2 : 0;
}

describe('synthetic ambiguity (q)', () => {
  it('q = 0 (or omitted) is bit for bit the data set from before the option existed', () => {
    // Pinned from the generator before `ambiguity` was added (seed 7, examples 0…299, pixels then labels).
    const before = {
      train: '229a221d5c7cc7973cfdf2241b9a2ddc817e08980e7cf0edce557aa0cfd2c448',
      test: 'b0733ec84f2b6e8d406e4840ea35a27d4cdb87bfbdc6b719a301cdd2032f05fe',
    };
    for (const split of ['train', 'test'] as const) {
      const omitted = new SyntheticDataset(split, { seed: 7, length: 300 });
      const zero = new SyntheticDataset(split, { seed: 7, length: 300, ambiguity: 0 });
      expect(digest(omitted, 300)).toBe(before[split]);
      expect(digest(zero, 300)).toBe(before[split]);
      for (let i = 0; i < 300; i++) expect(Array.from(zero.targets(i))).toEqual(Array.from(omitted.targets(i)));
    }
  });

  it('keeps the fingerprint of q = 0 unchanged and gives every q > 0 its own', () => {
    // Pinned from before the option existed.
    expect(new SyntheticDataset('train', { seed: 7, length: 300 }).fingerprint()).toBe('15f1cc1ff631d4f4f1a4c230db2973655ee307c7d9943605edd0ead7354fc52a');
    expect(new SyntheticDataset('test', { seed: 7, length: 300, ambiguity: 0 }).fingerprint()).toBe('e217d79a78ba8eb5486e233606ffad5909b34cbf4f3213f96fb53e2c780c4692');
    expect(new SyntheticDataset('train', { ambiguity: 0 }).fingerprint()).toBe('c513561915fb0e5efa0fcbe3642ddeb73dbb124f9c3ed3745dfc31d4ea531e73');
    expect(new SyntheticDataset('test').fingerprint()).toBe('2c5a6d7c6693b74d11c097943a911673f202ac449a8d42f80d01cec34b8ae07c');
    const fps = [0, 0.1, 0.2, 0.5].map((q) => new SyntheticDataset('train', { seed: 7, length: 300, ambiguity: q }).fingerprint());
    expect(new Set(fps).size).toBe(4);
    expect(new SyntheticDataset('train', { seed: 7, length: 300, ambiguity: 0.2 }).fingerprint()).toBe(fps[2]);
  });

  it('never changes the images, only hair labels, and keeps hair exclusive', () => {
    const base = new SyntheticDataset('train', { seed: 3, length: 300 });
    for (const q of [0.2, 0.5]) {
      const amb = new SyntheticDataset('train', { seed: 3, length: 300, ambiguity: q });
      let swapped = 0;
      for (let i = 0; i < 300; i++) {
        const a = amb.get(i);
        const b = base.get(i);
        expect(bytes(a.x).equals(bytes(b.x))).toBe(true);
        // The independent labels never change; no hair stays no hair; exclusivity holds.
        expect(Array.from(a.y.subarray(2))).toEqual(Array.from(b.y.subarray(2)));
        expect(a.y[0]! + a.y[1]!).toBeLessThanOrEqual(1);
        expect(groupViolation(amb.labelNames, SYNTHETIC_GROUPS, a.y)).toBeUndefined();
        expect(hairOf(a.y) === 0).toBe(hairOf(b.y) === 0);
        expect(Array.from(amb.targets(i))).toEqual(Array.from(a.y));
        if (hairOf(a.y) !== hairOf(b.y)) swapped++;
      }
      expect(swapped).toBeGreaterThan(0);
    }
  });

  it('swaps per example, deterministically, iff u < q, so the swapped set grows with q', () => {
    const n = 1000;
    const swappedAt = (q: number, split: 'train' | 'test' = 'train') => {
      const ds = new SyntheticDataset(split, { seed: 9, length: n, ambiguity: q });
      const out = new Set<number>();
      for (let i = 0; i < n; i++) {
        const l = ds.latent(i);
        expect(hairOf(ds.targets(i))).toBe(hairLabel(l));
        if (l.swapped) {
          expect(l.hair).not.toBe(0);
          out.add(i);
        }
        // The rule, exactly: hair present and u < q.
        expect(l.swapped).toBe(l.hair !== 0 && ambiguityUniform(9, split, i) < q);
      }
      return out;
    };
    const qs = [0, 0.05, 0.1, 0.2, 0.35, 0.5];
    const sets = qs.map((q) => swappedAt(q));
    expect(sets[0]!.size).toBe(0);
    for (let k = 1; k < qs.length; k++) {
      for (const i of sets[k - 1]!) expect(sets[k]!.has(i)).toBe(true);
      expect(sets[k]!.size).toBeGreaterThan(sets[k - 1]!.size);
    }
    // Deterministic given (seed, split, index, q), and any index alone gives the same answer.
    expect([...swappedAt(0.2)]).toEqual([...sets[3]!]);
    const alone = new SyntheticDataset('train', { seed: 9, length: 10_000, ambiguity: 0.2 });
    for (const i of [999, 3, 500]) expect(alone.latent(i).swapped).toBe(sets[3]!.has(i));
    // The test split has streams of its own.
    expect([...swappedAt(0.2, 'test')]).not.toEqual([...sets[3]!]);
  });

  it('swaps at rate q among hair examples (4000 examples, within 4 standard errors)', () => {
    const q = 0.2;
    const base = new SyntheticDataset('train', { seed: 13 });
    const amb = new SyntheticDataset('train', { seed: 13, ambiguity: q });
    let hair = 0;
    let swapped = 0;
    let black = 0;
    for (let i = 0; i < amb.length; i++) {
      const h0 = hairOf(base.targets(i));
      const h = hairOf(amb.targets(i));
      if (h0 === 0) continue;
      hair++;
      if (h !== h0) swapped++;
      if (h === 1) black++;
    }
    const rate = swapped / hair;
    expect(Math.abs(rate - q)).toBeLessThan(4 * Math.sqrt((q * (1 - q)) / hair));
    // The swap is symmetric, so the two colours keep equal marginal rates.
    expect(Math.abs(black / hair - 0.5)).toBeLessThan(4 * Math.sqrt(0.25 / hair));
  });

  it('reaches the data set through openDataset, the same q for both splits', () => {
    for (const split of ['train', 'test'] as const) {
      const ds = openDataset('synthetic', split, { seed: 9, length: 50, ambiguity: 0.3 }) as SyntheticDataset;
      expect(ds.ambiguity).toBe(0.3);
      expect(ds.fingerprint()).toBe(new SyntheticDataset(split, { seed: 9, length: 50, ambiguity: 0.3 }).fingerprint());
    }
    expect((openDataset('synthetic', 'train', { length: 5 }) as SyntheticDataset).ambiguity).toBe(0);
  });

  it('refuses q outside [0, 0.5] with a one-line UserError naming the option and range', () => {
    for (const q of [-0.01, 0.51, 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      let err: unknown;
      try {
        new SyntheticDataset('train', { length: 5, ambiguity: q });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/ambiguity must be a number from 0 to 0\.5/);
      expect(msg).not.toContain('\n');
    }
    expect(() => openDataset('synthetic', 'test', { length: 5, ambiguity: 0.7 })).toThrow(/ambiguity must be a number from 0 to 0\.5, got 0\.7/);
    expect(new SyntheticDataset('train', { length: 5, ambiguity: 0.5 }).ambiguity).toBe(0.5);
  });
});

describe('SyntheticDataset keeps rendered images', () => {
  it('a second get returns the same values in a fresh array, unaffected by changes to the first', () => {
    const ds = new SyntheticDataset('train', { length: 6, size: 16 });
    const a = ds.get(3);
    const fresh = renderSynthetic(ds.latent(3), ds.geometry());
    expect(Array.from(a.x)).toEqual(Array.from(fresh));
    a.x.fill(-1);
    a.y.fill(-1);
    const b = ds.get(3);
    expect(b.x).not.toBe(a.x);
    expect(Array.from(b.x)).toEqual(Array.from(fresh));
    expect(Array.from(b.y)).toEqual(Array.from(new SyntheticDataset('train', { length: 6, size: 16 }).get(3).y));
  });
});
