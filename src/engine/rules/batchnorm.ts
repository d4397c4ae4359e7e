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

export const batchnormRules: {
  [K in 'bn_normalize' | 'bn_normalize_jvp' | 'channel_moments' | 'channel_sums' | 'bn_affine' | 'bn_sums' | 'bn_affine_jvp']: Rule<K>;
} = {
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
  bn_affine: {
    shape: ([x, m, w, b], { axis, eps }) => {
      checkFused('bn_affine', x!, axis, eps, { m, w, b });
      return { shape: x!.shape, dtype: x!.dtype };
    },
    // d(x̂·w + b) = w·J ẋ + x̂·ẇ + ḃ (m = channel_moments(x): no tangent of its own)
    jvp: ([x, m, w], [tx, , tw, tb], _out, { axis, eps }) =>
      sumCts(
        [
          () => (tx ? o.bnAffineJvp(x!, m!, w!, tx, o.bnSums(x!, m!, tx, axis, eps), axis, eps) : null),
          () => {
            if (!tw && !tb) return null;
            const z = full([x!.shape[axis]!], 0, x!.dtype);
            return o.channelAffine(o.bnNormalize(x!, axis, eps), tw ?? z, tb ?? z, axis);
          },
        ],
        o.add,
      ),
    // from s = [Σ ct·x̂; Σ ct]: x̄ = w·J ct, w̄ = s₀, b̄ = s₁
    vjp: (ct, [x, m, w], _out, { axis, eps }, needs) => {
      const s = o.bnSums(x!, m!, ct, axis, eps);
      return [needs[0] ? o.bnAffineJvp(x!, m!, w!, ct, s, axis, eps) : null, null, needs[2] ? row(s, 0) : null, needs[3] ? row(s, 1) : null];
    },
  },
  bn_sums: {
    shape: ([x, m, u], { axis, eps }) => {
      checkFused('bn_sums', x!, axis, eps, { m, u });
      return { shape: [2, x!.shape[axis]!], dtype: x!.dtype };
    },
    // as channel_sums(u, x̂): [Σ u̇·x̂; Σ u̇] + [Σ u·J ẋ; 0]
    jvp: ([x, m, u], [tx, , tu], _out, { axis, eps }) =>
      sumCts(
        [
          () => (tu ? o.bnSums(x!, m!, tu, axis, eps) : null),
          () => (tx ? o.mul(o.channelSums(u!, o.bnNormalizeJvp(x!, tx, axis, eps), axis), tensor([1, 0], [2, 1], x!.dtype)) : null),
        ],
        o.add,
      ),
    // cotangent g [2, C]: ū = g₀·x̂ + g₁, x̄ = J(g₀·u) (J symmetric)
    vjp: (g, [x, , u], _out, { axis, eps }, needs) => {
      const g0 = row(g, 0);
      const z = full([x!.shape[axis]!], 0, x!.dtype);
      return [
        needs[0] ? o.bnNormalizeJvp(x!, o.channelAffine(u!, g0, z, axis), axis, eps) : null,
        null,
        needs[2] ? o.channelAffine(o.bnNormalize(x!, axis, eps), g0, row(g, 1), axis) : null,
      ];
    },
  },
  bn_affine_jvp: {
    shape: ([x, m, w, u, s], { axis, eps }) => {
      checkFused('bn_affine_jvp', x!, axis, eps, { m, w, u, s });
      return { shape: x!.shape, dtype: x!.dtype };
    },
    // as channel_affine(bn_normalize_jvp(x, u), w, 0), linear in u and in w (m, s: no tangents of their own)
    jvp: ([x, m, w, u], [tx, , tw, tu], _out, params) => {
      const { axis, eps } = params;
      const z = full([x!.shape[axis]!], 0, x!.dtype);
      return sumCts(
        [
          () => (tu ? o.bnAffineJvp(x!, m!, w!, tu, o.bnSums(x!, m!, tu, axis, eps), axis, eps) : null),
          () => (tw ? o.channelAffine(o.bnNormalizeJvp(x!, u!, axis, eps), tw, z, axis) : null),
          () => {
            if (!tx) return null;
            const d = batchnormRules.bn_normalize_jvp.jvp([x!, u!], [tx, null], o.bnNormalizeJvp(x!, u!, axis, eps), params);
            return d === null ? null : o.channelAffine(d, w!, z, axis);
          },
        ],
        o.add,
      );
    },
    // ū = J(w·g) = w·J g, w̄ = Σ g·J u, x̄ = bn_normalize_jvp's x-cotangent of w·g
    vjp: (g, [x, m, w, u], _out, params, needs) => {
      const { axis, eps } = params;
      const z = full([x!.shape[axis]!], 0, x!.dtype);
      const dx = needs[0]
        ? batchnormRules.bn_normalize_jvp.vjp(o.channelAffine(g, w!, z, axis), [x!, u!], o.bnNormalizeJvp(x!, u!, axis, eps), params, [
            true,
            false,
          ])[0]!
        : null;
      return [
        dx,
        null,
        needs[2] ? row(o.channelSums(g, o.bnNormalizeJvp(x!, u!, axis, eps), axis), 0) : null,
        needs[3] ? o.bnAffineJvp(x!, m!, w!, g, o.bnSums(x!, m!, g, axis, eps), axis, eps) : null,
        null,
      ];
    },
  },
};

/** Row i ∈ {0, 1} of a [2, C] tensor, as a [C] vector. */
function row(s: Val, i: 0 | 1): Val {
  const c = s.shape[1]!;
  return o.reshape(o.slice(s, [i, 0], [i + 1, c]), [c]);
}

/**
 * The fused BatchNorm primitives' operands: m and s [2, C] (statistics, sums), w and b [C], u the
 * shape of x; all of x's dtype.
 */
function checkFused(name: string, x: Aval, axis: number, eps: number, ops: { m?: Aval; w?: Aval; b?: Aval; u?: Aval; s?: Aval }): void {
  checkAxis(name, x, axis);
  checkEps(name, eps);
  const c = x.shape[axis]!;
  const want: Record<string, readonly number[]> = { m: [2, c], w: [c], b: [c], u: x.shape, s: [2, c] };
  for (const [k, a] of Object.entries(ops)) {
    if (!a) continue;
    if (a.dtype !== x.dtype) throw new Error(`${name}: ${k} has dtype ${a.dtype}, x ${x.dtype}; cast explicitly`);
    if (!shapesEqual(a.shape, want[k]!))
      throw new Error(`${name}: ${k} has shape ${fmtShape(a.shape)}, expected ${fmtShape(want[k]!)} for x ${fmtShape(x.shape)}`);
  }
}
