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
    for (const dt of ['I16', 'U32', 'F8_E4M3']) {
      const msg = userError(() => parseSafetensors(fileOf({ 'fc1.weight': { dtype: dt, shape: [2], data_offsets: [0, 2] } }, [0, 0]), 'w.st'));
      expect(msg).toBe(
        `w.st: tensor "fc1.weight" has dtype ${dt}, which is not supported (supported: F32, F64, F16, BF16, and the integer dtypes I64, I32, U8 and BOOL); convert it to float32 or float64 first`,
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

describe('safetensors: half precision (F16, BF16) and I64', () => {
  const u16le = (...xs: number[]) => new Uint8Array(new Uint16Array(xs).buffer);
  const half = (dtype: string, bits: number[]) =>
    fileOf({ h: { dtype, shape: [bits.length], data_offsets: [0, 2 * bits.length] } }, u16le(...bits));

  it('F16 known values load exactly as float32 (default) or float64: normal, largest, subnormals, signed zero, inf, NaN', () => {
    // 1.0, -2.5, 65504 (largest), 2^-24 (smallest subnormal), 1023·2^-24 (largest subnormal), 2^-14 (smallest normal), -0
    const bits = [0x3c00, 0xc100, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000];
    const want = [1, -2.5, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, -0];
    const f = parseSafetensors(half('F16', bits), 'h.st');
    expect(f.tensors['h']!.dtype).toBe('float32');
    expect(f.dtypes['h']).toBe('F16');
    expect(Array.from(f.tensors['h']!.data)).toEqual(want);
    expect(Object.is(f.tensors['h']!.data[6], -0)).toBe(true);
    const d = parseSafetensors(half('F16', bits), 'h.st', { float: 'float64' });
    expect(d.tensors['h']!.dtype).toBe('float64');
    expect(Array.from(d.tensors['h']!.data)).toEqual(want);
    const inf = parseSafetensors(half('F16', [0x7c00, 0xfc00, 0x7e00]), 'h.st', { allowNonFinite: true });
    expect(Array.from(inf.tensors['h']!.data)).toEqual([Infinity, -Infinity, NaN]);
    // non-finite values are refused by default, as for F32
    expect(userError(() => parseSafetensors(half('F16', [0x3c00, 0x7e00]), 'h.st'))).toMatch(/^h\.st: tensor "h" has a non-finite value \(NaN\) at index \[1\]/);
  });

  it('BF16 known values: the upper half of a float32', () => {
    // 1.0, -2.5, largest finite (0x7f7f = 3.3895314e38), 2^-133 (smallest subnormal), inf, NaN
    const f = parseSafetensors(half('BF16', [0x3f80, 0xc020, 0x7f7f, 0x0001, 0x7f80, 0x7fc0]), 'b.st', { allowNonFinite: true });
    expect(f.tensors['h']!.dtype).toBe('float32');
    expect(f.dtypes['h']).toBe('BF16');
    const v = Array.from(f.tensors['h']!.data);
    expect(v.slice(0, 2)).toEqual([1, -2.5]);
    expect(v[2]).toBe(Math.fround(3.3895313892515355e38));
    expect(v[2]).toBe((2 - 2 ** -7) * 2 ** 127);
    expect(v[3]).toBe(2 ** -133);
    expect(v[4]).toBe(Infinity);
    expect(v[5]).toBeNaN();
    expect(userError(() => parseSafetensors(half('BF16', [0xff80]), 'b.st'))).toContain('non-finite value (-Infinity)');
  });

  it('I64 round trip: written from integer-valued tensors (bytes as PyTorch writes them), read back as float64; I64 first in the buffer', () => {
    const t = {
      'bn.num_batches_tracked': new Tensor(Float64Array.of(123), []),
      big: new Tensor(Float64Array.of(-(2 ** 53), 2 ** 53, 0, -7), [2, 2]),
      w: tensor([1.5], [1], 'float64'),
      x: tensor([0.25], [1], 'float32'),
    };
    const bytes = serializeSafetensors(t, { format: 'x' }, { stored: { 'bn.num_batches_tracked': 'I64', big: 'I64' } });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; data_offsets: number[] }>;
    // the reference's dtype order, descending: I64, F64, F32
    expect(Object.keys(header)).toEqual(['__metadata__', 'big', 'bn.num_batches_tracked', 'w', 'x']);
    expect(header['bn.num_batches_tracked']).toEqual({ dtype: 'I64', shape: [], data_offsets: [32, 40] });
    const view = new DataView(bytes.buffer, 8 + n);
    expect(view.getBigInt64(32, true)).toBe(123n);
    expect(view.getBigInt64(0, true)).toBe(-(2n ** 53n));
    const back = parseSafetensors(bytes, 'i.st');
    expect(back.dtypes).toEqual({ big: 'I64', 'bn.num_batches_tracked': 'I64', w: 'F64', x: 'F32' });
    expect(back.tensors['big']!.toArray()).toEqual([-(2 ** 53), 2 ** 53, 0, -7]);
    expect(back.tensors['bn.num_batches_tracked']!.toArray()).toEqual([123]);
    expect(back.tensors['bn.num_batches_tracked']!.dtype).toBe('float64');
    // a float32 tensor of integers can be written as I64 too
    const f = parseSafetensors(serializeSafetensors({ c: tensor([3, 4], [2], 'float32') }, undefined, { stored: { c: 'I64' } }), 'c.st');
    expect(f.dtypes['c']).toBe('I64');
    expect(f.tensors['c']!.toArray()).toEqual([3, 4]);
  });

  it('I64 refuses non-integers, values beyond ±2^53 and unknown names, naming the tensor', () => {
    expect(userError(() => serializeSafetensors({ n: tensor([1, 2.5], [2], 'float64') }, undefined, { stored: { n: 'I64' } }))).toBe(
      'cannot write "n" as I64: value 2.5 at flat index 1 is not an integer within ±2^53',
    );
    expect(userError(() => serializeSafetensors({ n: tensor([2 ** 54], [1], 'float64') }, undefined, { stored: { n: 'I64' } }))).toContain(
      'not an integer within ±2^53',
    );
    expect(userError(() => serializeSafetensors({ n: tensor([NaN], [1], 'float64') }, undefined, { stored: { n: 'I64' } }))).toContain('value NaN');
    expect(userError(() => serializeSafetensors({ n: tensor([1], [1], 'float64') }, undefined, { stored: { m: 'I64' } }))).toBe(
      'cannot write "m" as I64: no such tensor',
    );
  });
});
