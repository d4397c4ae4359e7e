import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../errors.js';
import { batch, describeDataset } from './dataset.js';
import { batchOf } from './examples.js';
import { FASHION_CLASSES, loadFashion } from './fashion.js';
import { encodeIdx } from './idx.js';
import { DIGIT_CLASSES, MnistDataset, openMnist } from './mnist.js';

const tmp = mkdtempSync(join(tmpdir(), 'lb-mnist-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny MNIST-format directory (test split): n images of 2×3, labels 9 − i % 10. */
function digitsDir(n: number): string {
  const d = join(tmp, `digits${n}`);
  mkdirSync(d, { recursive: true });
  const px = Uint8Array.from({ length: n * 6 }, (_, i) => (i * 41) % 256);
  writeFileSync(join(d, 't10k-images-idx3-ubyte'), encodeIdx({ type: 'uint8', dims: [n, 2, 3], data: px }));
  writeFileSync(join(d, 't10k-labels-idx1-ubyte'), encodeIdx({ type: 'uint8', dims: [n], data: Uint8Array.from({ length: n }, (_, i) => 9 - (i % 10)) }));
  return d;
}

describe('MNIST-format data sets', () => {
  it('presents the shipped Fashion-MNIST subset as class labels, like loadFashion/batchOf', () => {
    const ds = openMnist('test', { limit: 50 });
    expect(ds.name).toBe('fashion-mnist');
    expect(ds.length).toBe(50);
    expect(ds.inputShape).toEqual([1, 28, 28]);
    expect(ds.labelNames).toEqual([...FASHION_CLASSES]);
    expect(ds.labelKind).toBe('class');
    expect(ds.groups).toEqual([{ name: 'class', members: [...FASHION_CLASSES], allowNone: false }]);
    const old = batchOf(loadFashion(undefined, 'test', { limit: 50 }), [3, 7, 49], 'float64');
    const b = batch(ds, [3, 7, 49], 'float64');
    expect(b.x.shape).toEqual([3, 1, 28, 28]);
    expect(b.t.shape).toEqual([3, 10]);
    expect(Array.from(b.x.data)).toEqual(Array.from(old.x.data));
    expect(Array.from(b.t.data)).toEqual(Array.from(old.t.data));
    const { x, y } = ds.get(3);
    expect(y.reduce((a, v) => a + v, 0)).toBe(1);
    expect(y[ds.label(3)]).toBe(1);
    expect(Math.min(...x)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...x)).toBeLessThanOrEqual(1);
    // get returns copies: writing to one does not change the data set.
    x[0] = 42;
    expect(ds.get(3).x[0]).not.toBe(42);
  });

  it("'onehot' gives the same vectors as 10 binary labels", () => {
    const cls = openMnist('train', { limit: 30 });
    const hot = openMnist('train', { limit: 30, labels: 'onehot' });
    expect(hot.labelKind).toBe('binary');
    expect(hot.labelNames).toEqual(cls.labelNames);
    for (let i = 0; i < 30; i++) expect(Array.from(hot.get(i).y)).toEqual(Array.from(cls.get(i).y));
    expect(hot.fingerprint()).not.toBe(cls.fingerprint());
    const s = describeDataset(cls);
    expect(Object.values(s.positiveRate).reduce((a, v) => a + v, 0)).toBeCloseTo(1, 12);
  });

  it('reads MNIST digits with labels 0…9 from a directory', () => {
    const dir = digitsDir(12);
    const ds = new MnistDataset('test', { dir, variant: 'digits' });
    expect(ds.name).toBe('mnist');
    expect(ds.labelNames).toEqual([...DIGIT_CLASSES]);
    expect(ds.inputShape).toEqual([1, 2, 3]);
    expect(ds.length).toBe(12);
    expect(ds.label(0)).toBe(9);
    expect(Array.from(ds.get(1).y)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    expect(Array.from(ds.get(1).x)).toEqual([6, 7, 8, 9, 10, 11].map((k) => ((k * 41) % 256) / 255).map(Math.fround));
    expect(() => new MnistDataset('test', { variant: 'digits' })).toThrow(/need a data directory/);
    expect(() => new MnistDataset('train', { dir, variant: 'digits' })).toThrow(UserError);
  });

  it('fingerprints content and options, stably', () => {
    const a = openMnist('test', { limit: 20 });
    expect(a.fingerprint()).toMatch(/^[0-9a-f]{64}$/);
    expect(openMnist('test', { limit: 20 }).fingerprint()).toBe(a.fingerprint());
    expect(openMnist('test', { limit: 21 }).fingerprint()).not.toBe(a.fingerprint());
    expect(openMnist('train', { limit: 20 }).fingerprint()).not.toBe(a.fingerprint());
  });

  it('rejects out-of-range indices with a UserError', () => {
    const ds = openMnist('test', { limit: 5 });
    expect(() => ds.get(5)).toThrow(/example index 5 is out of range for the test split of fashion-mnist: it has 5 examples \(0…4\)/);
    expect(() => ds.get(-1)).toThrow(UserError);
    expect(() => batch(ds, [0, 1.5], 'float32')).toThrow(UserError);
  });
});
