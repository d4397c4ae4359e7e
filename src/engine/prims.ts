/**
 * The closed set of primitives. Each name maps to the type of its static parameters.
 * Every primitive has, in rules/*.ts, a shape rule, a jvp rule and a vjp rule written in
 * primitives, and in kernels/*.ts a kernel; the tables are mapped types over `Prim`, so a
 * primitive without a rule or kernel does not compile. See docs/adding-a-primitive.md.
 */
import type { DType } from './dtype.js';

/** conv2d in NCHW, cross-correlation as PyTorch: x [N, C, H, W], w [O, C/groups, KH, KW]. */
export interface ConvParams {
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly groups: number;
}

/** Max-pool windows; padding counts as −∞. */
export interface PoolParams {
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
}

export type CompareOp = 'gt' | 'ge' | 'lt' | 'le' | 'eq' | 'ne';

type None = Record<string, never>;

export interface PrimParams {
  // elementwise binary (operands of equal shape and dtype; broadcasting happens in ops.ts)
  add: None;
  sub: None;
  mul: None;
  div: None;
  /** max(a, b); at a tie each operand receives half the derivative (as JAX and PyTorch). */
  max: None;
  /** min(a, b); ties as `max`. */
  min: None;
  // elementwise unary
  neg: None;
  exp: None;
  log: None;
  log1p: None;
  tanh: None;
  /** The Gauss error function erf(x) = (2/√π)∫₀ˣ e^(−t²) dt; derivative (2/√π)·e^(−x²). */
  erf: None;
  sqrt: None;
  /** |x|; derivative sign(x), 0 at 0. */
  abs: None;
  /**
   * Mish, x·tanh(softplus(x)), as one pass (its composite form takes about ten), its derivative
   * mish_grad and second derivative mish_grad2 (what an HVP through mish evaluates), whose own
   * derivative is a composite: derivatives still nest to any order.
   */
  mish: None;
  mish_grad: None;
  mish_grad2: None;
  /** (x, g) → g·mish'(x) in one pass: mish's tangent and cotangent (mish_grad, then mul, fused). */
  mish_vjp: None;
  /** x ** exponent for a constant exponent. */
  pow: { readonly exponent: number };
  /**
   * (x, s, t) → x·s + t with s and t vectors along x's `axis` (per channel: BatchNorm's scale and
   * shift), the product rounded before the sum: the same values as mul and add of the broadcast
   * vectors, in one pass over x instead of five (two broadcasts, mul, add).
   */
  channel_affine: { readonly axis: number };
  /**
   * BatchNorm's normalisation in one pass: (x − μ)/√(σ² + eps), with μ and σ² the mean and the
   * biased variance of each index along `axis` over all other axes (per channel for axis 1 of
   * [N, C, H, W]). Its Jacobian J is symmetric, so both derivatives are bn_normalize_jvp.
   */
  bn_normalize: { readonly axis: number; readonly eps: number };
  /**
   * (x, t) → J(x)·t for bn_normalize's Jacobian J(x) = (1/σ)(t − mean(t) − x̂·mean(x̂·t)), x̂ the
   * normalised x (the tangent and, J being symmetric, the cotangent of bn_normalize); linear in t,
   * its derivatives in x are closed-form expressions of bn_normalize, itself and means.
   */
  bn_normalize_jvp: { readonly axis: number; readonly eps: number };
  /**
   * (u, x) → [2, C]: Σ u·x (row 0) and Σ u (row 1) of each index along `axis` over all other axes,
   * in one pass (channel_affine's scale and shift cotangents: BatchNorm's weight and bias gradients).
   */
  channel_sums: { readonly axis: number };
  /** x → [2, C]: the mean (row 0) and biased variance (row 1) of each index along `axis` over all other axes; derivative zero (BatchNorm's running statistics). */
  channel_moments: { readonly axis: number };
  /**
   * Training-mode BatchNorm with its scale and shift in one pass: (x, m, w, b) → x̂·w + b, x̂ =
   * (x − μ)/√(σ² + eps), μ and σ² read from m = channel_moments(x) (not recomputed), w and b
   * vectors along `axis`; computed in float64 and rounded once. m must be channel_moments(x) of
   * this x (ops.bnAffine builds it so): the derivative rules are those of
   * channel_affine(bn_normalize(x), w, b), through the statistics, and give m none.
   */
  bn_affine: { readonly axis: number; readonly eps: number };
  /**
   * (x, m, u) → [2, C]: Σ u·x̂ (row 0) and Σ u (row 1) per index along `axis`, x̂ normalised with
   * the statistics m = channel_moments(x) (one pass over x and u): bn_affine's scale and shift
   * cotangents. Its derivatives are those of channel_sums(u, bn_normalize(x)); m gets none.
   */
  bn_sums: { readonly axis: number; readonly eps: number };
  /**
   * (x, m, w, u, s) → w·J(x)·u, J bn_normalize's (symmetric) Jacobian, in one pass from the
   * statistics m = channel_moments(x) and the sums s = bn_sums(x, m, u): bn_affine's tangent and
   * cotangent of x. Its derivatives are those of channel_affine(bn_normalize_jvp(x, u), w, 0);
   * m and s get none.
   */
  bn_affine_jvp: { readonly axis: number; readonly eps: number };
  /** 1 where `a op b`, else 0 (same dtype); derivative zero. */
  compare: { readonly op: CompareOp };
  /** select(c, a, b) = c ≠ 0 ? a : b; no derivative through c. */
  select: None;
  cast: { readonly dtype: DType };
  /** Identity whose derivative is zero. */
  stop_gradient: None;
  // reductions
  reduce_sum: { readonly axes: readonly number[] };
  /** Max over axes; at ties the derivative is shared equally among the maximal elements. */
  reduce_max: { readonly axes: readonly number[] };
  // shape
  reshape: { readonly shape: readonly number[] };
  /** Operand axis i becomes output axis dims[i] (of equal size or size 1); other output axes are new. */
  broadcast: { readonly shape: readonly number[]; readonly dims: readonly number[] };
  transpose: { readonly perm: readonly number[] };
  slice: { readonly start: readonly number[]; readonly end: readonly number[] };
  /** Zero padding, lo/hi elements before/after each axis. */
  pad: { readonly lo: readonly number[]; readonly hi: readonly number[] };
  /** Variadic. */
  concatenate: { readonly axis: number };
  // linear algebra
  /** Batched a[..., m, k] @ b[..., k, n] with equal batch shapes; transA/transB transpose the last two axes. */
  matmul: { readonly transA: boolean; readonly transB: boolean };
  /** (x, w) → y. */
  conv2d: ConvParams;
  /** (dy, w) → dx: the transpose of conv2d in x. */
  conv2d_input_grad: ConvParams & { readonly inputShape: readonly number[] };
  /** (x, dy) → dw: the transpose of conv2d in w. */
  conv2d_filter_grad: ConvParams & { readonly filterShape: readonly number[] };
  /**
   * (key, val) → out: in each window, val at the first maximal element of key in row-major
   * window order (PyTorch's CPU convention). max_pool2d(x) = maxpool2d(x, x).
   */
  maxpool2d: PoolParams;
  /** (key, dy) → dx: the transpose of maxpool2d in val; dy goes to the first maximal element. */
  maxpool2d_scatter: PoolParams & { readonly inputShape: readonly number[] };
}

export type Prim = keyof PrimParams;

export const PRIMS = [
  'add',
  'sub',
  'mul',
  'div',
  'max',
  'min',
  'neg',
  'exp',
  'log',
  'log1p',
  'tanh',
  'erf',
  'sqrt',
  'abs',
  'mish',
  'mish_grad',
  'mish_grad2',
  'mish_vjp',
  'pow',
  'channel_affine',
  'bn_normalize',
  'bn_normalize_jvp',
  'channel_moments',
  'channel_sums',
  'bn_affine',
  'bn_sums',
  'bn_affine_jvp',
  'compare',
  'select',
  'cast',
  'stop_gradient',
  'reduce_sum',
  'reduce_max',
  'reshape',
  'broadcast',
  'transpose',
  'slice',
  'pad',
  'concatenate',
  'matmul',
  'conv2d',
  'conv2d_input_grad',
  'conv2d_filter_grad',
  'maxpool2d',
  'maxpool2d_scatter',
] as const satisfies readonly Prim[];

// Compile-time check that PRIMS lists every primitive.
type Missing = Exclude<Prim, (typeof PRIMS)[number]>;
const _allListed: Missing extends never ? true : Missing = true;
void _allListed;

/** Output spatial size of a conv or pool window along one axis. */
export function windowOut(inp: number, k: number, stride: number, pad: number, dil = 1): number {
  return Math.floor((inp + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}
