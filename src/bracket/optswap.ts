/**
 * Optimizer-aware swap effects: how much of a real optimizer's order effect the bracket explains.
 *
 * From parameters θ and optimizer state s (e.g. a checkpoint), take two real steps (`optimizerStep`,
 * PyTorch's update rules) on x then y, and on y then x; D = θ_xy − θ_yx. D splits exactly into
 *
 *   state      D_s: the same two steps with every gradient frozen at θ (g_x(θ), g_y(θ)) — the part
 *              due to the optimizer's memory of the order (momentum buffer, Adam's moments) and to
 *              weight decay acting at the moved points; no curvature. O(ε) with momentum or Adam,
 *              0 for plain SGD without weight decay.
 *   bracket    the Lie-bracket term (below), O(ε²);
 *   history    the rest of the curvature term at order ε², D_c − bracket, where
 *              D_c = −(J_x ⊙ H_y δ_x − J_y ⊙ H_x δ_y) is the second-order effect of evaluating the
 *              second gradient at the moved point: δ_x = θ₁ − θ is the real first step on x, J_x the
 *              derivative of the second step's displacement with respect to its gradient;
 *   remainder  D − D_s − D_c, O(ε³) (the decomposition is checked by its scaling in the tests).
 *
 * SGD with momentum μ (dampening d, PyTorch: b ← μb + (1−d)g, the first step b ← g; θ ← θ − εb).
 * With buffer M at step > 0 and no weight decay, expanding to second order:
 *   θ_xy = θ − ε(1+μ)(μM + c₁g_x) − ε c₂ g_y(θ − ε(μM + c₁g_x))      (c₁ = c₂ = 1 − d; c₁ = 1, M = 0 at step 0)
 *   D    = ε(c₂ − (1+μ)c₁)(g_x − g_y)                               state:   −εμ(g_x − g_y) when d = 0
 *        + ε² c₁c₂ (H_y g_x − H_x g_y)                               bracket: ε² c₁c₂ B,  B = [v_x, v_y]
 *        + ε² c₂ μ (H_y − H_x) M                                     history: the momentum term
 *        + O(ε³).
 * With v = −g, ε²μ(H_y − H_x)M = −ε²μ (M·∇)(v_y − v_x): the buffer M, moved along by εμM, sees the
 * two fields' different derivatives — the issue's "(M·∇)(v_y − v_x)" term. The first-order term is
 * the momentum's lag (the first example's gradient has been applied (1+μ) times, the second's once);
 * it disappears once the buffer drains: continuing with zero gradients adds −εμ/(1−μ)·b, and the
 * drained difference is D∞ = ε²c₂/(1−μ)·(c₁B + μ(H_y − H_x)M) + O(ε³) when c₁ = c₂ (`drained`).
 * In fact, without dampening and weight decay, D∞ = (D − state)/(1−μ) exactly (with frozen gradients
 * every gradient ends up applied with weight 1/(1−μ) in either order), so the drained share is the
 * share of the curvature part. Nesterov: bracket ε²(1+μ)²B, history ε²(1+μ)μ²(H_y − H_x)M.
 *
 * Adam/AdamW (given their moments at a checkpoint): the step is nonlinear in g, with diagonal
 * derivative J = ∂Δθ/∂g (computed in closed form from the moments). The bracket term compared with
 * is the bracket of the preconditioned loss fields v_x = −P g_x with P = (J_x + J_y)/2 held fixed:
 *   B_P = [−P g_x, −P g_y] = P H_y P g_x − P H_x P g_y,
 * i.e. the plain bracket of the loss fields with Adam's per-coordinate step sizes on each gradient;
 * `history` then holds what Adam's first-moment history (the common part of both first steps), the
 * order-dependence of the gains J_x ≠ J_y and the nonlinearity of the step in g add at order ε².
 *
 * Each part is reported as a parameter vector (norm) and, with probes z, as logits J_f(z)·part. The
 * answer to "how much does the bracket explain" is `share` = ‖bracket‖/‖D‖ and `cosine` = cos(bracket, D).
 * Weight decay: L2 (sgd, momentum, adam) acts at the real points in every run, so its O(ε²) effects
 * are in `state`; the curvature terms use the Hessians of the loss alone.
 */
import type { DType } from '../engine/dtype.js';
import { Tensor } from '../engine/tensor.js';
import { concrete, grad, hvp } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { evalState, type ForwardState } from '../nn/layers.js';
import type { Loss } from '../nn/losses.js';
import type { Model } from '../nn/models.js';
import {
  optimizerStep,
  resolveOptimizerConfig,
  type OptimizerConfig,
  type OptimizerName,
  type OptimizerState,
  type ResolvedOptimizerConfig,
} from '../nn/optim.js';
import { bracket, logitEffect, modelLoss, type Example } from './bracket.js';
import { axpy, dot, norm, scale, sub, type Vec } from './vec.js';

export type PartName = 'state' | 'bracket' | 'history' | 'remainder';

export interface SwapPart {
  name: PartName | 'real';
  description: string;
  vector: Vec;
  norm: number;
  /** J_f(z)·part for each probe and output, [probes][outputs] (with probes). */
  logits?: number[][];
  /** Frobenius norm of `logits`. */
  logitNorm?: number;
}

export interface Share {
  /** ‖bracket‖/‖D‖. */
  share: number;
  /** cos(bracket, D). */
  cosine: number;
}

export interface OptSwapResult {
  optimizer: OptimizerName;
  lr: number;
  /** The optimizer's step counter at the start. */
  step: number;
  dtype: DType;
  /** D = θ_xy − θ_yx after two real steps each way. */
  real: SwapPart;
  /** state + bracket + history + remainder = real (exactly, up to rounding). */
  parts: SwapPart[];
  /** The bracket part's share of the real difference, in parameters and (with probes) in logits. */
  share: Share;
  logitShare?: Share;
  /** The same share of the curvature part alone, D − state. */
  curvatureShare: Share;
  /** ‖remainder‖/‖D‖: how well the second-order decomposition closes (O(ε²) relative when D is O(ε)). */
  remainderRelative: number;
  /** Plain B = [v_x, v_y] (norm), for reference. */
  bracketNorm: number;
  /** Momentum (not Nesterov): the difference after the momentum buffer has drained (see the file comment). */
  drained?: { norm: number; bracketNorm: number; share: Share; remainderRelative: number; logitNorm?: number; logitShare?: Share };
}

export interface OptSwapInput {
  model: Model;
  loss: Loss;
  params: Vec;
  x: Example;
  y: Example;
  optimizer: OptimizerConfig;
  /** Optimizer state at θ (a checkpoint's, or `initOptimizerState`). */
  state: OptimizerState;
  /** Overrides the config's learning rate (ε). */
  lr?: number;
  /** Probe inputs z [P, ...] for logit effects. */
  probes?: Tensor;
  forward?: ForwardState;
}

const vecOf = (p: Params): Vec => {
  const out: Vec = {};
  for (const [k, v] of Object.entries(p)) out[k] = concrete(v);
  return out;
};

function mulVec(a: Vec, b: Vec): Vec {
  const out: Vec = {};
  for (const [k, t] of Object.entries(a)) {
    const u = b[k]!;
    out[k] = new Tensor(
      t.data.map((v, i) => v * u.data[i]!),
      t.shape,
    );
  }
  return out;
}

function cosine(a: Vec, b: Vec): number {
  const na = norm(a);
  const nb = norm(b);
  return na > 0 && nb > 0 ? dot(a, b) / (na * nb) : 0;
}

function euclid(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

function flatCos(a: readonly number[], b: readonly number[]): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  a.forEach((v, i) => {
    ab += v * b[i]!;
    aa += v * v;
    bb += b[i]! * b[i]!;
  });
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/**
 * Adam's second-step gain J = ∂(θ − θ')/∂g, per coordinate, at state `s` (about to take step
 * s.step + 1) and total gradient g (including the L2 term for 'adam'). Mirrors optim.ts's kernel:
 * m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g², Δ = lr/(1−β₁ᵗ)·m/(√v/√(1−β₂ᵗ) + eps).
 */
export function adamGain(c: ResolvedOptimizerConfig, s: OptimizerState, g: Vec, lr: number): Vec {
  const t = s.step + 1;
  const [b1, b2] = c.betas;
  const a1 = 1 - b1;
  const a2 = 1 - b2;
  const bc2Sqrt = Math.sqrt(1 - b2 ** t);
  const k = lr / (1 - b1 ** t);
  const out: Vec = {};
  for (const [name, gt] of Object.entries(g)) {
    const M = s.buffers[`exp_avg.${name}`]!.data;
    const V = s.buffers[`exp_avg_sq.${name}`]!.data;
    out[name] = new Tensor(
      gt.data.map((gi, i) => {
        const m = b1 * M[i]! + a1 * gi;
        const v = b2 * V[i]! + a2 * gi * gi;
        const sv = Math.sqrt(v);
        const den = sv / bc2Sqrt + c.eps;
        const dDen = sv > 0 ? (a2 * gi) / (sv * bc2Sqrt) : 0;
        return k * (a1 / den - (m * dDen) / (den * den));
      }),
      gt.shape,
    );
  }
  return out;
}

export function optimizerSwap(input: OptSwapInput): OptSwapResult {
  const { model, loss, params, x, y } = input;
  const fwd = input.forward ?? evalState();
  const cfg0 = resolveOptimizerConfig(input.optimizer);
  const lr = input.lr ?? cfg0.lr;
  const cfg: OptimizerConfig = { ...input.optimizer, lr };
  const c: ResolvedOptimizerConfig = { ...cfg0, lr };
  const lossFn = modelLoss(model, loss, fwd);
  const fx = (p: Params) => lossFn(p, x);
  const fy = (p: Params) => lossFn(p, y);
  const gAt = (f: (p: Params) => ReturnType<typeof fx>, p: Vec) => vecOf(grad(f)(p));
  const H = (f: (p: Params) => ReturnType<typeof fx>, v: Vec) => vecOf(hvp(f, params as Params, v as Params).hvp);
  const dtype = Object.values(params)[0]!.dtype;

  const br = bracket(lossFn, params, x, y);
  const gx = br.gradX;
  const gy = br.gradY;
  const s0 = input.state;

  // real steps, and the same with gradients frozen at θ
  const x1 = optimizerStep(cfg, params, gx, s0);
  const y1 = optimizerStep(cfg, params, gy, s0);
  const xy = optimizerStep(cfg, x1.params, gAt(fy, x1.params), x1.state);
  const yx = optimizerStep(cfg, y1.params, gAt(fx, y1.params), y1.state);
  const xyFrozen = optimizerStep(cfg, x1.params, gy, x1.state);
  const yxFrozen = optimizerStep(cfg, y1.params, gx, y1.state);
  const D = sub(xy.params, yx.params);
  const Ds = sub(xyFrozen.params, yxFrozen.params);
  const dx = sub(x1.params, params);
  const dy = sub(y1.params, params);

  // second-step gains J (∂ displacement / ∂ gradient) and the curvature term D_c
  const l2 = c.name !== 'adamw' && c.weightDecay !== 0;
  let Dc: Vec;
  let bracketPart: Vec;
  let bracketDescription: string;
  if (c.name === 'adam' || c.name === 'adamw') {
    const total = (g: Vec, p: Vec) => (l2 ? axpy(g, c.weightDecay, p) : g);
    const Jx = adamGain(c, x1.state, total(gy, x1.params), lr);
    const Jy = adamGain(c, y1.state, total(gx, y1.params), lr);
    Dc = sub(mulVec(Jy, H(fx, dy)), mulVec(Jx, H(fy, dx)));
    const P = scale(axpy(Jx, 1, Jy), 0.5);
    bracketPart = sub(mulVec(P, H(fy, mulVec(P, gx))), mulVec(P, H(fx, mulVec(P, gy))));
    bracketDescription = 'bracket of the preconditioned loss fields, P H_y P g_x − P H_x P g_y, P = Adam’s mean second-step gain ∂Δθ/∂g';
  } else {
    const mu = c.name === 'momentum' ? c.momentum : 0;
    const first = s0.step === 0;
    const c1 = c.name === 'momentum' && !first ? 1 - c.dampening : 1;
    const c2 = c.name === 'momentum' ? 1 - c.dampening : 1;
    // J: second-step gain; k1: coefficient of g in the first displacement
    const [J, k1] = c.nesterov ? [lr * (1 + mu), 1 + mu * c1] : [lr * c2, c1];
    Dc = scale(sub(H(fx, dy), H(fy, dx)), J);
    bracketPart = scale(br.bracket, J * lr * k1);
    bracketDescription = c.name === 'sgd' ? 'ε² B' : c.nesterov ? 'ε²(1+μ)² B (Nesterov)' : 'ε² c₁c₂ B (c = 1 − dampening; c₁ = 1 at step 0)';
  }
  const history = sub(Dc, bracketPart);
  const remainder = sub(sub(D, Ds), Dc);

  const probes = input.probes;
  const withLogits = (p: SwapPart): SwapPart => {
    if (!probes) return p;
    const le = logitEffect(model, params, probes, p.vector, fwd);
    const [np, k] = le.shape as [number, number];
    const rows = Array.from({ length: np }, (_, i) => Array.from(le.data.subarray(i * k, (i + 1) * k)));
    return { ...p, logits: rows, logitNorm: euclid(le.data) };
  };
  const part = (name: SwapPart['name'], description: string, v: Vec): SwapPart => withLogits({ name, description, vector: v, norm: norm(v) });
  const real = part('real', 'θ_xy − θ_yx after two real optimizer steps each way', D);
  const historyDescription =
    c.name === 'adam' || c.name === 'adamw'
      ? 'rest of the curvature term: Adam’s first-moment history, order-dependent gains, nonlinearity in g'
      : c.name === 'momentum'
        ? 'momentum term ε²c₂μ(H_y − H_x)M: the buffer M seen by the two Hessians (with weight decay, also the decay’s part)'
        : 'weight-decay part of the curvature term (0 without weight decay)';
  const parts = [
    part('state', 'gradients frozen at θ: the optimizer’s memory of the order (and weight decay)', Ds),
    part('bracket', bracketDescription, bracketPart),
    part('history', historyDescription, history),
    part('remainder', 'D − state − curvature term, O(ε³)', remainder),
  ];
  const bp = parts[1]!;
  const dn = real.norm;
  const curv = sub(D, Ds);
  const result: OptSwapResult = {
    optimizer: c.name,
    lr,
    step: s0.step,
    dtype,
    real,
    parts,
    share: { share: dn > 0 ? bp.norm / dn : 0, cosine: cosine(bracketPart, D) },
    curvatureShare: { share: norm(curv) > 0 ? bp.norm / norm(curv) : 0, cosine: cosine(bracketPart, curv) },
    remainderRelative: dn > 0 ? parts[3]!.norm / dn : 0,
    bracketNorm: norm(br.bracket),
  };
  if (real.logits && bp.logits) {
    result.logitShare = { share: real.logitNorm! > 0 ? bp.logitNorm! / real.logitNorm! : 0, cosine: flatCos(bp.logits.flat(), real.logits.flat()) };
  }
  if (c.name === 'momentum' && !c.nesterov) {
    const mu = c.momentum;
    const kappa = mu / (1 - mu);
    const bx = xy.state.buffers;
    const by = yx.state.buffers;
    const bufDiff: Vec = {};
    for (const k of Object.keys(params))
      bufDiff[k] = new Tensor(
        bx[`momentum_buffer.${k}`]!.data.map((v, i) => v - by[`momentum_buffer.${k}`]!.data[i]!),
        params[k]!.shape,
      );
    const Dd = axpy(D, -lr * kappa, bufDiff);
    const predicted = scale(axpy(bracketPart, 1, history), 1 / (1 - mu));
    const dBracket = scale(bracketPart, 1 / (1 - mu));
    const dnn = norm(Dd);
    result.drained = {
      norm: dnn,
      bracketNorm: norm(dBracket),
      share: { share: dnn > 0 ? norm(dBracket) / dnn : 0, cosine: cosine(dBracket, Dd) },
      remainderRelative: dnn > 0 ? norm(sub(Dd, predicted)) / dnn : 0,
    };
    if (probes) {
      const a = logitEffect(model, params, probes, Dd, fwd).data;
      const b = logitEffect(model, params, probes, dBracket, fwd).data;
      result.drained.logitNorm = euclid(a);
      result.drained.logitShare = { share: euclid(a) > 0 ? euclid(b) / euclid(a) : 0, cosine: flatCos(Array.from(b), Array.from(a)) };
    }
  }
  return result;
}
