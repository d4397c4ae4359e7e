/**
 * Fashion-MNIST (Zalando Research, MIT license): 28×28 grey-scale images of clothing in 10 classes.
 * The package ships a subset in data/fashion-mnist (first 5000 training and first 1000 test
 * examples; see its README.md and scripts/make-fashion-subset.mjs); point `dir` at a full copy
 * (same standard file names, gzipped or not) to use all of it.
 */
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../paths.js';
import { loadMnistLike, type MnistLike } from './idx.js';

export const FASHION_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** The shipped Fashion-MNIST subset. */
export const DEFAULT_DATA_DIR = join(PACKAGE_ROOT, 'data', 'fashion-mnist');

/** Load a Fashion-MNIST split; `dir` defaults to the shipped subset (pass undefined for it). */
export function loadFashion(
  dir: string | undefined = DEFAULT_DATA_DIR,
  split: 'train' | 'test',
  opts: { limit?: number } = {},
): MnistLike {
  return loadMnistLike(dir ?? DEFAULT_DATA_DIR, split, opts);
}
