/** Layers, specs and losses: closed-form forwards, derivatives through the engine's checks, BatchNorm semantics. */
import { describe, expect, test } from 'vitest';
import * as e from '../src/engine/index.js';
import type { Val } from '../src/engine/tensor.js';
import { batchNorm2d, conv2d, evalState, linear, trainState } from '../src/nn/layers.js';
import { bce, ce, groupedLoss } from '../src/nn/losses.js';
import { initBuffers, initModel, xresnet } from '../src/nn/models.js';
import { modelFromSpec, xresnetSpec } from '../src/nn/spec.js';

const rng = new e.Rng(3);
const T = (v: number[], s: number[]) => e.tensor(v, s);
const arr = (v: Val) => (v as e.Tensor).toArray();

describe('layers', () => {
  test('linear: y = x Wᵀ + b', () => {
    const p = { 'l.weight': T([1, 2, 3, 4, 5, 6], [2, 3]), 'l.bias': T([10, 20], [2]) };
    expect(arr(linear(p, 'l', T([1, 0, -1], [1, 3])))).toEqual([1 - 3 + 10, 4 - 6 + 20]);
  });
  test('conv2d with bias: a 2×2 kernel on a 3×3 image', () => {
    const p = { 'c.weight': T([1, 0, 0, -1], [1, 1, 2, 2]), 'c.bias': T([0.5], [1]) };
    const y = conv2d(p, 'c', T([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]));
    expect(arr(y)).toEqual([1 - 5 + 0.5, 2 - 6 + 0.5, 4 - 8 + 0.5, 5 - 9 + 0.5]);
  });
  test('BatchNorm2d training: batch statistics, running stats move 10% toward batch mean and unbiased variance', () => {
    const x = rng.normalTensor([4, 2, 3, 3]);
    const p = { 'bn.weight': T([2, 1], [2]), 'bn.bias': T([0, 5], [2]) };
    const bufs = { 'bn.running_mean': T([0, 0], [2]), 'bn.running_var': T([1, 1], [2]), 'bn.num_batches_tracked': e.scalar(0) };
    const st = trainState(bufs);
    const y = batchNorm2d(p, 'bn', x, st) as e.Tensor;
    for (let c = 0; c < 2; c++) {
      const xs: number[] = [];
      const ys: number[] = [];
      for (let n = 0; n < 4; n++)
        for (let i = 0; i < 9; i++) {
          xs.push(x.data[n * 18 + c * 9 + i]!);
          ys.push(y.data[n * 18 + c * 9 + i]!);
        }
      const m = xs.reduce((a, b) => a + b) / 36;
      const vb = xs.reduce((a, b) => a + (b - m) ** 2, 0) / 36;
      const ym = ys.reduce((a, b) => a + b) / 36;
      const yv = ys.reduce((a, b) => a + (b - ym) ** 2, 0) / 36;
      expect(ym).toBeCloseTo([0, 5][c]!, 10);
      expect(yv).toBeCloseTo([4, 1][c]! * (vb / (vb + 1e-5)), 8);
      expect(st.updates['bn.running_mean']!.data[c]).toBeCloseTo(0.1 * m, 12);
      expect(st.updates['bn.running_var']!.data[c]).toBeCloseTo(0.9 + 0.1 * vb * (36 / 35), 12);
    }
    expect(st.updates['bn.num_batches_tracked']!.item()).toBe(1);
  });
  test('BatchNorm2d training (the fused bn_affine) equals channelAffine(bnNormalize(x)), and so do its gradients', () => {
    // an offset mean, as activations have; large enough for the WebAssembly kernels
    const shape = [8, 4, 6, 6];
    for (const dtype of ['float64', 'float32'] as const) {
      const x = rng.normalTensor(shape, dtype, 2);
      for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(3 + x.data[i]!);
      const w = rng.normalTensor([4], dtype);
      const b = rng.normalTensor([4], dtype);
      const r = rng.normalTensor(shape, dtype);
      const bufs = { 'bn.running_mean': T([0, 0, 0, 0], [4]), 'bn.running_var': T([1, 1, 1, 1], [4]), 'bn.num_batches_tracked': e.scalar(0) };
      const fused = ([x, w, b]: Val[]) => batchNorm2d({ 'bn.weight': w!, 'bn.bias': b! }, 'bn', x!, trainState(bufs));
      const plain = ([x, w, b]: Val[]) => e.channelAffine(e.bnNormalize(x!), w!, b!);
      const loss = (f: (a: Val[]) => Val) => (a: Val[]) => e.sum(e.mul(e.tanh(f(a)), r));
      const tol = dtype === 'float64' ? 1e-13 : 3e-6;
      const near = (got: Val, want: Val, what: string) => {
        const g = (got as e.Tensor).data,
          h = (want as e.Tensor).data;
        const scale = Math.max(...Array.from(h, Math.abs));
        let err = 0;
        for (let i = 0; i < h.length; i++) err = Math.max(err, Math.abs(g[i]! - h[i]!));
        expect(err / scale, `${dtype} ${what}`).toBeLessThan(tol);
      };
      near(fused([x, w, b]), plain([x, w, b]), 'output');
      const gf = e.grad(loss(fused))([x, w, b]);
      const gp = e.grad(loss(plain))([x, w, b]);
      ['x', 'w', 'b'].forEach((n, i) => near(gf[i]!, gp[i]!, `gradient of ${n}`));
    }
  });
  test('BatchNorm2d eval: normalises by the running statistics and records nothing', () => {
    const p = { 'bn.weight': T([3], [1]), 'bn.bias': T([1], [1]) };
    const st = evalState({ 'bn.running_mean': T([2], [1]), 'bn.running_var': T([4], [1]), 'bn.num_batches_tracked': e.scalar(7) });
    const y = batchNorm2d(p, 'bn', T([2, 4, 6, 0], [1, 1, 2, 2]), st);
    const s = Math.sqrt(4 + 1e-5);
    arr(y).forEach((v, i) => expect(v).toBeCloseTo((3 * ([2, 4, 6, 0][i]! - 2)) / s + 1, 12));
    expect(Object.keys(st.updates)).toHaveLength(0);
  });
  test('BatchNorm2d derivatives (train and eval) pass the finite-difference, adjoint and second-order checks', () => {
    const bufs = { 'bn.running_mean': T([0.1, -0.2], [2]), 'bn.running_var': T([1.5, 0.7], [2]), 'bn.num_batches_tracked': e.scalar(0) };
    for (const mode of [trainState, evalState]) {
      const r = e.checkGrads(
        ([x, w, b]) => e.tanh(batchNorm2d({ 'bn.weight': w!, 'bn.bias': b! }, 'bn', x!, mode(bufs))),
        [rng.normalTensor([3, 2, 2, 2]), rng.normalTensor([2]), rng.normalTensor([2])],
      );
      expect(r.jvpVsFd).toBeLessThan(1e-6);
      expect(r.adjoint).toBeLessThan(1e-10);
      expect(r.hvpVsFd).toBeLessThan(1e-6);
      expect(r.hvpFwdVsRev).toBeLessThan(1e-10);
    }
  });
});

describe('model specs', () => {
  test('a residual spec: names, shapes and the forward pass', () => {
    const m = modelFromSpec({
      input: [2, 4, 4],
      layers: [
        { type: 'conv2d', out: 3, kernel: 3, padding: 1 },
        { type: 'batchnorm2d' },
        { type: 'residual', body: [{ type: 'conv2d', out: 3, kernel: 3, padding: 1 }, { type: 'silu' }], activation: 'relu' },
        { type: 'avgpool2d', kernel: 2 },
        { type: 'flatten' },
        { type: 'linear', out: 5 },
      ],
    });
    expect(Object.keys(m.paramShapes)).toEqual([
      '0.weight',
      '0.bias',
      '1.weight',
      '1.bias',
      '2.body.0.weight',
      '2.body.0.bias',
      '5.weight',
      '5.bias',
    ]);
    expect(m.paramShapes['5.weight']).toEqual([5, 12]);
    expect(Object.keys(m.bufferShapes)).toEqual(['1.running_mean', '1.running_var', '1.num_batches_tracked']);
    expect(m.numOutputs).toBe(5);
    const y = m.apply(initModel(m, 1, 'float64'), rng.normalTensor([2, 2, 4, 4]), evalState(initBuffers(m)));
    expect(y.shape).toEqual([2, 5]);
  });
  test("activations 'gelu' and 'gelu_tanh' are the tanh approximation, 'gelu_erf' the exact GELU", () => {
    const x = e.tensor([-3, -1, -0.25, 0, 0.5, 1, 2.5], [1, 7]);
    const run = (type: string) => {
      const m = modelFromSpec({ input: [7], layers: [{ type }] });
      return Array.from((m.apply(initModel(m, 1, 'float64'), x, evalState(initBuffers(m))) as e.Tensor).data);
    };
    const want = (f: (v: Val) => Val) => Array.from((f(x) as e.Tensor).data);
    expect(run('gelu')).toEqual(want(e.gelu));
    expect(run('gelu_tanh')).toEqual(want(e.gelu));
    expect(run('gelu_erf')).toEqual(want(e.geluErf));
    expect(run('gelu_erf')[5]).toBeCloseTo(0.8413447460685429, 15); // torch.nn.GELU()(1.)
    expect(run('gelu_erf')).not.toEqual(run('gelu'));
  });
  test('bad specs give one-line errors naming the layer', () => {
    expect(() => modelFromSpec({ input: [1, 4, 4], layers: [{ type: 'linear', out: 3 }] })).toThrow(/layer 0 \(linear\): needs a flat input/);
    expect(() => modelFromSpec({ input: [1, 4, 4], layers: [{ type: 'conv2d', out: 3, kernel: 9 }] })).toThrow(/kernel does not fit/);
    expect(() => modelFromSpec({ input: [1, 4, 4], layers: [{ type: 'softmaxx' }] })).toThrow(
      /model spec: layers\[0\]\.type: Invalid discriminator value/,
    );
    expect(() => modelFromSpec({ input: [3], layers: [{ type: 'residual', body: [{ type: 'linear', out: 4 }] }] })).toThrow(/shortcut/);
  });
  test('xresnet has 0.5–2 M parameters and is configurable', () => {
    const count = (m: typeof xresnet) => Object.values(m.paramShapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    expect(count(xresnet)).toBeGreaterThan(5e5);
    expect(count(xresnet)).toBeLessThan(2e6);
    const small = modelFromSpec(xresnetSpec({ input: [3, 32, 32], widths: [8, 16], depths: [1, 2], stem: [8, 8, 8], outputs: 6 }));
    expect(small.numOutputs).toBe(6);
    expect(count(small)).toBeLessThan(count(xresnet) / 10);
  });
});

describe('losses', () => {
  const z = rng.normalTensor([3, 4]);
  const t = T([0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1], [3, 4]);
  test('grouped equals ce when the only group is every output', () => {
    const g = groupedLoss([{ name: 'all', members: [0, 1, 2, 3], allowNone: false }], 4);
    arr(g.perExample(z, t)).forEach((v, i) => expect(v).toBeCloseTo(arr(ce.perExample(z, t))[i]!, 12));
    arr(g.probabilities(z)).forEach((v, i) => expect(v).toBeCloseTo(arr(ce.probabilities(z))[i]!, 12));
  });
  test('grouped: a softmax over the group with a "none" option, sigmoids for the other outputs', () => {
    const g = groupedLoss([{ name: 'hair', members: [0, 1], allowNone: true }], 4);
    const p = arr(g.probabilities(z));
    // outputs 0,1: a softmax over (z0, z1, 0); outputs 2,3: sigmoids
    const row = arr(z).slice(0, 4);
    const den = Math.exp(row[0]!) + Math.exp(row[1]!) + 1;
    expect(p[0]).toBeCloseTo(Math.exp(row[0]!) / den, 12);
    expect(p[2]).toBeCloseTo(1 / (1 + Math.exp(-row[2]!)), 12);
    // example 2 has neither 0 nor 1: its group target is "none"
    const l = arr(g.perExample(z, t));
    const r2 = arr(z).slice(8, 12);
    const none = -Math.log(1 / (Math.exp(r2[0]!) + Math.exp(r2[1]!) + 1));
    const sig = (v: number, y: number) => Math.log1p(Math.exp(v)) - y * v;
    expect(l[2]).toBeCloseTo(none + sig(r2[2]!, 0) + sig(r2[3]!, 1), 10);
    expect(arr(bce.perExample(z, t))[2]).not.toBeCloseTo(l[2]!, 3);
  });
  test('grouped loss derivatives pass the checks', () => {
    const g = groupedLoss([{ name: 'a', members: [1, 3], allowNone: true }], 4);
    const r = e.checkGrads(([zz]) => g.perExample(zz!, t), [rng.normalTensor([3, 4])]);
    expect(r.jvpVsFd).toBeLessThan(1e-6);
    expect(r.hvpVsFd).toBeLessThan(1e-6);
  });
  test('grouped rejects overlapping or out-of-range groups', () => {
    expect(() =>
      groupedLoss(
        [
          { name: 'a', members: [0, 1], allowNone: false },
          { name: 'b', members: [1, 2], allowNone: false },
        ],
        4,
      ),
    ).toThrow(/more than one group/);
    expect(() => groupedLoss([{ name: 'a', members: [0, 7], allowNone: false }], 4)).toThrow(/output 7/);
  });
});
