/**
 * MNIST-format data sets (Fashion-MNIST, MNIST digits) as a `Dataset`: 1×rows×cols grey-scale
 * pixels in [0, 1] and 10 targets, read from an IDX directory by `loadMnistLike` (standard file
 * names, gzipped or not). Fashion-MNIST defaults to the shipped subset in data/fashion-mnist.
 *
 * `labels: 'class'` (default) presents the label as one class of 10 (`labelKind: 'class'`, for a
 * softmax head); `labels: 'onehot'` presents the very same one-hot vectors as 10 binary labels
 * (`labelKind: 'binary'`, for the `bce` head). Both declare the one group of all 10 labels
 * (exactly one is set in every example): that is a fact about the data, whichever loss is used.
 */
import { UserError } from '../errors.js';
import { checkIndex, hashParts, type Dataset, type LabelGroup } from './dataset.js';
import { DEFAULT_DATA_DIR, FASHION_CLASSES } from './fashion.js';
import { loadMnistLike, type MnistLike } from './idx.js';

export const DIGIT_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;

export interface MnistDatasetOptions {
  /** IDX directory; default: the shipped Fashion-MNIST subset (required for variant 'digits'). */
  dir?: string;
  /** 'fashion' (default): Fashion-MNIST class names; 'digits': MNIST, labels '0'…'9'. */
  variant?: 'fashion' | 'digits';
  /** 'class' (default): one class of 10; 'onehot': the one-hot vector as 10 binary labels. */
  labels?: 'class' | 'onehot';
  /** Keep only the first `limit` examples of the split. */
  limit?: number;
}

export class MnistDataset implements Dataset {
  readonly name: string;
  readonly split: 'train' | 'test';
  readonly length: number;
  readonly inputShape: readonly [number, number, number];
  readonly labelNames: readonly string[];
  readonly labelKind: 'class' | 'binary';
  readonly groups: readonly LabelGroup[];
  /** The directory the files were read from. */
  readonly dir: string;
  readonly variant: 'fashion' | 'digits';
  private readonly data: MnistLike;
  private readonly limit: number | undefined;
  private fp: string | undefined;

  constructor(split: 'train' | 'test', opts: MnistDatasetOptions = {}) {
    const variant = opts.variant ?? 'fashion';
    if (variant !== 'fashion' && variant !== 'digits') throw new UserError(`unknown MNIST variant '${String(variant)}' (choices: fashion, digits)`);
    const labels = opts.labels ?? 'class';
    if (labels !== 'class' && labels !== 'onehot') throw new UserError(`unknown label mode '${String(labels)}' (choices: class, onehot)`);
    if (variant === 'digits' && opts.dir === undefined) {
      throw new UserError('MNIST digits need a data directory (only a Fashion-MNIST subset is shipped)');
    }
    this.dir = opts.dir ?? DEFAULT_DATA_DIR;
    this.variant = variant;
    this.limit = opts.limit;
    this.data = loadMnistLike(this.dir, split, { limit: opts.limit, numClasses: 10 });
    this.name = variant === 'fashion' ? 'fashion-mnist' : 'mnist';
    this.split = split;
    this.length = this.data.n;
    this.inputShape = [1, this.data.rows, this.data.cols];
    this.labelNames = variant === 'fashion' ? [...FASHION_CLASSES] : [...DIGIT_CLASSES];
    this.labelKind = labels === 'class' ? 'class' : 'binary';
    this.groups = [{ name: 'class', members: this.labelNames, allowNone: false }];
  }

  /** The class index (0…9) of example i. */
  label(i: number): number {
    checkIndex(this, i);
    return this.data.labels[i]!;
  }

  get(i: number): { x: Float32Array; y: Float32Array } {
    checkIndex(this, i);
    const px = this.data.rows * this.data.cols;
    return { x: this.data.images.slice(i * px, (i + 1) * px), y: this.targets(i) };
  }

  targets(i: number): Float32Array {
    const y = new Float32Array(10);
    y[this.label(i)] = 1;
    return y;
  }

  fingerprint(): string {
    this.fp ??= hashParts([
      'lie-bracket/mnist-dataset/v1',
      JSON.stringify({ name: this.name, split: this.split, labelKind: this.labelKind, limit: this.limit ?? null, shape: this.inputShape }),
      this.data.images,
      this.data.labels,
    ]);
    return this.fp;
  }
}

/** Open an MNIST-format split as a `Dataset`. */
export function openMnist(split: 'train' | 'test', opts: MnistDatasetOptions = {}): MnistDataset {
  return new MnistDataset(split, opts);
}
