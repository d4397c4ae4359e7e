/**
 * The data-set interface shared by training and bracket studies: indexed examples of C×H×W pixels
 * in [0, 1] with K targets in {0, 1}, either one class out of K (`labelKind: 'class'`) or K binary
 * attributes (`'binary'`), optionally with declared groups of mutually exclusive labels.
 *
 * Implementations: mnist.ts (MNIST / Fashion-MNIST), celeba.ts (CelebA), synthetic.ts (procedural
 * images with known structure); registry.ts opens one from a spec string.
 */
import { createHash } from 'node:crypto';
import { allocBuf, type DType } from '../engine/dtype.js';
import { Tensor } from '../engine/tensor.js';
import { UserError } from '../errors.js';

/**
 * A group of mutually exclusive labels: in every example at most one member is 1 (exactly one when
 * `allowNone` is false). A grouped softmax loss treats each group as one categorical variable with
 * `members.length` outcomes (plus "none" when `allowNone`).
 */
export interface LabelGroup {
  readonly name: string;
  /** Label names, each one of the data set's `labelNames`. */
  readonly members: readonly string[];
  /** Whether an example may have none of the members set. */
  readonly allowNone: boolean;
}

export interface Dataset {
  readonly name: string; // e.g. 'fashion-mnist', 'synthetic', 'celeba'
  readonly split: 'train' | 'test';
  readonly length: number;
  readonly inputShape: readonly [number, number, number]; // [C, H, W]
  readonly labelNames: readonly string[]; // K outputs
  /** 'class': exactly one label is 1 (softmax-able); 'binary': K independent 0/1 attributes. */
  readonly labelKind: 'class' | 'binary';
  /**
   * Groups of mutually exclusive labels that hold in every example (disjoint; labels outside every
   * group are unconstrained). Absent or empty: no declared structure.
   */
  readonly groups?: readonly LabelGroup[];
  /** Example i: pixels C·H·W in [0,1] (float32, NCHW order) and K targets in {0,1}. */
  get(i: number): { x: Float32Array; y: Float32Array };
  /** The K targets of example i alone, without producing its pixels (cheap; optional). */
  targets?(i: number): Float32Array;
  /** A stable hash of the data's content and the options that define it (for run.json). */
  fingerprint(): string;
}

export interface DatasetBatch {
  /** [N, C, H, W] pixels in the requested dtype. */
  readonly x: Tensor;
  /** [N, K] targets (one-hot for 'class', 0/1 attributes for 'binary') in the requested dtype. */
  readonly t: Tensor;
}

/** Throw a `UserError` unless `i` is an integer index into `ds`. */
export function checkIndex(ds: Pick<Dataset, 'length' | 'name' | 'split'>, i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= ds.length) {
    const range = ds.length === 0 ? 'it is empty' : `it has ${ds.length} examples (0…${ds.length - 1})`;
    throw new UserError(`example index ${i} is out of range for the ${ds.split} split of ${ds.name}: ${range}`);
  }
}

/** Examples `indices` of `ds` as tensors x [N,C,H,W] and t [N,K] of `dtype`. */
export function batch(ds: Dataset, indices: readonly number[], dtype: DType): DatasetBatch {
  const [c, h, w] = ds.inputShape;
  const px = c * h * w;
  const k = ds.labelNames.length;
  for (const i of indices) checkIndex(ds, i);
  const x = allocBuf(dtype, indices.length * px);
  const t = allocBuf(dtype, indices.length * k);
  indices.forEach((i, n) => {
    const ex = ds.get(i);
    if (ex.x.length !== px || ex.y.length !== k) {
      throw new Error(`${ds.name}: example ${i} has ${ex.x.length} pixels and ${ex.y.length} targets, expected ${px} and ${k}`);
    }
    x.set(ex.x, n * px);
    t.set(ex.y, n * k);
  });
  return { x: new Tensor(x, [indices.length, c, h, w]), t: new Tensor(t, [indices.length, k]) };
}

/** The targets of example i: `targets(i)` when the data set has it, else `get(i).y`. */
export function targetsOf(ds: Dataset, i: number): Float32Array {
  return ds.targets ? ds.targets(i) : ds.get(i).y;
}

export interface DatasetSummary {
  name: string;
  split: 'train' | 'test';
  length: number;
  inputShape: [number, number, number];
  labelKind: 'class' | 'binary';
  labelNames: string[];
  /** Fraction of examples with each label equal to 1, keyed by label name. */
  positiveRate: Record<string, number>;
  groups: { name: string; members: string[]; allowNone: boolean }[];
}

/** A short, JSON-able summary of a data set (reads every example's targets, not its pixels where the set allows). */
export function describeDataset(ds: Dataset): DatasetSummary {
  const k = ds.labelNames.length;
  const counts = new Float64Array(k);
  for (let i = 0; i < ds.length; i++) {
    const y = targetsOf(ds, i);
    for (let j = 0; j < k; j++) counts[j]! += y[j]!;
  }
  const positiveRate: Record<string, number> = {};
  ds.labelNames.forEach((name, j) => {
    positiveRate[name] = ds.length === 0 ? 0 : counts[j]! / ds.length;
  });
  return {
    name: ds.name,
    split: ds.split,
    length: ds.length,
    inputShape: [...ds.inputShape],
    labelKind: ds.labelKind,
    labelNames: [...ds.labelNames],
    positiveRate,
    groups: (ds.groups ?? []).map((g) => ({ name: g.name, members: [...g.members], allowNone: g.allowNone })),
  };
}

/**
 * Check declared groups against label names: every member a label, each label in at most one
 * group, no empty group, unique group names. Throws a `UserError` (groups may come from the user).
 */
export function checkGroups(labelNames: readonly string[], groups: readonly LabelGroup[], source: string): void {
  const labels = new Set(labelNames);
  const seen = new Map<string, string>();
  const names = new Set<string>();
  for (const g of groups) {
    if (names.has(g.name)) throw new UserError(`${source}: two label groups are named '${g.name}'`);
    names.add(g.name);
    if (g.members.length === 0) throw new UserError(`${source}: label group '${g.name}' has no members`);
    for (const m of g.members) {
      if (!labels.has(m)) {
        throw new UserError(`${source}: label group '${g.name}' names '${m}', which is not one of the labels (${labelNames.join(', ')})`);
      }
      const other = seen.get(m);
      if (other !== undefined) {
        throw new UserError(`${source}: label '${m}' is in two groups ('${other}' and '${g.name}'); groups must be disjoint`);
      }
      seen.set(m, g.name);
    }
  }
}

/**
 * The first example violating a group (two members set, or none where `allowNone` is false), or
 * undefined when `y` satisfies every group.
 */
export function groupViolation(labelNames: readonly string[], groups: readonly LabelGroup[], y: ArrayLike<number>): string | undefined {
  for (const g of groups) {
    let on = 0;
    for (const m of g.members) on += y[labelNames.indexOf(m)] === 1 ? 1 : 0;
    if (on > 1) return `${on} labels of group '${g.name}' are set (${g.members.filter((m) => y[labelNames.indexOf(m)] === 1).join(', ')})`;
    if (on === 0 && !g.allowNone) return `no label of group '${g.name}' is set`;
  }
  return undefined;
}

/** A hex SHA-256 over a sequence of strings and byte arrays, each length-prefixed (unambiguous). */
export function hashParts(parts: readonly (string | ArrayBufferView)[]): string {
  const h = createHash('sha256');
  const len = Buffer.alloc(8);
  for (const p of parts) {
    const bytes = typeof p === 'string' ? Buffer.from(p, 'utf8') : new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
    len.writeBigUInt64LE(BigInt(bytes.byteLength));
    h.update(typeof p === 'string' ? 's' : 'b');
    h.update(len);
    h.update(bytes);
  }
  return h.digest('hex');
}
