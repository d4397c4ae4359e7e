import { describe, expect, it } from 'vitest';
import { batch, checkGroups, describeDataset, groupViolation, hashParts, targetsOf, type Dataset } from './dataset.js';
import { userError } from '../../test/expect-user-error.js';

/** A tiny in-memory data set: 2×1×2 pixels, labels a, b, c. */
function toy(n: number, withTargets: boolean): Dataset {
  const ys = [
    [1, 0, 1],
    [0, 1, 1],
    [0, 0, 1],
    [1, 0, 0],
  ];
  const ds: Dataset = {
    name: 'toy',
    split: 'train',
    length: n,
    inputShape: [2, 1, 2],
    labelNames: ['a', 'b', 'c'],
    labelKind: 'binary',
    groups: [{ name: 'ab', members: ['a', 'b'], allowNone: true }],
    get: (i) => ({ x: Float32Array.from([i, i + 0.5, 0.25, 1].map((v) => v / 4)), y: Float32Array.from(ys[i % 4]!) }),
    fingerprint: () => 'toy',
  };
  return withTargets ? { ...ds, targets: (i) => Float32Array.from(ys[i % 4]!) } : ds;
}


describe('Dataset helpers', () => {
  it('batch: NCHW pixels and targets in the dtype, in index order', () => {
    const ds = toy(4, false);
    for (const dtype of ['float32', 'float64'] as const) {
      const b = batch(ds, [2, 0, 2], dtype);
      expect(b.x.dtype).toBe(dtype);
      expect(b.t.dtype).toBe(dtype);
      expect(b.x.shape).toEqual([3, 2, 1, 2]);
      expect(b.t.shape).toEqual([3, 3]);
      expect(b.x.toArray()).toEqual([2, 2.5, 0.25, 1, 0, 0.5, 0.25, 1, 2, 2.5, 0.25, 1].map((v) => v / 4));
      expect(b.t.toArray()).toEqual([0, 0, 1, 1, 0, 1, 0, 0, 1]);
    }
    expect(batch(ds, [], 'float32').x.shape).toEqual([0, 2, 1, 2]);
  });

  it('batch: a one-line UserError for an index out of range', () => {
    const ds = toy(4, false);
    expect(userError(() => batch(ds, [0, 4], 'float64'))).toBe('example index 4 is out of range for the train split of toy: it has 4 examples (0…3)');
    expect(userError(() => batch(ds, [-1], 'float64'))).toMatch(/example index -1 is out of range/);
    expect(userError(() => batch(ds, [0.5], 'float64'))).toMatch(/example index 0.5 is out of range/);
    expect(userError(() => batch(toy(0, false), [0], 'float64'))).toMatch(/it is empty/);
  });

  it('describeDataset: shape, labels, positive rates, groups (with or without targets())', () => {
    for (const withTargets of [false, true]) {
      const s = describeDataset(toy(4, withTargets));
      expect(s).toEqual({
        name: 'toy',
        split: 'train',
        length: 4,
        inputShape: [2, 1, 2],
        labelKind: 'binary',
        labelNames: ['a', 'b', 'c'],
        positiveRate: { a: 0.5, b: 0.25, c: 0.75 },
        groups: [{ name: 'ab', members: ['a', 'b'], allowNone: true }],
      });
      expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    }
    expect(describeDataset(toy(0, true)).positiveRate).toEqual({ a: 0, b: 0, c: 0 });
    expect(Array.from(targetsOf(toy(4, false), 1))).toEqual([0, 1, 1]);
  });

  it('checkGroups and groupViolation', () => {
    const names = ['a', 'b', 'c'];
    expect(() => checkGroups(names, [{ name: 'g', members: ['a', 'b'], allowNone: false }], 'x')).not.toThrow();
    expect(userError(() => checkGroups(names, [{ name: 'g', members: ['a', 'z'], allowNone: true }], 'x'))).toMatch(/'z', which is not one of the labels/);
    expect(
      userError(() =>
        checkGroups(
          names,
          [
            { name: 'g', members: ['a', 'b'], allowNone: true },
            { name: 'h', members: ['b', 'c'], allowNone: true },
          ],
          'x',
        ),
      ),
    ).toMatch(/label 'b' is in two groups/);
    expect(userError(() => checkGroups(names, [{ name: 'g', members: [], allowNone: true }], 'x'))).toMatch(/has no members/);
    const g = [{ name: 'g', members: ['a', 'b'], allowNone: false }];
    expect(groupViolation(names, g, [1, 0, 1])).toBeUndefined();
    expect(groupViolation(names, g, [1, 1, 0])).toMatch(/2 labels of group 'g' are set \(a, b\)/);
    expect(groupViolation(names, g, [0, 0, 1])).toMatch(/no label of group 'g' is set/);
    expect(groupViolation(names, [{ ...g[0]!, allowNone: true }], [0, 0, 1])).toBeUndefined();
  });

  it('hashParts is unambiguous about boundaries and kinds', () => {
    expect(hashParts(['ab', 'c'])).not.toBe(hashParts(['a', 'bc']));
    expect(hashParts(['a'])).not.toBe(hashParts([Uint8Array.from([97])]));
    expect(hashParts([Float32Array.from([1, 2])])).toBe(hashParts([Float32Array.from([1, 2])]));
  });
});
