/**
 * ONNX models as `Model`s: the graph of an .onnx file is interpreted node by node on the engine's
 * ops (ops.ts, composites.ts), so every derivative the engine has (gradients, Hessian-vector
 * products, brackets, logit effects) goes through it unchanged.
 *
 * - The graph has one data input [N, ...inputShape] (graph inputs that are not initializers) and
 *   one output [N, K].
 * - Float initializers that feed computations are the parameters, under their ONNX names (PyTorch
 *   exports keep state_dict names such as `fc1.weight`). BatchNormalization's mean and variance
 *   are buffers (float64, as `initBuffers`), plus `<p>.num_batches_tracked` where the scale is
 *   named `<p>.weight`, so the names and shapes are PyTorch's state_dict. Integer initializers
 *   (shapes, axes), and float ones used only where a constant is needed (a Pow exponent, a Reshape
 *   shape), are constants.
 * - Values that do not depend on the input or the parameters (Shape → Gather → Concat → Reshape
 *   chains) are evaluated as constants, in float64 tensors that hold their (integer) values, at
 *   every apply: the engine is eager and every shape is concrete. An operand that must be constant
 *   but depends on the data is a one-line UserError naming the node.
 * - The model runs in the dtype of the input it is given (float32 or float64); constants meet the
 *   data in that dtype, and Casts between float types do not change it.
 * - BatchNormalization goes through layers.batchNorm2d, so training mode (batch statistics and
 *   running-statistics updates) and the per-example mode work on ONNX models as on the built-in ones.
 *
 * Every problem with the file or the graph is a one-line UserError naming the file.
 */
import { basename } from 'node:path';
import onnxProto from 'onnx-proto';
import * as c from '../engine/composites.js';
import type { DType } from '../engine/dtype.js';
import * as o from '../engine/ops.js';
import { broadcastShapes, fmtShape, sizeOf } from '../engine/shape.js';
import { full, Tensor, type Val } from '../engine/tensor.js';
import { primalValue } from '../engine/trace.js';
import { concrete } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { UserError } from '../errors.js';
import { batchNorm2d, evalState, type ForwardState } from '../nn/layers.js';
import type { Model } from '../nn/models.js';
import { withModelRecipe } from '../nn/recipe.js';
import { readFileOrExplain } from './read-file.js';

const { onnx } = onnxProto;
type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;
type IAttr = onnxProto.onnx.IAttributeProto;
type IValueInfo = onnxProto.onnx.IValueInfoProto;
/** protobufjs gives int64 fields as numbers or Long objects (the onnx-proto typings leave Long unresolved). */
type Int = unknown;

const num = (v: Int): number => {
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && v !== null && 'toNumber' in v && typeof v.toNumber === 'function') return (v as { toNumber(): number }).toNumber();
  return 0;
};

// ---------------------------------------------------------------- tensors

/** ONNX TensorProto.DataType codes. */
const DT = { FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16 };
const FLOAT_TYPES = new Set([DT.FLOAT, DT.DOUBLE, DT.FLOAT16, DT.BFLOAT16]);
const INT_TYPES = new Set([DT.UINT8, DT.INT8, DT.UINT16, DT.INT16, DT.INT32, DT.INT64, DT.UINT32, DT.UINT64]);
const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DT).map(([k, v]) => [v, k]));
const typeName = (t: number) => TYPE_NAMES[t] ?? `type ${t}`;

type Elem = 'float' | 'int' | 'bool';
const elemOf = (t: number): Elem => (FLOAT_TYPES.has(t) ? 'float' : t === DT.BOOL ? 'bool' : 'int');

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

function bfloat16ToNumber(h: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint32(0, (h & 0xffff) << 16);
  return dv.getFloat32(0);
}

interface RawTensor {
  data: Float64Array;
  shape: number[];
  elem: Elem;
  type: number;
}

/** The values of a TensorProto (raw_data or the typed fields) as float64 numbers. */
function readTensor(t: ITensor, what: string, fail: (msg: string) => never): RawTensor {
  const type = t.dataType ?? 0;
  const shape = (t.dims ?? []).map(num);
  const n = sizeOf(shape);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    fail(`${what} keeps its data in an external file, which is not supported; export with the weights inside the .onnx file (torch.onnx.export without external data, or onnx.save(model, path, save_as_external_data=False))`);
  }
  if (!FLOAT_TYPES.has(type) && !INT_TYPES.has(type) && type !== DT.BOOL) fail(`${what} has data type ${typeName(type)}, which is not supported`);
  const out = new Float64Array(n);
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const size = { [DT.FLOAT]: 4, [DT.DOUBLE]: 8, [DT.FLOAT16]: 2, [DT.BFLOAT16]: 2, [DT.INT64]: 8, [DT.UINT64]: 8, [DT.INT32]: 4, [DT.UINT32]: 4, [DT.INT16]: 2, [DT.UINT16]: 2, [DT.INT8]: 1, [DT.UINT8]: 1, [DT.BOOL]: 1 }[type]!;
    if (raw.length !== n * size) fail(`${what}: raw data has ${raw.length} bytes, but shape ${fmtShape(shape)} of ${typeName(type)} needs ${n * size}`);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const read: (i: number) => number = {
      [DT.FLOAT]: (i: number) => dv.getFloat32(4 * i, true),
      [DT.DOUBLE]: (i: number) => dv.getFloat64(8 * i, true),
      [DT.FLOAT16]: (i: number) => halfToNumber(dv.getUint16(2 * i, true)),
      [DT.BFLOAT16]: (i: number) => bfloat16ToNumber(dv.getUint16(2 * i, true)),
      [DT.INT64]: (i: number) => Number(dv.getBigInt64(8 * i, true)),
      [DT.UINT64]: (i: number) => Number(dv.getBigUint64(8 * i, true)),
      [DT.INT32]: (i: number) => dv.getInt32(4 * i, true),
      [DT.UINT32]: (i: number) => dv.getUint32(4 * i, true),
      [DT.INT16]: (i: number) => dv.getInt16(2 * i, true),
      [DT.UINT16]: (i: number) => dv.getUint16(2 * i, true),
      [DT.INT8]: (i: number) => dv.getInt8(i),
      [DT.UINT8]: (i: number) => dv.getUint8(i),
      [DT.BOOL]: (i: number) => (dv.getUint8(i) ? 1 : 0),
    }[type]!;
    for (let i = 0; i < n; i++) out[i] = read(i);
  } else {
    let src: ArrayLike<Int>;
    let conv = (v: number) => v;
    if (type === DT.FLOAT) src = t.floatData ?? [];
    else if (type === DT.DOUBLE) src = t.doubleData ?? [];
    else if (type === DT.INT64) src = t.int64Data ?? [];
    else if (type === DT.UINT32 || type === DT.UINT64) src = t.uint64Data ?? [];
    else {
      src = t.int32Data ?? [];
      if (type === DT.FLOAT16) conv = halfToNumber;
      else if (type === DT.BFLOAT16) conv = bfloat16ToNumber;
      else if (type === DT.BOOL) conv = (v) => (v ? 1 : 0);
    }
    if (src.length !== n) fail(`${what} has ${src.length} values, but its shape ${fmtShape(shape)} needs ${n}`);
    for (let i = 0; i < n; i++) out[i] = conv(num(src[i]));
  }
  return { data: out, shape, elem: elemOf(type), type };
}

// ---------------------------------------------------------------- values during interpretation

/**
 * A value of the graph: `c` (constant) when it depends neither on the input nor on the
 * parameters, and is then a float64 Tensor; `elem` is the ONNX element kind it stands for.
 */
interface V {
  v: Val;
  elem: Elem;
  c: boolean;
}

const constV = (t: Tensor, elem: Elem): V => ({ v: t, elem, c: true });
const constOf = (values: readonly number[], shape: readonly number[], elem: Elem): V => constV(new Tensor(Float64Array.from(values), [...shape]), elem);

class Node {
  readonly attrs = new Map<string, IAttr>();
  constructor(
    readonly proto: INode,
    readonly index: number,
    readonly source: string,
  ) {
    for (const a of proto.attribute ?? []) this.attrs.set(a.name ?? '', a);
  }
  get op(): string {
    return this.proto.opType ?? '';
  }
  get label(): string {
    return this.proto.name ? this.proto.name : `#${this.index}`;
  }
  get inputs(): string[] {
    return this.proto.input ?? [];
  }
  get outputs(): string[] {
    return this.proto.output ?? [];
  }
  fail(msg: string): never {
    throw new UserError(`${this.source}: ONNX node "${this.label}" (${this.op}): ${msg}`);
  }
  has(name: string): boolean {
    return this.attrs.has(name);
  }
  int(name: string, dflt: number): number {
    const a = this.attrs.get(name);
    return a ? num(a.i) : dflt;
  }
  float(name: string, dflt: number): number {
    const a = this.attrs.get(name);
    return a ? (a.f ?? 0) : dflt;
  }
  ints(name: string): number[] | undefined {
    const a = this.attrs.get(name);
    return a ? (a.ints ?? []).map(num) : undefined;
  }
  str(name: string, dflt: string): string {
    const a = this.attrs.get(name);
    return a?.s ? new TextDecoder().decode(a.s) : dflt;
  }
  /** Refuse an attribute value other than the supported ones. */
  only(name: string, value: number | string, supported: readonly (number | string)[], why = ''): void {
    if (!supported.includes(value)) this.fail(`${name}=${JSON.stringify(value)} is not supported (only ${supported.map((s) => JSON.stringify(s)).join(', ')})${why}`);
  }
}

interface Ctx {
  node: Node;
  opset: number;
  dtype: DType;
  state: ForwardState;
  /** The buffer names of a BatchNormalization node (by node index). */
  bn: ReadonlyMap<number, BnInfo>;
  /** The number of outputs the graph actually uses of this node (later nodes or the graph output). */
  usedOutputs: (k: number) => boolean;
}

interface BnInfo {
  mean: string;
  variance: string;
  batches?: string;
}

function need(ctx: Ctx, ins: readonly (V | undefined)[], k: number, what = `input ${k}`): V {
  const v = ins[k];
  if (!v) ctx.node.fail(`${what} is missing`);
  return v;
}

/** The value as an engine value in the run's dtype (constants cast to it). */
function data(ctx: Ctx, x: V): Val {
  if (x.c) return x.v.dtype === ctx.dtype ? x.v : concrete(o.cast(x.v, ctx.dtype));
  return x.v;
}

/** The numbers of a constant operand. */
function values(ctx: Ctx, x: V, what: string): number[] {
  if (!x.c) ctx.node.fail(`its ${what} depends on the data; it must be a constant (re-export with constant folding, or with fixed ${what})`);
  return Array.from(primalValue(x.v).data);
}

function ints(ctx: Ctx, x: V, what: string): number[] {
  return values(ctx, x, what).map((v) => Math.trunc(v));
}

/** Apply f to operands that are all constant (in float64) or not (in the run's dtype). */
function lift(ctx: Ctx, xs: readonly V[], f: (vs: Val[]) => Val, elem?: Elem): V {
  const allConst = xs.every((x) => x.c);
  const out = f(xs.map((x) => (allConst ? x.v : data(ctx, x))));
  const e = elem ?? (xs.some((x) => x.elem === 'float') ? 'float' : (xs[0]?.elem ?? 'float'));
  return { v: allConst ? concrete(out) : out, elem: e, c: allConst };
}

function normAxis(ctx: Ctx, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) ctx.node.fail(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Elements `idx` (in range) along an axis, by slices of consecutive runs concatenated. */
function takeAxis(x: Val, axis: number, idx: readonly number[]): Val {
  const parts: Val[] = [];
  let i = 0;
  while (i < idx.length) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1] === idx[j]! + 1) j++;
    parts.push(o.sliceAxis(x, axis, idx[i]!, idx[j]! + 1));
    i = j + 1;
  }
  if (parts.length === 0) return o.sliceAxis(x, axis, 0, 0);
  return o.concatenate(parts, axis);
}

function reshapeV(x: V, shape: readonly number[]): V {
  return { ...x, v: x.c ? concrete(o.reshape(x.v, shape)) : o.reshape(x.v, shape) };
}

/** Spatial attributes of Conv and the pools: pads [lo…, hi…] after auto_pad. */
function windowPads(ctx: Ctx, inSpatial: readonly number[], kernel: readonly number[], strides: readonly number[], dilations: readonly number[]): { lo: number[]; hi: number[] } {
  const n: Node = ctx.node;
  const r = inSpatial.length;
  const autoPad = n.str('auto_pad', 'NOTSET');
  n.only('auto_pad', autoPad, ['NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER']);
  if (autoPad === 'VALID') return { lo: new Array<number>(r).fill(0), hi: new Array<number>(r).fill(0) };
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const lo: number[] = [];
    const hi: number[] = [];
    inSpatial.forEach((d, i) => {
      const out = Math.ceil(d / strides[i]!);
      const total = Math.max(0, (out - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - d);
      const small = Math.floor(total / 2);
      lo.push(autoPad === 'SAME_UPPER' ? small : total - small);
      hi.push(autoPad === 'SAME_UPPER' ? total - small : small);
    });
    return { lo, hi };
  }
  const pads = n.ints('pads') ?? new Array<number>(2 * r).fill(0);
  if (pads.length !== 2 * r) n.fail(`pads has ${pads.length} values, expected ${2 * r}`);
  if (pads.some((p) => p < 0)) n.fail(`negative pads ${JSON.stringify(pads)} are not supported`);
  return { lo: pads.slice(0, r), hi: pads.slice(r) };
}

/** A 3-D [N, C, L] operand as 4-D [N, C, 1, L] for the 2-D kernels (1-D conv and pools). */
function spatial2d(ctx: Ctx, x: Val): { x: Val; oneD: boolean } {
  if (x.ndim === 4) return { x, oneD: false };
  if (x.ndim === 3) return { x: o.reshape(x, [x.shape[0]!, x.shape[1]!, 1, x.shape[2]!]), oneD: true };
  return ctx.node.fail(`input of shape ${fmtShape(x.shape)}: only 1-D and 2-D (input [N,C,L] or [N,C,H,W]) are supported`);
}
const back1d = (y: Val, oneD: boolean) => (oneD ? o.reshape(y, [y.shape[0]!, y.shape[1]!, y.shape[3]!]) : y);
/** An attribute of r spatial values (r = 1 or 2) as 2-D, the 1-D case padded with `fill` for H. */
const as2d = (v: readonly number[], oneD: boolean, fill: number): number[] => (oneD ? [fill, v[0]!] : [...v]);

/** Pad the spatial axes (2, 3) of [N, C, H, W] with a constant value (zero: the pad op). */
function padSpatial(x: Val, lo: readonly number[], hi: readonly number[], value: number): Val {
  if (value === 0) return o.pad(x, [0, 0, lo[0]!, lo[1]!], [0, 0, hi[0]!, hi[1]!]);
  let y = x;
  for (const axis of [2, 3]) {
    const before = lo[axis - 2]!;
    const after = hi[axis - 2]!;
    if (before === 0 && after === 0) continue;
    const block = (k: number) => full(y.shape.map((d, i) => (i === axis ? k : d)), value, y.dtype);
    const parts: Val[] = [];
    if (before > 0) parts.push(block(before));
    parts.push(y);
    if (after > 0) parts.push(block(after));
    y = o.concatenate(parts, axis);
  }
  return y;
}

function poolCommon(ctx: Ctx, x: Val) {
  const n: Node = ctx.node;
  const { x: x4, oneD } = spatial2d(ctx, x);
  const r = oneD ? 1 : 2;
  const kernel = n.ints('kernel_shape');
  if (!kernel || kernel.length !== r) n.fail(`kernel_shape ${JSON.stringify(kernel)} does not match a ${r}-D input ${fmtShape(x.shape)}`);
  const strides = n.ints('strides') ?? new Array<number>(r).fill(1);
  const dil = n.ints('dilations') ?? new Array<number>(r).fill(1);
  if (dil.some((d) => d !== 1)) n.fail(`dilations ${JSON.stringify(dil)} are not supported (only 1)`);
  n.only('ceil_mode', n.int('ceil_mode', 0), [0], '; re-export with ceil_mode=False');
  const { lo, hi } = windowPads(ctx, x.shape.slice(2), kernel, strides, dil);
  return { x4, oneD, k: as2d(kernel, oneD, 1), s: as2d(strides, oneD, 1), lo: as2d(lo, oneD, 0), hi: as2d(hi, oneD, 0) };
}

const symmetric = (lo: readonly number[], hi: readonly number[]) => lo.every((v, i) => v === hi[i]);

// ---------------------------------------------------------------- op handlers

type Handler = (ctx: Ctx, ins: (V | undefined)[]) => V | V[];

const unary =
  (f: (x: Val) => Val): Handler =>
  (ctx, ins) =>
    lift(ctx, [need(ctx, ins, 0)], ([x]) => f(x!));
const binary =
  (f: (a: Val, b: Val) => Val, elem?: Elem): Handler =>
  (ctx, ins) =>
    lift(ctx, [need(ctx, ins, 0), need(ctx, ins, 1)], ([a, b]) => f(a!, b!), elem);
const variadic =
  (f: (a: Val, b: Val) => Val, mean = false): Handler =>
  (ctx, ins) => {
    const xs = ins.filter((x): x is V => x !== undefined);
    if (xs.length === 0) ctx.node.fail('needs at least one input');
    return lift(ctx, xs, (vs) => {
      const s = vs.reduce((a, b) => f(a, b));
      return mean ? o.div(s, vs.length) : s;
    });
  };
const compare =
  (op: 'gt' | 'ge' | 'lt' | 'le' | 'eq'): Handler =>
  (ctx, ins) =>
    lift(ctx, [need(ctx, ins, 0), need(ctx, ins, 1)], ([a, b]) => o.compare(a!, op, b!), 'bool');

/** max(x, 0) as relu; alpha·x below 0 for LeakyRelu. */
function leaky(x: Val, alpha: number): Val {
  return o.where(o.gt(x, 0), x, o.mul(x, alpha));
}

function reduceAxes(ctx: Ctx, ins: (V | undefined)[], x: Val, fromInput: boolean): number[] | null {
  let axes: number[] | undefined;
  if (fromInput) axes = ins[1] ? ints(ctx, ins[1], 'axes input') : undefined;
  else axes = ctx.node.ints('axes');
  if (!axes || axes.length === 0) return ctx.node.int('noop_with_empty_axes', 0) ? null : x.shape.map((_, i) => i);
  return axes.map((a) => normAxis(ctx, a, x.ndim));
}

const reduce =
  (f: (x: Val, axes: number[], keep: boolean) => Val, inputSince: number): Handler =>
  (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const axes = reduceAxes(ctx, ins, x.v, ctx.opset >= inputSince);
    if (axes === null) return x;
    const keep = ctx.node.int('keepdims', 1) === 1;
    return lift(ctx, [x], ([v]) => f(v!, axes, keep));
  };

function softmaxLike(f: (x: Val, axis: number) => Val): Handler {
  return (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const r = x.v.ndim;
    if (ctx.opset >= 13) {
      const axis = normAxis(ctx, ctx.node.int('axis', -1), r);
      return lift(ctx, [x], ([v]) => f(v!, axis));
    }
    // before opset 13: coerced to 2-D [prod(dims < axis), prod(dims ≥ axis)]
    const axis = normAxis(ctx, ctx.node.int('axis', 1), r);
    return lift(ctx, [x], ([v]) => {
      const s = v!.shape;
      const flat = o.reshape(v!, [sizeOf(s.slice(0, axis)), sizeOf(s.slice(axis))]);
      return o.reshape(f(flat, 1), s);
    });
  };
}

function castTo(ctx: Ctx, x: V, to: number): V {
  const n: Node = ctx.node;
  if (!FLOAT_TYPES.has(to) && !INT_TYPES.has(to) && to !== DT.BOOL) n.fail(`cast to ${typeName(to)} is not supported`);
  const elem = elemOf(to);
  if (x.c) {
    const src = primalValue(x.v).data;
    const out = elem === 'float' ? Float64Array.from(src, to === DT.FLOAT ? Math.fround : (v) => v) : elem === 'int' ? Float64Array.from(src, Math.trunc) : Float64Array.from(src, (v) => (v !== 0 ? 1 : 0));
    return constV(new Tensor(out, x.v.shape), elem);
  }
  if (elem !== 'float') n.fail(`cast of data to ${typeName(to)} is not supported (only to float types; the model runs in one float dtype)`);
  return { ...x, elem: 'float' };
}

/** Numpy's matmul: a 1-D operand is a row (left) or a column (right), its axis removed after. */
function matmulNumpy(a: Val, b: Val): Val {
  const a2 = a.ndim === 1 ? o.reshape(a, [1, a.shape[0]!]) : a;
  const b2 = b.ndim === 1 ? o.reshape(b, [b.shape[0]!, 1]) : b;
  let y = o.matmul(a2, b2);
  if (a.ndim === 1) y = o.reshape(y, [...y.shape.slice(0, -2), y.shape[y.ndim - 1]!]);
  if (b.ndim === 1) y = o.reshape(y, y.shape.slice(0, -1));
  return y;
}

const HANDLERS: Record<string, Handler> = {
  Identity: (ctx, ins) => need(ctx, ins, 0),
  Dropout: (ctx, ins) => {
    if (ctx.usedOutputs(1)) ctx.node.fail('its mask output is used; export the model in eval mode (model.eval())');
    // inference: the identity. Training here never drops units, so a training-mode forward pass
    // through a Dropout with a non-zero ratio would silently differ from PyTorch's training
    if (ctx.state.training && !ctx.state.perExample) {
      const ratio = ctx.opset >= 12 ? (ins[1] ? values(ctx, ins[1], 'ratio')[0]! : 0.5) : ctx.node.float('ratio', 0.5);
      if (ratio > 0) {
        ctx.node.fail(
          `training would skip its dropout (ratio ${ratio}): lie-bracket does not train with dropout; export the model without it (or with p = 0) to train here`,
        );
      }
    }
    return need(ctx, ins, 0);
  },
  Add: binary(o.add),
  Sub: binary(o.sub),
  Mul: binary(o.mul),
  Div: (ctx, ins) => {
    const a = need(ctx, ins, 0);
    const b = need(ctx, ins, 1);
    const y = lift(ctx, [a, b], ([x, z]) => o.div(x!, z!));
    // integer division truncates (shape arithmetic)
    if (y.c && y.elem === 'int') return constV(new Tensor(Float64Array.from(primalValue(y.v).data, Math.trunc), y.v.shape), 'int');
    return y;
  },
  Pow: (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const e = need(ctx, ins, 1);
    const ev = values(ctx, e, 'exponent');
    if (x.c) {
      const s = broadcastShapes(x.v.shape, e.v.shape);
      const bx = concrete(o.broadcastTo(x.v, s)).data;
      const be = concrete(o.broadcastTo(e.v, s)).data;
      return constV(new Tensor(Float64Array.from(bx, (v, i) => v ** be[i]!), s), x.elem);
    }
    if (ev.length === 0 || ev.some((v) => v !== ev[0])) ctx.node.fail('an exponent that is not one number is supported only on constants');
    const y = o.pow(x.v, ev[0]!);
    return { v: e.v.ndim > x.v.ndim ? o.reshape(y, broadcastShapes(x.v.shape, e.v.shape)) : y, elem: 'float', c: false };
  },
  Neg: unary(o.neg),
  Abs: unary(o.abs),
  Reciprocal: unary((x) => o.div(1, x)),
  Sqrt: unary(o.sqrt),
  Exp: unary(o.exp),
  Log: unary(o.log),
  Erf: unary(o.erf),
  Tanh: unary(o.tanh),
  Sigmoid: unary(c.sigmoid),
  Softplus: unary(c.softplus),
  Mish: unary(o.mish),
  Relu: unary(c.relu),
  LeakyRelu: (ctx, ins) => {
    const alpha = ctx.node.float('alpha', 0.01);
    return lift(ctx, [need(ctx, ins, 0)], ([x]) => leaky(x!, alpha));
  },
  Gelu: (ctx, ins) => {
    const approx = ctx.node.str('approximate', 'none');
    ctx.node.only('approximate', approx, ['none', 'tanh']);
    return lift(ctx, [need(ctx, ins, 0)], ([x]) => (approx === 'tanh' ? c.gelu(x!) : o.mul(o.mul(x!, 0.5), o.add(o.erf(o.mul(x!, Math.SQRT1_2)), 1))));
  },
  HardSigmoid: (ctx, ins) => {
    const alpha = ctx.node.float('alpha', 0.2);
    const beta = ctx.node.float('beta', 0.5);
    return lift(ctx, [need(ctx, ins, 0)], ([x]) => o.minimum(o.maximum(o.add(o.mul(x!, alpha), beta), 0), 1));
  },
  HardSwish: unary((x) => o.mul(x, o.minimum(o.maximum(o.add(o.mul(x, 1 / 6), 0.5), 0), 1))),
  Clip: (ctx, ins) => {
    const x = need(ctx, ins, 0);
    let lo: V | undefined;
    let hi: V | undefined;
    if (ctx.opset >= 11) {
      lo = ins[1];
      hi = ins[2];
    } else {
      if (ctx.node.has('min')) lo = constOf([ctx.node.float('min', 0)], [], 'float');
      if (ctx.node.has('max')) hi = constOf([ctx.node.float('max', 0)], [], 'float');
    }
    let y = x;
    if (lo) y = lift(ctx, [y, lo], ([a, b]) => o.maximum(a!, b!), x.elem);
    if (hi) y = lift(ctx, [y, hi], ([a, b]) => o.minimum(a!, b!), x.elem);
    return y;
  },
  Max: variadic(o.maximum),
  Min: variadic(o.minimum),
  Sum: variadic(o.add),
  Mean: variadic(o.add, true),
  Equal: compare('eq'),
  Less: compare('lt'),
  LessOrEqual: compare('le'),
  Greater: compare('gt'),
  GreaterOrEqual: compare('ge'),
  Not: (ctx, ins) => lift(ctx, [need(ctx, ins, 0)], ([x]) => o.compare(x!, 'eq', 0), 'bool'),
  And: binary((a, b) => o.mul(o.compare(a, 'ne', 0), o.compare(b, 'ne', 0)), 'bool'),
  Or: binary((a, b) => o.maximum(o.compare(a, 'ne', 0), o.compare(b, 'ne', 0)), 'bool'),
  Where: (ctx, ins) => {
    const cond = need(ctx, ins, 0);
    const a = need(ctx, ins, 1);
    const b = need(ctx, ins, 2);
    return lift(ctx, [cond, a, b], ([k, x, y]) => o.where(k!, x!, y!), a.elem === 'float' || b.elem === 'float' ? 'float' : a.elem);
  },

  MatMul: binary(matmulNumpy),
  Gemm: (ctx, ins) => {
    const n: Node = ctx.node;
    const alpha = n.float('alpha', 1);
    const beta = n.float('beta', 1);
    const transA = n.int('transA', 0) === 1;
    const transB = n.int('transB', 0) === 1;
    const xs = [need(ctx, ins, 0), need(ctx, ins, 1)];
    const cIn = ins[2];
    if (cIn) xs.push(cIn);
    return lift(ctx, xs, ([a, b, cv]) => {
      if (a!.ndim !== 2 || b!.ndim !== 2) n.fail(`A and B must be matrices, got ${fmtShape(a!.shape)} and ${fmtShape(b!.shape)}`);
      let y = o.matmul(a!, b!, { transA, transB });
      if (alpha !== 1) y = o.mul(y, alpha);
      if (cv && beta !== 0) y = o.add(y, beta === 1 ? cv : o.mul(cv, beta));
      return y;
    });
  },
  Conv: (ctx, ins) => {
    const n: Node = ctx.node;
    const xs = [need(ctx, ins, 0), need(ctx, ins, 1)];
    const bIn = ins[2];
    if (bIn) xs.push(bIn);
    return lift(ctx, xs, ([xv, wv, bv]) => {
      const { x, oneD } = spatial2d(ctx, xv!);
      const r = oneD ? 1 : 2;
      if (wv!.ndim !== r + 2) n.fail(`weight of shape ${fmtShape(wv!.shape)} does not match the ${r}-D input ${fmtShape(xv!.shape)}`);
      const w = oneD ? o.reshape(wv!, [wv!.shape[0]!, wv!.shape[1]!, 1, wv!.shape[2]!]) : wv!;
      const kernel = wv!.shape.slice(2);
      const ks = n.ints('kernel_shape');
      if (ks && ks.join(',') !== kernel.join(',')) n.fail(`kernel_shape ${JSON.stringify(ks)} does not match the weight ${fmtShape(wv!.shape)}`);
      const strides = n.ints('strides') ?? new Array<number>(r).fill(1);
      const dil = n.ints('dilations') ?? new Array<number>(r).fill(1);
      const { lo, hi } = windowPads(ctx, xv!.shape.slice(2), kernel, strides, dil);
      const [lo2, hi2] = [as2d(lo, oneD, 0), as2d(hi, oneD, 0)];
      const sym = symmetric(lo2, hi2);
      const xin = sym ? x : o.pad(x, [0, 0, lo2[0]!, lo2[1]!], [0, 0, hi2[0]!, hi2[1]!]);
      const s2 = as2d(strides, oneD, 1);
      const d2 = as2d(dil, oneD, 1);
      let y = o.conv2d(xin, w, {
        stride: [s2[0]!, s2[1]!],
        padding: sym ? [lo2[0]!, lo2[1]!] : [0, 0],
        dilation: [d2[0]!, d2[1]!],
        groups: n.int('group', 1),
      });
      if (bv) y = o.add(y, o.reshape(bv, [1, -1, 1, 1]));
      return back1d(y, oneD);
    });
  },
  MaxPool: (ctx, ins) => {
    if (ctx.usedOutputs(1)) ctx.node.fail('its Indices output is not supported');
    ctx.node.only('storage_order', ctx.node.int('storage_order', 0), [0]);
    return lift(ctx, [need(ctx, ins, 0)], ([xv]) => {
      const p = poolCommon(ctx, xv!);
      const fits = symmetric(p.lo, p.hi) && p.lo.every((v, i) => 2 * v <= p.k[i]!);
      const x = fits ? p.x4 : padSpatial(p.x4, p.lo, p.hi, -Infinity);
      const y = o.maxPool2d(x, [p.k[0]!, p.k[1]!], { stride: [p.s[0]!, p.s[1]!], padding: fits ? [p.lo[0]!, p.lo[1]!] : [0, 0] });
      return back1d(y, p.oneD);
    });
  },
  AveragePool: (ctx, ins) =>
    lift(ctx, [need(ctx, ins, 0)], ([xv]) => {
      const p = poolCommon(ctx, xv!);
      const k: [number, number] = [p.k[0]!, p.k[1]!];
      const stride: [number, number] = [p.s[0]!, p.s[1]!];
      const sym = symmetric(p.lo, p.hi);
      const pool = (x: Val) => (sym ? o.avgPool2d(x, k, { stride, padding: [p.lo[0]!, p.lo[1]!] }) : o.avgPool2d(padSpatial(x, p.lo, p.hi, 0), k, { stride }));
      let y = pool(p.x4);
      const padded = p.lo.some((v) => v > 0) || p.hi.some((v) => v > 0);
      if (padded && ctx.node.int('count_include_pad', 0) === 0) {
        // divide by the count of real (unpadded) elements in each window: the pooled share of ones
        const frac = concrete(pool(full([1, 1, p.x4.shape[2]!, p.x4.shape[3]!], 1, p.x4.dtype)));
        y = o.div(y, frac);
      }
      return back1d(y, p.oneD);
    }),
  GlobalAveragePool: (ctx, ins) => lift(ctx, [need(ctx, ins, 0)], ([x]) => o.mean(x!, x!.shape.slice(2).map((_, i) => i + 2), true)),
  GlobalMaxPool: (ctx, ins) => lift(ctx, [need(ctx, ins, 0)], ([x]) => o.max(x!, x!.shape.slice(2).map((_, i) => i + 2), true)),
  BatchNormalization: (ctx, ins) => {
    const n: Node = ctx.node;
    if (ctx.usedOutputs(1) || ctx.usedOutputs(2)) n.fail('the training form (running mean and variance outputs) is not supported; export the model in eval mode (model.eval())');
    const info = ctx.bn.get(n.index)!;
    const x = data(ctx, need(ctx, ins, 0));
    const scale = data(ctx, need(ctx, ins, 1, 'scale'));
    const bias = data(ctx, need(ctx, ins, 2, 'bias'));
    if (x.ndim < 2) n.fail(`input of shape ${fmtShape(x.shape)} has no channel axis`);
    const [nb, ch] = [x.shape[0]!, x.shape[1]!];
    const x4 = x.ndim === 4 ? x : o.reshape(x, [nb, ch, sizeOf(x.shape.slice(2)), 1]);
    const pre = info.mean.endsWith('.running_mean') ? info.mean.replace(/\.running_mean$/, '') : n.label;
    const st = ctx.state;
    const buffers: Record<string, Tensor> = {};
    const link: [string, string | undefined][] = [
      ['running_mean', info.mean],
      ['running_var', info.variance],
      ['num_batches_tracked', info.batches],
    ];
    for (const [k, name] of link) {
      const t = name === undefined ? undefined : st.buffers[name];
      if (t) buffers[`${pre}.${k}`] = t;
    }
    const local: ForwardState = { training: st.training, perExample: st.perExample, buffers, updates: {} };
    const y = batchNorm2d({ [`${pre}.weight`]: scale, [`${pre}.bias`]: bias }, pre, x4, local, {
      eps: n.float('epsilon', 1e-5),
      momentum: 1 - n.float('momentum', 0.9),
    });
    for (const [k, name] of link) {
      const u = local.updates[`${pre}.${k}`];
      if (u && name !== undefined) st.updates[name] = u;
    }
    return { v: x.ndim === 4 ? y : o.reshape(y, x.shape), elem: 'float', c: false };
  },
  LayerNormalization: (ctx, ins) => {
    const n: Node = ctx.node;
    if (ctx.usedOutputs(1) || ctx.usedOutputs(2)) n.fail('its Mean and InvStdDev outputs are not supported');
    const xs = [need(ctx, ins, 0), need(ctx, ins, 1, 'scale')];
    const bIn = ins[2];
    if (bIn) xs.push(bIn);
    const eps = n.float('epsilon', 1e-5);
    return lift(ctx, xs, ([x, scale, bias]) => {
      const axis = normAxis(ctx, n.int('axis', -1), x!.ndim);
      const axes = x!.shape.slice(axis).map((_, i) => i + axis);
      const centred = o.sub(x!, o.mean(x!, axes, true));
      const vari = o.mean(o.square(centred), axes, true);
      const y = o.mul(o.div(centred, o.sqrt(o.add(vari, eps))), scale!);
      return bias ? o.add(y, bias) : y;
    });
  },
  Softmax: softmaxLike(c.softmax),
  LogSoftmax: softmaxLike(c.logSoftmax),
  ReduceMean: reduce((x, a, k) => o.mean(x, a, k), 18),
  ReduceSum: reduce((x, a, k) => o.sum(x, a, k), 13),
  ReduceMax: reduce((x, a, k) => o.max(x, a, k), 18),
  ReduceMin: reduce((x, a, k) => o.neg(o.max(o.neg(x), a, k)), 18),
  ReduceSumSquare: reduce((x, a, k) => o.sum(o.square(x), a, k), 18),
  ReduceL2: reduce((x, a, k) => o.sqrt(o.sum(o.square(x), a, k)), 18),

  Flatten: (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const s = x.v.shape;
    const ax = ctx.node.int('axis', 1);
    const axis = ax < 0 ? ax + s.length : ax;
    if (axis < 0 || axis > s.length) ctx.node.fail(`axis ${ax} is out of range for rank ${s.length}`);
    return reshapeV(x, [sizeOf(s.slice(0, axis)), sizeOf(s.slice(axis))]);
  },
  Reshape: (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const shape = ints(ctx, need(ctx, ins, 1, 'shape'), 'shape input');
    const allowZero = ctx.node.int('allowzero', 0) === 1;
    const s = shape.map((d, i) => {
      if (d === 0 && !allowZero) {
        if (i >= x.v.ndim) ctx.node.fail(`shape ${JSON.stringify(shape)} copies dimension ${i} (0) of the rank-${x.v.ndim} input`);
        return x.v.shape[i]!;
      }
      return d;
    });
    if (s.filter((d) => d === -1).length > 1) ctx.node.fail(`shape ${JSON.stringify(shape)} has more than one -1`);
    return reshapeV(x, s);
  },
  Transpose: (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const perm = ctx.node.ints('perm');
    return lift(ctx, [x], ([v]) => o.transpose(v!, perm));
  },
  Squeeze: (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const s = x.v.shape;
    const given = ctx.opset >= 13 ? (ins[1] ? ints(ctx, ins[1], 'axes input') : undefined) : ctx.node.ints('axes');
    const axes = given ? given.map((a) => normAxis(ctx, a, s.length)) : s.flatMap((d, i) => (d === 1 ? [i] : []));
    for (const a of axes) if (s[a] !== 1) ctx.node.fail(`cannot squeeze axis ${a} of size ${s[a]} (input ${fmtShape(s)})`);
    return reshapeV(
      x,
      s.filter((_, i) => !axes.includes(i)),
    );
  },
  Unsqueeze: (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const given = ctx.opset >= 13 ? ints(ctx, need(ctx, ins, 1, 'axes'), 'axes input') : (ctx.node.ints('axes') ?? ctx.node.fail('axes attribute is missing'));
    const r = x.v.ndim + given.length;
    const axes = given.map((a) => normAxis(ctx, a, r));
    const out: number[] = [];
    let k = 0;
    for (let i = 0; i < r; i++) out.push(axes.includes(i) ? 1 : x.v.shape[k++]!);
    return reshapeV(x, out);
  },
  Concat: (ctx, ins) => {
    const xs = ins.filter((x): x is V => x !== undefined && x.v.size > 0);
    if (xs.length === 0) return need(ctx, ins, 0);
    const axis = normAxis(ctx, ctx.node.int('axis', 0), xs[0]!.v.ndim);
    return lift(ctx, xs, (vs) => o.concatenate(vs, axis));
  },
  Split: (ctx, ins) => {
    const n: Node = ctx.node;
    const x = need(ctx, ins, 0);
    const axis = normAxis(ctx, n.int('axis', 0), x.v.ndim);
    const d = x.v.shape[axis]!;
    const k = n.outputs.length;
    let sizes = ctx.opset >= 13 ? (ins[1] ? ints(ctx, ins[1], 'split input') : undefined) : n.ints('split');
    if (!sizes || sizes.length === 0) {
      const parts = n.has('num_outputs') ? n.int('num_outputs', k) : k;
      const each = Math.ceil(d / parts);
      sizes = Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(each, d - i * each)));
    }
    if (sizes.reduce((a, b) => a + b, 0) !== d) n.fail(`split sizes ${JSON.stringify(sizes)} do not add up to ${d}`);
    let at = 0;
    return sizes.map((s) => {
      const start = at;
      at += s;
      return lift(ctx, [x], ([v]) => o.sliceAxis(v!, axis, start, start + s));
    });
  },
  Slice: (ctx, ins) => {
    const n: Node = ctx.node;
    const x = need(ctx, ins, 0);
    const s = x.v.shape;
    let starts: number[];
    let ends: number[];
    let axes: number[] | undefined;
    let steps: number[] | undefined;
    if (ctx.opset >= 10) {
      starts = ints(ctx, need(ctx, ins, 1, 'starts'), 'starts input');
      ends = ints(ctx, need(ctx, ins, 2, 'ends'), 'ends input');
      axes = ins[3] ? ints(ctx, ins[3], 'axes input') : undefined;
      steps = ins[4] ? ints(ctx, ins[4], 'steps input') : undefined;
    } else {
      starts = n.ints('starts') ?? [];
      ends = n.ints('ends') ?? [];
      axes = n.ints('axes');
    }
    const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(ctx, a, s.length));
    if (ends.length !== starts.length || ax.length !== starts.length) n.fail('starts, ends and axes differ in length');
    let y = x;
    ax.forEach((a, i) => {
      const d = s[a]!;
      const step = steps?.[i] ?? 1;
      if (step === 0) n.fail('a step of 0');
      let b = starts[i]!;
      let e = ends[i]!;
      if (b < 0) b += d;
      if (e < 0) e += d;
      if (step > 0) {
        b = Math.min(Math.max(b, 0), d);
        e = Math.min(Math.max(e, 0), d);
      } else {
        b = Math.min(Math.max(b, 0), d - 1);
        e = Math.min(Math.max(e, -1), d - 1);
      }
      if (step === 1) {
        y = lift(ctx, [y], ([v]) => o.sliceAxis(v!, a, b, Math.max(b, e)));
        return;
      }
      const idx: number[] = [];
      for (let j = b; step > 0 ? j < e : j > e; j += step) idx.push(j);
      y = lift(ctx, [y], ([v]) => takeAxis(v!, a, idx));
    });
    return y;
  },
  Gather: (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const iv = need(ctx, ins, 1, 'indices');
    const axis = normAxis(ctx, ctx.node.int('axis', 0), x.v.ndim);
    const d = x.v.shape[axis]!;
    const idx = ints(ctx, iv, 'indices input').map((i) => {
      const j = i < 0 ? i + d : i;
      if (j < 0 || j >= d) ctx.node.fail(`index ${i} is out of range for axis ${axis} of size ${d}`);
      return j;
    });
    const s = x.v.shape;
    const out = [...s.slice(0, axis), ...iv.v.shape, ...s.slice(axis + 1)];
    return lift(ctx, [x], ([v]) => o.reshape(takeAxis(v!, axis, idx), out), x.elem);
  },
  Tile: (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const reps = ints(ctx, need(ctx, ins, 1, 'repeats'), 'repeats input');
    return lift(ctx, [x], ([v]) => {
      let y = v!;
      reps.forEach((r, a) => {
        if (r !== 1) y = o.concatenate(new Array<Val>(r).fill(y), a);
      });
      return y;
    });
  },
  Expand: (ctx, ins) => {
    const x = need(ctx, ins, 0);
    const shape = ints(ctx, need(ctx, ins, 1, 'shape'), 'shape input');
    const out = broadcastShapes(x.v.shape, shape);
    return lift(ctx, [x], ([v]) => o.broadcastTo(v!, out));
  },
  Pad: (ctx, ins) => {
    const n: Node = ctx.node;
    n.only('mode', n.str('mode', 'constant'), ['constant']);
    const x = need(ctx, ins, 0);
    const r = x.v.ndim;
    const pads = ctx.opset >= 11 ? ints(ctx, need(ctx, ins, 1, 'pads'), 'pads input') : (n.ints('pads') ?? []);
    const value = ctx.opset >= 11 ? (ins[2] ? (values(ctx, ins[2], 'constant_value input')[0] ?? 0) : 0) : n.float('value', 0);
    if (ins[3]) n.fail('the axes input is not supported');
    if (pads.length !== 2 * r) n.fail(`pads has ${pads.length} values, expected ${2 * r}`);
    if (pads.some((p) => p < 0)) n.fail('negative pads are not supported');
    if (value !== 0) n.fail(`constant_value ${value} is not supported (only 0)`);
    return lift(ctx, [x], ([v]) => o.pad(v!, pads.slice(0, r), pads.slice(r)));
  },

  Constant: (ctx) => {
    const n: Node = ctx.node;
    const [name, a] = [...n.attrs.entries()][0] ?? ['', undefined];
    if (!a) n.fail('has no value');
    if (name === 'value') {
      const t = readTensor(a.t ?? {}, 'its value', (m) => n.fail(m));
      return constV(new Tensor(t.data, t.shape), t.elem);
    }
    if (name === 'value_float') return constOf([a.f ?? 0], [], 'float');
    if (name === 'value_floats') return constOf(a.floats ?? [], [(a.floats ?? []).length], 'float');
    if (name === 'value_int') return constOf([num(a.i)], [], 'int');
    if (name === 'value_ints') return constOf((a.ints ?? []).map(num), [(a.ints ?? []).length], 'int');
    return n.fail(`attribute ${name} is not supported (only value, value_float(s), value_int(s))`);
  },
  ConstantOfShape: (ctx, ins) => {
    const shape = ints(ctx, need(ctx, ins, 0, 'shape'), 'shape input');
    const a = ctx.node.attrs.get('value');
    const t = a?.t ? readTensor(a.t, 'its value', (m) => ctx.node.fail(m)) : { data: Float64Array.of(0), elem: 'float' as Elem };
    return constV(full(shape, t.data[0] ?? 0, 'float64'), t.elem);
  },
  Shape: (ctx, ins) => {
    const s = need(ctx, ins, 0).v.shape;
    const r = s.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
    const dims = s.slice(clamp(ctx.node.int('start', 0)), clamp(ctx.node.int('end', r)));
    return constOf(dims, [dims.length], 'int');
  },
  Size: (ctx, ins) => constOf([need(ctx, ins, 0).v.size], [], 'int'),
  Cast: (ctx, ins) => castTo(ctx, need(ctx, ins, 0), ctx.node.int('to', DT.FLOAT)),
  CastLike: (ctx, ins) => {
    const like = need(ctx, ins, 1);
    return castTo(ctx, need(ctx, ins, 0), like.elem === 'float' ? DT.DOUBLE : like.elem === 'bool' ? DT.BOOL : DT.INT64);
  },
  Range: (ctx, ins) => {
    const [start, limit, delta] = [0, 1, 2].map((k) => values(ctx, need(ctx, ins, k), ['start', 'limit', 'delta'][k]!)[0]!);
    if (delta === 0) ctx.node.fail('delta is 0');
    const count = Math.max(Math.ceil((limit! - start!) / delta!), 0);
    const elem = need(ctx, ins, 0).elem;
    return constOf(
      Array.from({ length: count }, (_, i) => start! + i * delta!),
      [count],
      elem,
    );
  },
};

/** The ONNX operators loadOnnx maps onto the engine (default domain, opsets 7–18 semantics). */
export const ONNX_OPS: readonly string[] = Object.keys(HANDLERS).sort();

/** The input positions of an op that must be constants (a float initializer there is a constant, not a parameter). */
const STATIC_INPUTS: Record<string, readonly number[]> = {
  Reshape: [1],
  Slice: [1, 2, 3, 4],
  Squeeze: [1],
  Unsqueeze: [1],
  ReduceMean: [1],
  ReduceSum: [1],
  ReduceMax: [1],
  ReduceMin: [1],
  ReduceSumSquare: [1],
  ReduceL2: [1],
  Expand: [1],
  ConstantOfShape: [0],
  Tile: [1],
  Gather: [1],
  Pow: [1],
  Range: [0, 1, 2],
  Split: [1],
  Pad: [1, 2, 3],
  Shape: [0],
  Size: [0],
};

// ---------------------------------------------------------------- the model

export interface LoadOnnxOptions {
  /** The model's name (default: the file name without .onnx). */
  name?: string;
}

/** An ONNX model from a .onnx file (see the module comment). */
export function loadOnnx(path: string, opts: LoadOnnxOptions = {}): Model {
  const bytes = readFileOrExplain(path);
  return parseOnnx(bytes, path, { name: opts.name ?? basename(path).replace(/\.onnx$/i, '') });
}

function dimsOf(vi: IValueInfo): (number | string)[] | undefined {
  const shape = vi.type?.tensorType?.shape;
  if (!shape) return undefined;
  return (shape.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== null && d.dimValue !== undefined && num(d.dimValue) > 0 ? num(d.dimValue) : '?'));
}

/**
 * Parse the bytes of an .onnx file; `source` names it in error messages. The model keeps `bytes`
 * (a parallel bracket's worker thread parses them again): do not change them afterwards.
 */
export function parseOnnx(bytes: Uint8Array, source: string, opts: LoadOnnxOptions = {}): Model {
  const fail = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  let proto: onnxProto.onnx.ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    return fail(`not a valid ONNX file (the protobuf does not decode: ${(e as Error).message}); the file may be truncated or not an .onnx model`);
  }
  const g = proto.graph;
  if (!g || (g.node ?? []).length === 0) return fail('not an ONNX model: it has no graph (or an empty one); the file may not be an .onnx model');
  const opsetEntry = (proto.opsetImport ?? []).find((e) => !e.domain || e.domain === 'ai.onnx');
  if (!opsetEntry) return fail('declares no opset of the default ONNX domain');
  const opset = num(opsetEntry.version);
  const name = opts.name ?? 'onnx';

  // initializers
  const inits = new Map<string, RawTensor>();
  for (const t of g.initializer ?? []) inits.set(t.name ?? '', readTensor(t, `initializer "${t.name}"`, fail));
  if ((g.sparseInitializer ?? []).length > 0) fail('sparse initializers are not supported');

  // the one data input and the one output
  const dataInputs = (g.input ?? []).filter((i) => !inits.has(i.name ?? ''));
  if (dataInputs.length === 0) fail('the graph has no data input (every graph input is an initializer)');
  if (dataInputs.length > 1) fail(`the graph has ${dataInputs.length} data inputs (${dataInputs.map((i) => i.name).join(', ')}); a model takes one input [N, ...]`);
  const input = dataInputs[0]!;
  const inputName = input.name ?? '';
  const inType = input.type?.tensorType?.elemType ?? DT.FLOAT;
  if (!FLOAT_TYPES.has(inType)) fail(`the input "${inputName}" is of type ${typeName(inType)}; only float inputs are supported`);
  const inDims = dimsOf(input);
  if (!inDims || inDims.length < 2) fail(`the input "${inputName}" has ${inDims ? `shape [${inDims.join(',')}]` : 'no shape'}; a model takes an input [N, ...] with its dimensions after N fixed`);
  const rest = inDims!.slice(1);
  if (rest.some((d) => typeof d !== 'number')) fail(`the input "${inputName}" has shape [${inDims!.join(',')}]; only the first (batch) dimension may be symbolic`);
  const inputShape = rest as number[];
  const fixedBatch = typeof inDims![0] === 'number' ? inDims![0] : undefined;
  if ((g.output ?? []).length !== 1) fail(`the graph has ${(g.output ?? []).length} outputs; a model has one output (logits [N, K])`);
  const output = g.output![0]!;
  const outputName = output.name ?? '';
  const outDims = dimsOf(output);
  if (outDims && outDims.length !== 2) fail(`the output "${outputName}" has shape [${outDims.join(',')}]; a model's output is [N, K]`);

  // The exporter merges initializers of equal value: a fresh BatchNorm's running_var (all ones)
  // becomes Identity(its weight), its running_mean Identity(its bias). A buffer is state of its
  // own, so such an Identity whose output serves only as BatchNorm statistics becomes an
  // initializer again under the buffer's name (a copy). Parameters stay shared: an Identity
  // that ties two parameters is left alone.
  const protoNodes = g.node ?? [];
  const statSlot = new Map<string, boolean>(); // value → used only as BatchNorm mean/var so far
  for (const p of protoNodes) {
    (p.input ?? []).forEach((name, k) => {
      const stat = p.opType === 'BatchNormalization' && (k === 3 || k === 4);
      statSlot.set(name, (statSlot.get(name) ?? true) && stat);
    });
  }
  const kept = protoNodes.filter((p) => {
    const [src, out] = [p.input?.[0] ?? '', p.output?.[0] ?? ''];
    if (p.opType !== 'Identity' || !inits.has(src) || inits.has(out) || statSlot.get(out) !== true || out === outputName) return true;
    const t = inits.get(src)!;
    inits.set(out, { ...t, data: Float64Array.from(t.data) });
    return false;
  });

  // nodes: supported ops, known inputs, topological order
  const nodes = kept.map((p, i) => new Node(p, i, source));
  const produced = new Map<string, number>();
  for (const n of nodes) {
    if (n.proto.domain && n.proto.domain !== 'ai.onnx') n.fail(`the op domain "${n.proto.domain}" is not supported (only the default ONNX domain)`);
    if (!HANDLERS[n.op]) fail(`ONNX op ${n.op} (node "${n.label}") is not supported; supported ops: ${ONNX_OPS.join(', ')}`);
    for (const out of n.outputs) if (out) produced.set(out, n.index);
  }
  for (const n of nodes) {
    for (const i of n.inputs) {
      if (i && !inits.has(i) && i !== inputName && !produced.has(i)) n.fail(`its input "${i}" is missing: it is neither an initializer, the graph input nor the output of a node`);
    }
  }
  if (!produced.has(outputName) && outputName !== inputName && !inits.has(outputName)) fail(`the graph output "${outputName}" is produced by no node`);
  const order: Node[] = [];
  {
    const state = new Array<number>(nodes.length).fill(0); // 0 new, 1 visiting, 2 done
    const visit = (n: Node) => {
      if (state[n.index] === 2) return;
      if (state[n.index] === 1) n.fail('the graph has a cycle');
      state[n.index] = 1;
      for (const i of n.inputs) {
        const p = produced.get(i);
        if (p !== undefined) visit(nodes[p]!);
      }
      state[n.index] = 2;
      order.push(n);
    };
    nodes.forEach(visit);
  }
  const used = new Set<string>([outputName]);
  for (const n of nodes) for (const i of n.inputs) if (i) used.add(i);

  // parameters, buffers and constants among the initializers
  const uses = new Map<string, [Node, number][]>();
  for (const n of nodes) n.inputs.forEach((i, k) => uses.set(i, [...(uses.get(i) ?? []), [n, k]]));
  const bn = new Map<number, BnInfo>();
  const bufferShapes: Record<string, number[]> = {};
  const bufferInit: Record<string, Float64Array> = {};
  for (const n of nodes) {
    if (n.op !== 'BatchNormalization') continue;
    const [scale, mean, vari] = [n.inputs[1], n.inputs[3] ?? '', n.inputs[4] ?? ''];
    if (!inits.has(mean) || !inits.has(vari)) n.fail('its mean and variance must be initializers (export with model.eval())');
    const info: BnInfo = { mean, variance: vari };
    const m = /^(.*)\.weight$/.exec(scale ?? '');
    if (m) info.batches = `${m[1]}.num_batches_tracked`;
    bn.set(n.index, info);
    for (const k of [mean, vari]) {
      bufferShapes[k] = inits.get(k)!.shape;
      bufferInit[k] = inits.get(k)!.data;
    }
    if (info.batches && !inits.has(info.batches)) {
      bufferShapes[info.batches] = [];
      bufferInit[info.batches] = Float64Array.of(0);
    }
  }
  const paramShapes: Record<string, number[]> = {};
  const consts = new Map<string, V>();
  for (const [k, t] of inits) {
    if (k in bufferShapes) continue;
    const u = uses.get(k) ?? [];
    const isStatic = u.every(([n, i]) => (STATIC_INPUTS[n.op] ?? []).includes(i));
    if (t.elem === 'float' && !isStatic) paramShapes[k] = t.shape;
    else if (u.length > 0 || k === outputName) consts.set(k, constV(new Tensor(t.data, t.shape), t.elem));
  }
  if (inputName in paramShapes) fail(`the input "${inputName}" is also an initializer`);

  const initialState = (dtype: DType) => {
    const params: Record<string, Tensor> = {};
    for (const k of Object.keys(paramShapes)) {
      const t = inits.get(k)!;
      params[k] = dtype === 'float64' ? new Tensor(Float64Array.from(t.data), t.shape) : new Tensor(Float32Array.from(t.data), t.shape);
    }
    const buffers: Record<string, Tensor> = {};
    for (const [k, s] of Object.entries(bufferShapes)) buffers[k] = new Tensor(Float64Array.from(bufferInit[k]!), s);
    return { params, buffers };
  };

  /** How many times each value is used after it is produced (outputs not used are not needed). */
  const run = (params: Params, x: Val, state: ForwardState, count?: { values: number }): Val => {
    if (x.ndim !== inputShape.length + 1 || inputShape.some((d, i) => x.shape[i + 1] !== d)) {
      throw new UserError(`model ${name} (${source}) takes input [N,${inputShape.join(',')}], got ${fmtShape(x.shape)}`);
    }
    const dtype = x.dtype;
    const env = new Map<string, V>(consts);
    env.set(inputName, { v: x, elem: 'float', c: false });
    for (const k of Object.keys(paramShapes)) {
      const p = params[k];
      if (!p) throw new UserError(`model ${name} (${source}): parameter ${k} is missing`);
      env.set(k, { v: p, elem: 'float', c: false });
    }
    for (const n of order) {
      const ins = n.inputs.map((i) => (i ? env.get(i) : undefined));
      const ctx: Ctx = { node: n, opset, dtype, state, bn, usedOutputs: (k) => !!n.outputs[k] && used.has(n.outputs[k]) };
      let out: V | V[];
      try {
        out = HANDLERS[n.op]!(ctx, ins);
      } catch (e) {
        // the engine's shape and dtype errors are the graph's problem; anything else (a TypeError …) is a bug
        if (e instanceof UserError || !(e instanceof Error) || e.constructor !== Error) throw e;
        const shapes = ins.map((v) => (v ? fmtShape(v.v.shape) : '-')).join(', ');
        return n.fail(`${e.message} (inputs ${shapes})`);
      }
      const outs = Array.isArray(out) ? out : [out];
      n.outputs.forEach((name, k) => {
        const v = outs[k];
        if (!name) return;
        if (!v) n.fail(`output ${k} is not produced`);
        env.set(name, v);
        if (count && !v.c) count.values += v.v.size;
      });
    }
    const y = env.get(outputName)!;
    if (y.elem !== 'float') throw new UserError(`${source}: the graph output "${outputName}" is not a float tensor`);
    return data({ node: nodes[0]!, opset, dtype, state, bn, usedOutputs: () => false }, y);
  };

  const initial = initialState('float32');
  const probe = (batch: number, count?: { values: number }) => {
    const z = full([batch, ...inputShape], 0, 'float32');
    return run(initial.params, z, evalState(initial.buffers), count);
  };
  const count = { values: 0 };
  let probeOut: Val;
  try {
    probeOut = probe(2, count);
  } catch (e) {
    if (fixedBatch !== undefined && fixedBatch !== 2) {
      try {
        probe(fixedBatch);
      } catch {
        throw e;
      }
      fail(`the graph works only at its fixed batch size ${fixedBatch}; re-export with a dynamic batch dimension (torch.onnx.export(..., dynamic_axes={"${inputName}": {0: "batch"}, "${outputName}": {0: "batch"}}))`);
    }
    throw e;
  }
  if (probeOut.ndim !== 2 || probeOut.shape[0] !== 2) fail(`the output "${outputName}" has shape ${fmtShape(probeOut.shape)} for a batch of 2; a model's output is [N, K]`);
  const numOutputs = probeOut.shape[1]!;

  let defaultState: ForwardState | undefined;
  const nParams = Object.values(paramShapes).reduce((a, s) => a + sizeOf(s), 0);
  const producer = proto.producerName ? `, from ${proto.producerName}` : '';
  const model: Model = {
    name,
    description: `ONNX model ${basename(source)} (opset ${opset}${producer}): ${nodes.length} nodes, ${nParams} parameters`,
    inputShape,
    numOutputs,
    paramShapes,
    bufferShapes,
    activationsPerExample: Math.ceil(count.values / 2),
    initialState,
    apply: (params, x, state) => run(params, x, state ?? (defaultState ??= evalState(initialState('float64').buffers))),
  };
  // (the bytes are kept, not copied: a second engine instance parses them again, parallel.ts)
  return withModelRecipe(model, { kind: 'onnx', bytes, source, name });
}
