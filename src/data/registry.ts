/**
 * Opening a data set from a spec string (what a `--data` flag takes):
 *
 *   fashion-mnist         the shipped Fashion-MNIST subset (data/fashion-mnist)
 *   fashion-mnist:DIR     Fashion-MNIST from an IDX directory (e.g. a full copy)
 *   mnist:DIR             MNIST digits from an IDX directory
 *   synthetic             procedural images with known attribute structure (synthetic.ts)
 *   celeba:ROOT           CelebA in its standard layout (or `celeba` with the `root` option)
 *   DIR                   a directory: with list_attr_celeba.txt → CelebA; with MNIST-format IDX
 *                         files → Fashion-MNIST names (variant option 'digits' for MNIST)
 *
 * Options not meant for the chosen data set are ignored. Unknown specs are a `UserError` listing
 * the choices. An empty split (0 examples in the files, or a `limit`/`length` of 0) is a
 * `UserError` naming the split and its files: nothing can be trained on or analysed with it.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { CELEBA_ATTR_FILE, CELEBA_PARTITION_FILE, CelebaDataset, type CelebaOptions } from './celeba.js';
import type { Dataset } from './dataset.js';
import { mnistSplitFiles } from './idx.js';
import { MnistDataset, type MnistDatasetOptions } from './mnist.js';
import { SyntheticDataset, type SyntheticOptions } from './synthetic.js';

export interface OpenDatasetOptions {
  /** First N examples of the split (every data set except synthetic, which takes `length`). */
  limit?: number;
  /** MNIST-like: 'class' or 'onehot' (10 binary labels); default from `loss`, else 'class'. */
  labels?: MnistDatasetOptions['labels'];
  /**
   * The loss the data will be trained with, as a hint: for MNIST-like sets without `labels`,
   * 'bce' presents the one-hot labels as binary ('onehot'), anything else as a class ('class').
   */
  loss?: string;
  /** MNIST-like: 'fashion' (default) or 'digits'. */
  variant?: MnistDatasetOptions['variant'];
  /** CelebA root, for the bare spec `celeba`. */
  root?: string;
  /** Image side: CelebA output size (default 64) or synthetic size (default 32). */
  size?: number;
  /** CelebA: subset of attribute names, in order. */
  attributes?: CelebaOptions['attributes'];
  /** CelebA: where the validation partition goes (default: unused). */
  validAs?: CelebaOptions['validAs'];
  /** CelebA: declared exclusive groups. */
  groups?: CelebaOptions['groups'];
  /** CelebA: decoded-image cache size. */
  cacheImages?: number;
  /** Synthetic: seed, examples in the split, difficulty, hair-label ambiguity q (same for both splits). */
  seed?: SyntheticOptions['seed'];
  length?: SyntheticOptions['length'];
  difficulty?: SyntheticOptions['difficulty'];
  ambiguity?: SyntheticOptions['ambiguity'];
}

export const DATASET_CHOICES = ['fashion-mnist', 'fashion-mnist:DIR', 'mnist:DIR', 'synthetic', 'celeba:ROOT', 'DIR (IDX files or a CelebA root)'] as const;

const IDX_BASES = ['train-images-idx3-ubyte', 't10k-images-idx3-ubyte'];

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function hasIdx(dir: string): boolean {
  return IDX_BASES.some((b) => existsSync(join(dir, b)) || existsSync(join(dir, `${b}.gz`)));
}

function choices(): string {
  return DATASET_CHOICES.join(', ');
}

function celeba(root: string, split: 'train' | 'test', o: OpenDatasetOptions): CelebaDataset {
  return new CelebaDataset(root, split, {
    size: o.size,
    limit: o.limit,
    attributes: o.attributes,
    validAs: o.validAs,
    groups: o.groups,
    cacheImages: o.cacheImages,
  });
}

function mnist(dir: string | undefined, variant: 'fashion' | 'digits', split: 'train' | 'test', o: OpenDatasetOptions): MnistDataset {
  const labels = o.labels ?? (o.loss === 'bce' ? 'onehot' : 'class');
  return new MnistDataset(split, { dir, variant, labels, limit: o.limit });
}

/** Refuse an empty split with a one-line error naming the split, its files and why it is empty. */
function nonEmpty<D extends Dataset>(ds: D, opts: OpenDatasetOptions): D {
  if (ds.length > 0) return ds;
  const part = ds.split;
  if (ds instanceof SyntheticDataset) {
    throw new UserError(`synthetic: the ${part} split is empty (length 0); give a length of at least 1`);
  }
  let files: string;
  let why: string;
  if (ds instanceof MnistDataset) {
    files = mnistSplitFiles(ds.dir, ds.split).join(', ');
    why = opts.limit === 0 ? 'limit 0 keeps no example' : 'the IDX files hold 0 examples';
  } else if (ds instanceof CelebaDataset) {
    files = [join(ds.root, CELEBA_ATTR_FILE), join(ds.root, CELEBA_PARTITION_FILE)].join(', ');
    why = opts.limit === 0 ? 'limit 0 keeps no example' : `no listed image is in partition ${ds.split === 'train' ? 0 : 2}`;
  } else {
    files = ds.name;
    why = 'it has 0 examples';
  }
  throw new UserError(`${files}: the ${part} split of ${ds.name} is empty (${why}); a split needs at least one example`);
}

/** Open split `split` of the data set named by `spec` (see the file header for the forms). */
export function openDataset(spec: string, split: 'train' | 'test', opts: OpenDatasetOptions = {}): Dataset {
  return nonEmpty(openAny(spec, split, opts), opts);
}

function openAny(spec: string, split: 'train' | 'test', opts: OpenDatasetOptions): Dataset {
  if (split !== 'train' && split !== 'test') throw new UserError(`unknown split '${String(split)}' (choices: train, test)`);
  if (spec === '') throw new UserError(`empty data set name (choices: ${choices()})`);
  const colon = spec.indexOf(':');
  const head = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? undefined : spec.slice(colon + 1);
  switch (head) {
    case 'fashion-mnist':
      if (arg === '') throw new UserError(`fashion-mnist: give a directory after the colon, or use 'fashion-mnist' for the shipped subset`);
      return mnist(arg, 'fashion', split, opts);
    case 'mnist':
      if (!arg) throw new UserError(`mnist needs a directory of IDX files: 'mnist:DIR' (only a Fashion-MNIST subset is shipped)`);
      return mnist(arg, 'digits', split, opts);
    case 'synthetic':
      if (arg !== undefined) throw new UserError(`synthetic takes no argument after a colon; set seed, length, size, difficulty, ambiguity as options`);
      return new SyntheticDataset(split, { seed: opts.seed, length: opts.length, size: opts.size, difficulty: opts.difficulty, ambiguity: opts.ambiguity });
    case 'celeba': {
      const root = arg || opts.root;
      if (!root) throw new UserError(`celeba needs its root directory: 'celeba:ROOT' (holding img_align_celeba/, ${CELEBA_ATTR_FILE}, list_eval_partition.txt)`);
      return celeba(root, split, opts);
    }
  }
  if (isDir(spec)) {
    if (existsSync(join(spec, CELEBA_ATTR_FILE))) return celeba(spec, split, opts);
    if (hasIdx(spec)) return mnist(spec, opts.variant ?? 'fashion', split, opts);
    throw new UserError(`${spec}: directory holds neither MNIST-format IDX files (${IDX_BASES.join(', ')}, optionally .gz) nor CelebA (${CELEBA_ATTR_FILE})`);
  }
  if (existsSync(spec)) throw new UserError(`${spec}: is a file; a data set is a name or a directory (choices: ${choices()})`);
  if (/[/\\]/.test(spec) || spec.startsWith('.')) throw new UserError(`${spec}: data directory not found`);
  throw new UserError(`unknown data set '${spec}' (choices: ${choices()})`);
}
