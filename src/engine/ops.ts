/**
 * The differentiable operations: thin wrappers that validate, broadcast (NumPy rules) and call
 * `bind`. Numbers are constants of the other operand's dtype. Composites (sigmoid, losses, …)
 * live in composites.ts. Function declarations (hoisted) keep the rule ↔ op import cycle safe.
 */
import type { DType } from './dtype.js';
import type { CompareOp, ConvParams, PoolParams, PrimParams } from './prims.js';
import { broadcastShapes, fmtShape, normAxes, shapesEqual, sizeOf, type Shape } from './shape.js';
import { Tensor, Val, full, scalar } from './tensor.js';
import { bind } from './trace.js';

export type ValLike = Val | number;

function constLike(v: number, like: Val): Tensor {
  return scalar(v, like.dtype);
}

/** Make two operands the same dtype and shape. */
function coerce(name: string, a: ValLike, b: ValLike): [Val, Val] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error(`${name}: at least one operand must be a tensor`);
  const x = typeof a === 'number' ? constLike(a, b as Val) : a;
  const y = typeof b === 'number' ? constLike(b, x) : b;
  if (x.dtype !== y.dtype) {
    throw new Error(`${name}: operands have dtypes ${x.dtype} and ${y.dtype}; cast one of them explicitly`);
  }
  if (shapesEqual(x.shape, y.shape)) return [x, y];
  const s = broadcastShapes(x.shape, y.shape);
  return [broadcastTo(x, s), broadcastTo(y, s)];
}

// ---------------------------------------------------------------- elementwise

export function add(a: ValLike, b: ValLike): Val {
  const [x, y] = coerce('add', a, b);
  return bind('add', [x, y], {});
}
export function sub(a: ValLike, b: ValLike): Val {
  const [x, y] = coerce('sub', a, b);
  return bind('sub', [x, y], {});
}
export function mul(a: ValLike, b: ValLike): Val {
  const [x, y] = coerce('mul', a, b);
  return bind('mul', [x, y], {});
}
export function div(a: ValLike, b: ValLike): Val {
  const [x, y] = coerce('div', a, b);
  return bind('div', [x, y], {});
}
/** Elementwise maximum; at ties each operand gets half the derivative. */
export function maximum(a: ValLike, b: ValLike): Val {
  const [x, y] = coerce('maximum', a, b);
  return bind('max', [x, y], {});
}
/** Elementwise minimum; at ties each operand gets half the derivative. */
export function minimum(a: ValLike, b: ValLike): Val {
  const [x, y] = coerce('minimum', a, b);
  return bind('min', [x, y], {});
}
export function neg(x: Val): Val {
  return bind('neg', [x], {});
}
export function exp(x: Val): Val {
  return bind('exp', [x], {});
}
export function log(x: Val): Val {
  return bind('log', [x], {});
}
export function log1p(x: Val): Val {
  return bind('log1p', [x], {});
}
export function tanh(x: Val): Val {
  return bind('tanh', [x], {});
}
/** The Gauss error function erf(x) (primitive); d erf = (2/√π)·e^(−x²). */
export function erf(x: Val): Val {
  return bind('erf', [x], {});
}
export function sqrt(x: Val): Val {
  return bind('sqrt', [x], {});
}
export function abs(x: Val): Val {
  return bind('abs', [x], {});
}
/** x·tanh(softplus(x)) (primitive). */
export function mish(x: Val): Val {
  return bind('mish', [x], {});
}
/** d mish / dx = tanh(softplus(x)) + x·(1 − tanh²(softplus(x)))·σ(x) (primitive). */
export function mishGrad(x: Val): Val {
  return bind('mish_grad', [x], {});
}
/** d² mish / dx² = (1 − T²)·σ·(2 + x(1 − σ − 2Tσ)), T = tanh(softplus(x)), σ = sigmoid(x) (primitive). */
export function mishGrad2(x: Val): Val {
  return bind('mish_grad2', [x], {});
}
/** g·mish'(x): mish's tangent and cotangent for g (primitive; the same values as mul(g, mishGrad(x)) in one pass). */
export function mishVjp(x: Val, g: Val): Val {
  return bind('mish_vjp', [x, g], {});
}
/** x ** p for a constant p. */
export function pow(x: Val, p: number): Val {
  if (p === 1) return x;
  return bind('pow', [x], { exponent: p });
}
/**
 * x·s + t with s and t vectors of length x.shape[axis], applied along that axis (per channel for
 * axis 1 of [N, C, H, W]): one pass, the same values as mul(x, s) + t with s and t broadcast.
 */
export function channelAffine(x: Val, s: Val, t: Val, axis = 1): Val {
  return bind('channel_affine', [x, s, t], { axis });
}
/**
 * BatchNorm's normalisation (primitive): (x − μ)/√(σ² + eps), μ and σ² the mean and biased
 * variance of each index along `axis` over all other axes (axis 1 of [N, C, H, W]: per channel
 * over N, H, W). One pass forward and one back (bnNormalizeJvp), instead of about fifteen.
 */
export function bnNormalize(x: Val, axis = 1, eps = 1e-5): Val {
  return bind('bn_normalize', [x], { axis, eps });
}
/** J(x)·t for bnNormalize's (symmetric) Jacobian at x: its tangent of t and its cotangent of t (primitive). */
export function bnNormalizeJvp(x: Val, t: Val, axis = 1, eps = 1e-5): Val {
  return bind('bn_normalize_jvp', [x, t], { axis, eps });
}
/** [2, C]: Σ u·x (row 0) and Σ u (row 1) of each index along `axis` over all other axes (primitive; one pass). */
export function channelSums(u: Val, x: Val, axis = 1): Val {
  return bind('channel_sums', [u, x], { axis });
}
/** [2, C]: each index along `axis`'s mean (row 0) and biased variance (row 1) over all other axes (primitive; derivative zero). */
export function channelMoments(x: Val, axis = 1): Val {
  return bind('channel_moments', [x], { axis });
}
/**
 * Training-mode BatchNorm with its scale and shift (primitive bn_affine, one pass): x̂·w + b, x̂
 * normalised by the statistics `moments`, which must be channelMoments(x, axis) of this x (pass
 * them when they are needed anyway, as for the running averages; omitted, they are computed
 * here). Its derivatives are those of channelAffine(bnNormalize(x), w, b), the statistics'
 * included.
 */
export function bnAffine(x: Val, w: Val, b: Val, axis = 1, eps = 1e-5, moments?: Val): Val {
  return bind('bn_affine', [x, moments ?? channelMoments(x, axis), w, b], { axis, eps });
}
/** [2, C]: Σ u·x̂ (row 0) and Σ u (row 1), x̂ normalised by m = channelMoments(x, axis) (primitive bn_sums; bn_affine's rules use it). */
export function bnSums(x: Val, m: Val, u: Val, axis = 1, eps = 1e-5): Val {
  return bind('bn_sums', [x, m, u], { axis, eps });
}
/** w·J(x)·u, J bnNormalize's Jacobian, from m = channelMoments(x, axis) and s = bnSums(x, m, u) (primitive bn_affine_jvp; bn_affine's rules use it). */
export function bnAffineJvp(x: Val, m: Val, w: Val, u: Val, s: Val, axis = 1, eps = 1e-5): Val {
  return bind('bn_affine_jvp', [x, m, w, u, s], { axis, eps });
}
export function square(x: Val): Val {
  return bind('pow', [x], { exponent: 2 });
}
export function compare(a: ValLike, op: CompareOp, b: ValLike): Val {
  const [x, y] = coerce(`compare(${op})`, a, b);
  return bind('compare', [x, y], { op });
}
export function gt(a: ValLike, b: ValLike): Val {
  return compare(a, 'gt', b);
}
export function lt(a: ValLike, b: ValLike): Val {
  return compare(a, 'lt', b);
}
export function eq(a: ValLike, b: ValLike): Val {
  return compare(a, 'eq', b);
}
/** c ≠ 0 ? a : b, broadcasting all three. */
export function where(c: Val, a: ValLike, b: ValLike): Val {
  const [x, y] = coerce('where', a, b);
  let cond = c.dtype === x.dtype ? c : cast(c, x.dtype);
  const s = broadcastShapes(cond.shape, x.shape);
  cond = broadcastTo(cond, s);
  return bind('select', [cond, broadcastTo(x, s), broadcastTo(y, s)], {});
}
export function cast(x: Val, dtype: DType): Val {
  if (x.dtype === dtype) return x;
  return bind('cast', [x], { dtype });
}
/** Identity with zero derivative. */
export function stopGradient(x: Val): Val {
  return bind('stop_gradient', [x], {});
}

// ---------------------------------------------------------------- reductions

function reduce(prim: 'reduce_sum' | 'reduce_max', x: Val, axis: number | readonly number[] | undefined, keepdims: boolean): Val {
  const axes = normAxes(axis, x.ndim);
  let y = axes.length === 0 ? x : bind(prim, [x], { axes });
  if (keepdims)
    y = reshape(
      y,
      x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
    );
  return y;
}
/** Sum over axes (all by default). */
export function sum(x: Val, axis?: number | readonly number[], keepdims = false): Val {
  return reduce('reduce_sum', x, axis, keepdims);
}
/** Max over axes (all by default); at ties the derivative is shared equally. */
export function max(x: Val, axis?: number | readonly number[], keepdims = false): Val {
  return reduce('reduce_max', x, axis, keepdims);
}
export function mean(x: Val, axis?: number | readonly number[], keepdims = false): Val {
  const axes = normAxes(axis, x.ndim);
  const n = axes.reduce((acc, a) => acc * x.shape[a]!, 1);
  return div(sum(x, axes, keepdims), n);
}

// ---------------------------------------------------------------- shape

export function reshape(x: Val, shape: Shape): Val {
  let s = [...shape];
  const hole = s.indexOf(-1);
  if (hole >= 0) {
    const rest = sizeOf(s.filter((_, i) => i !== hole));
    s[hole] = rest === 0 ? 0 : x.size / rest;
  }
  if (sizeOf(s) !== x.size || s.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot reshape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)}`);
  }
  if (shapesEqual(s, x.shape)) return x;
  s = s.map((d) => d);
  return bind('reshape', [x], { shape: s });
}
export function flatten(x: Val, startAxis = 1): Val {
  const keep = x.shape.slice(0, startAxis);
  return reshape(x, [...keep, -1]);
}
/** NumPy-style broadcast to a shape. */
export function broadcastTo(x: Val, shape: Shape): Val {
  if (shapesEqual(x.shape, shape)) return x;
  const off = shape.length - x.ndim;
  if (off < 0) throw new Error(`broadcastTo: cannot broadcast ${fmtShape(x.shape)} to lower rank ${fmtShape(shape)}`);
  x.shape.forEach((d, i) => {
    if (d !== 1 && d !== shape[i + off]) throw new Error(`broadcastTo: cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  });
  return bind('broadcast', [x], { shape: [...shape], dims: x.shape.map((_, i) => i + off) });
}
/** Broadcast in the primitive's own terms: operand axis i becomes output axis dims[i]. */
export function broadcastInDim(x: Val, shape: Shape, dims: readonly number[]): Val {
  if (shapesEqual(x.shape, shape)) return x;
  return bind('broadcast', [x], { shape: [...shape], dims: [...dims] });
}
export function transpose(x: Val, perm?: readonly number[]): Val {
  const p = perm ?? x.shape.map((_, i) => x.ndim - 1 - i);
  if (p.every((v, i) => v === i)) return x;
  return bind('transpose', [x], { perm: [...p] });
}
/** Contiguous slice [start, end) on every axis. */
export function slice(x: Val, start: readonly number[], end: readonly number[]): Val {
  if (start.every((s) => s === 0) && end.every((e, i) => e === x.shape[i])) return x;
  return bind('slice', [x], { start: [...start], end: [...end] });
}
/** Slice one axis. */
export function sliceAxis(x: Val, axis: number, start: number, end: number): Val {
  const a = normAxes(axis, x.ndim)[0]!;
  return slice(
    x,
    x.shape.map((_, i) => (i === a ? start : 0)),
    x.shape.map((d, i) => (i === a ? end : d)),
  );
}
/** Zero padding. */
export function pad(x: Val, lo: readonly number[], hi: readonly number[]): Val {
  if (lo.every((v) => v === 0) && hi.every((v) => v === 0)) return x;
  return bind('pad', [x], { lo: [...lo], hi: [...hi] });
}
export function concatenate(xs: readonly Val[], axis = 0): Val {
  if (xs.length === 0) throw new Error('concatenate: needs at least one tensor');
  if (xs.length === 1) return xs[0]!;
  const a = normAxes(axis, xs[0]!.ndim)[0]!;
  return bind('concatenate', xs, { axis: a });
}

// ---------------------------------------------------------------- linear algebra

/**
 * Matrix product with NumPy batch broadcasting; a 1-D operand is not promoted (use reshape).
 * transA/transB multiply by the transpose of the last two axes without copying.
 */
export function matmul(a: Val, b: Val, opts: { transA?: boolean; transB?: boolean } = {}): Val {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  if (a.ndim < 2 || b.ndim < 2) throw new Error(`matmul: operands need rank ≥ 2, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  if (a.dtype !== b.dtype) throw new Error(`matmul: operands have dtypes ${a.dtype} and ${b.dtype}; cast one of them explicitly`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const x = broadcastTo(a, [...batch, ...a.shape.slice(-2)]);
  const y = broadcastTo(b, [...batch, ...b.shape.slice(-2)]);
  return bind('matmul', [x, y], { transA, transB });
}

export interface ConvOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}
const pair = (v: number | readonly [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : [v[0], v[1]];

export function convParams(o: ConvOptions = {}): ConvParams {
  return { stride: pair(o.stride, 1), padding: pair(o.padding, 0), dilation: pair(o.dilation, 1), groups: o.groups ?? 1 };
}

/** 2-D cross-correlation in NCHW, as torch.nn.functional.conv2d (bias separate). */
export function conv2d(x: Val, w: Val, opts: ConvOptions = {}): Val {
  return bind('conv2d', [x, w], convParams(opts));
}

export interface PoolOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
}
function poolParams(kernel: number | [number, number], o: PoolOptions): PoolParams {
  const k = pair(kernel, 1);
  return { kernel: k, stride: o.stride === undefined ? k : pair(o.stride, 1), padding: pair(o.padding, 0) };
}

/** Max-pool in NCHW; the derivative goes to the first maximal element of each window (PyTorch's CPU rule). */
export function maxPool2d(x: Val, kernel: number | [number, number], opts: PoolOptions = {}): Val {
  return bind('maxpool2d', [x, x], poolParams(kernel, opts));
}

/** Average pool in NCHW (zero padding counted, as PyTorch's default): a depthwise conv with weight 1/(kh·kw). */
export function avgPool2d(x: Val, kernel: number | [number, number], opts: PoolOptions = {}): Val {
  const p = poolParams(kernel, opts);
  const c = x.shape[1];
  if (x.ndim !== 4 || c === undefined) throw new Error(`avgPool2d: input must be [N,C,H,W], got ${fmtShape(x.shape)}`);
  const w = full([c, 1, p.kernel[0], p.kernel[1]], 1 / (p.kernel[0] * p.kernel[1]), x.dtype);
  return conv2d(x, w, { stride: [p.stride[0], p.stride[1]], padding: [p.padding[0], p.padding[1]], groups: c });
}

// ---------------------------------------------------------------- constructors that follow a value

export function zerosLike(x: Val): Tensor {
  return full(x.shape, 0, x.dtype);
}
export function onesLike(x: Val): Tensor {
  return full(x.shape, 1, x.dtype);
}

// ---------------------------------------------------------------- raw binds used by derivative rules

export function bindConv(x: Val, w: Val, p: ConvParams): Val {
  return bind('conv2d', [x, w], p);
}
export function bindConvInputGrad(dy: Val, w: Val, p: PrimParams['conv2d_input_grad']): Val {
  return bind('conv2d_input_grad', [dy, w], p);
}
export function bindConvFilterGrad(x: Val, dy: Val, p: PrimParams['conv2d_filter_grad']): Val {
  return bind('conv2d_filter_grad', [x, dy], p);
}
export function bindMaxPool(key: Val, val: Val, p: PoolParams): Val {
  return bind('maxpool2d', [key, val], p);
}
export function bindMaxPoolScatter(key: Val, dy: Val, p: PrimParams['maxpool2d_scatter']): Val {
  return bind('maxpool2d_scatter', [key, dy], p);
}
