/**
 * Every primitive and composite, checked in float64 against independent oracles: jvp against
 * central finite differences, the adjoint identity between forward and reverse mode, and the
 * second-order HVP (forward-over-reverse) against finite differences of the gradient and
 * against reverse-over-reverse. Inputs are random, away from kinks.
 */
import { describe, expect, test } from 'vitest';
import * as e from '../src/engine/index.js';
import * as o from '../src/engine/ops.js';
import type { Val } from '../src/engine/tensor.js';
import { KERNEL_SETS, withKernelHook } from '../src/engine/kernels/index.js';

const rng = new e.Rng(42);
const N = (...s: number[]) => rng.normalTensor(s);
const U = (lo: number, hi: number, ...s: number[]) => rng.uniformTensor(s, lo, hi);
/** Values of random sign with |x| ∈ [0.3, 2]: away from 0 (kinks of abs, relu; poles of div). */
const away = (...s: number[]) => {
  const t = U(0.3, 2, ...s);
  for (let i = 0; i < t.data.length; i++) if (rng.random() < 0.5) t.data[i] = -t.data[i]!;
  return t;
};
/** Distinct values (ties apart by ≥ 1e-3), for max-type operations. */
const distinct = (...s: number[]) => {
  const n = s.reduce((a, b) => a * b, 1);
  const p = rng.permutation(n);
  return e.tensor(
    p.map((v) => v * 0.05 - n * 0.025 + rng.uniform(0, 1e-3)),
    s,
  );
};
const fixed = (t: e.Tensor) => t; // inputs captured as constants (no derivative)

interface Case {
  name: string;
  f: (xs: Val[]) => Val;
  xs: () => e.Tensor[];
}

const onehot = e.tensor([0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0], [3, 4]);
const targets = fixed(U(0, 1, 3, 4));
const weights234 = fixed(N(2, 3, 4));
const weights2222 = fixed(N(2, 2, 2, 2));
const conv = (opts: e.ConvOptions, xs: number[], ws: number[]): Case => ({
  name: `conv2d ${JSON.stringify(opts)} x${JSON.stringify(xs)} w${JSON.stringify(ws)}`,
  f: ([x, w]) => o.conv2d(x!, w!, opts),
  xs: () => [N(...xs), N(...ws)],
});
const cp = (opts: e.ConvOptions) => o.convParams(opts);

const CASES: Case[] = [
  // elementwise binary, with broadcasting
  { name: 'add', f: ([a, b]) => o.add(a!, b!), xs: () => [N(3, 4), N(3, 4)] },
  { name: 'add broadcast [3,1]+[1,4]', f: ([a, b]) => o.add(a!, b!), xs: () => [N(3, 1), N(1, 4)] },
  { name: 'sub broadcast [4]-[2,3,4]', f: ([a, b]) => o.sub(a!, b!), xs: () => [N(4), N(2, 3, 4)] },
  { name: 'mul', f: ([a, b]) => o.mul(a!, b!), xs: () => [N(3, 4), N(3, 4)] },
  { name: 'mul scalar broadcast', f: ([a, b]) => o.mul(a!, b!), xs: () => [N(), N(2, 3)] },
  { name: 'div', f: ([a, b]) => o.div(a!, b!), xs: () => [N(3, 4), away(3, 4)] },
  { name: 'maximum', f: ([a, b]) => o.maximum(a!, b!), xs: () => [N(3, 4), N(3, 4)] },
  { name: 'minimum', f: ([a, b]) => o.minimum(a!, b!), xs: () => [N(3, 4), N(3, 4)] },
  // elementwise unary
  { name: 'neg', f: ([a]) => o.neg(a!), xs: () => [N(5)] },
  { name: 'exp', f: ([a]) => o.exp(a!), xs: () => [N(3, 4)] },
  { name: 'log', f: ([a]) => o.log(a!), xs: () => [U(0.3, 3, 3, 4)] },
  { name: 'log1p', f: ([a]) => o.log1p(a!), xs: () => [U(-0.5, 3, 3, 4)] },
  { name: 'tanh', f: ([a]) => o.tanh(a!), xs: () => [N(3, 4)] },
  { name: 'erf', f: ([a]) => o.erf(a!), xs: () => [N(3, 4)] },
  { name: 'sqrt', f: ([a]) => o.sqrt(a!), xs: () => [U(0.3, 3, 3, 4)] },
  { name: 'abs', f: ([a]) => o.abs(a!), xs: () => [away(3, 4)] },
  { name: 'pow 3', f: ([a]) => o.pow(a!, 3), xs: () => [N(3, 4)] },
  { name: 'pow -1.5', f: ([a]) => o.pow(a!, -1.5), xs: () => [U(0.5, 2, 3, 4)] },
  { name: 'square', f: ([a]) => o.square(a!), xs: () => [N(3, 4)] },
  { name: 'compare·x (zero derivative through compare)', f: ([a]) => o.mul(o.gt(a!, 0), o.exp(a!)), xs: () => [away(3, 4)] },
  { name: 'where', f: ([c, a, b]) => o.where(o.gt(c!, 0), o.mul(a!, a!), o.exp(b!)), xs: () => [away(3, 4), N(3, 4), N(3, 4)] },
  // reductions
  { name: 'sum all', f: ([a]) => o.sum(o.square(a!)), xs: () => [N(2, 3, 4)] },
  { name: 'sum axes [0,2] keepdims', f: ([a]) => o.sum(o.exp(a!), [0, 2], true), xs: () => [N(2, 3, 4)] },
  { name: 'max axis 1', f: ([a]) => o.max(o.mul(a!, a!), 1), xs: () => [distinct(2, 5, 3)] },
  { name: 'max all', f: ([a]) => o.max(o.exp(a!)), xs: () => [distinct(3, 4)] },
  { name: 'mean axis -1', f: ([a]) => e.mean(o.exp(a!), -1), xs: () => [N(3, 4)] },
  // shape
  { name: 'reshape', f: ([a]) => o.reshape(o.exp(a!), [4, -1]), xs: () => [N(2, 3, 4)] },
  { name: 'broadcastTo', f: ([a]) => o.mul(o.broadcastTo(a!, [2, 3, 4]), weights234), xs: () => [N(3, 1)] },
  { name: 'transpose [2,0,1]', f: ([a]) => o.transpose(o.exp(a!), [2, 0, 1]), xs: () => [N(2, 3, 4)] },
  { name: 'slice', f: ([a]) => o.slice(o.tanh(a!), [1, 0, 2], [2, 3, 4]), xs: () => [N(3, 3, 5)] },
  { name: 'pad', f: ([a]) => o.pad(o.tanh(a!), [1, 0], [2, 3]), xs: () => [N(2, 3)] },
  { name: 'concatenate axis 1', f: ([a, b, c]) => o.tanh(o.concatenate([a!, o.exp(b!), c!], 1)), xs: () => [N(2, 1, 3), N(2, 2, 3), N(2, 3, 3)] },
  // matmul
  { name: 'matmul', f: ([a, b]) => o.tanh(o.matmul(a!, b!)), xs: () => [N(3, 4), N(4, 5)] },
  { name: 'matmul transA', f: ([a, b]) => o.tanh(o.matmul(a!, b!, { transA: true })), xs: () => [N(4, 3), N(4, 5)] },
  { name: 'matmul transB', f: ([a, b]) => o.tanh(o.matmul(a!, b!, { transB: true })), xs: () => [N(3, 4), N(5, 4)] },
  {
    name: 'matmul transA transB batched',
    f: ([a, b]) => o.tanh(o.matmul(a!, b!, { transA: true, transB: true })),
    xs: () => [N(2, 4, 3), N(2, 5, 4)],
  },
  { name: 'matmul broadcast batch', f: ([a, b]) => o.tanh(o.matmul(a!, b!)), xs: () => [N(2, 1, 3, 4), N(3, 4, 2)] },
  // conv family
  conv({ padding: 1 }, [1, 2, 5, 5], [3, 2, 3, 3]),
  conv({ stride: 2 }, [2, 2, 7, 6], [3, 2, 3, 3]),
  conv({ stride: [2, 1], padding: [2, 0], dilation: 2 }, [1, 2, 8, 7], [2, 2, 3, 2]),
  conv({ groups: 2, padding: 1 }, [2, 4, 5, 5], [6, 2, 3, 3]),
  conv({ groups: 3, stride: 2, padding: 1 }, [1, 3, 6, 6], [3, 1, 3, 3]),
  {
    name: 'conv2d → tanh → conv2d (second order through input and filter gradients)',
    f: ([x, w1, w2]) => o.conv2d(o.tanh(o.conv2d(x!, w1!, { padding: 1 })), w2!, { stride: 2 }),
    xs: () => [N(1, 2, 6, 6), N(3, 2, 3, 3), N(2, 3, 2, 2)],
  },
  {
    name: 'conv2d_input_grad as a primitive',
    f: ([dy, w]) => o.bindConvInputGrad(o.tanh(dy!), w!, { ...cp({ stride: 2, padding: 1 }), inputShape: [1, 2, 6, 5] }),
    xs: () => [N(1, 3, 3, 3), N(3, 2, 3, 3)],
  },
  {
    name: 'conv2d_filter_grad as a primitive',
    f: ([x, dy]) => o.bindConvFilterGrad(o.tanh(x!), dy!, { ...cp({ padding: 1, groups: 2 }), filterShape: [4, 1, 3, 3] }),
    xs: () => [N(2, 2, 4, 4), N(2, 4, 4, 4)],
  },
  // pooling
  { name: 'maxPool2d 2', f: ([a]) => o.maxPool2d(o.mul(a!, a!), 2), xs: () => [distinct(1, 2, 4, 6)] },
  { name: 'maxPool2d 3 stride 2 pad 1', f: ([a]) => o.maxPool2d(o.exp(a!), 3, { stride: 2, padding: 1 }), xs: () => [distinct(2, 1, 5, 5)] },
  {
    name: 'maxpool2d_scatter as a primitive',
    f: ([k, dy]) => o.bindMaxPoolScatter(k!, o.tanh(dy!), { kernel: [2, 2], stride: [2, 2], padding: [0, 0], inputShape: [1, 1, 4, 4] }),
    xs: () => [distinct(1, 1, 4, 4), N(1, 1, 2, 2)],
  },
  { name: 'avgPool2d 2', f: ([a]) => o.avgPool2d(o.tanh(a!), 2), xs: () => [N(1, 3, 4, 6)] },
  { name: 'avgPool2d 3 stride 2 pad 1', f: ([a]) => o.avgPool2d(o.exp(a!), 3, { stride: 2, padding: 1 }), xs: () => [N(2, 1, 5, 5)] },
  // composites
  { name: 'sigmoid', f: ([a]) => e.sigmoid(a!), xs: () => [N(3, 4)] },
  { name: 'softplus', f: ([a]) => e.softplus(a!), xs: () => [away(3, 4)] },
  { name: 'relu', f: ([a]) => o.mul(e.relu(a!), a!), xs: () => [away(3, 4)] },
  { name: 'silu', f: ([a]) => e.silu(a!), xs: () => [N(3, 4)] },
  {
    name: 'channelAffine axis 1 (x, scale and shift all differentiated; tanh so second order is not trivially zero)',
    f: ([x, s, t]) => o.tanh(o.channelAffine(o.tanh(x!), s!, t!, 1)),
    xs: () => [N(2, 3, 2, 2), N(3), N(3)],
  },
  { name: 'channelAffine axis 0 of a matrix', f: ([x, s, t]) => o.mul(o.channelAffine(x!, o.tanh(s!), t!, 0), x!), xs: () => [N(4, 3), N(4), N(4)] },
  {
    name: 'bnNormalize axis 1 of [N, C, H, W] (weighted and through tanh, so that neither derivative is trivial)',
    f: ([x]) => o.tanh(o.mul(o.bnNormalize(x!, 1, 1e-3), weights2222)),
    xs: () => [N(2, 2, 2, 2)],
  },
  { name: 'bnNormalize axis 0 of a matrix', f: ([x]) => o.mul(o.bnNormalize(x!, 0, 1e-5), o.tanh(x!)), xs: () => [N(3, 4)] },
  { name: 'bnNormalize last axis (runs of one element)', f: ([x]) => o.tanh(o.mul(o.bnNormalize(x!, 2, 0.1), x!)), xs: () => [N(2, 3, 3)] },
  {
    name: 'bn_normalize_jvp as a primitive (x and t both differentiated, to second order)',
    f: ([x, t]) => o.tanh(o.bnNormalizeJvp(x!, o.tanh(t!), 1, 1e-2)),
    xs: () => [N(3, 2, 2), N(3, 2, 2)],
  },
  {
    name: 'channel_sums as a primitive (u and x both differentiated, to second order)',
    f: ([u, x]) => o.tanh(o.channelSums(o.tanh(u!), x!, 1)),
    xs: () => [N(2, 3, 2), N(2, 3, 2)],
  },
  { name: 'channel_sums of one operand twice, axis 0', f: ([u]) => o.mul(o.channelSums(u!, u!, 0), 0.5), xs: () => [N(3, 4)] },
  {
    name: 'bnAffine axis 1 (x, scale and shift all differentiated; through tanh)',
    f: ([x, w, b]) => o.tanh(o.bnAffine(o.tanh(x!), w!, b!, 1, 1e-3)),
    xs: () => [N(3, 2, 2, 2), N(2), N(2)],
  },
  {
    name: 'bnAffine axis 0 of a matrix, statistics passed',
    f: ([x, w, b]) => o.mul(o.bnAffine(x!, w!, b!, 0, 1e-2, o.channelMoments(x!, 0)), x!),
    xs: () => [N(4, 3), N(4), N(4)],
  },
  {
    name: 'bn_sums as a primitive (x and u both differentiated, to second order)',
    f: ([x, u]) => o.tanh(o.bnSums(x!, o.channelMoments(x!, 1), o.tanh(u!), 1, 1e-2)),
    xs: () => [N(2, 3, 2), N(2, 3, 2)],
  },
  {
    name: 'bn_affine_jvp as a primitive (x, w and u all differentiated, to second order)',
    f: ([x, w, u]) => {
      const m = o.channelMoments(x!, 1);
      const t = o.tanh(u!);
      return o.tanh(o.bnAffineJvp(x!, m, w!, t, o.bnSums(x!, m, t, 1, 1e-2), 1, 1e-2));
    },
    xs: () => [N(3, 2, 2), N(2), N(3, 2, 2)],
  },
  { name: 'mish', f: ([a]) => e.mish(a!), xs: () => [away(3, 4)] },
  { name: 'mish_grad', f: ([a]) => o.mishGrad(a!), xs: () => [N(3, 4)] },
  { name: 'mish_grad2', f: ([a]) => o.mishGrad2(a!), xs: () => [N(3, 4)] },
  {
    name: 'mish_vjp as a primitive (x and g both differentiated, to second order)',
    f: ([a, g]) => o.tanh(o.mishVjp(a!, o.tanh(g!))),
    xs: () => [N(3, 4), N(3, 4)],
  },
  { name: 'mish_grad2 in the tails', f: ([a]) => o.mishGrad2(a!), xs: () => [e.tensor([-30, -9, -3.5, 4, 9, 25], [6])] },
  { name: 'mish (composite form)', f: ([a]) => e.mishComposite(a!), xs: () => [away(3, 4)] },
  { name: 'gelu', f: ([a]) => e.gelu(a!), xs: () => [N(3, 4)] },
  { name: 'geluErf (exact GELU)', f: ([a]) => e.geluErf(a!), xs: () => [N(3, 4)] },
  { name: 'logsumexp', f: ([a]) => e.logsumexp(a!, -1), xs: () => [N(3, 4)] },
  { name: 'logSoftmax axis 0', f: ([a]) => e.logSoftmax(a!, 0), xs: () => [N(3, 4)] },
  { name: 'softmax', f: ([a]) => e.softmax(a!), xs: () => [N(3, 4)] },
  { name: 'bceWithLogits', f: ([a]) => e.bceWithLogits(a!, targets), xs: () => [away(3, 4)] },
  { name: 'softmaxCrossEntropy', f: ([a]) => e.softmaxCrossEntropy(a!, onehot), xs: () => [N(3, 4)] },
  { name: 'variance axis 1 unbiased', f: ([a]) => e.variance(a!, 1, false, 1), xs: () => [N(3, 5)] },
];

describe('derivatives of every primitive and composite (float64)', () => {
  test.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = e.checkGrads(c.f, c.xs(), { seed: 7 });
    expect(r.jvpVsFd).toBeLessThan(1e-6);
    expect(r.adjoint).toBeLessThan(1e-10);
    expect(r.hvpVsFd).toBeLessThan(1e-6);
    expect(r.hvpFwdVsRev).toBeLessThan(1e-10);
  });
});

/** Primitives whose rules finite differences cannot check; the block below tests them explicitly. */
const CHECKED_BELOW = ['stop_gradient', 'cast', 'channel_moments'] as const;

describe('the table covers the primitive set', () => {
  test('every primitive runs in some row of the table (or is in CHECKED_BELOW)', () => {
    const seen = new Set<string>(CHECKED_BELOW);
    for (const c of CASES)
      withKernelHook(
        (prim, _s, _i, _p, run) => (seen.add(prim), run()),
        () => c.f(c.xs()),
      );
    expect(e.PRIMS.filter((p) => !seen.has(p))).toEqual([]);
  });
});

describe('rules that finite differences cannot see', () => {
  test('stopGradient blocks the derivative: d/dx Σ x·sg(x) = x', () => {
    const x = N(5);
    const g = e.grad((p: Val) => o.sum(o.mul(p, o.stopGradient(p))))(x) as e.Tensor;
    expect(g.toArray()).toEqual(x.toArray());
  });
  test('channelMoments: the mean and biased variance per channel, and no derivative', () => {
    const x = N(3, 2, 4);
    const m = o.channelMoments(x, 1) as e.Tensor;
    expect(m.shape).toEqual([2, 2]);
    const mean = (o.mean(x, [0, 2]) as e.Tensor).toArray();
    const vari = (o.mean(o.square(o.sub(x, o.mean(x, [0, 2], true))), [0, 2]) as e.Tensor).toArray();
    m.toArray().forEach((v, i) => expect(v).toBeCloseTo(i < 2 ? mean[i]! : vari[i - 2]!, 13));
    const g = e.grad((p: Val) => o.sum(o.mul(p, o.sum(o.channelMoments(p, 1)))))(x) as e.Tensor;
    const s = (o.sum(m) as e.Tensor).item();
    g.toArray().forEach((v) => expect(v).toBeCloseTo(s, 13));
  });
  test('BatchNorm primitives refuse a bad axis, eps or operand in one line', () => {
    const x = N(2, 3, 2);
    expect(() => o.bnNormalize(x, 3)).toThrow(/^bn_normalize: axis 3 is not an axis of \[2,3,2\]$/);
    expect(() => o.bnNormalize(x, 1, -1)).toThrow(/eps must be a finite number ≥ 0, got -1/);
    expect(() => o.bnNormalizeJvp(x, N(2, 3))).toThrow(/bn_normalize_jvp: t has shape \[2,3\], x \[2,3,2\]/);
    expect(() => o.channelMoments(x, -1)).toThrow(/channel_moments: axis -1 is not an axis/);
  });
  test('cast: the gradient comes back in the input dtype', () => {
    const x = N(4);
    const g = e.grad((p: Val) => o.sum(o.square(o.cast(p, 'float32'))))(x) as e.Tensor;
    expect(g.dtype).toBe('float64');
    g.toArray().forEach((v, i) => expect(v).toBeCloseTo(2 * Math.fround(x.data[i]!), 6));
  });
  test('max ties: maximum(a, a) splits the derivative, reduce max shares it', () => {
    const a = e.tensor([1, 2, 2], [3]);
    const g = e.grad((p: Val) => o.sum(o.maximum(p, e.tensor([1, 0, 2], [3]))))(a) as e.Tensor;
    expect(g.toArray()).toEqual([0.5, 1, 0.5]);
    const h = e.grad((p: Val) => o.max(p))(a) as e.Tensor;
    expect(h.toArray()).toEqual([0, 0.5, 0.5]);
  });
  test('relu has derivative 0 at 0 (PyTorch convention)', () => {
    const g = e.grad((p: Val) => o.sum(e.relu(p)))(e.tensor([-1, 0, 1], [3])) as e.Tensor;
    expect(g.toArray()).toEqual([0, 0, 1]);
  });
  test('maxPool2d gradient goes to the first maximal element in row-major window order', () => {
    const x = e.tensor([3, 5, 5, 5], [1, 1, 2, 2]);
    const g = e.grad((p: Val) => o.sum(o.maxPool2d(p, 2)))(x) as e.Tensor;
    expect(g.toArray()).toEqual([0, 1, 0, 0]);
  });
});

describe('nesting', () => {
  test('fourth derivative of tanh by nested jvp matches the closed form', () => {
    const x0 = 0.37;
    const d = (f: (x: Val) => Val) => (x: Val) => e.jvp((p: Val) => f(p), x, e.scalar(1))[1];
    const d4 = d(d(d(d((x: Val) => o.tanh(x)))))(e.scalar(x0)) as e.Tensor;
    const t = Math.tanh(x0);
    // d⁴/dx⁴ tanh = −8 t (1 − t²)(2 − 3 t²)... computed as 16t(1−t²)(... ) — use the polynomial in t:
    // tanh' = 1−t², '' = −2t(1−t²), ''' = (1−t²)(6t²−2), '''' = (1−t²)(−24t³+16t)
    expect(d4.item()).toBeCloseTo((1 - t * t) * (-24 * t ** 3 + 16 * t), 12);
  });
  test('grad of grad mixes forward and reverse without perturbation confusion', () => {
    // f(x) = x · d/dy (x y)|_{y=x} = x², derivative 2x — the classic perturbation-confusion example
    const f = (x: Val) => o.mul(x, e.jvp((y: Val) => o.mul(x, y), x, e.onesLike(x))[1]);
    const g = e.grad((x: Val) => o.sum(f(x)))(e.tensor([3], [1])) as e.Tensor;
    expect(g.item()).toBe(6);
  });
  test('a tracer that escapes its transformation is an error', () => {
    let leaked: Val | null = null;
    e.grad((x: Val) => {
      leaked = x;
      return o.sum(x);
    })(e.tensor([1], [1]));
    expect(() => o.add(leaked!, 1)).toThrow(/escaped/);
  });
});

describe('dtypes', () => {
  test('mixing dtypes in a primitive is an error that says to cast', () => {
    expect(() => o.add(e.tensor([1], [1], 'float32'), e.tensor([1], [1], 'float64'))).toThrow(/cast/);
  });
  test('float32 stays float32 through grad and hvp', () => {
    const x = rng.normalTensor([3, 4], 'float32');
    const f = (p: Val) => o.sum(e.mish(p));
    const r = e.hvp(f, x, x);
    expect(r.grad.dtype).toBe('float32');
    expect(r.hvp.dtype).toBe('float32');
  });
});

describe('smooth composites at their branch points', () => {
  // softplus and mish switch formulas at x = 0 (for stability); an analytic function must still
  // get every derivative right there, not only the value. Oracle: central differences of the
  // next-lower derivative, taken at ±h (the branches are exact on each side).
  const d = (f: (x: Val) => Val) => (x: Val) => e.grad((t: Val) => o.sum(f(t)))(x);
  const at = (f: (x: Val) => Val, x: number) => (f(e.tensor([x])) as e.Tensor).data[0]!;
  const cases: [string, (x: Val) => Val][] = [
    ['softplus', e.softplus],
    ['mish', e.mish],
    ['mish (composite form)', e.mishComposite],
    ['mish_grad', o.mishGrad],
    ['silu', e.silu],
    ['sigmoid', e.sigmoid],
    ['gelu', e.gelu],
    ['geluErf', e.geluErf],
    ['bceWithLogits', (z) => e.bceWithLogits(z, e.tensor([0.3]))],
  ];
  for (const [name, f] of cases) {
    test(`${name}: first, second and third derivatives at exactly 0`, () => {
      const h = 1e-4;
      let g = f;
      for (let order = 1; order <= 3; order++) {
        const next = d(g);
        const fd = (at(g, h) - at(g, -h)) / (2 * h);
        expect(Math.abs(at(next, 0) - fd), `${name}^(${order})(0) = ${at(next, 0)}, finite differences ${fd}`).toBeLessThan(1e-6);
        g = next;
      }
    });
  }
});

describe('the mish primitive', () => {
  test('values and derivatives equal the composite x·tanh(softplus(x)) in float64, from −40 to 40', () => {
    const xs = e.tensor(Array.from({ length: 161 }, (_, i) => -40 + i * 0.5 + 0.123));
    const v = (f: (x: Val) => Val) => Array.from((f(xs) as e.Tensor).data);
    const near = (a: number[], b: number[], tol: number, abs = 1e-300) =>
      a.forEach((x, i) => expect(Math.abs(x - b[i]!), `at ${xs.data[i]}`).toBeLessThanOrEqual(tol * Math.max(1e-300, Math.abs(b[i]!)) + abs));
    near(v(e.mish), v(e.mishComposite), 1e-14);
    const g = (f: (x: Val) => Val) => (x: Val) => e.grad((t: Val) => o.sum(f(t)))(x);
    near(v(g(e.mish)), v(g(e.mishComposite)), 1e-12);
    // the second derivative: the primitive mish_grad2 forms 1 − T² without cancellation, the
    // composite's autodiff as 1 − tanh², whose own error in the right tail is about 1e-16·|2 + x(…)|
    near(v(g(g(e.mish))), v(g(g(e.mishComposite))), 1e-10, 1e-14);
  });
});

describe('the erf primitive and exact GELU', () => {
  const vals = (f: (x: Val) => Val, xs: number[], dtype: e.DType = 'float64') => Array.from((f(e.tensor(xs, [xs.length], dtype)) as e.Tensor).data);
  const d = (f: (x: Val) => Val) => (x: Val) => e.grad((t: Val) => o.sum(f(t)))(x);
  const close = (got: number[], want: number[], tol: number) =>
    got.forEach((v, i) => expect(Math.abs(v - want[i]!), `${v} vs ${want[i]}`).toBeLessThanOrEqual(tol));

  test('erf matches known values to 1e-15 in every kernel set (±∞ → ±1, NaN → NaN, −0 → −0)', () => {
    for (const set of KERNEL_SETS)
      e.withKernels(set, () => {
        const v = vals(o.erf, [0, 0.5, 1, -2, Infinity, -Infinity, NaN, -0]);
        close(v.slice(0, 6), [0, 0.5204998778130465, 0.8427007929497149, -0.9953222650189527, 1, -1], 1e-15);
        expect(v[6]).toBeNaN();
        expect(Object.is(v[7], -0)).toBe(true);
      });
  });
  test('float32 erf is the float64 value rounded once', () => {
    const xs = Array.from({ length: 101 }, (_, i) => Math.fround(-5 + i * 0.1 + 0.0123));
    const f64 = vals(o.erf, xs);
    for (const set of KERNEL_SETS) e.withKernels(set, () => expect(vals(o.erf, xs, 'float32')).toEqual(f64.map(Math.fround)));
  });
  test('derivatives of erf to fourth order equal (2/√π)·e^(−x²) times its Hermite polynomials', () => {
    const xs = [-1.7, -0.3, 0, 0.45, 2.2];
    const c = (x: number) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x);
    const d1 = d(o.erf);
    const d2 = d(d1);
    const d3 = d(d2);
    const d4 = d(d3);
    close(vals(d1, xs), xs.map(c), 1e-15);
    close(
      vals(d2, xs),
      xs.map((x) => -2 * x * c(x)),
      1e-14,
    );
    close(
      vals(d3, xs),
      xs.map((x) => (4 * x * x - 2) * c(x)),
      1e-13,
    );
    close(
      vals(d4, xs),
      xs.map((x) => (-8 * x ** 3 + 12 * x) * c(x)),
      1e-13,
    );
  });
  test("geluErf equals PyTorch's nn.GELU() values and its derivative Φ(x) + x·φ(x)", () => {
    close(vals(e.geluErf, [1, -1, 0]), [0.8413447460685429, -0.15865525393145707, 0], 1e-15);
    const phi = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
    // Φ(1) = gelu(1), Φ(−1) = 1 − Φ(1)
    close(vals(d(e.geluErf), [1, -1, 0]), [0.8413447460685429 + phi(1), 0.15865525393145707 - phi(1), 0.5], 1e-15);
  });
  test('gelu and geluTanh are the tanh approximation, within 5e-4 of geluErf', () => {
    expect(e.geluTanh).toBe(e.gelu);
    const xs = Array.from({ length: 201 }, (_, i) => -10 + i * 0.1);
    const exact = vals(e.geluErf, xs);
    const approx = vals(e.gelu, xs);
    close(approx, exact, 5e-4);
    expect(Math.max(...approx.map((a, i) => Math.abs(a - exact[i]!)))).toBeGreaterThan(1e-4); // not the same function
  });
});
