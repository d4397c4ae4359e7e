/**
 * Functional layers over named parameters with PyTorch's names and layouts (Linear: weight
 * [out, in]; Conv2d: weight [out, in/groups, kh, kw]; BatchNorm2d: weight, bias and the buffers
 * running_mean, running_var, num_batches_tracked).
 */
import * as o from '../engine/ops.js';
import { full, Tensor, type Val } from '../engine/tensor.js';
import { primalValue } from '../engine/trace.js';
import type { Params } from '../engine/tree.js';
import { UserError } from '../errors.js';

/**
 * How a forward pass runs. In training mode BatchNorm normalises with the batch's statistics and
 * writes its updated running statistics to `updates`; in eval mode it uses `buffers`.
 */
export interface ForwardState {
  readonly training: boolean;
  /**
   * With `training`: normalise each example by its own statistics (over H, W), exactly as if it
   * went through BatchNorm alone as a batch of one, so no example's output depends on the others
   * in its batch; running statistics are not updated. For analysis (`--bn train`), not training.
   */
  readonly perExample?: boolean;
  readonly buffers: Readonly<Record<string, Tensor>>;
  readonly updates: Record<string, Tensor>;
}

export function evalState(buffers: Readonly<Record<string, Tensor>> = {}): ForwardState {
  return { training: false, buffers, updates: {} };
}

export function trainState(buffers: Readonly<Record<string, Tensor>>): ForwardState {
  return { training: true, buffers, updates: {} };
}

/** BatchNorm in training mode with each example normalised by its own statistics (see ForwardState.perExample). */
export function perExampleState(buffers: Readonly<Record<string, Tensor>>): ForwardState {
  return { training: true, perExample: true, buffers, updates: {} };
}

function param(p: Params, name: string): Val {
  const v = p[name];
  if (!v) throw new Error(`missing parameter ${name}`);
  return v;
}

/** y = x Wᵀ + b, x [N, in], W [out, in]. */
export function linear(p: Params, prefix: string, x: Val): Val {
  const y = o.matmul(x, param(p, `${prefix}.weight`), { transB: true });
  const b = p[`${prefix}.bias`];
  return b ? o.add(y, b) : y;
}

/** torch.nn.Conv2d: cross-correlation plus a per-channel bias. */
export function conv2d(p: Params, prefix: string, x: Val, opts: o.ConvOptions = {}): Val {
  const y = o.conv2d(x, param(p, `${prefix}.weight`), opts);
  const b = p[`${prefix}.bias`];
  return b ? o.add(y, o.reshape(b, [1, -1, 1, 1])) : y;
}

export interface BatchNormOptions {
  eps?: number;
  /** Weight of the new batch statistic in the running average (PyTorch's momentum, default 0.1). */
  momentum?: number;
}

/**
 * torch.nn.BatchNorm2d over x [N, C, H, W]. Training: normalise by the batch mean and biased
 * variance over (N, H, W); running_mean/var move towards the batch mean and *unbiased* variance,
 * as PyTorch. Eval: normalise by the running statistics.
 *
 * Training over the batch: m = channel_moments(x) (the batch statistics, which also move the
 * running averages), then y = bn_affine(x, m, w, b) = bn_normalize(x)·w + b in one pass from m;
 * its gradient is two passes, bn_sums (w's and b's) and bn_affine_jvp (x's), from m again
 * (rules/batchnorm.ts; their derivatives are closed forms, to any order). Eval,
 * and training with per-example statistics: y = (x − μ) · (w / √(σ² + eps)) + b, the centred input
 * serving both the variance and the output, the per-channel factor formed on [1, C, 1, 1] before
 * it meets the full tensor.
 */
export function batchNorm2d(p: Params, prefix: string, x: Val, state: ForwardState, opts: BatchNormOptions = {}): Val {
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const c = x.shape[1]!;
  const bshape = [1, c, 1, 1];
  const w = p[`${prefix}.weight`];
  const b = p[`${prefix}.bias`];
  let mean: Val;
  let vari: Val;
  let centred: Val;
  if (state.training && state.perExample) {
    // a batch of one per example: statistics over (H, W) only, [N, C, 1, 1]
    if (x.size / (x.shape[0]! * c) < 2)
      throw new UserError(
        `${prefix}: BatchNorm with per-example statistics (--bn train) needs more than one value per channel, got input ${JSON.stringify(x.shape)}; use --bn eval`,
      );
    mean = o.mean(x, [2, 3], true);
    centred = o.sub(x, mean);
    vari = o.mean(o.square(centred), [2, 3], true);
  } else if (state.training) {
    const n = x.size / c;
    if (n < 2)
      throw new UserError(
        `${prefix}: BatchNorm in training mode needs more than one value per channel (got input ${JSON.stringify(x.shape)}); use a larger batch`,
      );
    const rm = buffer(state, `${prefix}.running_mean`, c);
    const rv = buffer(state, `${prefix}.running_var`, c);
    const m = o.channelMoments(x, 1); // [mean; biased variance], no derivative of its own
    const moments = primalValue(m).data;
    const bm = moments.subarray(0, c);
    const bv = moments.subarray(c, 2 * c);
    const newMean = rm.data.map((v, i) => (1 - momentum) * v + momentum * bm[i]!);
    const newVar = rv.data.map((v, i) => (1 - momentum) * v + momentum * bv[i]! * (n / (n - 1)));
    state.updates[`${prefix}.running_mean`] = new Tensor(newMean, rm.shape);
    state.updates[`${prefix}.running_var`] = new Tensor(newVar, rv.shape);
    const nbt = state.buffers[`${prefix}.num_batches_tracked`];
    state.updates[`${prefix}.num_batches_tracked`] = new Tensor(Float64Array.of((nbt?.data[0] ?? 0) + 1), []);
    if (!w && !b) return o.bnNormalize(x, 1, eps);
    // normalisation, scale and shift in one pass from the statistics above (bn_affine)
    return o.bnAffine(x, w ?? full([c], 1, x.dtype), b ?? full([c], 0, x.dtype), 1, eps, m);
  } else {
    mean = o.reshape(o.cast(buffer(state, `${prefix}.running_mean`, c), x.dtype), bshape);
    vari = o.reshape(o.cast(buffer(state, `${prefix}.running_var`, c), x.dtype), bshape);
    centred = o.sub(x, mean);
  }
  const sd = o.sqrt(o.add(vari, eps));
  if (b && !state.training) {
    // per-channel scale and shift in one pass (channel_affine: the same values as the mul and
    // add of the broadcast vectors below, without materialising them)
    const sdC = o.reshape(sd, [c]);
    return o.channelAffine(centred, w ? o.div(w, sdC) : o.div(1, sdC), b, 1);
  }
  const scaled = o.mul(centred, w ? o.div(o.reshape(w, bshape), sd) : o.div(1, sd));
  return b ? o.add(scaled, o.reshape(b, bshape)) : scaled;
}

function buffer(state: ForwardState, name: string, c: number): Tensor {
  const t = state.buffers[name];
  if (!t) throw new Error(`missing buffer ${name} (BatchNorm running statistics): pass the model's buffers`);
  if (t.size !== c) throw new Error(`buffer ${name} has ${t.size} values, expected ${c}`);
  return t;
}

/** Mean over the spatial axes: [N, C, H, W] → [N, C]. */
export function globalAvgPool(x: Val): Val {
  return o.mean(x, [2, 3]);
}
