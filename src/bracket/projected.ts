/**
 * All-pairs projected brackets in O(N) Hessian-vector products.
 *
 * For N examples with gradients g_i and Hessians H_i, and a direction u in parameter space,
 *   u·B_ij = u·(H_j g_i − H_i g_j) = g_i·(H_j u) − g_j·(H_i u)          (H symmetric)
 * where B_ij = [v_i, v_j] = `bracket(loss, θ, x_i, x_j).bracket`. So with G = [g_i] (N × P) and
 * W_u = [H_j u] (N × P), the whole N×N matrix is M_u = A − Aᵀ with A = G W_uᵀ: N HVPs per direction
 * (each also yields g_j) and one N×N×P matrix product, instead of N(N−1)/2 brackets.
 *
 * With the gradients of the probe logits as directions, u_k = ∇_θ f_k(z) (one vjp of the model at
 * z, pulled back once per output), M_k[i][j] = J_f(z)_k·B_ij: the N×N logit-effect matrix of output
 * k — the change of logit k at z along the bracket of every pair, what the two orders' predictions
 * differ by at order ε².
 *
 * The direct algorithm (N gradients, then 2 HVPs per pair and J_f(z)·B by `logitEffect`, or u·B by
 * a dot product) is cheaper for few examples and many directions; `method: 'auto'` picks the one
 * with the lower operation-count estimate (`allPairsCost`) and the result says which ran.
 * Both give M[i][j] = −M[j][i] exactly (each matrix is built antisymmetric) and M[i][i] = 0.
 */
import { allocBuf, type Buf, type DType } from '../engine/dtype.js';
import { measureFlops } from '../engine/kernels/index.js';
import { matmul } from '../engine/ops.js';
import { Tensor } from '../engine/tensor.js';
import { concrete, hvp, valueAndGrad, vjp } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { evalState, type ForwardState } from '../nn/layers.js';
import type { Loss } from '../nn/losses.js';
import type { Model } from '../nn/models.js';
import { logitEffect, modelLoss, type Example, type LossFn } from './bracket.js';
import { count, dot, sub, type Vec } from './vec.js';

export type AllPairsMethod = 'direct' | 'projected';

export interface AllPairsOptions {
  /** 'auto' (default): the cheaper by `allPairsCost`. */
  method?: AllPairsMethod | 'auto';
  /** Called after each unit of work (an HVP, or a pair for the direct method). */
  onProgress?: (done: number, total: number) => void;
  /** Floating-point operations of one HVP, for the cost estimate (measured on the first example when absent). */
  hvpFlops?: number;
}

/**
 * Operation-count estimate of both algorithms in HVP-equivalents (one Hessian-vector product of
 * one example = 1). Ratios measured on the reference nets: a gradient ≈ 0.4 HVP, the model's jvp
 * on one probe ≈ 0.3 HVP, its vjp ≈ 0.1 HVP plus ≈ 0.2 per pulled-back output.
 */
export interface AllPairsCost {
  direct: number;
  projected: number;
  /** The one with the lower estimate. */
  cheaper: AllPairsMethod;
}

const GRAD = 0.4;
const JVP_PER_PROBE = 0.3;
const VJP = 0.1;
const PULLBACK = 0.2;

/**
 * Cost of N×N matrices for `directions` directions. `probes` > 0: the directions are the gradients
 * of probes × outputs logits (the direct method then uses one jvp per pair instead of dot
 * products). `flopRatio` = P / (flops of one HVP), which prices the O(N²·D·P) dot products.
 */
export function allPairsCost(n: number, directions: number, opts: { probes?: number; outputs?: number; flopRatio?: number } = {}): AllPairsCost {
  const pairs = (n * (n - 1)) / 2;
  const probes = opts.probes ?? 0;
  const r = opts.flopRatio ?? 0;
  const dots = 2 * r; // one dot product of length P in HVP units
  const direct = GRAD * n + pairs * (2 + (probes > 0 ? JVP_PER_PROBE * probes : dots * directions));
  const dirCost = probes > 0 ? VJP * probes + PULLBACK * directions : 0;
  const projected = n * directions + dirCost + n * n * directions * dots;
  return { direct, projected, cheaper: projected < direct ? 'projected' : 'direct' };
}

export interface ProjectedResult {
  n: number;
  /** One N×N matrix per direction, row-major: matrices[d][i·N + j] = u_d·B_ij, B_ij = [v_i, v_j]. */
  matrices: Float64Array[];
  method: AllPairsMethod;
  cost: AllPairsCost;
  /** Hessian-vector products, gradients and pair brackets actually computed. */
  counts: { hvps: number; grads: number; brackets: number };
  seconds: number;
}

// ---------------------------------------------------------------------------------------------
// Flat rows

/** The parameter names in a fixed order and the total size. */
export function layout(params: Vec): { keys: string[]; size: number; dtype: DType } {
  const keys = Object.keys(params);
  const first = params[keys[0]!];
  if (!first) throw new Error('projected brackets: no parameters');
  return { keys, size: count(params), dtype: first.dtype };
}

/** Write `v` (in `keys` order) into `out` at `offset`. */
export function flattenInto(v: Params, keys: readonly string[], out: Buf, offset: number): void {
  let o = offset;
  for (const k of keys) {
    const t = v[k];
    if (!t) throw new Error(`projected brackets: vector lacks ${k}`);
    const d = concrete(t).data;
    out.set(d, o);
    o += d.length;
  }
}

/**
 * M = A − Aᵀ with A = G Wᵀ, for G and W stored as N rows of length P (the param dtype). The product
 * runs on the engine's matmul kernel; the antisymmetrisation in float64, so M[i][j] = −M[j][i]
 * exactly.
 */
export function antisymmetricProduct(g: Buf, w: Buf, n: number, p: number): Float64Array {
  const a = concrete(matmul(new Tensor(g, [n, p]), new Tensor(w, [n, p]), { transB: true })).data;
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = a[i * n + j]! - a[j * n + i]!;
      m[i * n + j] = v;
      m[j * n + i] = -v;
    }
  }
  return m;
}

/**
 * The HVP rows of examples `indices`: for each example j, its gradient g_j and H_j u_d for every
 * direction. Returns G [|indices| × P] and W_d [|indices| × P] per direction (param dtype). The
 * building block of the projected method (also for splitting the work over worker threads).
 */
export function hvpRows<E>(
  lossFn: LossFn<E>,
  params: Vec,
  examples: readonly E[],
  directions: readonly Vec[],
  indices: readonly number[] = examples.map((_, i) => i),
  onHvp: () => void = () => {},
): { grads: Buf; rows: Buf[] } {
  const { keys, size, dtype } = layout(params);
  const grads = allocBuf(dtype, indices.length * size);
  const rows = directions.map(() => allocBuf(dtype, indices.length * size));
  indices.forEach((j, r) => {
    const ex = examples[j];
    if (ex === undefined) throw new Error(`hvpRows: no example ${j}`);
    const f = (p: Params) => lossFn(p, ex);
    if (directions.length === 0) {
      flattenInto(valueAndGrad(f)(params)[1], keys, grads, r * size);
      return;
    }
    directions.forEach((u, d) => {
      const h = hvp(f, params as Params, u as Params);
      if (d === 0) flattenInto(h.grad, keys, grads, r * size);
      flattenInto(h.hvp, keys, rows[d]!, r * size);
      onHvp();
    });
  });
  return { grads, rows };
}

function measureHvpFlops<E>(lossFn: LossFn<E>, params: Vec, ex: E): number {
  const f = (p: Params) => lossFn(p, ex);
  const g = valueAndGrad(f)(params)[1];
  return Math.max(1, measureFlops(() => hvp(f, params as Params, g)).flops);
}

function chooseMethod(opts: AllPairsOptions, cost: AllPairsCost): AllPairsMethod {
  const m = opts.method ?? 'auto';
  return m === 'auto' ? cost.cheaper : m;
}

/** Gradients of every example (the direct method's first pass). */
function allGrads<E>(lossFn: LossFn<E>, params: Vec, examples: readonly E[]): Vec[] {
  return examples.map((ex) => {
    const g = valueAndGrad((p: Params) => lossFn(p, ex))(params)[1];
    return Object.fromEntries(Object.entries(g).map(([k, v]) => [k, concrete(v)]));
  });
}

/** B_ij = H_j g_i − H_i g_j from precomputed gradients (two HVPs). */
function pairBracket<E>(lossFn: LossFn<E>, params: Vec, examples: readonly E[], grads: readonly Vec[], i: number, j: number): Vec {
  const fi = (p: Params) => lossFn(p, examples[i]!);
  const fj = (p: Params) => lossFn(p, examples[j]!);
  const hj = hvp(fj, params as Params, grads[i] as Params).hvp;
  const hi = hvp(fi, params as Params, grads[j] as Params).hvp;
  const c = (v: Params): Vec => Object.fromEntries(Object.entries(v).map(([k, t]) => [k, concrete(t)]));
  return sub(c(hj), c(hi));
}

/** Direct: every pair's bracket, then `project(B_ij)` (one number per matrix). */
function directAllPairs<E>(
  lossFn: LossFn<E>,
  params: Vec,
  examples: readonly E[],
  nMatrices: number,
  project: (b: Vec) => ArrayLike<number>,
  onProgress: (done: number, total: number) => void,
): { matrices: Float64Array[]; counts: ProjectedResult['counts'] } {
  const n = examples.length;
  const grads = allGrads(lossFn, params, examples);
  const matrices = Array.from({ length: nMatrices }, () => new Float64Array(n * n));
  const total = (n * (n - 1)) / 2;
  let done = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = project(pairBracket(lossFn, params, examples, grads, i, j));
      for (let d = 0; d < nMatrices; d++) {
        matrices[d]![i * n + j] = v[d]!;
        matrices[d]![j * n + i] = -v[d]!;
      }
      onProgress(++done, total);
    }
  }
  return { matrices, counts: { hvps: 2 * total, grads: n, brackets: total } };
}

/** Projected: N HVPs per direction (direction-outer, so only G and one W are held at a time). */
function projectedAllPairs<E>(
  lossFn: LossFn<E>,
  params: Vec,
  examples: readonly E[],
  directions: readonly Vec[],
  onProgress: (done: number, total: number) => void,
): { matrices: Float64Array[]; counts: ProjectedResult['counts'] } {
  const n = examples.length;
  const { size } = layout(params);
  const total = n * directions.length;
  let done = 0;
  const tick = () => onProgress(++done, total);
  let grads: Buf | undefined;
  const matrices: Float64Array[] = [];
  for (const u of directions) {
    const r = hvpRows(lossFn, params, examples, [u], undefined, tick);
    grads ??= r.grads;
    matrices.push(antisymmetricProduct(grads, r.rows[0]!, n, size));
  }
  return { matrices, counts: { hvps: total, grads: 0, brackets: 0 } };
}

/**
 * u_d·B_ij for all pairs i, j of `examples` and every direction u_d (same tree as the parameters).
 */
export function projectedBrackets<E>(
  lossFn: LossFn<E>,
  params: Vec,
  examples: readonly E[],
  directions: readonly Vec[],
  opts: AllPairsOptions = {},
): ProjectedResult {
  const t0 = performance.now();
  const n = examples.length;
  const size = count(params);
  const flops =
    opts.hvpFlops ?? (n > 1 && opts.method !== 'direct' && opts.method !== 'projected' ? measureHvpFlops(lossFn, params, examples[0]!) : undefined);
  const cost = allPairsCost(n, directions.length, { flopRatio: flops ? size / flops : 0 });
  const method = chooseMethod(opts, cost);
  const progress = opts.onProgress ?? (() => {});
  const r =
    method === 'direct'
      ? directAllPairs(lossFn, params, examples, directions.length, (b) => directions.map((u) => dot(u, b)), progress)
      : projectedAllPairs(lossFn, params, examples, directions, progress);
  return { n, ...r, method, cost, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// Logit-effect matrices

/**
 * The gradients of the probe logits, ∇_θ f_k(z_p), from one vjp of the model at the probes z
 * [P, ...] pulled back once per (probe, output): index p·K + k.
 */
export function probeDirections(model: Model, params: Vec, z: Tensor, state: ForwardState = evalState()): Vec[] {
  const [out, pull] = vjp((p: Params) => model.apply(p, z, state), params as Params);
  const o = concrete(out);
  const [np, k] = o.shape as [number, number];
  const dirs: Vec[] = [];
  for (let p = 0; p < np; p++) {
    for (let q = 0; q < k; q++) {
      const ct = allocBuf(o.dtype, np * k);
      ct[p * k + q] = 1;
      const g = pull(new Tensor(ct, o.shape));
      dirs.push(Object.fromEntries(Object.entries(g).map(([name, t]) => [name, concrete(t)])));
    }
  }
  return dirs;
}

export interface LogitEffectMatrices extends ProjectedResult {
  probes: number;
  outputs: number;
  /** matrices[p·K + k][i·N + j] = J_f(z_p)_k·B_ij. */
  matrices: Float64Array[];
}

/**
 * The N×N logit-effect matrices J_f(z_p)_k·B_ij for every probe p and output k, for the per-example
 * losses of `examples` (each [1, ...], as `modelLoss`). Projected: P·K directions from one vjp, then
 * N·P·K HVPs; direct: N(N−1)/2 brackets, each followed by one jvp (`logitEffect`) over the probes.
 */
export function allPairsLogitEffects(
  model: Model,
  loss: Loss,
  params: Vec,
  examples: readonly Example[],
  z: Tensor,
  opts: AllPairsOptions & { state?: ForwardState } = {},
): LogitEffectMatrices {
  const t0 = performance.now();
  const state = opts.state ?? evalState();
  const lossFn = modelLoss(model, loss, state);
  const n = examples.length;
  const probes = z.shape[0]!;
  const outputs = model.numOutputs;
  const d = probes * outputs;
  const size = count(params);
  const flops =
    opts.hvpFlops ?? (n > 1 && opts.method !== 'direct' && opts.method !== 'projected' ? measureHvpFlops(lossFn, params, examples[0]!) : undefined);
  const cost = allPairsCost(n, d, { probes, outputs, flopRatio: flops ? size / flops : 0 });
  const method = chooseMethod(opts, cost);
  const progress = opts.onProgress ?? (() => {});
  const r =
    method === 'direct'
      ? directAllPairs(lossFn, params, examples, d, (b) => logitEffect(model, params, z, b, state).data, progress)
      : projectedAllPairs(lossFn, params, examples, probeDirections(model, params, z, state), progress);
  return { n, probes, outputs, ...r, method, cost, seconds: (performance.now() - t0) / 1000 };
}
