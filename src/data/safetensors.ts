/**
 * Parameter trees (`Record<string, Tensor>`) in the safetensors format
 * (https://github.com/huggingface/safetensors):
 *
 *   [8 bytes: u64 little-endian N] [N bytes: JSON header, space-padded] [byte buffer]
 *
 * The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative
 * to the start of the byte buffer) plus an optional "__metadata__": {string: string}. Data is
 * little-endian, row-major. F32 and F64 are read and written. F16 and BF16 (half-precision
 * PyTorch checkpoints) are read as float32 tensors, or float64 with `ReadOptions.float` (both hold
 * every half value exactly). The integer dtypes of PyTorch state_dicts (I64, e.g. BatchNorm's
 * `num_batches_tracked`; I32, U8 and BOOL) are read too, as float64 tensors of the integer values
 * (I64 values beyond ±2^53 are refused: float64 cannot hold them exactly); `dtypes` keeps each
 * tensor's dtype as stored, so a caller can tell integer buffers from float parameters. Any other
 * dtype (F8, U64, …) is rejected. I64 is written too, from a tensor of integer values
 * (`WriteOptions.stored`), as PyTorch stores `num_batches_tracked`.
 *
 * Writing mirrors the reference (Rust) serializer byte for byte: tensors ordered by dtype, the
 * reference's dtype order descending (I64, F64, F32: every tensor stays aligned to its item size),
 * then by name (byte order);
 * the header lists "__metadata__" first, then the tensors in data order, as compact JSON; the header
 * is padded with spaces to a multiple of 8 bytes. For a single-dtype tree the header keys are thus
 * sorted by name.
 *
 * Reading is as strict as the reference: the tensors must tile the byte buffer exactly (no gaps,
 * no overlaps, no trailing bytes). Every problem is a one-line `UserError` naming the file.
 */
import { type Buf, type DType } from '../engine/dtype.js';
import { fmtShape, sizeOf } from '../engine/shape.js';
import { Tensor } from '../engine/tensor.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { readFileOrExplain } from './read-file.js';

export { readFileOrExplain } from './read-file.js';

/** The reference implementation refuses headers above this many bytes. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

const ST_DTYPE: Record<DType, 'F32' | 'F64'> = { float32: 'F32', float64: 'F64' };
const ITEMSIZE: Record<DType, number> = { float32: 4, float64: 8 };

/** The dtypes read, with their item sizes in bytes. Integer dtypes load as float64 tensors. */
const READ_ITEMSIZE = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1 } as const;
type StDType = keyof typeof READ_ITEMSIZE;
/** The safetensors dtypes that hold integers (loaded as float64 tensors of the values). */
export const INTEGER_DTYPES: readonly string[] = ['I64', 'I32', 'U8', 'BOOL'];
const SUPPORTED_TEXT = 'F32, F64, F16, BF16, and the integer dtypes I64, I32, U8 and BOOL';

/** The dtypes written: a tensor's own (F32, F64), or I64 on request. */
export type WrittenDType = 'F32' | 'F64' | 'I64';
/** The reference serializer's dtype order (its `Dtype` enum), for the tensors' order in the buffer. */
const WRITE_RANK: Record<WrittenDType, number> = { F32: 0, F64: 1, I64: 2 };
const WRITE_ITEMSIZE: Record<WrittenDType, number> = { F32: 4, F64: 8, I64: 8 };

const IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
  /**
   * Each tensor's dtype as stored in the file: F32, F64, or an integer dtype (I64, I32, U8, BOOL)
   * whose values were loaded as a float64 tensor.
   */
  dtypes: Record<string, string>;
}

export interface ReadOptions {
  /** Skip the NaN/Inf check (on by default: a non-finite parameter is almost always a bug). */
  allowNonFinite?: boolean;
  /** The dtype F16 and BF16 tensors load as (default float32; both hold every half value exactly). */
  float?: DType;
}

export interface WriteOptions {
  /**
   * Tensors to store as another dtype than their own: 'I64' for integer buffers such as
   * BatchNorm's `num_batches_tracked` (every value must be an integer within ±2^53).
   */
  stored?: Record<string, 'I64'>;
}

/** Read a .safetensors file. */
export function readSafetensors(path: string, opts: ReadOptions = {}): SafetensorsFile {
  return parseSafetensors(readFileOrExplain(path), path, opts);
}

/** Parse the bytes of a safetensors file; `source` names it in error messages. */
export function parseSafetensors(bytes: Uint8Array, source: string, opts: ReadOptions = {}): SafetensorsFile {
  function fail(msg: string): never {
    throw new UserError(`${source}: ${msg}`);
  }
  if (bytes.length < 8) {
    fail(`file of ${bytes.length} bytes is too short to be a safetensors file (needs at least 8 bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`header of ${n64} bytes exceeds the 100 MB limit; the file is corrupt or not a safetensors file`);
  }
  const n = Number(n64);
  if (8 + n > bytes.length) {
    fail(`header of ${n} bytes extends past the end of the file (${bytes.length} bytes); the file is truncated or not a safetensors file`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8; the file is corrupt or not a safetensors file');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${oneLine((e as Error).message)}); the file is corrupt or not a safetensors file`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail('header is not a JSON object; the file is corrupt or not a safetensors file');
  }
  const hdr = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const rawMeta = hdr[METADATA_KEY];
  if (rawMeta !== undefined && rawMeta !== null) {
    if (typeof rawMeta !== 'object' || Array.isArray(rawMeta)) fail(`"${METADATA_KEY}" is not an object of strings`);
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`"${METADATA_KEY}" entry ${JSON.stringify(k)} is not a string`);
      setOwn(metadata, k, v);
    }
  }

  interface Entry {
    name: string;
    dtype: StDType;
    shape: number[];
    begin: number;
    end: number;
  }
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(hdr)) {
    if (name === METADATA_KEY) continue;
    const what = `tensor ${JSON.stringify(name)}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`${what}: header entry is not an object`);
    const e = raw as Record<string, unknown>;
    const dt = e['dtype'];
    if (typeof dt !== 'string') fail(`${what}: header entry has no valid "dtype"`);
    if (!Object.prototype.hasOwnProperty.call(READ_ITEMSIZE, dt)) {
      return fail(`${what} has dtype ${String(dt)}, which is not supported (supported: ${SUPPORTED_TEXT}); convert it to float32 or float64 first`);
    }
    const dtype = dt as StDType;
    const shape = e['shape'];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      fail(`${what}: header entry has no valid "shape" (expected an array of non-negative integers)`);
    }
    const offs = e['data_offsets'];
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)
    ) {
      fail(`${what}: header entry has no valid "data_offsets" (expected [begin, end], non-negative integers)`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin) fail(`${what} has data_offsets [${begin},${end}] out of order (end before begin)`);
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // The tensors must tile the byte buffer exactly, as the reference implementation requires.
  const dataStart = 8 + n;
  const bufLen = bytes.length - dataStart;
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    const what = `tensor ${JSON.stringify(e.name)}`;
    if (e.end > bufLen) {
      fail(`${what} has data_offsets [${e.begin},${e.end}] outside the byte buffer of ${bufLen} bytes; the file is truncated or corrupt`);
    }
    if (e.begin < pos) {
      fail(`${what} has data_offsets [${e.begin},${e.end}] overlapping tensor ${JSON.stringify(prev?.name)} [${prev?.begin},${prev?.end}]`);
    }
    if (e.begin > pos) {
      fail(`${what} has data_offsets [${e.begin},${e.end}], leaving a gap of ${e.begin - pos} unused bytes at offset ${pos}; the file is corrupt`);
    }
    const want = sizeOf(e.shape) * READ_ITEMSIZE[e.dtype];
    if (e.end - e.begin !== want) {
      fail(`${what} has ${e.end - e.begin} bytes of data but shape ${fmtShape(e.shape)} of ${e.dtype} needs ${want}`);
    }
    pos = e.end;
    prev = e;
  }
  if (pos !== bufLen) {
    fail(`${bufLen - pos} trailing bytes after the last tensor (byte buffer is ${bufLen} bytes, tensors cover ${pos}); the file is corrupt`);
  }

  const tensors: Record<string, Tensor> = {};
  const dtypes: Record<string, string> = {};
  for (const e of entries) {
    setOwn(dtypes, e.name, e.dtype);
    if (e.dtype !== 'F32' && e.dtype !== 'F64' && e.dtype !== 'F16' && e.dtype !== 'BF16') {
      setOwn(tensors, e.name, new Tensor(decodeIntLE(bytes, dataStart + e.begin, e.end - e.begin, e.dtype, e.name, e.shape, fail), e.shape));
      continue;
    }
    // Always copy: the offset in the file need not be aligned, and the result must not alias `bytes`.
    const data =
      e.dtype === 'F16' || e.dtype === 'BF16'
        ? decodeHalfLE(bytes, dataStart + e.begin, e.end - e.begin, e.dtype, opts.float ?? 'float32')
        : decodeLE(bytes, dataStart + e.begin, e.end - e.begin, e.dtype === 'F32' ? 'float32' : 'float64');
    if (!opts.allowNonFinite) {
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i]!)) {
          fail(
            `tensor ${JSON.stringify(e.name)} has a non-finite value (${data[i]}) at index ${fmtIndex(i, e.shape)}` +
              ` (flat ${i}); non-finite weights cannot be analysed and no lie-bracket flag loads them` +
              ' (library: readSafetensors(path, {allowNonFinite: true}))',
          );
        }
      }
    }
    setOwn(tensors, e.name, new Tensor(data, e.shape));
  }
  return { tensors, metadata, dtypes };
}

/** Serialize a parameter tree (and optional string metadata) to safetensors bytes. */
export function serializeSafetensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>, opts: WriteOptions = {}): Uint8Array {
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === METADATA_KEY) throw new UserError(`cannot write a tensor named "${METADATA_KEY}" (reserved by the safetensors format)`);
    const t = tensors[name];
    if (!(t instanceof Tensor)) throw new UserError(`cannot write ${JSON.stringify(name)}: not a concrete Tensor`);
  }
  const stored = (name: string): WrittenDType => {
    const as = opts.stored && Object.prototype.hasOwnProperty.call(opts.stored, name) ? opts.stored[name] : undefined;
    return as ?? ST_DTYPE[tensors[name]!.dtype];
  };
  if (opts.stored) {
    for (const [name, as] of Object.entries(opts.stored)) {
      if (!Object.prototype.hasOwnProperty.call(tensors, name)) throw new UserError(`cannot write ${JSON.stringify(name)} as ${as}: no such tensor`);
      if (as !== 'I64') throw new UserError(`cannot write ${JSON.stringify(name)} as ${String(as)}: only I64 is written besides F32 and F64`);
      const d = tensors[name]!.data;
      for (let i = 0; i < d.length; i++) {
        const v = d[i]!;
        if (!Number.isInteger(v) || Math.abs(v) > 2 ** 53) {
          throw new UserError(`cannot write ${JSON.stringify(name)} as I64: value ${v} at flat index ${i} is not an integer within ±2^53`);
        }
      }
    }
  }
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new UserError(`cannot write metadata ${JSON.stringify(k)}: value is not a string`);
    }
  }
  // Reference order: wider dtype first (keeps every tensor aligned), then name by UTF-8 bytes.
  const enc = new TextEncoder();
  const order = names
    .map((name) => ({ name, key: enc.encode(name), t: tensors[name]!, dt: stored(name) }))
    .sort((a, b) => WRITE_RANK[b.dt] - WRITE_RANK[a.dt] || compareBytes(a.key, b.key));

  // Built by hand (not JSON.stringify of an object) so that every name, "__proto__" included, is
  // kept, in the intended order. Metadata keys are sorted for determinism (the reference uses a
  // hash map there, so its order is arbitrary).
  const parts: string[] = [];
  const metaKeys = metadata ? Object.keys(metadata).sort() : [];
  if (metaKeys.length > 0) {
    const kv = metaKeys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata![k])}`);
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${kv.join(',')}}`);
  }
  let off = 0;
  for (const { name, t, dt } of order) {
    const len = t.data.length * WRITE_ITEMSIZE[dt];
    // Key order inside an entry matches the reference: dtype, shape, data_offsets.
    const entry = { dtype: dt, shape: [...t.shape], data_offsets: [off, off + len] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    off += len;
  }
  let json = enc.encode(`{${parts.join(',')}}`);
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) {
    const padded = new Uint8Array(json.length + pad).fill(0x20);
    padded.set(json);
    json = padded;
  }

  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const { t, dt } of order) {
    if (dt === 'I64') {
      const view = new DataView(out.buffer, p, t.data.length * 8);
      for (let i = 0; i < t.data.length; i++) view.setBigInt64(8 * i, BigInt(t.data[i]!), true);
    } else if (dt === ST_DTYPE[t.dtype]) encodeLE(t.data, out, p);
    p += t.data.length * WRITE_ITEMSIZE[dt];
  }
  return out;
}

/** Write a parameter tree atomically (readers never see a half-written file). */
export function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>, opts: WriteOptions = {}): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata, opts));
}

export interface ShapeCheckOptions {
  /** Accept tensors in the file that the model does not have. */
  allowExtra?: boolean;
  /** Names the model in messages: "model mlp expects [128,784]". */
  model?: string;
}

/**
 * Check a loaded parameter tree against the shapes a model expects. Throws a one-line `UserError`
 * naming the first problem (missing tensor, shape mismatch, then unexpected tensor) and how many
 * more there are.
 */
export function checkParamShapes(
  tensors: Record<string, Tensor>,
  expected: Record<string, readonly number[]>,
  source: string,
  opts: ShapeCheckOptions = {},
): void {
  const who = opts.model !== undefined ? `model ${opts.model}` : 'the model';
  const problems: string[] = [];
  for (const [name, shape] of Object.entries(expected)) {
    const t = Object.prototype.hasOwnProperty.call(tensors, name) ? tensors[name] : undefined;
    if (t === undefined) {
      problems.push(`${name} is missing, ${who} expects shape ${fmtShape(shape)}`);
    } else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      problems.push(`${name} has shape ${fmtShape(t.shape)}, ${who} expects ${fmtShape(shape)}`);
    }
  }
  if (!opts.allowExtra) {
    for (const name of Object.keys(tensors).sort()) {
      if (!Object.prototype.hasOwnProperty.call(expected, name)) {
        problems.push(`${name} (shape ${fmtShape(tensors[name]!.shape)}) is not a parameter of ${who}`);
      }
    }
  }
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
    throw new UserError(`${source}: ${problems[0]}${more}`);
  }
}

// ---------------------------------------------------------------------------------------------

function decodeLE(bytes: Uint8Array, start: number, byteLen: number, dtype: DType): Buf {
  const size = byteLen / ITEMSIZE[dtype];
  if (IS_LITTLE_ENDIAN) {
    // Copy into a fresh, zero-offset (hence aligned) ArrayBuffer. Not `bytes.slice()`: on a Node
    // Buffer that is a view, not a copy.
    const copy = new ArrayBuffer(byteLen);
    new Uint8Array(copy).set(bytes.subarray(start, start + byteLen));
    return dtype === 'float32' ? new Float32Array(copy, 0, size) : new Float64Array(copy, 0, size);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, byteLen);
  if (dtype === 'float32') {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) out[i] = view.getFloat64(8 * i, true);
  return out;
}

/** IEEE half (F16) or bfloat16 (BF16) data as float32 or float64 values (exact: both hold every half value). */
function decodeHalfLE(bytes: Uint8Array, start: number, byteLen: number, dtype: 'F16' | 'BF16', to: DType): Buf {
  const size = byteLen / 2;
  const out = to === 'float32' ? new Float32Array(size) : new Float64Array(size);
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, byteLen);
  if (dtype === 'BF16') {
    // the upper 16 bits of a float32
    const f = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < size; i++) {
      f.setUint32(0, view.getUint16(2 * i, true) << 16);
      out[i] = f.getFloat32(0);
    }
    return out;
  }
  for (let i = 0; i < size; i++) {
    const h = view.getUint16(2 * i, true);
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24; // zero and subnormals
    else if (exp === 0x1f) out[i] = frac === 0 ? sign * Infinity : NaN;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** 2^53: the largest magnitude up to which every integer is exact in float64. */
const MAX_EXACT = 2n ** 53n;

/** Integer tensor data as float64 values; an I64 beyond ±2^53 or a BOOL byte other than 0/1 fails. */
function decodeIntLE(
  bytes: Uint8Array,
  start: number,
  byteLen: number,
  dtype: 'I64' | 'I32' | 'U8' | 'BOOL',
  name: string,
  shape: readonly number[],
  fail: (msg: string) => never,
): Float64Array {
  const size = byteLen / READ_ITEMSIZE[dtype];
  const out = new Float64Array(size);
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, byteLen);
  const what = `tensor ${JSON.stringify(name)} (${dtype}) has`;
  switch (dtype) {
    case 'I64':
      for (let i = 0; i < size; i++) {
        const v = view.getBigInt64(8 * i, true);
        if (v > MAX_EXACT || v < -MAX_EXACT) {
          fail(
            `${what} the value ${v} at index ${fmtIndex(i, shape)} (flat ${i}), outside ±2^53 where float64 holds every integer exactly;` +
              ' I64 tensors are read only within ±2^53',
          );
        }
        out[i] = Number(v);
      }
      break;
    case 'I32':
      for (let i = 0; i < size; i++) out[i] = view.getInt32(4 * i, true);
      break;
    case 'U8':
      for (let i = 0; i < size; i++) out[i] = view.getUint8(i);
      break;
    case 'BOOL':
      for (let i = 0; i < size; i++) {
        const v = view.getUint8(i);
        if (v > 1) fail(`${what} byte ${v} at index ${fmtIndex(i, shape)} (flat ${i}), not 0 or 1; the file is corrupt`);
        out[i] = v;
      }
      break;
  }
  return out;
}

function encodeLE(data: Buf, out: Uint8Array, at: number): void {
  if (IS_LITTLE_ENDIAN) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset + at, data.byteLength);
  if (data instanceof Float32Array) for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i]!, true);
  else for (let i = 0; i < data.length; i++) view.setFloat64(8 * i, data[i]!, true);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Define an own enumerable property (plain assignment would treat "__proto__" specially). */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Flat index → "[i,j,k]" for a row-major shape. */
function fmtIndex(flat: number, shape: readonly number[]): string {
  const idx = new Array<number>(shape.length);
  let r = flat;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i]!;
    idx[i] = r % d;
    r = Math.floor(r / d);
  }
  return `[${idx.join(',')}]`;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
