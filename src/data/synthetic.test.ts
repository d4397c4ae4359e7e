import { describe, expect, it } from 'vitest';
import { Rng } from '../engine/random.js';
import { UserError } from '../errors.js';
import { batch, describeDataset, groupViolation } from './dataset.js';
import {
  SYNTHETIC_GROUPS,
  SYNTHETIC_LABELS,
  SYNTHETIC_RATES,
  SyntheticDataset,
  exampleSeed,
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
