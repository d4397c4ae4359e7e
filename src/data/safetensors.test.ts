import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor, tensor } from '../engine/tensor.js';
import {
  checkParamShapes,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from './safetensors.js';
import { userError } from '../../test/expect-user-error.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-safetensors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ascii = (s: string) => new TextEncoder().encode(s);

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const arrs = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrs.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of arrs) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u64le(n: number): number[] {
  const b = new Array<number>(8).fill(0);
  for (let i = 0; i < 8; i++) b[i] = Math.floor(n / 2 ** (8 * i)) % 256;
  return b;
}

/** A file from a header string (padded to a multiple of 8 as the writer does) and a data buffer. */
function fileOf(header: string | object, data: Uint8Array | number[] = [], pad = true): Uint8Array {
  let h = typeof header === 'string' ? header : JSON.stringify(header);
  if (pad) while (h.length % 8 !== 0) h += ' ';
  return concat(u64le(h.length), ascii(h), data);
}

function f32le(...xs: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(xs).buffer);
}
function f64le(...xs: number[]): Uint8Array {
  return new Uint8Array(new Float64Array(xs).buffer);
}


describe('safetensors: known bytes (hand-built from the spec)', () => {
  it('one F32 tensor', () => {
    const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    expect(header.length).toBe(54); // padded with 2 spaces to 56
    const expected = concat(
      [56, 0, 0, 0, 0, 0, 0, 0],
      ascii(header + '  '),
      [0x00, 0x00, 0x80, 0x3f], // 1.0f
      [0x00, 0x00, 0x00, 0xc0], // -2.0f
    );
    const bytes = serializeSafetensors({ a: tensor([1, -2], [2], 'float32') });
    expect(Array.from(bytes)).toEqual(Array.from(expected));
    const back = parseSafetensors(expected, 'known.safetensors');
    expect(back.tensors['a']!.dtype).toBe('float32');
    expect(back.tensors['a']!.toArray()).toEqual([1, -2]);
    expect(back.metadata).toEqual({});
  });

  it('mixed dtypes and metadata: __metadata__ first, F64 before F32, then by name', () => {
    const header =
      '{"__metadata__":{"format":"pt","step":"7"},' +
      '"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},' +
      '"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]},' +
      '"c":{"dtype":"F32","shape":[0,3],"data_offsets":[12,12]}}';
    const pad = (8 - (header.length % 8)) % 8;
    const expected = concat(
      u64le(header.length + pad),
      ascii(header + ' '.repeat(pad)),
      [0, 0, 0, 0, 0, 0, 0xe0, 0x3f], // 0.5 as f64
      [0x00, 0x00, 0x40, 0x40], // 3.0f
    );
    const bytes = serializeSafetensors(
      {
        c: new Tensor(new Float32Array(0), [0, 3]),
        b: tensor([3], [], 'float32'),
        w: tensor([0.5], [1], 'float64'),
      },
      { step: '7', format: 'pt' },
    );
    expect(Array.from(bytes)).toEqual(Array.from(expected));
    expect((8 + header.length + pad) % 8).toBe(0);
  });

  it('reads a header with keys in any order and no padding', () => {
    const bytes = fileOf(
      '{"z":{"data_offsets":[8,16],"shape":[2],"dtype":"F32"},"y":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}',
      concat(f32le(1, 2), f32le(3, 4)),
      false,
    );
    const { tensors } = parseSafetensors(bytes, 'x');
    expect(tensors['y']!.shape).toEqual([1, 2]);
    expect(tensors['y']!.toArray()).toEqual([1, 2]);
    expect(tensors['z']!.toArray()).toEqual([3, 4]);
  });
});

describe('safetensors: round trips', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: 0-d, empty, 1-d, 3-d, metadata`, () => {
      const tree: Record<string, Tensor> = {
        'fc1.weight': tensor(
          Array.from({ length: 24 }, (_, i) => (i - 11.5) / 7),
          [2, 3, 4],
          dtype,
        ),
        'fc1.bias': tensor([0.1, -1e-30, 3e30], [3], dtype),
        scalar: tensor([Math.PI], [], dtype),
        empty: new Tensor(dtype === 'float32' ? new Float32Array(0) : new Float64Array(0), [4, 0]),
        'ünïcødé/名前': tensor([1], [1, 1, 1, 1], dtype),
      };
      const meta = { model: 'mlp', note: 'quotes " and \\ and\nnewline', 'ключ': 'значение' };
      const path = join(dir, `rt-${dtype}.safetensors`);
      writeSafetensors(path, tree, meta);
      const bytes = readFileSync(path);
      const n = Number(bytes.readBigUInt64LE(0));
      expect(n % 8).toBe(0);
      const { tensors, metadata } = readSafetensors(path);
      expect(metadata).toEqual(meta);
      expect(Object.keys(tensors).sort()).toEqual(Object.keys(tree).sort());
      for (const [k, t] of Object.entries(tree)) {
        const u = tensors[k]!;
        expect(u.dtype).toBe(dtype);
        expect(u.shape).toEqual(t.shape);
        expect(Array.from(u.data)).toEqual(Array.from(t.data));
      }
      // Deterministic, and no temp files left behind.
      expect(Array.from(serializeSafetensors(tensors, metadata))).toEqual(Array.from(bytes));
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    });
  }

  it('no metadata → no __metadata__ key; empty tree is valid', () => {
    const bytes = serializeSafetensors({});
    expect(new TextDecoder().decode(bytes.subarray(8)).trimEnd()).toBe('{}');
    expect(parseSafetensors(bytes, 'e')).toEqual({ tensors: {}, metadata: {}, dtypes: {} });
    const withEmptyMeta = serializeSafetensors({ a: tensor([1], [1]) }, {});
    expect(new TextDecoder().decode(withEmptyMeta)).not.toContain('__metadata__');
  });

  it('copies unaligned data into aligned typed arrays that do not alias the input', () => {
    const data = concat(f32le(1), f64le(2.5, -3.25)); // the F64 tensor starts at buffer offset 4
    const header = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F64","shape":[2],"data_offsets":[4,20]}}';
    // Also place the whole file at an odd byteOffset inside a larger buffer.
    const file = fileOf(header, data);
    const host = new Uint8Array(file.length + 3);
    host.set(file, 3);
    const bytes = host.subarray(3);
    const { tensors } = parseSafetensors(bytes, 'unaligned');
    const b = tensors['b']!;
    expect(b.data).toBeInstanceOf(Float64Array);
    expect(b.data.byteOffset % 8).toBe(0);
    expect(b.toArray()).toEqual([2.5, -3.25]);
    host.fill(0);
    expect(b.toArray()).toEqual([2.5, -3.25]);
    expect(tensors['a']!.toArray()).toEqual([1]);
  });

  it('writes F64 tensors at 8-byte-aligned file offsets', () => {
    const bytes = serializeSafetensors({
      a: tensor([1], [1], 'float32'),
      b: tensor([2, 3], [2], 'float64'),
    });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { data_offsets: number[] }>;
    expect(header['b']!.data_offsets).toEqual([0, 16]);
    expect(header['a']!.data_offsets).toEqual([16, 20]);
  });

  it('keeps a tensor named __proto__', () => {
    const tree: Record<string, Tensor> = {};
    Object.defineProperty(tree, '__proto__', { value: tensor([5], [1]), enumerable: true });
    const { tensors } = parseSafetensors(serializeSafetensors(tree), 'p');
    expect(Object.keys(tensors)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(tensors, '__proto__')!.value.toArray()).toEqual([5]);
  });
});

describe('safetensors: rejections', () => {
  const ok = (name = 'a') => ({ [name]: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });

  it('missing file, directory', () => {
    const p = join(dir, 'nope.safetensors');
    expect(userError(() => readSafetensors(p))).toBe(`${p}: file not found; check the path`);
    expect(userError(() => readSafetensors(dir))).toContain('is a directory');
  });

  it('file shorter than 8 bytes', () => {
    expect(userError(() => parseSafetensors(new Uint8Array(5), 'w.st'))).toMatch(/^w\.st: file of 5 bytes is too short/);
  });

  it('header over 100 MB', () => {
    const bytes = concat(u64le(100_000_001), ascii('{}      '));
    expect(userError(() => parseSafetensors(bytes, 'w.st'))).toContain('w.st: header of 100000001 bytes exceeds the 100 MB limit');
    const huge = concat([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(userError(() => parseSafetensors(huge, 'w.st'))).toContain('header of 18446744073709551615 bytes exceeds the 100 MB limit');
  });

  it('header past the end of file', () => {
    const bytes = concat(u64le(64), ascii('{"a":1}'));
    expect(userError(() => parseSafetensors(bytes, 'w.st'))).toContain('header of 64 bytes extends past the end of the file (15 bytes)');
  });

  it('header not JSON / not an object / not UTF-8', () => {
    expect(userError(() => parseSafetensors(fileOf('{"a": '), 'w.st'))).toMatch(/^w\.st: header is not valid JSON/);
    expect(userError(() => parseSafetensors(fileOf('[1,2,3]'), 'w.st'))).toContain('header is not a JSON object');
    expect(userError(() => parseSafetensors(fileOf('null'), 'w.st'))).toContain('header is not a JSON object');
    expect(userError(() => parseSafetensors(concat(u64le(2), [0xc3, 0x28]), 'w.st'))).toContain('not valid UTF-8');
  });

  it('bad metadata', () => {
    expect(userError(() => parseSafetensors(fileOf({ __metadata__: { a: 1 } }), 'w.st'))).toContain('"__metadata__" entry "a" is not a string');
    expect(userError(() => parseSafetensors(fileOf({ __metadata__: [1] }), 'w.st'))).toContain('"__metadata__" is not an object');
  });

  it('entries without valid dtype / shape / data_offsets', () => {
    const f32 = f32le(1, 2);
    expect(userError(() => parseSafetensors(fileOf({ a: 3 }, f32), 'w.st'))).toContain('tensor "a": header entry is not an object');
    expect(userError(() => parseSafetensors(fileOf({ a: { shape: [2], data_offsets: [0, 8] } }, f32), 'w.st'))).toContain(
      'tensor "a": header entry has no valid "dtype"',
    );
    expect(userError(() => parseSafetensors(fileOf({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32), 'w.st'))).toContain(
      'tensor "a": header entry has no valid "shape"',
    );
    expect(userError(() => parseSafetensors(fileOf({ a: { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] } }, f32), 'w.st'))).toContain(
      'no valid "shape"',
    );
    expect(userError(() => parseSafetensors(fileOf({ a: { dtype: 'F32', shape: [2] } }, f32), 'w.st'))).toContain(
      'tensor "a": header entry has no valid "data_offsets"',
    );
    expect(userError(() => parseSafetensors(fileOf({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8, 9] } }, f32), 'w.st'))).toContain(
      'no valid "data_offsets"',
    );
  });

  it('unsupported dtypes name the tensor and the dtype', () => {
    for (const dt of ['F16', 'BF16', 'I16', 'U32', 'F8_E4M3']) {
      const msg = userError(() => parseSafetensors(fileOf({ 'fc1.weight': { dtype: dt, shape: [2], data_offsets: [0, 2] } }, [0, 0]), 'w.st'));
      expect(msg).toBe(
        `w.st: tensor "fc1.weight" has dtype ${dt}, which is not supported (supported: F32, F64, and the integer dtypes I64, I32, U8 and BOOL); convert it to float32 or float64 first`,
      );
    }
  });

  it('offsets out of order, overlapping, outside the buffer, gaps, trailing bytes', () => {
    const d16 = f32le(1, 2, 3, 4);
    expect(userError(() => parseSafetensors(fileOf({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, d16), 'w.st'))).toContain(
      'tensor "a" has data_offsets [8,0] out of order',
    );
    const overlap = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    expect(userError(() => parseSafetensors(fileOf(overlap, f32le(1, 2, 3)), 'w.st'))).toContain(
      'tensor "b" has data_offsets [4,12] overlapping tensor "a" [0,8]',
    );
    expect(userError(() => parseSafetensors(fileOf({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32le(1, 2)), 'w.st'))).toContain(
      'tensor "a" has data_offsets [0,16] outside the byte buffer of 8 bytes',
    );
    expect(userError(() => parseSafetensors(fileOf({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, d16), 'w.st'))).toContain(
      'leaving a gap of 8 unused bytes at offset 0',
    );
    expect(userError(() => parseSafetensors(fileOf(ok(), d16), 'w.st'))).toContain('8 trailing bytes after the last tensor');
  });

  it('byte length ≠ product(shape) × itemsize', () => {
    const h = { a: { dtype: 'F64', shape: [3], data_offsets: [0, 16] } };
    expect(userError(() => parseSafetensors(fileOf(h, f64le(1, 2)), 'w.st'))).toBe(
      'w.st: tensor "a" has 16 bytes of data but shape [3] of F64 needs 24',
    );
  });

  it('NaN / Inf name the tensor and the first bad index; allowNonFinite skips the check', () => {
    const t = tensor([0, 1, 2, 3, NaN, Infinity], [2, 3], 'float32');
    const bytes = serializeSafetensors({ 'fc1.weight': t, ok: tensor([1], [1]) });
    expect(userError(() => parseSafetensors(bytes, 'w.st'))).toBe(
      'w.st: tensor "fc1.weight" has a non-finite value (NaN) at index [1,1] (flat 4); non-finite weights cannot be analysed' +
        ' and no lie-bracket flag loads them (library: readSafetensors(path, {allowNonFinite: true}))',
    );
    const inf = serializeSafetensors({ s: tensor([-Infinity], [], 'float64') });
    expect(userError(() => parseSafetensors(inf, 'w.st'))).toContain('tensor "s" has a non-finite value (-Infinity) at index [] (flat 0)');
    const back = parseSafetensors(bytes, 'w.st', { allowNonFinite: true }).tensors['fc1.weight']!;
    expect(back.data[4]).toBeNaN();
    expect(back.data[5]).toBe(Infinity);
  });

  it('writing: reserved name, non-string metadata; atomic write leaves no partial file', () => {
    expect(userError(() => serializeSafetensors({ __metadata__: tensor([1], [1]) }))).toContain('reserved');
    expect(userError(() => serializeSafetensors({}, { a: 1 as unknown as string }))).toContain('metadata "a"');
    const p = join(dir, 'sub', 'deeper', 'x.safetensors');
    writeSafetensors(p, { a: tensor([1], [1]) });
    expect(existsSync(p)).toBe(true);
  });

  it('a corrupt file on disk is reported with its path', () => {
    const p = join(dir, 'bad.safetensors');
    writeFileSync(p, 'not a safetensors file at all');
    expect(userError(() => readSafetensors(p))).toMatch(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: header of \\d+ bytes exceeds the 100 MB limit`));
  });
});

describe('checkParamShapes', () => {
  const expected = { 'fc1.weight': [128, 784], 'fc1.bias': [128], 'fc2.weight': [10, 128], 'fc2.bias': [10] };
  const good = (): Record<string, Tensor> =>
    Object.fromEntries(Object.entries(expected).map(([k, s]) => [k, new Tensor(new Float32Array(s.reduce((a, b) => a * b, 1)), s)]));

  it('accepts a matching tree', () => {
    expect(() => checkParamShapes(good(), expected, 'weights.safetensors', { model: 'mlp' })).not.toThrow();
  });

  it('shape mismatch', () => {
    const t = good();
    t['fc1.weight'] = new Tensor(new Float32Array(7840), [10, 784]);
    expect(userError(() => checkParamShapes(t, expected, 'weights.safetensors', { model: 'mlp' }))).toBe(
      'weights.safetensors: fc1.weight has shape [10,784], model mlp expects [128,784]',
    );
    t['fc1.bias'] = new Tensor(new Float32Array(128), [1, 128]);
    expect(userError(() => checkParamShapes(t, expected, 'w'))).toBe(
      'w: fc1.weight has shape [10,784], the model expects [128,784] (and 1 more problem)',
    );
  });

  it('missing tensor', () => {
    const t = good();
    delete t['fc2.bias'];
    expect(userError(() => checkParamShapes(t, expected, 'w', { model: 'mlp' }))).toBe('w: fc2.bias is missing, model mlp expects shape [10]');
  });

  it('extra tensor, unless allowExtra', () => {
    const t = good();
    t['fc3.weight'] = tensor([1, 2], [2]);
    expect(userError(() => checkParamShapes(t, expected, 'w', { model: 'mlp' }))).toBe(
      'w: fc3.weight (shape [2]) is not a parameter of model mlp',
    );
    expect(() => checkParamShapes(t, expected, 'w', { allowExtra: true })).not.toThrow();
  });
});
