/**
 * Verification of the bracket against real swapped SGD steps. For each ε:
 *   θ_x = θ − ε g_x(θ),  θ_xy = θ_x − ε g_y(θ_x);   θ_y = θ − ε g_y(θ),  θ_yx = θ_y − ε g_x(θ_y)
 * and the relative error e(ε) = ‖(θ_xy − θ_yx)/ε² − B‖/‖B‖, which is O(ε) for a smooth loss: the
 * observed order between consecutive ε, log(e₁/e₂)/log(ε₁/ε₂), is then ≈ 1 (e falls 10× per decade).
 *
 * For nets with ReLU or max-pool units the expansion holds only while no unit changes state along
 * the steps, so every check counts the units (for both examples' inputs) whose state at each of the
 * four stepped points θ_x, θ_xy, θ_y, θ_yx differs from θ. The ones that matter are those of y's
 * forward pass at θ_x and of x's at θ_y, where the second gradients are evaluated: when none of
 * them switches, the real steps are exactly those of the frozen-pattern net (below) and the
 * expansion holds; when some do, the gradient jumps and it cannot. With `frozen`, the model is replaced by
 * its frozen-pattern version (kinks.ts: ReLU masks and max-pool selections fixed at θ), which is
 * smooth and has the same bracket at θ; its error then falls like ε again.
 *
 * Rounding: θ_xy − θ_yx is a difference of two nearly equal vectors, so e cannot go below about
 * u‖θ‖/(ε²‖B‖) (u the unit roundoff of the dtype); each check reports that floor.
 */
import type { DType } from '../engine/dtype.js';
import { concrete, grad } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { evalState, type ForwardState } from '../nn/layers.js';
import type { Loss } from '../nn/losses.js';
import type { Model } from '../nn/models.js';
import { bracket, modelLoss, type Example, type LossFn } from './bracket.js';
import { activationPattern, frozenModel, patternDiff, type ActivationPattern, type PatternDiff } from './kinks.js';
import { axpy, norm, scale, sub, type Vec } from './vec.js';

export const STEPPED_POINTS = ['θ_x', 'θ_xy', 'θ_y', 'θ_yx'] as const;
export type SteppedPoint = (typeof STEPPED_POINTS)[number];

export interface KinkCount extends PatternDiff {
  point: SteppedPoint;
  /** Units of example x's forward pass that switched (of `total`). */
  onX: number;
  /** Units of example y's forward pass that switched. */
  onY: number;
}

export interface SwapCheck {
  eps: number;
  /** ‖(θ_xy − θ_yx)/ε² − B‖/‖B‖. */
  relError: number;
  /** log(e_prev/e)/log(ε_prev/ε) against the previous ε of the list; null for the first. */
  order: number | null;
  /** The rounding floor of relError at this ε (see the file comment). */
  roundoffFloor: number;
  /** ‖θ_xy − θ_yx‖/ε². */
  swapNorm: number;
  /** Units that switch state between θ and each stepped point (the real model's, also in frozen mode). */
  kinks: KinkCount[];
  /** Largest count over the stepped points. */
  switched: number;
  /** Units that switch where a gradient is evaluated: y's at θ_x plus x's at θ_y. */
  switchedAtGradients: number;
  /** False when units switch where a gradient is evaluated (and the model is not frozen): the ε² expansion cannot hold here. */
  expansionValid: boolean;
  /** A plain statement of what limits this check, if anything. */
  note?: string;
}

export interface VerifyResult {
  model: string;
  dtype: DType;
  frozen: boolean;
  bracketNorm: number;
  paramNorm: number;
  /** ReLU units plus max-pool windows in the forward passes of x and y (0: a smooth net). */
  kinkUnits: number;
  /** One per ε; empty when B = 0 exactly (nothing to compare against). */
  checks: SwapCheck[];
}

export interface VerifyOptions {
  eps: readonly number[];
  /** Freeze the activation pattern at θ (kinks.ts). */
  frozen?: boolean;
  state?: ForwardState;
}

const UNIT_ROUNDOFF: Record<DType, number> = { float64: 2 ** -53, float32: 2 ** -24 };

function sgdStep(lossFn: LossFn<Example>, p: Vec, ex: Example, eps: number): Vec {
  const g = grad((q: Params) => lossFn(q, ex))(p);
  const gv: Vec = {};
  for (const [k, v] of Object.entries(g)) gv[k] = concrete(v);
  return axpy(p, -eps, gv);
}

export function verifySwap(model: Model, loss: Loss, params: Vec, x: Example, y: Example, opts: VerifyOptions): VerifyResult {
  const state = opts.state ?? evalState();
  const eps = [...opts.eps];
  if (eps.length === 0) throw new Error('verifySwap: give at least one ε');
  for (const e of eps) if (!(e > 0) || !Number.isFinite(e)) throw new Error(`verifySwap: ε must be a finite number > 0, got ${e}`);
  const dtype = Object.values(params)[0]!.dtype;
  const used = opts.frozen ? frozenModel(model, params, state) : model;
  const lossFn = modelLoss(used, loss, state);
  const B = bracket(lossFn, params, x, y).bracket;
  const bn = norm(B);
  const pn = norm(params);
  const base: [ActivationPattern, ActivationPattern] = [activationPattern(model, params, x.x, state), activationPattern(model, params, y.x, state)];
  const kinkUnits = base[0].units + base[1].units;
  const checks: SwapCheck[] = [];
  // B = 0 exactly (identical examples, or a vanishing gradient): the relative error is undefined
  if (bn === 0) return { model: used.name, dtype, frozen: opts.frozen === true, bracketNorm: 0, paramNorm: pn, kinkUnits, checks };
  for (const e of eps) {
    const px = sgdStep(lossFn, params, x, e);
    const pxy = sgdStep(lossFn, px, y, e);
    const py = sgdStep(lossFn, params, y, e);
    const pyx = sgdStep(lossFn, py, x, e);
    const swap = scale(sub(pxy, pyx), 1 / (e * e));
    const relError = norm(sub(swap, B)) / bn;
    const kinks: KinkCount[] = [];
    if (kinkUnits > 0) {
      const points: [SteppedPoint, Vec][] = [
        ['θ_x', px],
        ['θ_xy', pxy],
        ['θ_y', py],
        ['θ_yx', pyx],
      ];
      for (const [point, p] of points) {
        const dx = patternDiff(base[0], activationPattern(model, p, x.x, state, base[0]));
        const dy = patternDiff(base[1], activationPattern(model, p, y.x, state, base[1]));
        kinks.push({
          point,
          relu: dx.relu + dy.relu,
          maxpool: dx.maxpool + dy.maxpool,
          total: dx.total + dy.total,
          units: dx.units + dy.units,
          onX: dx.total,
          onY: dy.total,
        });
      }
    }
    const switched = Math.max(0, ...kinks.map((k) => k.total));
    const at = (p: SteppedPoint) => kinks.find((k) => k.point === p);
    const switchedAtGradients = (at('θ_x')?.onY ?? 0) + (at('θ_y')?.onX ?? 0);
    const prev = checks[checks.length - 1];
    const order = prev ? Math.log(prev.relError / relError) / Math.log(prev.eps / e) : null;
    const roundoffFloor = (Math.SQRT2 * UNIT_ROUNDOFF[dtype] * pn) / (e * e * bn);
    const check: SwapCheck = {
      eps: e,
      relError,
      order,
      roundoffFloor,
      swapNorm: norm(swap),
      kinks,
      switched,
      switchedAtGradients,
      expansionValid: opts.frozen === true || switchedAtGradients === 0,
    };
    const notes: string[] = [];
    if (switchedAtGradients > 0) {
      const where = `${at('θ_x')?.onY ?? 0} of y's at θ_x, ${at('θ_y')?.onX ?? 0} of x's at θ_y`;
      notes.push(
        opts.frozen
          ? `${switchedAtGradients} ReLU/max-pool units would switch state between θ and the stepped points (${where}); frozen pattern: they are held fixed`
          : `${switchedAtGradients} ReLU/max-pool units switch state between θ and the stepped points (${where}; up to ${switched} at some stepped point): the expansion is not valid at ε = ${e}`,
      );
    } else if (switched > 0 && opts.frozen) {
      notes.push(
        `${switched} ReLU/max-pool units would switch state at stepped points where no gradient is evaluated; frozen pattern: they are held fixed`,
      );
    } else if (switched > 0) {
      notes.push(
        `${switched} ReLU/max-pool units switch state at stepped points where no gradient is evaluated: the steps are those of the frozen-pattern net, the expansion holds`,
      );
    }
    if (roundoffFloor > 0.1 * relError)
      notes.push(`rounding-limited: ${dtype} cannot resolve the error below ≈ ${roundoffFloor.toExponential(1)} at this ε`);
    if (notes.length > 0) check.note = notes.join('; ');
    checks.push(check);
  }
  return { model: used.name, dtype, frozen: opts.frozen === true, bracketNorm: bn, paramNorm: pn, kinkUnits, checks };
}
