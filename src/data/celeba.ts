/**
 * CelebA (Liu et al., "Deep Learning Face Attributes in the Wild", ICCV 2015) in its standard
 * layout, as a `Dataset` of 3×size×size colour images with binary attributes:
 *
 *   <root>/img_align_celeba/000001.jpg …   aligned and cropped faces, 178×218 JPEGs
 *   <root>/list_attr_celeba.txt             line 1: image count; line 2: the attribute names;
 *                                           then `filename  v1 … vK`, each v = 1 or -1
 *   <root>/list_eval_partition.txt          `filename p`, p = 0 train, 1 valid, 2 test
 *
 * Splits: 'train' is partition 0 and 'test' partition 2. The validation partition (1) is unused
 * by default; `validAs: 'train' | 'test'` adds it to that split. Examples keep the order of the
 * attribute file; `limit` keeps the first N of the split. Images listed in the attribute file but
 * not in the partition file belong to no split; partition lines naming an image absent from the
 * attribute file are an error.
 *
 * Pixels: each image is center-cropped to a square (the central 178×178 of a 178×218 image: rows
 * 20…197) and resized to size×size (default 64) by area averaging — a box filter in which every
 * output pixel is the mean of the source area it covers, fractional pixels weighted by their
 * overlap. Area averaging is the antialiased choice for downscaling (no aliasing of hair and
 * texture as with nearest or bilinear sampling) and needs no tuning; it is exact for integer
 * factors. Results are rounded to uint8 and scaled by 1/255 in `get`.
 *
 * Decoding is lazy (jpeg-js, pure JS, a few ms per image): `get(i)` decodes, crops and resizes
 * image i on first use and keeps the uint8 result (3·size² bytes, 12 KiB at 64×64) in an LRU
 * cache of `cacheImages` entries — by default as many as fit in 1 GiB (87,381 at 64×64; all of a
 * limited split), so later epochs decode nothing. Labels come from the attribute file and cost no
 * decoding (`targets(i)`).
 *
 * Errors are one-line `UserError`s naming the file (and line): missing root or files, a bad
 * attribute header, a count that does not match, a value other than ±1, a wrong number of
 * columns, a bad or unknown partition line, an unreadable or undecodable JPEG.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { UserError } from '../errors.js';
import { checkGroups, checkIndex, groupViolation, hashParts, type Dataset, type LabelGroup } from './dataset.js';
import { readFileOrExplain } from './read-file.js';

export const CELEBA_IMAGE_DIR = 'img_align_celeba';
export const CELEBA_ATTR_FILE = 'list_attr_celeba.txt';
export const CELEBA_PARTITION_FILE = 'list_eval_partition.txt';

/**
 * The hair-colour attributes of CelebA. They are *nearly* exclusive in the annotations (a few
 * images carry two); pass as `groups` to have the loaded split checked and the group declared.
 */
export const CELEBA_HAIR_GROUP: LabelGroup = { name: 'hair', members: ['Black_Hair', 'Blond_Hair', 'Brown_Hair', 'Gray_Hair'], allowNone: true };

const CACHE_BYTES = 2 ** 30;
const PREPROCESS_VERSION = 'lie-bracket/celeba/v1: center square crop, area-average resize, uint8';

export interface CelebaOptions {
  /** Output side (default 64). */
  size?: number;
  /** Keep the first `limit` images of the split. */
  limit?: number;
  /** A subset of attribute names, in the order wanted (default: all, in file order). */
  attributes?: readonly string[];
  /** Where the validation partition goes: nowhere (default), or added to 'train' or 'test'. */
  validAs?: 'none' | 'train' | 'test';
  /** Mutually exclusive groups to declare; every example of the split must satisfy them. */
  groups?: readonly LabelGroup[];
  /** Decoded images kept in memory (LRU; default: as many as fit in 1 GiB). */
  cacheImages?: number;
}

interface AttrTable {
  names: string[];
  files: string[];
  /** files.length × names.length, 0/1. */
  values: Uint8Array;
}

function lines(text: string): string[] {
  return text.split(/\r?\n/);
}

/** Parse list_attr_celeba.txt. */
export function parseAttributes(bytes: Uint8Array, path: string): AttrTable {
  const all = lines(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  const fail = (line: number, msg: string): never => {
    throw new UserError(`${path}: line ${line}: ${msg}`);
  };
  const countText = (all[0] ?? '').trim();
  if (!/^\d+$/.test(countText)) fail(1, `expected the number of images, found '${clip(countText)}'; not a CelebA attribute file`);
  const declared = Number(countText);
  if (declared > all.length) {
    throw new UserError(`${path}: line 1 declares ${declared} images but the file has only ${all.length} lines; the file is truncated or corrupt`);
  }
  const names = (all[1] ?? '').trim().split(/\s+/).filter((s) => s.length > 0);
  if (names.length === 0) fail(2, 'expected the attribute names, found an empty line');
  if (names.some((n) => /^[+-]?1$/.test(n)) || /\.(jpe?g|png)$/i.test(names[0]!)) {
    fail(2, `expected the attribute names, found '${clip(all[1]!.trim())}' (a data row?); the header needs a count line, then a names line`);
  }
  const dupName = names.find((n, i) => names.indexOf(n) !== i);
  if (dupName !== undefined) fail(2, `attribute '${dupName}' is named twice`);
  const k = names.length;
  const files: string[] = [];
  const seen = new Map<string, number>();
  const values = new Uint8Array(declared * k);
  for (let ln = 2; ln < all.length; ln++) {
    const text = all[ln]!.trim();
    if (text.length === 0) continue;
    if (files.length === declared) fail(ln + 1, `more images than the ${declared} declared on line 1; the count or the file is wrong`);
    const cols = text.split(/\s+/);
    if (cols.length !== k + 1) fail(ln + 1, `has ${cols.length} columns, expected ${k + 1} (a file name and ${k} values)`);
    const file = cols[0]!;
    const prev = seen.get(file);
    if (prev !== undefined) fail(ln + 1, `image ${file} is listed twice (also on line ${prev})`);
    seen.set(file, ln + 1);
    const row = files.length * k;
    for (let j = 0; j < k; j++) {
      const v = cols[j + 1]!;
      if (v === '1' || v === '+1') values[row + j] = 1;
      else if (v !== '-1') fail(ln + 1, `value '${clip(v)}' of attribute ${names[j]} for ${file} is not 1 or -1`);
    }
    files.push(file);
  }
  if (files.length !== declared) {
    throw new UserError(`${path}: line 1 declares ${declared} images but the file lists ${files.length}; the file is truncated or corrupt`);
  }
  return { names, files, values };
}

/** Parse list_eval_partition.txt against the attribute table's images: partition per image (−1: none). */
export function parsePartition(bytes: Uint8Array, path: string, files: readonly string[]): Int8Array {
  const index = new Map<string, number>();
  files.forEach((f, i) => index.set(f, i));
  const part = new Int8Array(files.length).fill(-1);
  const all = lines(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  for (let ln = 0; ln < all.length; ln++) {
    const text = all[ln]!.trim();
    if (text.length === 0) continue;
    const cols = text.split(/\s+/);
    const where = `${path}: line ${ln + 1}`;
    if (cols.length !== 2) throw new UserError(`${where}: has ${cols.length} columns, expected 2 (a file name and 0, 1 or 2)`);
    const [file, p] = cols as [string, string];
    if (p !== '0' && p !== '1' && p !== '2') throw new UserError(`${where}: partition '${clip(p)}' of ${file} is not 0 (train), 1 (valid) or 2 (test)`);
    const i = index.get(file);
    if (i === undefined) throw new UserError(`${where}: image ${file} is not listed in ${CELEBA_ATTR_FILE}`);
    if (part[i] !== -1) throw new UserError(`${where}: image ${file} is listed twice`);
    part[i] = Number(p);
  }
  return part;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Box-filter weights mapping `n` source pixels onto `m` outputs: for each output, [source index, weight] pairs summing to 1. */
function areaWeights(n: number, m: number): { src: Int32Array; w: Float64Array; start: Int32Array } {
  const src: number[] = [];
  const w: number[] = [];
  const start = new Int32Array(m + 1);
  const scale = n / m;
  for (let j = 0; j < m; j++) {
    start[j] = src.length;
    const a = j * scale;
    const b = (j + 1) * scale;
    for (let s = Math.floor(a); s < Math.min(n, Math.ceil(b)); s++) {
      const overlap = Math.min(b, s + 1) - Math.max(a, s);
      if (overlap > 1e-12) {
        src.push(s);
        w.push(overlap / scale);
      }
    }
  }
  start[m] = src.length;
  return { src: Int32Array.from(src), w: Float64Array.from(w), start };
}

/**
 * Center-crop interleaved RGB pixels (width × height × 3) to a square and area-average it to
 * size × size, planar [3, size, size] uint8.
 */
export function cropResize(rgb: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const side = Math.min(width, height);
  const x0 = Math.floor((width - side) / 2);
  const y0 = Math.floor((height - side) / 2);
  const wx = areaWeights(side, size);
  const wy = wx;
  // Horizontal pass: side rows × size columns × 3.
  const tmp = new Float64Array(side * size * 3);
  for (let y = 0; y < side; y++) {
    const row = (y0 + y) * width;
    for (let ox = 0; ox < size; ox++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = wx.start[ox]!; k < wx.start[ox + 1]!; k++) {
        const p = 3 * (row + x0 + wx.src[k]!);
        const w = wx.w[k]!;
        r += w * rgb[p]!;
        g += w * rgb[p + 1]!;
        b += w * rgb[p + 2]!;
      }
      const t = 3 * (y * size + ox);
      tmp[t] = r;
      tmp[t + 1] = g;
      tmp[t + 2] = b;
    }
  }
  const out = new Uint8Array(3 * size * size);
  const plane = size * size;
  for (let oy = 0; oy < size; oy++) {
    for (let ox = 0; ox < size; ox++) {
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let k = wy.start[oy]!; k < wy.start[oy + 1]!; k++) v += wy.w[k]! * tmp[3 * (wy.src[k]! * size + ox) + c]!;
        out[c * plane + oy * size + ox] = Math.min(255, Math.max(0, Math.round(v)));
      }
    }
  }
  return out;
}

/** Decode a JPEG to interleaved RGB; a `UserError` naming `path` when it cannot be decoded. */
export function decodeJpeg(bytes: Uint8Array, path: string): { width: number; height: number; rgb: Uint8Array } {
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 256 });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new UserError(`${path}: cannot decode the JPEG (${msg.replace(/\s+/g, ' ')}); the file is corrupt or not a JPEG`);
  }
  const { width, height, data } = img;
  if (!(width > 0 && height > 0) || data.length !== width * height * 3) {
    throw new UserError(`${path}: cannot decode the JPEG (decoded ${width}×${height} with ${data.length} bytes); the file is corrupt`);
  }
  return { width, height, rgb: data };
}

export class CelebaDataset implements Dataset {
  readonly name = 'celeba';
  readonly split: 'train' | 'test';
  readonly length: number;
  readonly inputShape: readonly [number, number, number];
  readonly labelNames: readonly string[];
  readonly labelKind = 'binary' as const;
  readonly groups: readonly LabelGroup[];
  readonly root: string;
  readonly size: number;
  /** File names of the split's images, in order. */
  readonly files: readonly string[];
  private readonly targetsBuf: Uint8Array;
  private readonly cache = new Map<number, Uint8Array>();
  private readonly cacheLimit: number;
  /** Hash of the options and both list files. */
  private readonly fpParts: string;
  private fp: string | undefined;

  constructor(root: string, split: 'train' | 'test', opts: CelebaOptions = {}) {
    if (split !== 'train' && split !== 'test') throw new UserError(`celeba: unknown split '${String(split)}' (choices: train, test)`);
    if (!existsSync(root)) throw new UserError(`${root}: CelebA root directory not found`);
    if (!statSync(root).isDirectory()) throw new UserError(`${root}: is not a directory (expected the CelebA root with ${CELEBA_IMAGE_DIR}/, ${CELEBA_ATTR_FILE}, ${CELEBA_PARTITION_FILE})`);
    const imgDir = join(root, CELEBA_IMAGE_DIR);
    if (!existsSync(imgDir) || !statSync(imgDir).isDirectory()) {
      throw new UserError(`${imgDir}: image directory not found; the CelebA root needs ${CELEBA_IMAGE_DIR}/ (the aligned JPEGs)`);
    }
    const size = opts.size ?? 64;
    if (!Number.isSafeInteger(size) || size < 1 || size > 1024) throw new UserError(`celeba: size must be an integer from 1 to 1024, got ${size}`);
    const limit = opts.limit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) throw new UserError(`celeba: limit must be a non-negative integer, got ${limit}`);
    const validAs = opts.validAs ?? 'none';
    if (validAs !== 'none' && validAs !== 'train' && validAs !== 'test') {
      throw new UserError(`celeba: validAs must be none, train or test, got '${String(validAs)}'`);
    }

    const attrPath = join(root, CELEBA_ATTR_FILE);
    const partPath = join(root, CELEBA_PARTITION_FILE);
    const attrBytes = readFileOrExplain(attrPath);
    const partBytes = readFileOrExplain(partPath);
    const table = parseAttributes(attrBytes, attrPath);
    const partition = parsePartition(partBytes, partPath, table.files);

    // Attribute selection.
    let cols: number[];
    if (opts.attributes === undefined) {
      cols = table.names.map((_, j) => j);
    } else {
      if (opts.attributes.length === 0) throw new UserError('celeba: the attribute list is empty');
      cols = opts.attributes.map((a) => {
        const j = table.names.indexOf(a);
        if (j < 0) throw new UserError(`celeba: unknown attribute '${a}' (${attrPath} has: ${table.names.join(', ')})`);
        return j;
      });
      const dup = opts.attributes.find((a, i) => opts.attributes!.indexOf(a) !== i);
      if (dup !== undefined) throw new UserError(`celeba: attribute '${dup}' is requested twice`);
    }
    this.labelNames = cols.map((j) => table.names[j]!);
    const k = cols.length;

    // Split membership.
    const wanted = new Set<number>([split === 'train' ? 0 : 2]);
    if (validAs === split) wanted.add(1);
    const chosen: number[] = [];
    for (let i = 0; i < table.files.length && (limit === undefined || chosen.length < limit); i++) {
      if (wanted.has(partition[i]!)) chosen.push(i);
    }
    this.files = chosen.map((i) => table.files[i]!);
    this.targetsBuf = new Uint8Array(chosen.length * k);
    const kAll = table.names.length;
    chosen.forEach((i, n) => {
      for (let j = 0; j < k; j++) this.targetsBuf[n * k + j] = table.values[i * kAll + cols[j]!]!;
    });

    // Declared groups: must hold on every example of the split.
    const groups = opts.groups ?? [];
    checkGroups(this.labelNames, groups, 'celeba');
    if (groups.length > 0) {
      let bad = 0;
      let first: string | undefined;
      for (let n = 0; n < chosen.length; n++) {
        const v = groupViolation(this.labelNames, groups, this.targetsBuf.subarray(n * k, (n + 1) * k));
        if (v !== undefined) {
          bad++;
          first ??= `${this.files[n]}: ${v}`;
        }
      }
      if (bad > 0) throw new UserError(`celeba: ${bad} image(s) of the ${split} split violate the declared groups, first ${first}`);
    }
    this.groups = groups.map((g) => ({ name: g.name, members: [...g.members], allowNone: g.allowNone }));

    this.root = root;
    this.split = split;
    this.size = size;
    this.length = chosen.length;
    this.inputShape = [3, size, size];
    const cacheImages = opts.cacheImages ?? Math.max(1, Math.floor(CACHE_BYTES / (3 * size * size)));
    if (!Number.isSafeInteger(cacheImages) || cacheImages < 0) throw new UserError(`celeba: cacheImages must be a non-negative integer, got ${cacheImages}`);
    this.cacheLimit = cacheImages;
    const options = JSON.stringify({ split, size, limit: limit ?? null, validAs, attributes: this.labelNames, groups: this.groups, preprocess: PREPROCESS_VERSION });
    this.fpParts = hashParts([options, attrBytes, partBytes]);
  }

  /** Image i as planar uint8 [3, size, size] (decoded on first use, then cached). */
  pixels(i: number): Uint8Array {
    checkIndex(this, i);
    const hit = this.cache.get(i);
    if (hit !== undefined) {
      this.cache.delete(i);
      this.cache.set(i, hit);
      return hit;
    }
    const path = join(this.root, CELEBA_IMAGE_DIR, this.files[i]!);
    const { width, height, rgb } = decodeJpeg(readFileOrExplain(path), path);
    const px = cropResize(rgb, width, height, this.size);
    if (this.cacheLimit > 0) {
      if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(i, px);
    }
    return px;
  }

  get(i: number): { x: Float32Array; y: Float32Array } {
    const px = this.pixels(i);
    const x = new Float32Array(px.length);
    for (let k = 0; k < px.length; k++) x[k] = px[k]! / 255;
    return { x, y: this.targets(i) };
  }

  targets(i: number): Float32Array {
    checkIndex(this, i);
    const k = this.labelNames.length;
    return Float32Array.from(this.targetsBuf.subarray(i * k, (i + 1) * k));
  }

  /**
   * SHA-256 over the options, both list files, and the name and byte size of every image of the
   * split (stat, not read: hashing every JPEG would cost as much as decoding them).
   */
  fingerprint(): string {
    if (this.fp === undefined) {
      const sizes = new Float64Array(this.files.length);
      this.files.forEach((f, n) => {
        const path = join(this.root, CELEBA_IMAGE_DIR, f);
        try {
          sizes[n] = statSync(path).size;
        } catch {
          throw new UserError(`${path}: image file not found; the CelebA image directory is incomplete`);
        }
      });
      this.fp = hashParts(['lie-bracket/celeba-dataset/v1', this.fpParts, this.files.join('\n'), sizes]);
    }
    return this.fp;
  }
}

export function openCeleba(root: string, split: 'train' | 'test', opts: CelebaOptions = {}): CelebaDataset {
  return new CelebaDataset(root, split, opts);
}
