/**
 * Issue 13 (hardening), data layer: integer safetensors dtypes (PyTorch state_dicts), BatchNorm
 * statistics in weights files, non-regular files, IDX header problems, empty splits.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { userError } from '../../test/expect-user-error.js';
import { Tensor } from '../engine/tensor.js';
import { initModel } from '../nn/models.js';
import { modelFromSpec } from '../nn/spec.js';
import { CelebaDataset } from './celeba.js';
import { encodeIdx, loadMnistLike, parseIdx, readIdx } from './idx.js';
import { checkRegularFile } from './read-file.js';
import { openDataset } from './registry.js';
import { parseSafetensors, readSafetensors } from './safetensors.js';
import { loadModelState, loadModelWeights } from './weights.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-hardening-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface RawEntry {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** A safetensors file built by hand (any dtype), tensors in the given order. */
function stFile(entries: RawEntry[]): Uint8Array {
  let off = 0;
  const hdr: Record<string, unknown> = {};
  for (const e of entries) {
    hdr[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  let json = JSON.stringify(hdr);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const h = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + h.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  let p = 8 + h.length;
  for (const e of entries) {
    out.set(e.bytes, p);
    p += e.bytes.length;
  }
  return out;
}

const i64 = (...v: bigint[]) => new Uint8Array(BigInt64Array.from(v).buffer);
const i32 = (...v: number[]) => new Uint8Array(Int32Array.from(v).buffer);
const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);
const f32t = (t: Tensor) => new Uint8Array(Float32Array.from(t.data).buffer);

const BN_SPEC = {
  input: [1, 28, 28],
  layers: [{ type: 'conv2d', out: 4, kernel: 3 }, { type: 'batchnorm2d' }, { type: 'tanh' }, { type: 'flatten' }, { type: 'linear', out: 10 }],
};
const bnModel = modelFromSpec(BN_SPEC, 'bn');

/** A PyTorch-like state_dict of the BN model: F32 parameters and statistics, I64 num_batches_tracked. */
function stateDict(opts: { drop?: string[]; intParam?: string } = {}): Uint8Array {
  const params = initModel(bnModel, 3, 'float32');
  const entries: RawEntry[] = [];
  for (const [k, shape] of Object.entries(bnModel.paramShapes)) {
    if (k === opts.intParam) entries.push({ name: k, dtype: 'I64', shape: [...shape], bytes: i64(...Array.from(params[k]!.data, () => 1n)) });
    else entries.push({ name: k, dtype: 'F32', shape: [...shape], bytes: f32t(params[k]!) });
  }
  for (const [k, shape] of Object.entries(bnModel.bufferShapes)) {
    if (k.endsWith('.num_batches_tracked')) entries.push({ name: k, dtype: 'I64', shape: [...shape], bytes: i64(1234n) });
    else if (k.endsWith('.running_mean')) entries.push({ name: k, dtype: 'F32', shape: [...shape], bytes: f32(0.5, -0.25, 0.125, 1) });
    else entries.push({ name: k, dtype: 'F32', shape: [...shape], bytes: f32(2, 3, 4, 5) });
  }
  return stFile(entries.filter((e) => !opts.drop?.includes(e.name)));
}

function write(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

describe('safetensors: integer dtypes (point 3)', () => {
  it('reads I64, I32, U8 and BOOL as float64 tensors of the values, and reports the stored dtypes', () => {
    const bytes = stFile([
      { name: 'a', dtype: 'I64', shape: [3], bytes: i64(-(2n ** 53n), 7n, 2n ** 53n) },
      { name: 'b', dtype: 'I32', shape: [2], bytes: i32(-5, 2 ** 31 - 1) },
      { name: 'c', dtype: 'U8', shape: [3], bytes: Uint8Array.from([0, 128, 255]) },
      { name: 'd', dtype: 'BOOL', shape: [2], bytes: Uint8Array.from([1, 0]) },
      { name: 'e', dtype: 'F32', shape: [], bytes: f32(1.5) },
    ]);
    const { tensors, dtypes } = parseSafetensors(bytes, 'ints.st');
    expect(dtypes).toEqual({ a: 'I64', b: 'I32', c: 'U8', d: 'BOOL', e: 'F32' });
    expect(tensors['a']!.dtype).toBe('float64');
    expect(tensors['a']!.toArray()).toEqual([-(2 ** 53), 7, 2 ** 53]);
    expect(tensors['b']!.toArray()).toEqual([-5, 2 ** 31 - 1]);
    expect(tensors['c']!.toArray()).toEqual([0, 128, 255]);
    expect(tensors['d']!.toArray()).toEqual([1, 0]);
    expect(tensors['d']!.dtype).toBe('float64');
    expect(tensors['e']!.dtype).toBe('float32');
  });

  it('a scalar I64 (num_batches_tracked) at an unaligned offset', () => {
    const bytes = stFile([
      { name: 'm', dtype: 'U8', shape: [3], bytes: Uint8Array.from([1, 2, 3]) },
      { name: 'n', dtype: 'I64', shape: [], bytes: i64(42n) },
    ]);
    expect(parseSafetensors(bytes, 'x').tensors['n']!.toArray()).toEqual([42]);
  });

  it('I64 beyond ±2^53 and BOOL bytes other than 0/1 are refused, naming the tensor', () => {
    const big = stFile([{ name: 'bn.num_batches_tracked', dtype: 'I64', shape: [2], bytes: i64(1n, 2n ** 53n + 1n) }]);
    expect(userError(() => parseSafetensors(big, 'w.st'))).toBe(
      'w.st: tensor "bn.num_batches_tracked" (I64) has the value 9007199254740993 at index [1] (flat 1), outside ±2^53 where float64' +
        ' holds every integer exactly; I64 tensors are read only within ±2^53',
    );
    const neg = stFile([{ name: 'n', dtype: 'I64', shape: [], bytes: i64(-(2n ** 62n)) }]);
    expect(userError(() => parseSafetensors(neg, 'w.st'))).toContain('value -4611686018427387904');
    const bool = stFile([{ name: 'mask', dtype: 'BOOL', shape: [2], bytes: Uint8Array.from([1, 2]) }]);
    expect(userError(() => parseSafetensors(bool, 'w.st'))).toContain('tensor "mask" (BOOL) has byte 2 at index [1] (flat 1), not 0 or 1');
  });

  it('the strict size checks use the integer item sizes', () => {
    const short = stFile([{ name: 'n', dtype: 'I64', shape: [2], bytes: i64(1n) }]);
    expect(userError(() => parseSafetensors(short, 'w.st'))).toBe('w.st: tensor "n" has 8 bytes of data but shape [2] of I64 needs 16');
    const u8 = stFile([{ name: 'u', dtype: 'U8', shape: [2, 2], bytes: Uint8Array.from([1, 2, 3]) }]);
    expect(userError(() => parseSafetensors(u8, 'w.st'))).toBe('w.st: tensor "u" has 3 bytes of data but shape [2,2] of U8 needs 4');
  });

  it('F16 and BF16 load (as float32); other dtypes stay refused, with the list of supported dtypes', () => {
    const half = stFile([{ name: 'w', dtype: 'F16', shape: [2], bytes: new Uint8Array(4) }]);
    expect(parseSafetensors(half, 'w.st').tensors['w']!.dtype).toBe('float32');
    const bytes = stFile([{ name: 'w', dtype: 'U16', shape: [2], bytes: new Uint8Array(4) }]);
    expect(userError(() => parseSafetensors(bytes, 'w.st'))).toBe(
      'w.st: tensor "w" has dtype U16, which is not supported (supported: F32, F64, F16, BF16, and the integer dtypes I64, I32, U8 and BOOL);' +
        ' convert it to float32 or float64 first',
    );
  });
});

describe('weights: PyTorch state_dicts and BatchNorm statistics (points 2 and 3)', () => {
  it('a BatchNorm state_dict with I64 num_batches_tracked loads, with its statistics', () => {
    const p = write('bn.safetensors', stateDict());
    const st = loadModelState(bnModel, p, 'float64');
    expect(st.freshBnStats).toBe(false);
    expect(st.buffers['1.running_mean']!.toArray()).toEqual([0.5, -0.25, 0.125, 1]);
    expect(st.buffers['1.running_var']!.toArray()).toEqual([2, 3, 4, 5]);
    expect(st.buffers['1.num_batches_tracked']!.toArray()).toEqual([1234]);
    expect(st.params['0.weight']!.dtype).toBe('float64');
    expect(Object.keys(st.params)).toEqual(Object.keys(bnModel.paramShapes));
    // the library's loadModelWeights takes the same file (it refused the buffers before)
    expect(Object.keys(loadModelWeights(bnModel, p, 'float32'))).toEqual(Object.keys(bnModel.paramShapes));
  });

  it('missing running statistics are an error naming them; freshBnStats gives mean 0, variance 1', () => {
    const p = write('nostats.safetensors', stateDict({ drop: ['1.running_mean', '1.running_var', '1.num_batches_tracked'] }));
    expect(userError(() => loadModelState(bnModel, p, 'float64'))).toBe(
      `${p}: BatchNorm running statistics missing: 1.running_mean, 1.running_var; save the full state_dict,` +
        ' or pass --fresh-bn-stats to use fresh statistics (running_mean 0, running_var 1)',
    );
    expect(userError(() => loadModelWeights(bnModel, p, 'float64'))).toContain('1.running_mean');
    const onlyVar = write('novar.safetensors', stateDict({ drop: ['1.running_var'] }));
    expect(userError(() => loadModelState(bnModel, onlyVar, 'float64'))).toContain('running statistics missing: 1.running_var;');
    const fresh = loadModelState(bnModel, p, 'float64', { freshBnStats: true });
    expect(fresh.freshBnStats).toBe(true);
    expect(fresh.buffers['1.running_mean']!.toArray()).toEqual([0, 0, 0, 0]);
    expect(fresh.buffers['1.running_var']!.toArray()).toEqual([1, 1, 1, 1]);
    // fresh means fresh: a file's own statistics are not used either
    const full = loadModelState(bnModel, write('full.safetensors', stateDict()), 'float64', { freshBnStats: true });
    expect(full.buffers['1.running_var']!.toArray()).toEqual([1, 1, 1, 1]);
  });

  it('a missing num_batches_tracked alone is accepted (a counter that eval mode never reads)', () => {
    const p = write('nonbt.safetensors', stateDict({ drop: ['1.num_batches_tracked'] }));
    const st = loadModelState(bnModel, p, 'float64');
    expect(st.buffers['1.running_var']!.toArray()).toEqual([2, 3, 4, 5]);
    expect(st.buffers['1.num_batches_tracked']!.toArray()).toEqual([0]);
  });

  it('an integer tensor is never taken as a parameter', () => {
    const p = write('intparam.safetensors', stateDict({ intParam: '4.bias' }));
    expect(userError(() => loadModelState(bnModel, p, 'float64'))).toBe(
      `${p}: parameter 4.bias is stored as I64, an integer dtype; parameters must be F32 or F64` +
        ' (integer tensors load only as buffers such as num_batches_tracked)',
    );
  });
});

describe('non-regular files are refused before reading (point 10b)', () => {
  it('/dev/zero as weights, IDX or anything', () => {
    if (!existsSync('/dev/zero')) return;
    expect(userError(() => readSafetensors('/dev/zero'))).toBe('/dev/zero: is a character device, not a regular file; give a file');
    expect(userError(() => readIdx('/dev/zero'))).toBe('/dev/zero: is a character device, not a regular file; give a file');
  });

  it('a FIFO is not opened (opening one would block until a writer comes)', () => {
    const fifo = join(dir, 'pipe');
    try {
      execFileSync('mkfifo', [fifo]);
    } catch {
      return; // no mkfifo on this platform
    }
    expect(userError(() => checkRegularFile(fifo))).toBe(`${fifo}: is a named pipe (FIFO), not a regular file; give a file`);
    expect(userError(() => readSafetensors(fifo))).toContain('named pipe');
    // an IDX directory whose image file is a FIFO
    const d = join(dir, 'fifo-idx');
    mkdirSync(d);
    execFileSync('mkfifo', [join(d, 'train-images-idx3-ubyte')]);
    writeFileSync(join(d, 'train-labels-idx1-ubyte'), encodeIdx({ type: 'uint8', dims: [1], data: Uint8Array.of(3) }));
    expect(userError(() => loadMnistLike(d, 'train'))).toContain('train-images-idx3-ubyte: is a named pipe (FIFO)');
    // a CelebA root whose attribute list is a FIFO
    const c = join(dir, 'fifo-celeba');
    mkdirSync(join(c, 'img_align_celeba'), { recursive: true });
    execFileSync('mkfifo', [join(c, 'list_attr_celeba.txt')]);
    writeFileSync(join(c, 'list_eval_partition.txt'), '000001.jpg 0\n');
    expect(userError(() => new CelebaDataset(c, 'train'))).toContain('list_attr_celeba.txt: is a named pipe (FIFO)');
  });
});

describe('IDX header problems say what they are (point 13e)', () => {
  const uint8Images = () => encodeIdx({ type: 'uint8', dims: [2, 3, 2], data: new Uint8Array(12) });

  it('a wrong type code is reported as such, not as truncation', () => {
    const bytes = uint8Images();
    bytes[2] = 0x0c; // int32, but the data is 12 bytes of uint8
    expect(userError(() => parseIdx(bytes, 'f.idx'))).toBe(
      "f.idx: IDX header has type code 0x0C (int32), but the 12 data bytes fit dims [2,3,2] of 0x08 (uint8) or 0x09 (int8); the header's type code is wrong",
    );
    const d = join(dir, 'wrong-type');
    mkdirSync(d);
    writeFileSync(join(d, 'train-images-idx3-ubyte'), bytes);
    writeFileSync(join(d, 'train-labels-idx1-ubyte'), encodeIdx({ type: 'uint8', dims: [2], data: Uint8Array.of(1, 2) }));
    expect(userError(() => loadMnistLike(d, 'train'))).toBe(
      `${join(d, 'train-images-idx3-ubyte')}: IDX header has type code 0x0C (int32), expected 0x08 (uint8) for MNIST-format images;` +
        ' the file holds other data or its header is wrong',
    );
  });

  it('a wrong number of dimensions and an unknown type code name themselves', () => {
    const d = join(dir, 'wrong-ndims');
    mkdirSync(d);
    writeFileSync(join(d, 'train-images-idx3-ubyte'), encodeIdx({ type: 'uint8', dims: [2, 3, 2], data: new Uint8Array(12) }));
    writeFileSync(join(d, 'train-labels-idx1-ubyte'), encodeIdx({ type: 'uint8', dims: [2, 1], data: Uint8Array.of(1, 2) }));
    expect(userError(() => loadMnistLike(d, 'train'))).toBe(
      `${join(d, 'train-labels-idx1-ubyte')}: IDX header declares 2 dimensions, expected 1 for MNIST-format labels; the file holds other data or its header is wrong`,
    );
    expect(userError(() => parseIdx(Uint8Array.from([0, 0, 0x0a, 1, 0, 0, 0, 0]), 'f.idx'))).toBe(
      'f.idx: unknown IDX type code 0x0A in the header (known: 0x08 (uint8), 0x09 (int8), 0x0B (int16), 0x0C (int32), 0x0D (float32),' +
        ' 0x0E (float64)); not an IDX file or a corrupt header',
    );
  });
});

describe('an empty split is an error (point 7)', () => {
  it('IDX files with 0 examples', () => {
    const d = join(dir, 'empty-idx');
    mkdirSync(d);
    writeFileSync(join(d, 'train-images-idx3-ubyte'), encodeIdx({ type: 'uint8', dims: [0, 28, 28], data: new Uint8Array(0) }));
    writeFileSync(join(d, 'train-labels-idx1-ubyte'), encodeIdx({ type: 'uint8', dims: [0], data: new Uint8Array(0) }));
    expect(userError(() => openDataset(d, 'train'))).toBe(
      `${join(d, 'train-images-idx3-ubyte')}, ${join(d, 'train-labels-idx1-ubyte')}: the train split of fashion-mnist is empty` +
        ' (the IDX files hold 0 examples); a split needs at least one example',
    );
  });

  it('limit 0 and synthetic length 0', () => {
    expect(userError(() => openDataset('fashion-mnist', 'test', { limit: 0 }))).toMatch(
      /t10k-images-idx3-ubyte(\.gz)?, .*t10k-labels-idx1-ubyte(\.gz)?: the test split of fashion-mnist is empty \(limit 0 keeps no example\)/,
    );
    expect(userError(() => openDataset('synthetic', 'train', { length: 0 }))).toBe(
      'synthetic: the train split is empty (length 0); give a length of at least 1',
    );
    expect(openDataset('synthetic', 'train', { length: 1, size: 16 }).length).toBe(1);
  });
});
