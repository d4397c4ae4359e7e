/**
 * Fashion-MNIST (Zalando Research, MIT license): 28×28 grey-scale images of clothing in 10 classes.
 * The package ships a subset in data/fashion-mnist (first 5000 training and first 1000 test
 * examples; see its README.md and scripts/make-fashion-subset.mjs); point `dir` at a full copy
 * (same standard file names, gzipped or not) to use all of it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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

export const PACKAGE_NAME = 'lie-bracket';

/**
 * The package root: the nearest ancestor of this module holding this package's package.json.
 * Works from src/data under vitest/tsx and from dist/data after a build (both two levels down).
 */
function findPackageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  let dir = here;
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME) return dir;
      } catch {
        // not ours (or unreadable): keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) return resolve(here, '..', '..');
    dir = up;
  }
}

export const PACKAGE_ROOT = findPackageRoot();

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
