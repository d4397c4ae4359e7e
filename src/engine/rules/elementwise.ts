/** Elementwise primitives: shape rule, jvp and vjp, each derivative a one-line formula in ops. */
import { fmtShape, shapesEqual } from '../shape.js';
import { full, type Val } from '../tensor.js';
import * as o from '../ops.js';
import { softplus } from '../composites.js';
import { Tracer } from '../trace.js';
import { sumCts, type Aval, type Rule } from './types.js';

function sameAvals(name: string, ins: readonly Aval[]): Aval {
  const a = ins[0]!;
  for (const b of ins.slice(1)) {
    if (b.dtype !== a.dtype) throw new Error(`${name}: operands have dtypes ${a.dtype} and ${b.dtype}; cast explicitly`);
    if (!shapesEqual(a.shape, b.shape)) throw new Error(`${name}: operand shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} differ`);
  }
  return { shape: a.shape, dtype: a.dtype };
}

/** A unary rule from d(out)/dx written in ops: tangent and cotangent are both  ·  × dfdx. */
function unary<P extends 'exp' | 'log' | 'log1p' | 'tanh' | 'erf' | 'sqrt' | 'abs' | 'mish_grad' | 'mish_grad2'>(
  name: P,
  dfdx: (x: Val, out: Val) => Val,
): Rule<P> {
  return {
    shape: (ins) => sameAvals(name, ins),
    jvp: ([x], [t], out) => (t ? o.mul(t, dfdx(x!, out)) : null),
    vjp: (ct, [x], out) => [o.mul(ct, dfdx(x!, out))],
  };
}

/**
 * g·mish'(x), mish's tangent and cotangent: in one pass (mish_vjp) where g is concrete, so that
 * no derivative of it will be taken; mul(g, mish_grad(x)) where g is itself traced (a derivative
 * of a derivative, as the reverse pass inside an HVP), whose own derivative then reuses mish'(x)
 * instead of evaluating it again (mish_vjp's tangent in g is a second mish_vjp). The same values
 * either way (the float32 kernels round mish' before the product).
 */
function mishTimes(x: Val, g: Val): Val {
  return g instanceof Tracer ? o.mul(g, o.mishGrad(x)) : o.mishVjp(x, g);
}

/** Weight of operand a in max(a, b) (min: lt): 1 where it wins, ½ at ties, else 0. */
function winnerWeight(a: Val, b: Val, op: 'gt' | 'lt'): Val {
  return o.add(o.compare(a, op, b), o.mul(o.eq(a, b), 0.5));
}

function extremum<P extends 'max' | 'min'>(name: P): Rule<P> {
  const op = name === 'max' ? 'gt' : 'lt';
  return {
    shape: (ins) => sameAvals(name, ins),
    jvp: ([a, b], [ta, tb]) => {
      const wa = winnerWeight(a!, b!, op);
      return sumCts([() => (ta ? o.mul(ta, wa) : null), () => (tb ? o.mul(tb, o.sub(1, wa)) : null)], o.add);
    },
    vjp: (ct, [a, b], _out, _p, needs) => {
      const wa = winnerWeight(a!, b!, op);
      return [needs[0] ? o.mul(ct, wa) : null, needs[1] ? o.mul(ct, o.sub(1, wa)) : null];
    },
  };
}

/** 2/√π, the derivative of erf at 0 (C's M_2_SQRTPI). */
const TWO_OVER_SQRT_PI = 1.1283791670955126;

const sign = (x: Val) => o.sub(o.gt(x, 0), o.lt(x, 0));

/**
 * mish'''(x) = (1 − T²)·σ·(h·g + g'), the derivative of mish'' = (1 − T²)·σ·g, with T = tanh(softplus(x)),
 * σ = sigmoid(x), h = 1 − σ − 2Tσ, g = 2 + x·h and g' = h − x(σ(1 − σ) + 2(1 − T²)σ² + 2Tσ(1 − σ))
 * (T' = (1 − T²)σ, σ' = σ(1 − σ)); σ = e^−softplus(−x) and 1 − σ = e^−softplus(x), accurate in
 * relative terms in both tails.
 */
function mishThird(x: Val): Val {
  const t = o.tanh(softplus(x));
  const s = o.exp(o.neg(softplus(o.neg(x))));
  const sc = o.exp(o.neg(softplus(x)));
  const sech2 = o.sub(1, o.square(t));
  const ts = o.mul(t, s);
  const h = o.sub(sc, o.mul(ts, 2));
  const g = o.add(2, o.mul(x, h));
  const hp = o.add(o.add(o.mul(s, sc), o.mul(o.mul(sech2, o.square(s)), 2)), o.mul(o.mul(ts, sc), 2));
  const gp = o.sub(h, o.mul(x, hp));
  return o.mul(o.mul(sech2, s), o.add(o.mul(h, g), gp));
}

export const elementwiseRules = {
  add: {
    shape: (ins) => sameAvals('add', ins),
    jvp: (_p, [ta, tb]) => (ta && tb ? o.add(ta, tb) : (ta ?? tb ?? null)),
    vjp: (ct) => [ct, ct],
  },
  sub: {
    shape: (ins) => sameAvals('sub', ins),
    jvp: (_p, [ta, tb]) => (ta && tb ? o.sub(ta, tb) : ta ? ta : tb ? o.neg(tb) : null),
    vjp: (ct, _p, _out, _q, needs) => [ct, needs[1] ? o.neg(ct) : null],
  },
  neg: {
    shape: (ins) => sameAvals('neg', ins),
    jvp: (_p, [t]) => (t ? o.neg(t) : null),
    vjp: (ct) => [o.neg(ct)],
  },
  mul: {
    shape: (ins) => sameAvals('mul', ins),
    // d(ab) = ȧ b + a ḃ
    jvp: ([a, b], [ta, tb]) => sumCts([() => (ta ? o.mul(ta, b!) : null), () => (tb ? o.mul(a!, tb) : null)], o.add),
    vjp: (ct, [a, b], _out, _p, needs) => [needs[0] ? o.mul(ct, b!) : null, needs[1] ? o.mul(a!, ct) : null],
  },
  div: {
    shape: (ins) => sameAvals('div', ins),
    // d(a/b) = (ȧ − (a/b) ḃ) / b
    jvp: ([, b], [ta, tb], out) => sumCts([() => (ta ? o.div(ta, b!) : null), () => (tb ? o.neg(o.div(o.mul(out, tb), b!)) : null)], o.add),
    vjp: (ct, [, b], out, _p, needs) => [needs[0] ? o.div(ct, b!) : null, needs[1] ? o.neg(o.div(o.mul(ct, out), b!)) : null],
  },
  max: extremum('max'),
  min: extremum('min'),
  exp: unary('exp', (_x, out) => out), // d eˣ = eˣ
  log: unary('log', (x) => o.div(1, x)), // d log x = 1/x
  log1p: unary('log1p', (x) => o.div(1, o.add(x, 1))), // d log(1+x) = 1/(1+x)
  tanh: unary('tanh', (_x, out) => o.sub(1, o.square(out))), // d tanh = 1 − tanh²
  erf: unary('erf', (x) => o.mul(o.exp(o.neg(o.square(x))), TWO_OVER_SQRT_PI)), // d erf = (2/√π) e^(−x²)
  sqrt: unary('sqrt', (_x, out) => o.div(0.5, out)), // d √x = 1/(2√x)
  abs: unary('abs', (x) => sign(x)), // d|x| = sign x (0 at 0)
  mish: {
    shape: (ins) => sameAvals('mish', ins),
    jvp: ([x], [t]) => (t ? mishTimes(x!, t) : null),
    vjp: (ct, [x]) => [mishTimes(x!, ct)],
  },
  mish_grad: unary('mish_grad', (x) => o.mishGrad2(x)),
  mish_grad2: unary('mish_grad2', (x) => mishThird(x)),
  // g·mish'(x): linear in g; d/dx = g·mish''(x)
  mish_vjp: {
    shape: (ins) => sameAvals('mish_vjp', ins),
    jvp: ([x, g], [tx, tg]) => sumCts([() => (tg ? o.mishVjp(x!, tg) : null), () => (tx ? o.mul(o.mul(tx, g!), o.mishGrad2(x!)) : null)], o.add),
    vjp: (ct, [x, g], _out, _p, needs) => [needs[0] ? o.mul(o.mul(ct, g!), o.mishGrad2(x!)) : null, needs[1] ? o.mishVjp(x!, ct) : null],
  },
  pow: {
    shape: (ins) => sameAvals('pow', ins),
    // d xᵖ = p xᵖ⁻¹
    jvp: ([x], [t], _out, { exponent: p }) => (t && p !== 0 ? o.mul(t, o.mul(o.pow(x!, p - 1), p)) : null),
    vjp: (ct, [x], _out, { exponent: p }) => [p === 0 ? null : o.mul(ct, o.mul(o.pow(x!, p - 1), p))],
  },
  channel_affine: {
    shape: ([x, s, t], { axis }) => {
      if (!Number.isInteger(axis) || axis < 0 || axis >= x!.shape.length)
        throw new Error(`channel_affine: axis ${axis} is not an axis of ${fmtShape(x!.shape)}`);
      const c = x!.shape[axis]!;
      for (const [name, v] of [
        ['scale', s!],
        ['shift', t!],
      ] as const) {
        if (v.dtype !== x!.dtype) throw new Error(`channel_affine: ${name} has dtype ${v.dtype}, x ${x!.dtype}; cast explicitly`);
        if (v.shape.length !== 1 || v.shape[0] !== c)
          throw new Error(`channel_affine: ${name} has shape ${fmtShape(v.shape)}, expected [${c}] (x ${fmtShape(x!.shape)}, axis ${axis})`);
      }
      return { shape: x!.shape, dtype: x!.dtype };
    },
    // d(x·s + t) = ẋ·s + x·ṡ + ṫ
    jvp: ([x, s], [tx, ts, tt], _out, { axis }) => {
      const zero = () => full([x!.shape[axis]!], 0, x!.dtype);
      return sumCts(
        [
          () => (tx ? o.channelAffine(tx, s!, zero(), axis) : null),
          () => (ts ? o.channelAffine(x!, ts, tt ?? zero(), axis) : tt ? o.broadcastInDim(tt, x!.shape, [axis]) : null),
        ],
        o.add,
      );
    },
    // the scale's and shift's cotangents Σ ct·x and Σ ct in one pass (channel_sums)
    vjp: (ct, [x, s], _out, { axis }, needs) => {
      const c = x!.shape[axis]!;
      const sums = needs[1] || needs[2] ? o.channelSums(ct, x!, axis) : null;
      return [
        needs[0] ? o.channelAffine(ct, s!, full([c], 0, x!.dtype), axis) : null,
        needs[1] ? o.reshape(o.slice(sums!, [0, 0], [1, c]), [c]) : null,
        needs[2] ? o.reshape(o.slice(sums!, [1, 0], [2, c]), [c]) : null,
      ];
    },
  },
  compare: {
    shape: (ins) => sameAvals('compare', ins),
    jvp: () => null,
    vjp: () => [null, null],
    zeroDerivative: true,
  },
  select: {
    shape: (ins) => sameAvals('select', ins),
    // select(c, a, b)˙ = select(c, ȧ, ḃ); nothing flows to c
    jvp: ([c, a], [, ta, tb]) => (ta || tb ? o.where(c!, ta ?? o.zerosLike(a!), tb ?? o.zerosLike(a!)) : null),
    vjp: (ct, [c], _out, _p, needs) => [null, needs[1] ? o.where(c!, ct, 0) : null, needs[2] ? o.where(c!, 0, ct) : null],
  },
  cast: {
    shape: ([a], { dtype }) => ({ shape: a!.shape, dtype }),
    jvp: (_p, [t], _out, { dtype }) => (t ? o.cast(t, dtype) : null),
    vjp: (ct, [x]) => [o.cast(ct, x!.dtype)],
  },
  stop_gradient: {
    shape: ([a]) => ({ shape: a!.shape, dtype: a!.dtype }),
    jvp: () => null,
    vjp: () => [null],
    zeroDerivative: true,
  },
} satisfies {
  [
    K in
      | 'add'
      | 'sub'
      | 'neg'
      | 'mul'
      | 'div'
      | 'max'
      | 'min'
      | 'exp'
      | 'log'
      | 'log1p'
      | 'tanh'
      | 'erf'
      | 'sqrt'
      | 'abs'
      | 'mish'
      | 'mish_grad'
      | 'mish_grad2'
      | 'mish_vjp'
      | 'pow'
      | 'channel_affine'
      | 'compare'
      | 'select'
      | 'cast'
      | 'stop_gradient'
  ]: Rule<K>;
};
