import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_DATA_DIR, FASHION_CLASSES, loadFashion } from './fashion.js';
import { encodeIdx, loadMnistLike, parseIdx, readIdx, type IdxFile } from './idx.js';
import { userError } from '../../test/expect-user-error.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-idx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


/** A tiny MNIST-like directory: n images of rows×cols, labels i % 10. */
function makeMnistDir(name: string, opts: { n: number; rows?: number; cols?: number; gz: boolean; split?: 'train' | 't10k'; labels?: number[] }) {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const { n, rows = 3, cols = 2, gz, split = 'train' } = opts;
  const pixels = Uint8Array.from({ length: n * rows * cols }, (_, i) => (i * 37) % 256);
  const labels = Uint8Array.from(opts.labels ?? Array.from({ length: n }, (_, i) => i % 10));
  const write = (base: string, f: IdxFile) => {
    const raw = encodeIdx(f);
    writeFileSync(join(d, gz ? `${base}.gz` : base), gz ? gzipSync(raw) : raw);
  };
  write(`${split}-images-idx3-ubyte`, { type: 'uint8', dims: [n, rows, cols], data: pixels });
  write(`${split}-labels-idx1-ubyte`, { type: 'uint8', dims: [labels.length], data: labels });
  return { d, pixels, labels };
}

describe('IDX', () => {
  it('parses hand-built bytes (ubyte, big-endian dims)', () => {
    const bytes = Uint8Array.from([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255]);
    const f = parseIdx(bytes, 'x');
    expect(f.type).toBe('uint8');
    expect(f.dims).toEqual([2, 3]);
    expect(Array.from(f.data)).toEqual([1, 2, 3, 4, 5, 255]);
    expect(Array.from(encodeIdx(f))).toEqual(Array.from(bytes));
  });

  it('parses big-endian int16 / int32 / float32 / float64 / int8', () => {
    const i16 = Uint8Array.from([0, 0, 0x0b, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe]);
    expect(Array.from(parseIdx(i16, 'x').data)).toEqual([258, -2]);
    const f32 = Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0x80, 0, 0]);
    expect(Array.from(parseIdx(f32, 'x').data)).toEqual([1]);
    for (const f of [
      { type: 'int8', dims: [3], data: Int8Array.from([-128, 0, 127]) },
      { type: 'int32', dims: [1, 2], data: Int32Array.from([-5, 2 ** 31 - 1]) },
      { type: 'float64', dims: [2, 1, 1, 1], data: Float64Array.from([Math.PI, -0.5]) },
    ] satisfies IdxFile[]) {
      const back = parseIdx(encodeIdx(f), 'x');
      expect(back.type).toBe(f.type);
      expect(back.dims).toEqual(f.dims);
      expect(Array.from(back.data)).toEqual(Array.from(f.data));
    }
  });

  for (const gz of [false, true]) {
    it(`round trip through a ${gz ? 'gzip' : 'plain'} file`, () => {
      const f: IdxFile = { type: 'uint8', dims: [4, 5, 6], data: Uint8Array.from({ length: 120 }, (_, i) => (i * 7) % 256) };
      const p = join(dir, `rt${gz ? '.gz' : ''}`);
      writeFileSync(p, gz ? gzipSync(encodeIdx(f)) : encodeIdx(f));
      const back = readIdx(p);
      expect(back).toEqual({ type: 'uint8', dims: [4, 5, 6], data: f.data });
    });
  }

  it('rejects bad magic, unknown type, bad ndims, short header', () => {
    expect(userError(() => parseIdx(Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0]), 'f.idx'))).toBe(
      'f.idx: bad magic number 0x504b0304 (an IDX file starts with two zero bytes); not an IDX file',
    );
    expect(userError(() => parseIdx(Uint8Array.from([0, 0, 0x07, 1, 0, 0, 0, 0]), 'f.idx'))).toContain('unknown IDX type code 0x07');
    expect(userError(() => parseIdx(Uint8Array.from([0, 0, 8, 0]), 'f.idx'))).toContain('declares 0 dimensions; expected 1 to 4');
    expect(userError(() => parseIdx(Uint8Array.from([0, 0, 8, 5]), 'f.idx'))).toContain('declares 5 dimensions');
    expect(userError(() => parseIdx(Uint8Array.from([0, 0]), 'f.idx'))).toContain('too short');
    expect(userError(() => parseIdx(Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1]), 'f.idx'))).toContain('file ends inside the header');
  });

  it('rejects truncated data and trailing bytes', () => {
    const full = encodeIdx({ type: 'uint8', dims: [10, 4], data: new Uint8Array(40) });
    expect(userError(() => parseIdx(full.subarray(0, full.length - 3), 'f.idx'))).toBe(
      'f.idx: data is truncated: dims [10,4] of uint8 need 40 bytes, the file has 37; download the file again',
    );
    const longer = new Uint8Array(full.length + 2);
    longer.set(full);
    expect(userError(() => parseIdx(longer, 'f.idx'))).toContain('2 trailing bytes after the data for dims [10,4]');
  });

  it('rejects corrupt gzip', () => {
    const gz = gzipSync(encodeIdx({ type: 'uint8', dims: [100], data: new Uint8Array(100) }));
    expect(userError(() => parseIdx(gz.subarray(0, 12), 'f.idx.gz'))).toMatch(/^f\.idx\.gz: gzip data is corrupt or truncated/);
  });

  it('missing file', () => {
    const p = join(dir, 'missing-idx1-ubyte');
    expect(userError(() => readIdx(p))).toBe(`${p}: file not found; check the path`);
  });
});

describe('loadMnistLike', () => {
  for (const gz of [false, true]) {
    it(`loads a ${gz ? 'gzip' : 'plain'} split, scales pixels, applies limit`, () => {
      const { d, pixels, labels } = makeMnistDir(`ok-${gz}`, { n: 12, gz });
      const all = loadMnistLike(d, 'train');
      expect([all.n, all.rows, all.cols]).toEqual([12, 3, 2]);
      expect(all.images).toBeInstanceOf(Float32Array);
      expect(all.images.length).toBe(12 * 6);
      expect(all.images[5]).toBe(Math.fround(pixels[5]! / 255));
      expect(Array.from(all.labels)).toEqual(Array.from(labels));
      const some = loadMnistLike(d, 'train', { limit: 5 });
      expect(some.n).toBe(5);
      expect(some.images.length).toBe(30);
      expect(Array.from(some.labels)).toEqual([0, 1, 2, 3, 4]);
      expect(loadMnistLike(d, 'train', { limit: 100 }).n).toBe(12);
    });
  }

  it('test split uses the t10k names', () => {
    const { d } = makeMnistDir('t10k', { n: 3, gz: true, split: 't10k' });
    expect(loadMnistLike(d, 'test').n).toBe(3);
    expect(userError(() => loadMnistLike(d, 'train'))).toBe(
      `${join(d, 'train-images-idx3-ubyte')}(.gz): file not found; expected the standard MNIST file names in ${d}`,
    );
  });

  it('image/label count mismatch', () => {
    const { d } = makeMnistDir('mismatch', { n: 4, gz: false, labels: [1, 2, 3] });
    expect(userError(() => loadMnistLike(d, 'train'))).toContain(`${d}: train split has 4 images but 3 labels`);
  });

  it('label out of range', () => {
    const { d } = makeMnistDir('badlabel', { n: 3, gz: false, labels: [1, 10, 3] });
    expect(userError(() => loadMnistLike(d, 'train'))).toBe(
      `${join(d, 'train-labels-idx1-ubyte')}: label 10 at index 1 is not below 10 (the number of classes)`,
    );
  });

  it('missing directory, bad limit', () => {
    const d = join(dir, 'no-such-dir');
    expect(userError(() => loadMnistLike(d, 'train'))).toBe(`${d}: data directory not found`);
    const { d: ok } = makeMnistDir('limit', { n: 2, gz: false });
    expect(userError(() => loadMnistLike(ok, 'train', { limit: -1 }))).toContain('limit must be a non-negative integer');
  });
});

describe('shipped Fashion-MNIST subset', () => {
  it('has ten classes', () => {
    expect(FASHION_CLASSES).toHaveLength(10);
    expect(FASHION_CLASSES[0]).toBe('T-shirt/top');
    expect(FASHION_CLASSES[9]).toBe('Ankle boot');
    expect(DEFAULT_DATA_DIR.replace(/\\/g, '/')).toMatch(/\/data\/fashion-mnist$/);
  });

  for (const [split, n] of [
    ['train', 5000],
    ['test', 1000],
  ] as const) {
    it(`${split}: ${n} images in [0,1], labels < 10`, () => {
      const ds = loadFashion(undefined, split);
      expect([ds.n, ds.rows, ds.cols]).toEqual([n, 28, 28]);
      expect(ds.images.length).toBe(n * 784);
      expect(ds.labels.length).toBe(n);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of ds.images) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      expect(lo).toBe(0);
      expect(hi).toBe(1);
      const seen = new Set(ds.labels);
      expect(Math.max(...seen)).toBeLessThan(10);
      expect(seen.size).toBe(10);
    });
  }

  it('known first labels (Fashion-MNIST train starts 9, 0, 0, 3; test starts 9, 2, 1, 1)', () => {
    expect(Array.from(loadFashion(DEFAULT_DATA_DIR, 'train', { limit: 4 }).labels)).toEqual([9, 0, 0, 3]);
    expect(Array.from(loadFashion(undefined, 'test', { limit: 4 }).labels)).toEqual([9, 2, 1, 1]);
  });
});
