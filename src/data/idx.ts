/**
 * IDX files (the MNIST format, http://yann.lecun.com/exdb/mnist/), plain or gzip-compressed
 * (detected by the gzip magic 1f 8b, whatever the file name).
 *
 *   [0x00 0x00 TYPE NDIMS] [NDIMS × u32 big-endian dims] [data, big-endian, row-major]
 *
 * All six type codes are read: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
 * 0x0E float64. Files must hold exactly the data their dims announce: a short file is truncated,
 * and trailing bytes are rejected too (they mean a wrong or corrupt file, never a usable one).
 * A reader that knows what it wants (MNIST images: 3-d uint8) says so, and a header that declares
 * something else is reported as that (the type code or the number of dimensions), before any size
 * check. Every problem is a one-line `UserError` naming the file.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../errors.js';
import { readFileOrExplain } from './read-file.js';

export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxFile {
  type: IdxType;
  dims: number[];
  data: IdxData;
}

const TYPES: Record<number, { type: IdxType; size: number }> = {
  0x08: { type: 'uint8', size: 1 },
  0x09: { type: 'int8', size: 1 },
  0x0b: { type: 'int16', size: 2 },
  0x0c: { type: 'int32', size: 4 },
  0x0d: { type: 'float32', size: 4 },
  0x0e: { type: 'float64', size: 8 },
};

const TYPE_CODES: Record<IdxType, number> = { uint8: 0x08, int8: 0x09, int16: 0x0b, int32: 0x0c, float32: 0x0d, float64: 0x0e };

/** "0x0C (int32)". */
function fmtCode(code: number): string {
  const name = TYPES[code]?.type;
  return `0x${code.toString(16).toUpperCase().padStart(2, '0')}${name ? ` (${name})` : ''}`;
}

/** What a reader expects of the header; a header that declares otherwise is refused as such. */
export interface IdxExpect {
  type?: IdxType;
  ndims?: number;
  /** What the file holds, for messages: "MNIST images". */
  what?: string;
}

/** Read an IDX file, gunzipping it first if it starts with the gzip magic. */
export function readIdx(path: string, expect: IdxExpect = {}): IdxFile {
  return parseIdx(readFileOrExplain(path), path, expect);
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Parse IDX bytes (gzip or not); `source` names the file in error messages. */
export function parseIdx(raw: Uint8Array, source: string, expect: IdxExpect = {}): IdxFile {
  function fail(msg: string): never {
    throw new UserError(`${source}: ${msg}`);
  }
  let bytes = raw;
  if (isGzip(raw)) {
    try {
      bytes = gunzipSync(raw);
    } catch (e) {
      fail(`gzip data is corrupt or truncated (${(e as Error).message.replace(/\s+/g, ' ')}); download the file again`);
    }
  }
  if (bytes.length < 4) fail(`file of ${bytes.length} bytes is too short to be an IDX file`);
  const b0 = bytes[0]!;
  const b1 = bytes[1]!;
  const code = bytes[2]!;
  const ndims = bytes[3]!;
  if (b0 !== 0 || b1 !== 0) {
    fail(`bad magic number 0x${hex(bytes, 0, 4)} (an IDX file starts with two zero bytes); not an IDX file`);
  }
  const t = TYPES[code];
  const known = Object.keys(TYPES).map((c) => fmtCode(Number(c))).join(', ');
  if (t === undefined) fail(`unknown IDX type code ${fmtCode(code)} in the header (known: ${known}); not an IDX file or a corrupt header`);
  const what = expect.what ?? 'this data';
  if (expect.type !== undefined && t.type !== expect.type) {
    fail(`IDX header has type code ${fmtCode(code)}, expected ${fmtCode(TYPE_CODES[expect.type])} for ${what}; the file holds other data or its header is wrong`);
  }
  if (ndims < 1 || ndims > 4) fail(`IDX header declares ${ndims} dimensions; expected 1 to 4`);
  if (expect.ndims !== undefined && ndims !== expect.ndims) {
    fail(`IDX header declares ${ndims} dimension${ndims === 1 ? '' : 's'}, expected ${expect.ndims} for ${what}; the file holds other data or its header is wrong`);
  }
  const dataStart = 4 + 4 * ndims;
  if (bytes.length < dataStart) fail(`file ends inside the header (${bytes.length} bytes, header needs ${dataStart}); the file is truncated`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, d) => a * d, 1);
  const need = count * t.size;
  const have = bytes.length - dataStart;
  if (have !== need) {
    // A data size that exactly fits another type code means the header's type code is wrong, not the data.
    const fits = Object.entries(TYPES).filter(([c, o]) => Number(c) !== code && count * o.size === have && count > 0);
    if (fits.length > 0) {
      fail(
        `IDX header has type code ${fmtCode(code)}, but the ${have} data bytes fit dims [${dims.join(',')}] of ` +
          `${fits.map(([c]) => fmtCode(Number(c))).join(' or ')}; the header's type code is wrong`,
      );
    }
  }
  if (have < need) {
    fail(`data is truncated: dims [${dims.join(',')}] of ${t.type} need ${need} bytes, the file has ${have}; download the file again`);
  }
  if (have > need) {
    fail(`${have - need} trailing bytes after the data for dims [${dims.join(',')}] of ${t.type}; the file is corrupt or not an IDX file`);
  }
  return { type: t.type, dims, data: decodeBE(view, dataStart, count, t.type) };
}

/** Encode an IDX file (uncompressed); used by tests and the data scripts' checks. */
export function encodeIdx(file: IdxFile): Uint8Array {
  const { type, dims, data } = file;
  const size = TYPES[TYPE_CODES[type]]!.size;
  const count = dims.reduce((a, d) => a * d, 1);
  if (data.length !== count) throw new Error(`IDX data has ${data.length} elements, dims [${dims.join(',')}] need ${count}`);
  if (dims.length < 1 || dims.length > 4) throw new Error(`IDX supports 1 to 4 dims, got ${dims.length}`);
  const start = 4 + 4 * dims.length;
  const out = new Uint8Array(start + count * size);
  const v = new DataView(out.buffer);
  out[2] = TYPE_CODES[type];
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < count; i++) {
    const x = data[i]!;
    const at = start + i * size;
    switch (type) {
      case 'uint8':
        v.setUint8(at, x);
        break;
      case 'int8':
        v.setInt8(at, x);
        break;
      case 'int16':
        v.setInt16(at, x, false);
        break;
      case 'int32':
        v.setInt32(at, x, false);
        break;
      case 'float32':
        v.setFloat32(at, x, false);
        break;
      case 'float64':
        v.setFloat64(at, x, false);
        break;
    }
  }
  return out;
}

export interface MnistLike {
  /** n × rows × cols pixels scaled to [0, 1] (pixel / 255), row-major. */
  images: Float32Array;
  labels: Uint8Array;
  n: number;
  rows: number;
  cols: number;
}

export interface MnistOptions {
  /** Keep only the first `limit` examples. */
  limit?: number;
  /** Number of classes; every label must be below it (default 10). */
  numClasses?: number;
}

const SPLIT_PREFIX = { train: 'train', test: 't10k' } as const;

/** The image and label files of an MNIST-format split in `dir` (throws if either is missing). */
export function mnistSplitFiles(dir: string, split: 'train' | 'test'): [images: string, labels: string] {
  const prefix = SPLIT_PREFIX[split];
  return [findIdxFile(dir, `${prefix}-images-idx3-ubyte`), findIdxFile(dir, `${prefix}-labels-idx1-ubyte`)];
}

/**
 * Find `<dir>/<base>` or `<dir>/<base>.gz` (the plain file wins when both exist).
 * Throws a `UserError` saying which file was expected where.
 */
export function findIdxFile(dir: string, base: string): string {
  for (const name of [base, `${base}.gz`]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new UserError(`${join(dir, base)}(.gz): file not found; expected the standard MNIST file names in ${dir}`);
}

/**
 * Load an MNIST-format data set (MNIST, Fashion-MNIST, ...) from `dir`: files
 * `train-images-idx3-ubyte`, `train-labels-idx1-ubyte` (split 'train') or `t10k-images-idx3-ubyte`,
 * `t10k-labels-idx1-ubyte` (split 'test'), each optionally gzipped with a `.gz` suffix.
 */
export function loadMnistLike(dir: string, split: 'train' | 'test', opts: MnistOptions = {}): MnistLike {
  if (!existsSync(dir)) throw new UserError(`${dir}: data directory not found`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${dir}: is not a directory (expected the data directory)`);
  const numClasses = opts.numClasses ?? 10;
  const limit = opts.limit;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
    throw new UserError(`limit must be a non-negative integer, got ${limit}`);
  }
  const [imgPath, lblPath] = mnistSplitFiles(dir, split);
  const img = readIdx(imgPath, { type: 'uint8', ndims: 3, what: 'MNIST-format images' });
  const lbl = readIdx(lblPath, { type: 'uint8', ndims: 1, what: 'MNIST-format labels' });
  if (img.type !== 'uint8' || img.dims.length !== 3) {
    throw new UserError(`${imgPath}: expected 3-d uint8 images, found ${img.dims.length}-d ${img.type} [${img.dims.join(',')}]`);
  }
  if (lbl.type !== 'uint8' || lbl.dims.length !== 1) {
    throw new UserError(`${lblPath}: expected 1-d uint8 labels, found ${lbl.dims.length}-d ${lbl.type} [${lbl.dims.join(',')}]`);
  }
  const [count, rows, cols] = img.dims as [number, number, number];
  if (lbl.dims[0] !== count) {
    throw new UserError(`${dir}: ${split} split has ${count} images but ${lbl.dims[0]} labels (${imgPath}, ${lblPath})`);
  }
  const labelsAll = lbl.data as Uint8Array;
  for (let i = 0; i < count; i++) {
    if (labelsAll[i]! >= numClasses) {
      throw new UserError(`${lblPath}: label ${labelsAll[i]} at index ${i} is not below ${numClasses} (the number of classes)`);
    }
  }
  const n = limit === undefined ? count : Math.min(limit, count);
  const px = rows * cols;
  const src = img.data as Uint8Array;
  const images = new Float32Array(n * px);
  for (let i = 0; i < n * px; i++) images[i] = src[i]! / 255;
  return { images, labels: labelsAll.slice(0, n), n, rows, cols };
}

// ---------------------------------------------------------------------------------------------

function decodeBE(view: DataView, start: number, count: number, type: IdxType): IdxData {
  switch (type) {
    case 'uint8':
      return new Uint8Array(view.buffer.slice(view.byteOffset + start, view.byteOffset + start + count));
    case 'int8':
      return new Int8Array(view.buffer.slice(view.byteOffset + start, view.byteOffset + start + count));
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(start + 2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(start + 4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(start + 4 * i, false);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(start + 8 * i, false);
      return out;
    }
  }
}

function hex(b: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to && i < b.length; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
}
