/**
 * Composites: functions built from primitives only, so every derivative of every order comes
 * from the primitives' rules. Each is written in a numerically stable form whose branches are
 * all finite (no where-NaN trap in derivatives).
 */
import type { Val } from './tensor.js';
import * as o from './ops.js';
import { markKink } from './trace.js';

/** σ(x) = ½(1 + tanh(x/2)): stable for every x. */
export function sigmoid(x: Val): Val {
  return o.mul(o.add(o.tanh(o.mul(x, 0.5)), 1), 0.5);
}

/**
 * |x| as where(x ≥ 0, x, −x): at 0 it is x itself, so an expression in it differentiates at 0
 * as its x ≥ 0 branch does, to every order (abs's derivative there is 0, which would make e.g.
 * softplus'' (0) = 0 instead of ¼).
 */
function absRight(x: Val, nonneg: Val): Val {
  return o.where(nonneg, x, o.neg(x));
}

/** log(1 + eˣ) = max(x, 0) + log1p(e^−|x|) (every branch finite; exact derivatives at 0 too). */
export function softplus(x: Val): Val {
  const nonneg = o.compare(x, 'ge', 0);
  return o.add(o.where(nonneg, x, 0), o.log1p(o.exp(o.neg(absRight(x, nonneg)))));
}

/**
 * max(x, 0) = x · [x > 0], with derivative 0 at 0 as PyTorch (the mask has zero derivative). The
 * mask is declared a kink (markKink), so a recorded tape tells it from smooth branches.
 */
export function relu(x: Val): Val {
  return o.mul(x, markKink(o.gt(x, 0)));
}

/** x σ(x). */
export function silu(x: Val): Val {
  return o.mul(x, sigmoid(x));
}

/** The composite form of mish (a primitive, `mish` in ops.ts, since it is one pass instead of about ten), for tests and comparison. */
export function mishComposite(x: Val): Val {
  return o.mul(x, o.tanh(softplus(x)));
}

/**
 * GELU in its tanh form, ½x(1 + tanh(√(2/π)(x + 0.044715x³))) — PyTorch's
 * nn.GELU(approximate='tanh'). This is what `gelu` has always meant here, and it stays so; the exact
 * form, PyTorch's default nn.GELU(), is `geluErf`. The two differ by up to about 5e-4.
 */
export function gelu(x: Val): Val {
  const inner = o.mul(o.add(x, o.mul(o.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return o.mul(o.mul(x, 0.5), o.add(o.tanh(inner), 1));
}

/** The tanh approximation of GELU under its explicit name: the same function as `gelu`. */
export const geluTanh: (x: Val) => Val = gelu;

/**
 * Exact GELU, x·Φ(x) = ½x(1 + erf(x/√2)) — PyTorch's default nn.GELU() (approximate='none'),
 * computed as PyTorch does, x·½·(1 + erf(x·√½)); far in the negative tail (x ≲ −8) 1 + erf
 * cancels to 0, as in PyTorch.
 */
export function geluErf(x: Val): Val {
  return o.mul(o.mul(x, 0.5), o.add(o.erf(o.mul(x, Math.SQRT1_2)), 1));
}

/** log Σ exp(x) over an axis, shifted by the (gradient-free) max. */
export function logsumexp(x: Val, axis = -1, keepdims = false): Val {
  const m = o.stopGradient(o.max(x, axis, true));
  const s = o.add(o.log(o.sum(o.exp(o.sub(x, m)), axis, true)), m);
  return keepdims
    ? s
    : o.reshape(
        s,
        x.shape.filter((_, i) => i !== (axis < 0 ? axis + x.ndim : axis)),
      );
}

export function logSoftmax(x: Val, axis = -1): Val {
  return o.sub(x, logsumexp(x, axis, true));
}

export function softmax(x: Val, axis = -1): Val {
  return o.exp(logSoftmax(x, axis));
}

/** Elementwise binary cross-entropy of logits z against targets t ∈ [0, 1]: softplus(z) − t z. */
export function bceWithLogits(z: Val, t: Val): Val {
  return o.sub(softplus(z), o.mul(t, z));
}

/** −Σ t · log_softmax(z) over the last axis, for (one-hot or soft) targets t. */
export function softmaxCrossEntropy(z: Val, t: Val): Val {
  return o.neg(o.sum(o.mul(t, logSoftmax(z, -1)), -1));
}

/** Variance over axes with a correction (0: population, 1: unbiased). */
export function variance(x: Val, axis?: number | readonly number[], keepdims = false, correction = 0): Val {
  const mu = o.mean(x, axis, true);
  const d2 = o.square(o.sub(x, mu));
  const s = o.sum(d2, axis, keepdims);
  const n = x.size / Math.max(1, s.size);
  return o.div(s, n - correction);
}
