/**
 * BatchNorm's normalisation as primitives: bn_normalize (x ↦ x̂ = (x − μ)/σ per index along
 * `axis`, σ = √(biased variance + eps)), bn_normalize_jvp (its Jacobian applied to a vector) and
 * channel_moments (μ and the biased variance; derivative zero); and channel_sums (Σ u·x and Σ u per
 * channel, channel_affine's scale and shift cotangents in one pass: bilinear, its cotangent maps
 * are channel_affine).
 *
 * The Jacobian J t = (1/σ)(t − mean(t) − x̂·mean(x̂·t)) is symmetric, so it is both derivatives of
 * bn_normalize. The derivatives of J t in x are closed forms (k = J t, r = 1/σ, means per channel):
 *   D_x(J t)[ẋ] = −r·(mean(x̂·ẋ)·k + mean(x̂·t)·J ẋ + mean(t·J ẋ)·x̂)
 *   its transpose applied to u: −r·(mean(u·k)·x̂ + mean(x̂·t)·J u + mean(u·x̂)·k)
 * (since dσ[ẋ] = mean(x̂·ẋ) and dx̂[ẋ] = J ẋ), written with the primitives themselves, means
 * and products, so that derivatives nest to any order.
 */
import { fmtShape, shapesEqual } from '../shape.js';
import { full, tensor, type Val } from '../tensor.js';
import * as o from '../ops.js';
import { sumCts, type Aval, type Rule } from './types.js';

function checkAxis(name: string, x: Aval, axis: number): void {
  if (!Number.isInteger(axis) || axis < 0 || axis >= x.shape.length) throw new Error(`${name}: axis ${axis} is not an axis of ${fmtShape(x.shape)}`);
}

function checkEps(name: string, eps: number): void {
  if (!Number.isFinite(eps) || eps < 0) throw new Error(`${name}: eps must be a finite number ≥ 0, got ${eps}`);
}

/** The mean of v over every axis but `axis`, kept as size-1 axes (broadcasts against v). */
function cmean(v: Val, axis: number): Val {
  return o.mean(
    v,
    v.shape.map((_, i) => i).filter((i) => i !== axis),
    true,
  );
}

/** 1/σ = 1/√(biased variance + eps) per index along `axis` (size-1 elsewhere). */
function invStd(x: Val, axis: number, eps: number): Val {
  const c = o.sub(x, cmean(x, axis));
  return o.div(1, o.sqrt(o.add(cmean(o.square(c), axis), eps)));
}

export const batchnormRules = {
  bn_normalize: {
    shape: ([x], { axis, eps }) => {
      checkAxis('bn_normalize', x!, axis);
      checkEps('bn_normalize', eps);
      return { shape: x!.shape, dtype: x!.dtype };
    },
    jvp: ([x], [t], _out, { axis, eps }) => (t ? o.bnNormalizeJvp(x!, t, axis, eps) : null),
    vjp: (ct, [x], _out, { axis, eps }) => [o.bnNormalizeJvp(x!, ct, axis, eps)],
  },
  bn_normalize_jvp: {
    shape: ([x, t], { axis, eps }) => {
      checkAxis('bn_normalize_jvp', x!, axis);
      checkEps('bn_normalize_jvp', eps);
      if (t!.dtype !== x!.dtype) throw new Error(`bn_normalize_jvp: t has dtype ${t!.dtype}, x ${x!.dtype}; cast explicitly`);
      if (!shapesEqual(t!.shape, x!.shape)) throw new Error(`bn_normalize_jvp: t has shape ${fmtShape(t!.shape)}, x ${fmtShape(x!.shape)}`);
      return { shape: x!.shape, dtype: x!.dtype };
    },
    jvp: ([x, t], [tx, tt], k, { axis, eps }) =>
      sumCts(
        [
          () => (tt ? o.bnNormalizeJvp(x!, tt, axis, eps) : null),
          () => {
            if (!tx) return null;
            const xh = o.bnNormalize(x!, axis, eps);
            const jx = o.bnNormalizeJvp(x!, tx, axis, eps);
            const terms = o.add(
              o.add(o.mul(cmean(o.mul(xh, tx), axis), k), o.mul(cmean(o.mul(xh, t!), axis), jx)),
              o.mul(cmean(o.mul(t!, jx), axis), xh),
            );
            return o.neg(o.mul(invStd(x!, axis, eps), terms));
          },
        ],
        o.add,
      ),
    vjp: (u, [x, t], k, { axis, eps }, needs) => {
      let dx: Val | null = null;
      if (needs[0]) {
        const xh = o.bnNormalize(x!, axis, eps);
        const ju = o.bnNormalizeJvp(x!, u, axis, eps);
        const terms = o.add(o.add(o.mul(cmean(o.mul(u, k), axis), xh), o.mul(cmean(o.mul(xh, t!), axis), ju)), o.mul(cmean(o.mul(u, xh), axis), k));
        dx = o.neg(o.mul(invStd(x!, axis, eps), terms));
      }
      return [dx, needs[1] ? o.bnNormalizeJvp(x!, u, axis, eps) : null];
    },
  },
  channel_moments: {
    shape: ([x], { axis }) => {
      checkAxis('channel_moments', x!, axis);
      return { shape: [2, x!.shape[axis]!], dtype: x!.dtype };
    },
    jvp: () => null,
    vjp: () => [null],
    zeroDerivative: true,
  },
  channel_sums: {
    shape: ([u, x], { axis }) => {
      checkAxis('channel_sums', x!, axis);
      if (u!.dtype !== x!.dtype) throw new Error(`channel_sums: u has dtype ${u!.dtype}, x ${x!.dtype}; cast explicitly`);
      if (!shapesEqual(u!.shape, x!.shape)) throw new Error(`channel_sums: u has shape ${fmtShape(u!.shape)}, x ${fmtShape(x!.shape)}`);
      return { shape: [2, x!.shape[axis]!], dtype: x!.dtype };
    },
    // d[Σ u·x; Σ u] = [Σ u̇·x; Σ u̇] + [Σ u·ẋ; 0]
    jvp: ([u, x], [tu, tx], _out, { axis }) =>
      sumCts(
        [() => (tu ? o.channelSums(tu, x!, axis) : null), () => (tx ? o.mul(o.channelSums(u!, tx, axis), tensor([1, 0], [2, 1], x!.dtype)) : null)],
        o.add,
      ),
    // cotangent g [2, C]: ū = g₀·x + g₁ and x̄ = g₀·u per channel
    vjp: (g, [u, x], _out, { axis }, needs) => {
      const c = x!.shape[axis]!;
      const g0 = o.reshape(o.slice(g, [0, 0], [1, c]), [c]);
      return [
        needs[0] ? o.channelAffine(x!, g0, o.reshape(o.slice(g, [1, 0], [2, c]), [c]), axis) : null,
        needs[1] ? o.channelAffine(u!, g0, full([c], 0, x!.dtype), axis) : null,
      ];
    },
  },
} satisfies { [K in 'bn_normalize' | 'bn_normalize_jvp' | 'channel_moments' | 'channel_sums']: Rule<K> };
