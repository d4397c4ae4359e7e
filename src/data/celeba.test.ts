import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CELEBA_ATTR_FILE, CELEBA_IMAGE_DIR, CELEBA_PARTITION_FILE, CelebaDataset, cropResize } from './celeba.js';
import { batch, describeDataset } from './dataset.js';
import { userError } from '../../test/expect-user-error.js';

const ATTRS = (
  '5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair Blurry ' +
  'Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male ' +
  'Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks ' +
  'Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young'
).split(' ');

const W = 178;
const H = 218;
const N = 6;
const FILES = Array.from({ length: N }, (_, i) => `${String(i + 1).padStart(6, '0')}.jpg`);
/** Partition of each image: 0,0,0 train, 1 valid, 2,2 test. */
const PARTS = [0, 0, 0, 1, 2, 2];

type RGB = [number, number, number];
/** Image i's colour at (x, y). */
function colourAt(i: number, x: number, y: number): RGB {
  switch (i) {
    case 0:
      return [200, 40, 40];
    case 1:
      return [40, 180, 60];
    case 2:
      return [30, 60, 200];
    case 3: // white bands top and bottom that the center crop removes
      return y < 20 || y >= 198 ? [255, 255, 255] : [100, 100, 100];
    case 4: // left half yellow, right half dark blue
      return x < 89 ? [220, 200, 40] : [30, 30, 120];
    default:
      return [128, 128, 128];
  }
}

/** Attribute j of image i, as ±1 (a fixed pseudo-random pattern). */
function attr(i: number, j: number): 1 | -1 {
  return (i * 7 + j * 3) % 5 < 2 ? 1 : -1;
}

function attrRow(i: number, values: readonly (string | number)[] = ATTRS.map((_, j) => attr(i, j))): string {
  return `${FILES[i]} ${values.map((v) => String(v).padStart(2)).join(' ')}`;
}

function attrText(rows: string[] = FILES.map((_, i) => attrRow(i)), count: number | string = rows.length, names = ATTRS): string {
  return `${count}\n${names.join(' ')} \n${rows.join('\n')}\n`;
}

function partText(lines: string[] = FILES.map((f, i) => `${f} ${PARTS[i]}`)): string {
  return `${lines.join('\n')}\n`;
}

const tmp = mkdtempSync(join(tmpdir(), 'lb-celeba-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let jpegs: Buffer[] = [];
let root = '';
let caseNo = 0;

/** A CelebA root with the given files (defaults: the good fixture); images are written when `images`. */
function makeRoot(o: { attr?: string | null; part?: string | null; images?: boolean; imageDir?: boolean; extra?: Record<string, Uint8Array> } = {}): string {
  const r = join(tmp, `case${caseNo++}`);
  mkdirSync(r);
  if (o.imageDir !== false) mkdirSync(join(r, CELEBA_IMAGE_DIR));
  if (o.attr !== null) writeFileSync(join(r, CELEBA_ATTR_FILE), o.attr ?? attrText());
  if (o.part !== null) writeFileSync(join(r, CELEBA_PARTITION_FILE), o.part ?? partText());
  if (o.images) FILES.forEach((f, i) => writeFileSync(join(r, CELEBA_IMAGE_DIR, f), jpegs[i]!));
  for (const [name, bytes] of Object.entries(o.extra ?? {})) writeFileSync(join(r, CELEBA_IMAGE_DIR, name), bytes);
  return r;
}

beforeAll(() => {
  jpegs = Array.from({ length: N }, (_, i) => {
    const data = new Uint8Array(W * H * 4);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const c = colourAt(i, x, y);
        data.set([...c, 255], 4 * (y * W + x));
      }
    }
    return jpeg.encode({ width: W, height: H, data }, 95).data;
  });
  root = makeRoot({ images: true });
});


/** Pixel (c, y, x) of a planar [3, S, S] image. */
function px(x: Float32Array, size: number, c: number, yy: number, xx: number): number {
  return x[c * size * size + yy * size + xx]!;
}

describe('CelebA', () => {
  it('reads the splits, attributes as 0/1, and the output shape', () => {
    const train = new CelebaDataset(root, 'train');
    const test = new CelebaDataset(root, 'test');
    expect(train.files).toEqual(FILES.slice(0, 3));
    expect(test.files).toEqual(FILES.slice(4, 6));
    expect(train.length).toBe(3);
    expect(train.labelNames).toEqual(ATTRS);
    expect(train.labelKind).toBe('binary');
    expect(train.inputShape).toEqual([3, 64, 64]);
    expect(train.groups).toEqual([]);
    for (const [ds, first] of [
      [train, 0],
      [test, 4],
    ] as const) {
      for (let n = 0; n < ds.length; n++) {
        const { x, y } = ds.get(n);
        expect(x.length).toBe(3 * 64 * 64);
        expect(Array.from(y)).toEqual(ATTRS.map((_, j) => (attr(first + n, j) === 1 ? 1 : 0)));
        expect(Array.from(ds.targets(n))).toEqual(Array.from(y));
      }
    }
    const b = batch(test, [1, 0], 'float64');
    expect(b.x.shape).toEqual([2, 3, 64, 64]);
    expect(b.t.shape).toEqual([2, 40]);
    expect(b.t.data[0]).toBe(attr(5, 0) === 1 ? 1 : 0);
  });

  it('puts the validation partition nowhere by default, or into the split asked for', () => {
    expect(new CelebaDataset(root, 'train', { validAs: 'train' }).files).toEqual(FILES.slice(0, 4));
    expect(new CelebaDataset(root, 'test', { validAs: 'test' }).files).toEqual(FILES.slice(3, 6));
    expect(new CelebaDataset(root, 'test', { validAs: 'train' }).files).toEqual(FILES.slice(4, 6));
    expect(new CelebaDataset(root, 'train', { limit: 2 }).files).toEqual(FILES.slice(0, 2));
    expect(new CelebaDataset(root, 'train', { limit: 0 }).length).toBe(0);
  });

  it('crops the center square and area-averages to the colours encoded (JPEG tolerance)', () => {
    const all = new CelebaDataset(root, 'train', { validAs: 'train' });
    const test = new CelebaDataset(root, 'test');
    const tol = 6 / 255;
    for (let i = 0; i < 3; i++) {
      const { x } = all.get(i);
      const c = colourAt(i, 0, 0);
      for (let k = 0; k < x.length; k++) expect(Math.abs(x[k]! - c[Math.floor(k / 4096)]! / 255)).toBeLessThan(tol);
    }
    // Image 4 (index 3): the white bands are cropped away; everything is the grey of the center.
    const banded = all.get(3).x;
    let maxDev = 0;
    for (const v of banded) maxDev = Math.max(maxDev, Math.abs(v - 100 / 255));
    expect(maxDev).toBeLessThan(12 / 255); // ringing of the sharp band edge near rows 0 and 63 only
    for (let yy = 4; yy < 60; yy++) for (let xx = 0; xx < 64; xx++) expect(Math.abs(px(banded, 64, 0, yy, xx) - 100 / 255)).toBeLessThan(tol);
    // Image 5 (test index 0): left half yellow, right half blue, the edge at output column 32.
    const halves = test.get(0).x;
    for (let yy = 0; yy < 64; yy++) {
      for (const [xx, col] of [
        [0, colourAt(4, 0, 0)],
        [27, colourAt(4, 0, 0)],
        [36, colourAt(4, 177, 0)],
        [63, colourAt(4, 177, 0)],
      ] as const) {
        for (let c = 0; c < 3; c++) expect(Math.abs(px(halves, 64, c, yy, xx) - col[c]! / 255)).toBeLessThan(tol);
      }
    }
    // The grey one at another size.
    const small = new CelebaDataset(root, 'test', { size: 16 }).get(1).x;
    expect(small.length).toBe(3 * 16 * 16);
    for (const v of small) expect(Math.abs(v - 128 / 255)).toBeLessThan(tol);
  });

  it('area-averages exactly (box filter), including non-integer factors', () => {
    // 3×2 image (width 3, height 2) → center crop 2×2 (columns 0…1) → 1×1: the mean of four pixels.
    const rgb = Uint8Array.from([10, 20, 30, 50, 60, 70, 255, 255, 255, 90, 100, 110, 130, 140, 150, 255, 255, 255]);
    expect(Array.from(cropResize(rgb, 3, 2, 1))).toEqual([70, 80, 90]);
    // 3×3 → 2×2: each output covers 1.5×1.5 source pixels, weights 1, 0.5 (normalized by 2.25).
    const grey = Uint8Array.from([0, 90, 180, 90, 90, 90, 180, 90, 0].flatMap((v) => [v, v, v]));
    const out = cropResize(grey, 3, 3, 2);
    const tl = (0 * 1 + 90 * 0.5 + 90 * 0.5 + 90 * 0.25) / 2.25;
    expect(out[0]).toBe(Math.round(tl));
    expect(out.length).toBe(12);
  });

  it('subsets attributes in the given order', () => {
    const ds = new CelebaDataset(root, 'train', { attributes: ['Smiling', 'Black_Hair', 'Young'] });
    expect(ds.labelNames).toEqual(['Smiling', 'Black_Hair', 'Young']);
    const cols = ['Smiling', 'Black_Hair', 'Young'].map((a) => ATTRS.indexOf(a));
    for (let n = 0; n < 3; n++) expect(Array.from(ds.get(n).y)).toEqual(cols.map((j) => (attr(n, j) === 1 ? 1 : 0)));
    expect(describeDataset(ds).positiveRate).toEqual(
      Object.fromEntries(['Smiling', 'Black_Hair', 'Young'].map((a, k) => [a, [0, 1, 2].filter((n) => attr(n, cols[k]!) === 1).length / 3])),
    );
    expect(userError(() => new CelebaDataset(root, 'train', { attributes: ['Smiling', 'Pink_Hair'] }))).toMatch(/unknown attribute 'Pink_Hair'/);
    expect(userError(() => new CelebaDataset(root, 'train', { attributes: ['Young', 'Young'] }))).toMatch(/requested twice/);
    expect(userError(() => new CelebaDataset(root, 'train', { attributes: [] }))).toMatch(/empty/);
  });

  it('declares groups only when every example satisfies them', () => {
    // Pick two attributes never both set in the train split.
    const pair = (() => {
      for (let a = 0; a < 40; a++) for (let b = a + 1; b < 40; b++) if ([0, 1, 2].every((n) => !(attr(n, a) === 1 && attr(n, b) === 1))) return [ATTRS[a]!, ATTRS[b]!];
      throw new Error('no exclusive pair');
    })();
    const g = { name: 'g', members: pair, allowNone: true };
    expect(new CelebaDataset(root, 'train', { groups: [g] }).groups).toEqual([g]);
    const clash = ATTRS.filter((_, j) => attr(0, j) === 1).slice(0, 2);
    expect(userError(() => new CelebaDataset(root, 'train', { groups: [{ name: 'h', members: clash, allowNone: true }] }))).toMatch(
      /violate the declared groups, first 000001.jpg: 2 labels of group 'h' are set/,
    );
    expect(userError(() => new CelebaDataset(root, 'train', { attributes: ['Young'], groups: [{ name: 'h', members: ['Bald'], allowNone: true }] }))).toMatch(
      /'Bald', which is not one of the labels/,
    );
  });

  it('caches decoded images (LRU) and fingerprints content and options', () => {
    const ds = new CelebaDataset(root, 'train', { cacheImages: 1 });
    expect(ds.pixels(0)).toBe(ds.pixels(0));
    const a = ds.pixels(1);
    ds.pixels(2);
    expect(ds.pixels(1)).not.toBe(a);
    expect(Array.from(ds.pixels(1))).toEqual(Array.from(a));
    const fp = ds.fingerprint();
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    expect(new CelebaDataset(root, 'train').fingerprint()).toBe(fp);
    expect(new CelebaDataset(root, 'train', { size: 32 }).fingerprint()).not.toBe(fp);
    expect(new CelebaDataset(root, 'test').fingerprint()).not.toBe(fp);
    expect(new CelebaDataset(root, 'train', { attributes: ['Young'] }).fingerprint()).not.toBe(fp);
  });
});

describe('CelebA errors: one line, naming the file', () => {
  it('missing root, image directory, list files', () => {
    expect(userError(() => new CelebaDataset(join(tmp, 'nope'), 'train'))).toMatch(/nope: CelebA root directory not found/);
    expect(userError(() => new CelebaDataset(makeRoot({ imageDir: false }), 'train'))).toMatch(/img_align_celeba: image directory not found/);
    expect(userError(() => new CelebaDataset(makeRoot({ attr: null }), 'train'))).toMatch(/list_attr_celeba\.txt: file not found/);
    expect(userError(() => new CelebaDataset(makeRoot({ part: null }), 'train'))).toMatch(/list_eval_partition\.txt: file not found/);
  });

  it('attribute file: wrong header', () => {
    const rows = FILES.map((_, i) => attrRow(i));
    const noCount = `${ATTRS.join(' ')}\n${rows.join('\n')}\n`;
    expect(userError(() => new CelebaDataset(makeRoot({ attr: noCount }), 'train'))).toMatch(
      /list_attr_celeba\.txt: line 1: expected the number of images, found '5_o_Clock_Shadow/,
    );
    const noNames = `6\n${rows.join('\n')}\n`;
    expect(userError(() => new CelebaDataset(makeRoot({ attr: noNames }), 'train'))).toMatch(/list_attr_celeba\.txt: line 2: expected the attribute names, found '000001\.jpg/);
    const dup = attrText(undefined, undefined, [...ATTRS.slice(0, 39), 'Smiling']);
    expect(userError(() => new CelebaDataset(makeRoot({ attr: dup }), 'train'))).toMatch(/line 2: attribute 'Smiling' is named twice/);
  });

  it('attribute file: wrong count', () => {
    expect(userError(() => new CelebaDataset(makeRoot({ attr: attrText(undefined, 7) }), 'train'))).toMatch(
      /list_attr_celeba\.txt: line 1 declares 7 images but the file lists 6/,
    );
    expect(userError(() => new CelebaDataset(makeRoot({ attr: attrText(undefined, 5) }), 'train'))).toMatch(
      /list_attr_celeba\.txt: line 8: more images than the 5 declared on line 1/,
    );
    expect(userError(() => new CelebaDataset(makeRoot({ attr: attrText(undefined, 1e9) }), 'train'))).toMatch(/declares 1000000000 images/);
  });

  it('attribute file: a value other than ±1', () => {
    const rows = FILES.map((_, i) => attrRow(i));
    rows[2] = attrRow(2, ATTRS.map((_, j) => (j === 4 ? 0 : attr(2, j))));
    expect(userError(() => new CelebaDataset(makeRoot({ attr: attrText(rows) }), 'train'))).toMatch(
      /list_attr_celeba\.txt: line 5: value '0' of attribute Bald for 000003\.jpg is not 1 or -1/,
    );
    rows[2] = attrRow(2, ATTRS.map((_, j) => (j === 39 ? 'yes' : attr(2, j))));
    expect(userError(() => new CelebaDataset(makeRoot({ attr: attrText(rows) }), 'train'))).toMatch(/line 5: value 'yes' of attribute Young/);
  });

  it('attribute file: a wrong number of columns, a duplicate image', () => {
    const rows = FILES.map((_, i) => attrRow(i));
    rows[1] = attrRow(1, ATTRS.slice(1).map((_, j) => attr(1, j)));
    expect(userError(() => new CelebaDataset(makeRoot({ attr: attrText(rows) }), 'train'))).toMatch(
      /list_attr_celeba\.txt: line 4: has 40 columns, expected 41 \(a file name and 40 values\)/,
    );
    const dupRows = FILES.map((_, i) => attrRow(i));
    dupRows[3] = dupRows[0]!;
    expect(userError(() => new CelebaDataset(makeRoot({ attr: attrText(dupRows) }), 'train'))).toMatch(/line 6: image 000001\.jpg is listed twice \(also on line 3\)/);
  });

  it('partition file: unknown images, bad partitions, bad columns, duplicates', () => {
    const lines = FILES.map((f, i) => `${f} ${PARTS[i]}`);
    expect(userError(() => new CelebaDataset(makeRoot({ part: partText([...lines, '000099.jpg 0']) }), 'train'))).toMatch(
      /list_eval_partition\.txt: line 7: image 000099\.jpg is not listed in list_attr_celeba\.txt/,
    );
    const bad = [...lines];
    bad[1] = '000002.jpg 3';
    expect(userError(() => new CelebaDataset(makeRoot({ part: partText(bad) }), 'train'))).toMatch(/list_eval_partition\.txt: line 2: partition '3' of 000002\.jpg is not 0/);
    bad[1] = '000002.jpg';
    expect(userError(() => new CelebaDataset(makeRoot({ part: partText(bad) }), 'train'))).toMatch(/list_eval_partition\.txt: line 2: has 1 columns, expected 2/);
    expect(userError(() => new CelebaDataset(makeRoot({ part: partText([...lines, '000001.jpg 2']) }), 'train'))).toMatch(/line 7: image 000001\.jpg is listed twice/);
    // Images without a partition line are in no split.
    expect(new CelebaDataset(makeRoot({ part: partText(lines.slice(1)) }), 'train').files).toEqual(FILES.slice(1, 3));
  });

  it('an undecodable or missing JPEG, when it is read', () => {
    const r = makeRoot({ extra: { '000001.jpg': jpegs[0]!, '000002.jpg': Uint8Array.from([1, 2, 3, 4, 5]), '000003.jpg': jpegs[2]!.subarray(0, 300) } });
    const ds = new CelebaDataset(r, 'train');
    expect(ds.get(0).x.length).toBe(3 * 64 * 64);
    expect(userError(() => ds.get(1))).toMatch(/img_align_celeba\/000002\.jpg: cannot decode the JPEG \(SOI not found\)/);
    expect(userError(() => ds.get(2))).toMatch(/img_align_celeba\/000003\.jpg: cannot decode the JPEG/);
    const test = new CelebaDataset(r, 'test');
    expect(userError(() => test.get(0))).toMatch(/img_align_celeba\/000005\.jpg: file not found/);
    expect(userError(() => test.fingerprint())).toMatch(/000005\.jpg: image file not found/);
    expect(userError(() => ds.get(3))).toMatch(/example index 3 is out of range for the train split of celeba/);
    expect(userError(() => new CelebaDataset(r, 'train', { size: 0 }))).toMatch(/size must be an integer/);
  });
});
