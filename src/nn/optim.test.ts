import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Params } from '../engine/tree.js';
import type { DType } from '../engine/dtype.js';
import { Tensor, tensor, zeros } from '../engine/tensor.js';
import { setThreads, withKernels } from '../engine/kernels/index.js';
import { wasmTuning } from '../engine/kernels/wasm.js';
import { parseSafetensors, serializeSafetensors } from '../data/safetensors.js';
import { UserError } from '../errors.js';
import {
  initOptimizerState,
  optimizerConfigSchema,
  optimizerStep,
  parseOptimizerConfig,
  resolveOptimizerConfig,
  stateFromTensors,
  stateToTensors,
  type OptimizerConfig,
  type OptimizerState,
} from './optim.js';

type Vec = Params<Tensor>;

// ---------------------------------------------------------------------------------------------
// Helpers

const vec1 = (values: number[], dtype: DType = 'float64'): Vec => ({ w: tensor(values, [values.length], dtype) });

/** Run `grads.length` steps from a fresh state; returns the parameters after each step. */
function trajectory(cfg: OptimizerConfig, params: Vec, grads: Vec[]): { after: Vec[]; state: OptimizerState } {
  let p = params;
  let s = initOptimizerState(cfg, params);
  const after: Vec[] = [];
  for (const g of grads) {
    ({ params: p, state: s } = optimizerStep(cfg, p, g, s));
    after.push(p);
  }
  return { after, state: s };
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d === 0) continue;
    worst = Math.max(worst, d / Math.abs(b[i]!));
  }
  return worst;
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[], rel = 1e-14): void {
  expect(relErr(actual, expected)).toBeLessThanOrEqual(rel);
}

function bitsEqual(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) return false;
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return x.every((v, i) => v === y[i]);
}

function expectVecBitsEqual(a: Record<string, Tensor>, b: Record<string, Tensor>): void {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const k of Object.keys(a)) expect(bitsEqual(a[k]!, b[k]!), k).toBe(true);
}

function castVec(v: Record<string, Tensor>, dtype: DType): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(v).map(([k, t]) => [k, tensor(t.data, t.shape, dtype)]));
}

function castState(s: OptimizerState, dtype: DType): OptimizerState {
  return { step: s.step, buffers: castVec(s.buffers, dtype) };
}

function userErrorOf(f: () => unknown): UserError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).not.toContain('\n');
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

// Three small steps on a 3-element parameter, used by the hand-computed tests.
const P0 = [1, -2, 0.5];
const G = [
  [0.5, -1, 2],
  [1, 1, -1],
  [-0.5, 0, 0.25],
];
const grads3 = G.map((g) => vec1(g));

// ---------------------------------------------------------------------------------------------

describe('optimizers: first steps by hand', () => {
  it('sgd: p ← p − lr·g', () => {
    const { after } = trajectory({ name: 'sgd', lr: 0.1 }, vec1(P0), grads3);
    expectClose(after[0]!.w!.data, [0.95, -1.9, 0.3]);
    expectClose(after[1]!.w!.data, [0.85, -2.0, 0.4]);
    expectClose(after[2]!.w!.data, [0.9, -2.0, 0.375]);
  });

  it('sgd with weight decay adds wd·p to the gradient', () => {
    const { after } = trajectory({ name: 'sgd', lr: 0.1, weightDecay: 0.1 }, vec1(P0), grads3);
    // step 1: g + 0.1·p = [0.6, -1.2, 2.05]
    expectClose(after[0]!.w!.data, [0.94, -1.88, 0.295]);
    // step 2: g + 0.1·p = [1.094, 0.812, -0.9705]
    expectClose(after[1]!.w!.data, [0.8306, -1.9612, 0.39205]);
    // step 3: g + 0.1·p = [-0.41694, -0.19612, 0.289205]
    expectClose(after[2]!.w!.data, [0.872294, -1.941588, 0.3631295]);
  });

  it('momentum: the buffer starts at the first gradient, then μ·b + g', () => {
    const { after, state } = trajectory({ name: 'momentum', lr: 0.1 }, vec1(P0), grads3); // μ defaults to 0.9
    // b1 = g1 = [0.5,-1,2]; b2 = [1.45,0.1,0.8]; b3 = [0.805,0.09,0.97]
    expectClose(after[0]!.w!.data, [0.95, -1.9, 0.3]);
    expectClose(after[1]!.w!.data, [0.805, -1.91, 0.22]);
    expectClose(after[2]!.w!.data, [0.7245, -1.919, 0.123]);
    expectClose(state.buffers['momentum_buffer.w']!.data, [0.805, 0.09, 0.97]);
    expect(state.step).toBe(3);
  });

  it('momentum with dampening: the first buffer is the undamped gradient', () => {
    const { after, state } = trajectory({ name: 'momentum', lr: 0.1, momentum: 0.5, dampening: 0.5 }, vec1(P0), grads3);
    // b1 = g1; b2 = 0.5·b1 + 0.5·g2 = [0.75, 0, 0.5]; b3 = [0.125, 0, 0.375]
    expectClose(after[0]!.w!.data, [0.95, -1.9, 0.3]);
    expectClose(after[1]!.w!.data, [0.875, -1.9, 0.25]);
    expectClose(after[2]!.w!.data, [0.8625, -1.9, 0.2125]);
    expectClose(state.buffers['momentum_buffer.w']!.data, [0.125, 0, 0.375]);
  });

  it('nesterov: p ← p − lr·(g + μ·b)', () => {
    const { after } = trajectory({ name: 'momentum', lr: 0.1, momentum: 0.9, nesterov: true }, vec1(P0), grads3);
    expectClose(after[0]!.w!.data, [0.905, -1.81, 0.12]);
    expectClose(after[1]!.w!.data, [0.6745, -1.919, 0.148]);
    expectClose(after[2]!.w!.data, [0.65205, -1.9271, 0.0357]);
  });

  it('nesterov with weight decay: the decayed gradient feeds both the buffer and the step', () => {
    const lr = 0.1;
    const mu = 0.9;
    const wd = 0.1;
    const { after, state } = trajectory({ name: 'momentum', lr, momentum: mu, nesterov: true, weightDecay: wd }, vec1(P0), grads3);
    // By hand, element by element.
    const p = [...P0];
    const b = [0, 0, 0];
    for (let k = 0; k < 3; k++) {
      for (let i = 0; i < 3; i++) {
        const g = G[k]![i]! + wd * p[i]!;
        b[i] = k === 0 ? g : mu * b[i]! + g;
        p[i] = p[i]! - lr * (g + mu * b[i]!);
      }
      expectClose(after[k]!.w!.data, p, 1e-15);
    }
    expectClose(state.buffers['momentum_buffer.w']!.data, b, 1e-15);
    // step 1 in numbers: g = [0.6,-1.2,2.05], update 1.9·g
    expectClose(after[0]!.w!.data, [1 - 0.114, -2 + 0.228, 0.5 - 0.3895]);
  });

  /** Adam in the textbook form: m̂ = m/(1−β1^t), v̂ = v/(1−β2^t), p ← p − lr·m̂/(√v̂ + eps·...). */
  function adamByHand(o: { lr: number; b1: number; b2: number; eps: number; wd: number; decoupled: boolean }): number[][] {
    const p = [...P0];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    const out: number[][] = [];
    for (let k = 0; k < 3; k++) {
      const t = k + 1;
      for (let i = 0; i < 3; i++) {
        let g = G[k]![i]!;
        if (o.decoupled) p[i] = p[i]! - o.lr * o.wd * p[i]!;
        else g += o.wd * p[i]!;
        m[i] = o.b1 * m[i]! + (1 - o.b1) * g;
        v[i] = o.b2 * v[i]! + (1 - o.b2) * g * g;
        const mHat = m[i]! / (1 - o.b1 ** t);
        const vHat = v[i]! / (1 - o.b2 ** t);
        // PyTorch adds eps to √v/√(1−β2^t), i.e. to √v̂.
        p[i] = p[i]! - (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
      }
      out.push([...p]);
    }
    return out;
  }

  it('adam: the first step moves each parameter by lr·g/(|g| + eps)', () => {
    const { after } = trajectory({ name: 'adam', lr: 0.1 }, vec1(P0), grads3);
    expectClose(after[0]!.w!.data, [1 - (0.1 * 0.5) / (0.5 + 1e-8), -2 + (0.1 * 1) / (1 + 1e-8), 0.5 - (0.1 * 2) / (2 + 1e-8)]);
    const hand = adamByHand({ lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0, decoupled: false });
    for (let k = 0; k < 3; k++) expectClose(after[k]!.w!.data, hand[k]!, 1e-13);
  });

  it('adam with the seed study betas (0.8, 0.999), lr 5e-3', () => {
    const { after } = trajectory({ name: 'adam', lr: 5e-3, betas: [0.8, 0.999] }, vec1(P0), grads3);
    const hand = adamByHand({ lr: 5e-3, b1: 0.8, b2: 0.999, eps: 1e-8, wd: 0, decoupled: false });
    for (let k = 0; k < 3; k++) expectClose(after[k]!.w!.data, hand[k]!, 1e-13);
  });

  it('adam weight decay is L2 (added to the gradient)', () => {
    const cfg: OptimizerConfig = { name: 'adam', lr: 0.01, weightDecay: 0.2, eps: 1e-6 };
    const { after } = trajectory(cfg, vec1(P0), grads3);
    const hand = adamByHand({ lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-6, wd: 0.2, decoupled: false });
    for (let k = 0; k < 3; k++) expectClose(after[k]!.w!.data, hand[k]!, 1e-13);
  });

  it('adamw decays decoupled (p ← p·(1 − lr·wd)) before the adam update; default wd 0.01', () => {
    const { after } = trajectory({ name: 'adamw', lr: 0.1 }, vec1(P0), grads3);
    const hand = adamByHand({ lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01, decoupled: true });
    for (let k = 0; k < 3; k++) expectClose(after[k]!.w!.data, hand[k]!, 1e-13);
    // step 1 in numbers
    expectClose(after[0]!.w!.data, [0.999 - 0.05 / (0.5 + 1e-8), -1.998 + 0.1 / (1 + 1e-8), 0.4995 - 0.2 / (2 + 1e-8)]);
    // ... and it is not adam with L2 decay
    const l2 = trajectory({ name: 'adam', lr: 0.1, weightDecay: 0.01 }, vec1(P0), grads3).after;
    expect(relErr(l2[2]!.w!.data, after[2]!.w!.data)).toBeGreaterThan(1e-6);
  });

  it('adam leaves a parameter with zero gradient alone; adamw only shrinks it', () => {
    const zero = [vec1([0, 0, 0]), vec1([0, 0, 0])];
    const a = trajectory({ name: 'adam', lr: 0.1 }, vec1(P0), zero).after;
    expect(Array.from(a[1]!.w!.data)).toEqual(P0);
    const w = trajectory({ name: 'adamw', lr: 0.1, weightDecay: 0.5 }, vec1(P0), zero).after;
    expectClose(
      w[0]!.w!.data,
      P0.map((x) => x * 0.95),
      0,
    );
    expectClose(
      w[1]!.w!.data,
      P0.map((x) => x * 0.95 * 0.95),
      0,
    );
  });
});

// ---------------------------------------------------------------------------------------------

interface FixtureTensor {
  shape: number[];
  values: number[];
}
interface FixtureCase {
  name: string;
  config: OptimizerConfig;
  params: Record<string, FixtureTensor>;
  grads: Record<string, FixtureTensor>[];
  after: Record<string, number[]>[];
  finalState: Record<string, number[]>;
  finalStep: number;
}
const fixture = JSON.parse(readFileSync(new URL('../../test/fixtures/optim.json', import.meta.url), 'utf8')) as {
  torch: string;
  steps: number;
  cases: FixtureCase[];
};

const toVec = (d: Record<string, FixtureTensor>, dtype: DType = 'float64'): Vec =>
  Object.fromEntries(Object.entries(d).map(([k, t]) => [k, tensor(t.values, t.shape, dtype)]));

describe(`optimizers agree with PyTorch ${fixture.torch} (float64, test/fixtures/optim.json)`, () => {
  it('covers every optimizer', () => {
    expect(new Set(fixture.cases.map((c) => c.config.name))).toEqual(new Set(['sgd', 'momentum', 'adam', 'adamw']));
    expect(fixture.cases.length).toBeGreaterThanOrEqual(6);
  });

  for (const c of fixture.cases) {
    it(`${c.name}: ${fixture.steps} steps to 1e-12 relative`, () => {
      const cfg = parseOptimizerConfig(c.config);
      const { after, state } = trajectory(
        cfg,
        toVec(c.params),
        c.grads.map((g) => toVec(g)),
      );
      let worst = 0;
      for (let k = 0; k < c.after.length; k++) {
        for (const [name, want] of Object.entries(c.after[k]!)) {
          const e = relErr(after[k]![name]!.data, want);
          worst = Math.max(worst, e);
          expect(e, `${name} after step ${k + 1}`).toBeLessThanOrEqual(1e-12);
        }
      }
      expect(state.step).toBe(c.finalStep);
      expect(Object.keys(state.buffers).sort()).toEqual(Object.keys(c.finalState).sort());
      for (const [name, want] of Object.entries(c.finalState)) {
        expect(relErr(state.buffers[name]!.data, want), name).toBeLessThanOrEqual(1e-12);
      }
      expect(worst).toBeLessThanOrEqual(1e-12);
    });
  }
});

// ---------------------------------------------------------------------------------------------

const ALL_CONFIGS: OptimizerConfig[] = [
  { name: 'sgd', lr: 0.1, weightDecay: 0.01 },
  { name: 'momentum', lr: 0.05, dampening: 0.1 },
  { name: 'momentum', lr: 0.05, nesterov: true, weightDecay: 0.01 },
  { name: 'adam', lr: 5e-3, betas: [0.8, 0.999] },
  { name: 'adam', lr: 1e-2, weightDecay: 0.1 },
  { name: 'adamw', lr: 1e-2 },
];
const base = fixture.cases[0]!;

describe('optimizer state checkpoints', () => {
  for (const cfg of ALL_CONFIGS) {
    for (const dtype of ['float64', 'float32'] as const) {
      it(`${JSON.stringify(cfg)} ${dtype}: exact round trip through tensors and safetensors; resuming = continuing`, () => {
        const params = toVec(base.params, dtype);
        const grads = base.grads.map((g) => toVec(g, dtype));
        let p = params;
        let s = initOptimizerState(cfg, params);
        for (let k = 0; k < 3; k++) ({ params: p, state: s } = optimizerStep(cfg, p, grads[k]!, s));

        const flat = stateToTensors(s);
        expect(flat['step']!.dtype).toBe('float64');
        expect(flat['step']!.item()).toBe(3);
        const back = stateFromTensors(flat, cfg, p);
        expect(back.step).toBe(3);
        expectVecBitsEqual(back.buffers, s.buffers);

        const bytes = serializeSafetensors(flat);
        const file = parseSafetensors(bytes, 'opt.safetensors');
        const loaded = stateFromTensors(file.tensors, cfg, p, 'opt.safetensors');
        expect(loaded.step).toBe(3);
        expectVecBitsEqual(loaded.buffers, s.buffers);
        for (const t of Object.values(loaded.buffers)) expect(t.dtype).toBe(dtype);

        let pa = p;
        let sa = s;
        let pb = p;
        let sb = loaded;
        for (let k = 3; k < 5; k++) {
          ({ params: pa, state: sa } = optimizerStep(cfg, pa, grads[k]!, sa));
          ({ params: pb, state: sb } = optimizerStep(cfg, pb, grads[k]!, sb));
        }
        expectVecBitsEqual(pa, pb);
        expectVecBitsEqual(sa.buffers, sb.buffers);
        expect(sb.step).toBe(5);
      });
    }
  }

  it('the state of a fresh optimizer has the right buffers, zeroed, and step 0', () => {
    const params = toVec(base.params);
    expect(Object.keys(initOptimizerState({ name: 'sgd', lr: 1 }, params).buffers)).toEqual([]);
    expect(Object.keys(initOptimizerState({ name: 'momentum', lr: 1 }, params).buffers)).toEqual([
      'momentum_buffer.layer.weight',
      'momentum_buffer.layer.bias',
    ]);
    const s = initOptimizerState({ name: 'adamw', lr: 1 }, params);
    expect(s.step).toBe(0);
    expect(Object.keys(s.buffers)).toEqual(['exp_avg.layer.weight', 'exp_avg_sq.layer.weight', 'exp_avg.layer.bias', 'exp_avg_sq.layer.bias']);
    for (const t of Object.values(s.buffers)) expect(t.toArray().every((x) => x === 0)).toBe(true);
    expect(Object.keys(stateToTensors(initOptimizerState({ name: 'sgd', lr: 1 }, params)))).toEqual(['step']);
    // A float32 [1] step (PyTorch's own layout) is accepted too.
    const st = stateFromTensors({ step: tensor([7], [1], 'float32') }, { name: 'sgd', lr: 1 }, params);
    expect(st.step).toBe(7);
  });

  describe('stateFromTensors rejects bad checkpoints with one-line errors', () => {
    const cfg: OptimizerConfig = { name: 'adam', lr: 1e-3 };
    const params = toVec(base.params);
    const good = stateToTensors(optimizerStep(cfg, params, toVec(base.grads[0]!), initOptimizerState(cfg, params)).state);
    const without = (k: string): Record<string, Tensor> => Object.fromEntries(Object.entries(good).filter(([n]) => n !== k));
    const cases: [string, Record<string, Tensor>, RegExp][] = [
      ['no step', without('step'), /ckpt: no "step" tensor/],
      ['step shape', { ...good, step: tensor([1, 2], [2]) }, /"step" has shape \[2\], expected \[\] or \[1\]/],
      ['negative step', { ...good, step: tensor([-1], []) }, /"step" is -1, expected a non-negative integer/],
      ['fractional step', { ...good, step: tensor([1.5], []) }, /"step" is 1\.5/],
      [
        'missing buffer',
        without('exp_avg_sq.layer.bias'),
        /exp_avg_sq\.layer\.bias is missing \(adam needs it for parameter layer\.bias, shape \[3\]\)/,
      ],
      [
        'wrong shape',
        { ...good, 'exp_avg.layer.weight': tensor([1, 2, 3, 4, 5, 6], [3, 2]) },
        /exp_avg\.layer\.weight has shape \[3,2\], parameter layer\.weight has \[2,3\]/,
      ],
      [
        'wrong dtype',
        { ...good, 'exp_avg.layer.bias': tensor([1, 2, 3], [3], 'float32') },
        /exp_avg\.layer\.bias is float32, parameter layer\.bias is float64/,
      ],
      [
        'extra tensor',
        { ...good, 'momentum_buffer.layer.bias': tensor([1, 2, 3]) },
        /momentum_buffer\.layer\.bias \(shape \[3\]\) is unexpected: not a adam buffer/,
      ],
      ['non-finite', { ...good, 'exp_avg.layer.bias': tensor([1, NaN, 3]) }, /exp_avg\.layer\.bias has a non-finite value NaN at flat index 1/],
      [
        'negative exp_avg_sq',
        { ...good, 'exp_avg_sq.layer.bias': tensor([1, -2, 3]) },
        /exp_avg_sq\.layer\.bias has an invalid \(non-finite or negative\) value -2/,
      ],
      ['two problems', { ...without('exp_avg.layer.bias'), extra: tensor([1]) }, /exp_avg\.layer\.bias is missing .* \(and 1 more problem\)$/],
    ];
    for (const [what, tensors, re] of cases) {
      it(what, () => {
        expect(userErrorOf(() => stateFromTensors(tensors, cfg, params, 'ckpt')).message).toMatch(re);
      });
    }
    it('a state for another optimizer', () => {
      const msg = userErrorOf(() => stateFromTensors(good, { name: 'momentum', lr: 0.1 }, params, 'ckpt')).message;
      expect(msg).toMatch(/^ckpt: momentum_buffer\.layer\.weight is missing .*\(and 5 more problems\)$/);
      const sgd = userErrorOf(() => stateFromTensors(good, { name: 'sgd', lr: 0.1 }, params, 'ckpt')).message;
      expect(sgd).toMatch(/is unexpected: sgd keeps no buffers \(and 3 more problems\)$/);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('dtypes and purity', () => {
  for (const cfg of ALL_CONFIGS) {
    it(`${JSON.stringify(cfg)}: float32 stays float32, each element rounded once from a double computation`, () => {
      const p32 = toVec(base.params, 'float32');
      let p = p32;
      let s = initOptimizerState(cfg, p32);
      for (let k = 0; k < 4; k++) {
        const g = toVec(base.grads[k]!, 'float32');
        const next = optimizerStep(cfg, p, g, s);
        for (const t of [...Object.values(next.params), ...Object.values(next.state.buffers)]) {
          expect(t.dtype).toBe('float32');
          expect(t.data).toBeInstanceOf(Float32Array);
        }
        // The same step in float64 from the same (float32) values, rounded to float32 at the end.
        const ref = optimizerStep(cfg, castVec(p, 'float64'), castVec(g, 'float64'), castState(s, 'float64'));
        expectVecBitsEqual(next.params, castVec(ref.params, 'float32'));
        expectVecBitsEqual(next.state.buffers, castVec(ref.state.buffers, 'float32'));
        ({ params: p, state: s } = next);
      }
      // ... and the float32 trajectory stays close to the float64 one.
      const t64 = trajectory(
        cfg,
        toVec(base.params),
        base.grads.slice(0, 4).map((g) => toVec(g)),
      ).after[3]!;
      for (const k of Object.keys(t64)) expect(relErr(p[k]!.data, t64[k]!.data)).toBeLessThan(1e-5);
    });

    it(`${JSON.stringify(cfg)}: never mutates its inputs, and the outputs alias none of them`, () => {
      const params = toVec(base.params);
      const grads = base.grads.map((g) => toVec(g));
      let p = params;
      let s = initOptimizerState(cfg, params);
      for (let k = 0; k < 3; k++) {
        const snap = {
          p: castVec(p, 'float64'),
          g: castVec(grads[k]!, 'float64'),
          b: castVec(s.buffers, 'float64'),
          step: s.step,
        };
        const next = optimizerStep(cfg, p, grads[k]!, s);
        expectVecBitsEqual(p, snap.p);
        expectVecBitsEqual(grads[k]!, snap.g);
        expectVecBitsEqual(s.buffers, snap.b);
        expect(s.step).toBe(snap.step);
        const inputs = new Set([...Object.values(p), ...Object.values(grads[k]!), ...Object.values(s.buffers)].map((t) => t.data.buffer));
        for (const t of [...Object.values(next.params), ...Object.values(next.state.buffers)]) {
          expect(inputs.has(t.data.buffer)).toBe(false);
        }
        ({ params: p, state: s } = next);
      }
    });
  }

  it('rejects gradients that do not match the parameters, and a state of another optimizer', () => {
    const params = vec1(P0);
    const s = initOptimizerState({ name: 'adam', lr: 0.1 }, params);
    const step =
      (g: Vec, st: OptimizerState = s, cfg: OptimizerConfig = { name: 'adam', lr: 0.1 }) =>
      () =>
        optimizerStep(cfg, params, g, st);
    expect(step({})).toThrow(/no gradient for parameter w/);
    expect(step({ ...vec1([1, 2, 3]), v: tensor([1]) })).toThrow(/gradient v has no parameter/);
    expect(step({ w: tensor([1, 2]) })).toThrow(/gradient w is float64 \[2\], parameter is float64 \[3\]/);
    expect(step({ w: tensor([1, 2, 3], [3], 'float32') })).toThrow(/gradient w is float32 \[3\], parameter is float64 \[3\]/);
    expect(step(vec1([1, 2, 3]), s, { name: 'momentum', lr: 0.1 })).toThrow(/no buffer momentum_buffer\.w/);
    expect(step(vec1([1, 2, 3]), { step: -1, buffers: s.buffers })).toThrow(/non-negative integer/);
    expect(() => optimizerStep({ name: 'adam', lr: -1 }, params, vec1([1, 2, 3]), s)).toThrow(UserError);
  });
});

// ---------------------------------------------------------------------------------------------

describe('optimizer config', () => {
  it('accepts valid configs and fills in PyTorch defaults', () => {
    expect(resolveOptimizerConfig({ name: 'momentum', lr: 0.1 })).toMatchObject({ momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 });
    expect(resolveOptimizerConfig({ name: 'adam', lr: 1e-3 })).toMatchObject({ betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    expect(resolveOptimizerConfig({ name: 'adamw', lr: 1e-3 })).toMatchObject({ betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
    expect(resolveOptimizerConfig({ name: 'adamw', lr: 1e-3, weightDecay: 0 }).weightDecay).toBe(0);
    expect(resolveOptimizerConfig({ name: 'sgd', lr: 1e-3 }).momentum).toBe(0);
    for (const c of ALL_CONFIGS) expect(optimizerConfigSchema.safeParse(c).success).toBe(true);
    expect(parseOptimizerConfig({ name: 'adam', lr: 1e-3, amsgrad: false })).toEqual({ name: 'adam', lr: 1e-3, amsgrad: false });
    expect(parseOptimizerConfig({ name: 'momentum', lr: 1, nesterov: true, dampening: 0 }).nesterov).toBe(true);
  });

  const bad: [string, unknown, RegExp][] = [
    ['not an object', 3, /optimizer config must be an object like \{"name": "adam", "lr": 0\.001\} \(got 3\)/],
    ['unknown name', { name: 'rmsprop', lr: 1 }, /name must be one of sgd, momentum, adam, adamw \(got "rmsprop"\)/],
    ['missing lr', { name: 'sgd' }, /lr must be a finite number > 0 \(got undefined\)/],
    ['lr 0', { name: 'sgd', lr: 0 }, /lr must be a finite number > 0 \(got 0\)/],
    ['negative lr', { name: 'adam', lr: -1e-3 }, /lr must be a finite number > 0 \(got -0\.001\)/],
    ['NaN lr', { name: 'adam', lr: NaN }, /lr must be a finite number > 0 \(got NaN\)/],
    ['infinite lr', { name: 'adam', lr: Infinity }, /lr must be a finite number > 0 \(got Infinity\)/],
    ['string lr', { name: 'adam', lr: '0.1' }, /lr must be a finite number > 0 \(got "0\.1"\)/],
    ['beta1 = 1', { name: 'adam', lr: 1, betas: [1, 0.999] }, /betas\[0\] must be in \[0, 1\) \(got 1\)/],
    ['negative beta2', { name: 'adam', lr: 1, betas: [0.9, -0.1] }, /betas\[1\] must be in \[0, 1\) \(got -0\.1\)/],
    ['one beta', { name: 'adam', lr: 1, betas: [0.9] }, /betas must be a pair \[beta1, beta2\] of numbers in \[0, 1\) \(got \[0\.9\]\)/],
    ['negative eps', { name: 'adam', lr: 1, eps: -1e-8 }, /eps must be a finite number >= 0 \(got -1e-8\)/],
    ['negative weight decay', { name: 'adamw', lr: 1, weightDecay: -0.1 }, /weightDecay must be a finite number >= 0 \(got -0\.1\)/],
    ['momentum ≥ 1', { name: 'momentum', lr: 1, momentum: 1 }, /momentum must be in \(0, 1\) \(got 1\)/],
    ['momentum 0', { name: 'momentum', lr: 1, momentum: 0 }, /momentum must be in \(0, 1\) \(got 0\)/],
    ['dampening > 1', { name: 'momentum', lr: 1, dampening: 2 }, /dampening must be in \[0, 1\] \(got 2\)/],
    ['nesterov with dampening', { name: 'momentum', lr: 1, nesterov: true, dampening: 0.1 }, /nesterov momentum requires dampening 0 \(got 0\.1\)/],
    [
      'momentum on sgd',
      { name: 'sgd', lr: 1, momentum: 0.9 },
      /momentum applies only to momentum, not to sgd \(use name "momentum" for SGD with momentum\)/,
    ],
    ['betas on momentum', { name: 'momentum', lr: 1, betas: [0.9, 0.99] }, /betas applies only to adam and adamw, not to momentum/],
    ['nesterov on adam', { name: 'adam', lr: 1, nesterov: true }, /nesterov applies only to momentum, not to adam$/],
    ['amsgrad', { name: 'adam', lr: 1, amsgrad: true }, /amsgrad is not supported/],
    [
      'typo',
      { name: 'adam', lr: 1, weight_decay: 0.1 },
      /unknown key weight_decay; did you mean weightDecay\? \(valid keys: name, lr, momentum, dampening, nesterov, betas, eps, weightDecay, amsgrad\)/,
    ],
    ['two problems', { name: 'adam', lr: -1, eps: -1 }, /lr must be .*; eps must be/],
  ];
  for (const [what, input, re] of bad) {
    it(`rejects ${what}`, () => {
      const msg = userErrorOf(() => parseOptimizerConfig(input, 'config.json')).message;
      expect(msg).toMatch(/^config\.json: /);
      expect(msg).toMatch(re);
    });
  }
});

describe('the Adam update in WebAssembly (kernels wasm) is bit-identical to the JS loop', () => {
  const n = 4101; // odd: a scalar tail after the float64 lane pairs
  const rnd = (dtype: DType, scale: number, positive = false): Tensor => {
    const t = zeros([3, 1367], dtype);
    let s = 12345 + scale * 1000;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const u = s / 4294967296;
      t.data[i] = positive ? scale * u * u : scale * (u - 0.5);
    }
    return t;
  };
  const configs: OptimizerConfig[] = [
    { name: 'adam', lr: 5e-3, betas: [0.8, 0.999] },
    { name: 'adam', lr: 1e-3, weightDecay: 0.1 },
    { name: 'adamw', lr: 1e-2, weightDecay: 0.05 },
  ];
  for (const dtype of ['float32', 'float64'] as const) {
    for (const cfg of configs) {
      it(`${dtype} ${cfg.name}${cfg.weightDecay ? ` weight decay ${cfg.weightDecay}` : ''}, at 1, 2 and 3 threads`, () => {
        const params = { w: rnd(dtype, 1) };
        const grads = { w: rnd(dtype, 0.01) };
        const state = { step: 3, buffers: { 'exp_avg.w': rnd(dtype, 0.01), 'exp_avg_sq.w': rnd(dtype, 1e-4, true) } };
        const want = withKernels('js', () => optimizerStep(cfg, params, grads, state));
        const tuning = { ...wasmTuning };
        try {
          wasmTuning.parallelMinElements = 1;
          for (const t of [1, 2, 3]) {
            setThreads(t);
            const got = withKernels('wasm', () => optimizerStep(cfg, params, grads, state));
            for (const [k, v] of [
              ['w', got.params.w!],
              ['exp_avg.w', got.state.buffers['exp_avg.w']!],
              ['exp_avg_sq.w', got.state.buffers['exp_avg_sq.w']!],
            ] as const) {
              const ref = k === 'w' ? want.params.w! : want.state.buffers[k]!;
              expect(
                v.data.every((x, i) => Object.is(x, ref.data[i])),
                `${k} at ${t} threads`,
              ).toBe(true);
            }
          }
        } finally {
          Object.assign(wasmTuning, tuning);
          setThreads(1);
        }
      });
    }
  }
});
