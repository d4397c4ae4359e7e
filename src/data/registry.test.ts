import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CelebaDataset } from './celeba.js';
import { DEFAULT_DATA_DIR } from './fashion.js';
import { encodeIdx } from './idx.js';
import { MnistDataset } from './mnist.js';
import { openDataset } from './registry.js';
import { SyntheticDataset } from './synthetic.js';
import { userError } from '../../test/expect-user-error.js';

const tmp = mkdtempSync(join(tmpdir(), 'lb-registry-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


function idxDir(name: string): string {
  const d = join(tmp, name);
  mkdirSync(d);
  writeFileSync(join(d, 'train-images-idx3-ubyte'), encodeIdx({ type: 'uint8', dims: [4, 2, 2], data: new Uint8Array(16) }));
  writeFileSync(join(d, 'train-labels-idx1-ubyte'), encodeIdx({ type: 'uint8', dims: [4], data: Uint8Array.from([0, 1, 2, 3]) }));
  return d;
}

function celebaDir(name: string): string {
  const d = join(tmp, name);
  mkdirSync(join(d, 'img_align_celeba'), { recursive: true });
  writeFileSync(join(d, 'list_attr_celeba.txt'), '2\nSmiling Young \n000001.jpg  1 -1\n000002.jpg -1  1\n');
  writeFileSync(join(d, 'list_eval_partition.txt'), '000001.jpg 0\n000002.jpg 2\n');
  return d;
}

describe('openDataset', () => {
  it('opens the shipped Fashion-MNIST subset, with the loss choosing the label mode', () => {
    const ds = openDataset('fashion-mnist', 'test', { limit: 10 });
    expect(ds).toBeInstanceOf(MnistDataset);
    expect(ds.name).toBe('fashion-mnist');
    expect(ds.length).toBe(10);
    expect(ds.labelKind).toBe('class');
    expect(openDataset('fashion-mnist', 'test', { limit: 10, loss: 'bce' }).labelKind).toBe('binary');
    expect(openDataset('fashion-mnist', 'test', { limit: 10, loss: 'ce' }).labelKind).toBe('class');
    expect(openDataset('fashion-mnist', 'test', { limit: 10, loss: 'bce', labels: 'class' }).labelKind).toBe('class');
    expect(openDataset(`fashion-mnist:${DEFAULT_DATA_DIR}`, 'test', { limit: 10 }).fingerprint()).toBe(ds.fingerprint());
  });

  it('opens synthetic data with its options', () => {
    const ds = openDataset('synthetic', 'train', { seed: 3, length: 7, size: 24, difficulty: 2 });
    expect(ds).toBeInstanceOf(SyntheticDataset);
    expect(ds.length).toBe(7);
    expect(ds.inputShape).toEqual([3, 24, 24]);
    expect((ds as SyntheticDataset).difficulty).toBe(2);
    expect(openDataset('synthetic', 'test').length).toBe(1000);
    expect(userError(() => openDataset('synthetic:3', 'train'))).toMatch(/synthetic takes no argument/);
  });

  it('opens CelebA from celeba:ROOT, the root option, or a bare directory', () => {
    const d = celebaDir('celeba');
    for (const ds of [openDataset(`celeba:${d}`, 'train'), openDataset('celeba', 'train', { root: d }), openDataset(d, 'train', { size: 8 })]) {
      expect(ds).toBeInstanceOf(CelebaDataset);
      expect(ds.labelNames).toEqual(['Smiling', 'Young']);
      expect(ds.length).toBe(1);
      expect(Array.from(ds.targets!(0))).toEqual([1, 0]);
    }
    expect(openDataset(d, 'test', { attributes: ['Young'] }).labelNames).toEqual(['Young']);
    expect(userError(() => openDataset('celeba', 'train'))).toMatch(/celeba needs its root directory: 'celeba:ROOT'/);
    expect(userError(() => openDataset(`celeba:${join(tmp, 'missing')}`, 'train'))).toMatch(/missing: CelebA root directory not found/);
  });

  it('opens a directory of IDX files as MNIST-like, and mnist:DIR as digits', () => {
    const d = idxDir('idx');
    const fashion = openDataset(d, 'train');
    expect(fashion.name).toBe('fashion-mnist');
    expect(fashion.inputShape).toEqual([1, 2, 2]);
    const digits = openDataset(`mnist:${d}`, 'train');
    expect(digits.name).toBe('mnist');
    expect(digits.labelNames[3]).toBe('3');
    expect(openDataset(d, 'train', { variant: 'digits' }).name).toBe('mnist');
    expect(userError(() => openDataset(d, 'test'))).toMatch(/t10k-images-idx3-ubyte\(\.gz\): file not found/);
    expect(userError(() => openDataset('mnist', 'train'))).toMatch(/mnist needs a directory/);
  });

  it('explains unknown specs, empty or non-data directories, and missing paths', () => {
    const msg = userError(() => openDataset('imagenet', 'train'));
    expect(msg).toBe(
      "unknown data set 'imagenet' (choices: fashion-mnist, fashion-mnist:DIR, mnist:DIR, synthetic, celeba:ROOT, DIR (IDX files or a CelebA root))",
    );
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    expect(userError(() => openDataset(empty, 'train'))).toMatch(/empty: directory holds neither MNIST-format IDX files/);
    expect(userError(() => openDataset(join(tmp, 'nowhere'), 'train'))).toMatch(/nowhere: data directory not found/);
    const file = join(tmp, 'file.txt');
    writeFileSync(file, 'x');
    expect(userError(() => openDataset(file, 'train'))).toMatch(/file\.txt: is a file/);
    expect(userError(() => openDataset('', 'train'))).toMatch(/empty data set name/);
    expect(userError(() => openDataset('synthetic', 'valid' as 'train'))).toMatch(/unknown split 'valid'/);
  });
});
