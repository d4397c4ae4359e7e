/**
 * Parallel brackets (parallel.ts): y's half on a second engine instance in a worker thread gives
 * the serial bracket bit for bit, at 1, 2 and 3 threads, for every kind of model that carries a
 * recipe; anything else runs serially; a failing or dying worker is a one-line error, never a
 * hang; memory stays flat; the process exits promptly. The worker is the built package's
 * (dist/bracket/bracket-worker.js: `npm run build`, which `npm ci` runs).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadOnnx } from '../data/onnx.js';
import type { DType } from '../engine/dtype.js';
import { setThreads, threads, withKernelHook } from '../engine/kernels/index.js';
import { withoutRefused } from '../engine/kernels/threads.js';
import { Rng } from '../engine/random.js';
import { Scratch, withScratch } from '../engine/scratch.js';
import { Tensor } from '../engine/tensor.js';
import type { Params } from '../engine/tree.js';
import { evalState, perExampleState, trainState } from '../nn/layers.js';
import { getLoss, LOSSES, type Loss } from '../nn/losses.js';
import { getModel, initBuffers, initModel, type Model } from '../nn/models.js';
import { modelFromSpec, xresnetSpec } from '../nn/spec.js';
import { bracket, modelLoss, type BracketResult, type Example, type LossFn } from './bracket.js';
import { frozenModel } from './kinks.js';
import { meanModelLoss } from './minibatch.js';
import { __injectBracketWorkerFailure, bracketTuning, bracketWorkerRunning, parallelBracketAvailable, shutdownBracketWorker } from './parallel.js';
import type { Vec } from './vec.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const before = threads();
const mode = bracketTuning.mode;
beforeAll(() => {
  bracketTuning.mode = 'always'; // (these brackets are small: in halves whatever their size and speed)
  if (!parallelBracketAvailable()) throw new Error('parallel brackets need the built package (dist/bracket/bracket-worker.js): run npm run build');
});
afterAll(() => {
  bracketTuning.mode = mode;
  setThreads(before);
  shutdownBracketWorker();
});

function example(model: Model, rows: number, dtype: DType, seed: number): Example {
  const rng = new Rng(seed);
  const t = new Float64Array(rows * model.numOutputs).map(() => (rng.random() < 0.4 ? 1 : 0));
  return {
    x: rng.normalTensor([rows, ...model.inputShape], dtype),
    t: new Tensor(dtype === 'float32' ? Float32Array.from(t) : t, [rows, model.numOutputs]),
  };
}

/** Where two trees differ bit for bit (a short summary: a failing diff of whole arrays would take vitest minutes). */
function differences(a: Vec, b: Vec, neg = false): string[] {
  const out: string[] = [];
  for (const [k, t] of Object.entries(a)) {
    const u = b[k];
    if (!u || u.size !== t.size) {
      out.push(`${k}: missing or resized`);
      continue;
    }
    let n = 0;
    let first = -1;
    for (let i = 0; i < t.size; i++) {
      const x = neg ? -t.data[i]! : t.data[i]!;
      const y = u.data[i]!;
      if (!(Object.is(x, y) || (neg && x === 0 && y === 0))) {
        n++;
        if (first < 0) first = i;
      }
    }
    if (n > 0) out.push(`${k}: ${n} of ${t.size} differ, first at ${first} (${neg ? -t.data[first]! : t.data[first]!} vs ${u.data[first]!})`);
  }
  if (Object.keys(b).join() !== Object.keys(a).join()) out.push('keys differ');
  return out;
}
const same = (a: BracketResult, b: BracketResult) => {
  expect(differences(a.bracket, b.bracket)).toEqual([]);
  expect(differences(a.gradX, b.gradX)).toEqual([]);
  expect(differences(a.gradY, b.gradY)).toEqual([]);
  expect([b.lossX, b.lossY]).toEqual([a.lossX, a.lossY]);
};

interface Case {
  name: string;
  build: () => { loss: LossFn<Example>; params: Vec; x: Example; y: Example };
}

const small = () => modelFromSpec(xresnetSpec({ input: [3, 16, 16], outputs: 6, widths: [8, 16], depths: [1, 1], stem: [4, 8] }), 'small-xresnet');

const CASES: Case[] = [
  {
    name: 'mlp, float64, bce',
    build: () => {
      const m = getModel('mlp');
      return { loss: modelLoss(m, LOSSES.bce), params: initModel(m, 1, 'float64'), x: example(m, 1, 'float64', 1), y: example(m, 1, 'float64', 2) };
    },
  },
  {
    name: 'convnet, float32, ce',
    build: () => {
      const m = getModel('convnet');
      return { loss: modelLoss(m, LOSSES.ce), params: initModel(m, 2, 'float32'), x: example(m, 1, 'float32', 3), y: example(m, 1, 'float32', 4) };
    },
  },
  {
    name: 'a spec xresnet with BatchNorm in eval mode (running statistics), float32, grouped loss',
    build: () => {
      const m = small();
      const buffers = initBuffers(m);
      for (const [k, b] of Object.entries(buffers)) if (k.endsWith('running_var')) b.data.fill(1.5);
      const loss: Loss = getLoss('grouped', { groups: [{ name: 'g', members: [0, 2, 3], allowNone: true }], numOutputs: 6 });
      return {
        loss: modelLoss(m, loss, evalState(buffers)),
        params: initModel(m, 3, 'float32'),
        x: example(m, 1, 'float32', 5),
        y: example(m, 1, 'float32', 6),
      };
    },
  },
  {
    name: 'the same xresnet with per-example BatchNorm statistics, float64',
    build: () => {
      const m = small();
      return {
        loss: modelLoss(m, LOSSES.bce, perExampleState(initBuffers(m))),
        params: initModel(m, 4, 'float64'),
        x: example(m, 1, 'float64', 7),
        y: example(m, 1, 'float64', 8),
      };
    },
  },
  {
    name: 'minibatches of 3 (mean loss), smoothconvnet, float32',
    build: () => {
      const m = getModel('smoothconvnet');
      return {
        loss: meanModelLoss(m, LOSSES.bce),
        params: initModel(m, 5, 'float32'),
        x: example(m, 3, 'float32', 9),
        y: example(m, 3, 'float32', 10),
      };
    },
  },
  {
    name: 'an ONNX model (PyTorch ResNet with BatchNorm), float64',
    build: () => {
      const m = loadOnnx(join(root, 'test/fixtures/onnx/torch/resnet.onnx'));
      const init = m.initialState!('float64');
      return {
        loss: modelLoss(m, LOSSES.bce, evalState(init.buffers)),
        params: init.params,
        x: example(m, 1, 'float64', 11),
        y: example(m, 1, 'float64', 12),
      };
    },
  },
];

describe('a parallel bracket is the serial bracket, bit for bit', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const { loss, params, x, y } = c.build();
      const pool = new Scratch();
      const at = (t: number) => {
        setThreads(t);
        return withScratch(pool, () => bracket(loss, params, x, y));
      };
      shutdownBracketWorker();
      const serial = at(1);
      expect(bracketWorkerRunning()).toBe(false);
      for (const t of [2, 3, 2]) {
        same(serial, at(t));
        expect(bracketWorkerRunning()).toBe(true);
      }
      // and outside a scratch scope, with the halves swapped (antisymmetry, exactly)
      setThreads(2);
      const swapped = bracket(loss, params, y, x);
      expect(differences(serial.bracket, swapped.bracket, true)).toEqual([]); // (±0 alike)
    });
  }
});

describe('what runs serially', () => {
  const m = getModel('convnet');
  const params = initModel(m, 6, 'float64');
  const x = example(m, 1, 'float64', 13);
  const y = example(m, 1, 'float64', 14);

  test('a model without a recipe (frozenModel spreads the model it wraps), and a hand-written loss', () => {
    setThreads(2);
    shutdownBracketWorker();
    const frozen = modelLoss(frozenModel(m, params), LOSSES.bce);
    const hand = (p: Params, e: Example) => modelLoss(m, LOSSES.bce)(p, e);
    for (let i = 0; i < 2; i++) {
      bracket(frozen, params, x, y);
      bracket(hand, params, x, y);
    }
    expect(bracketWorkerRunning()).toBe(false);
    const b = bracket(frozen, params, x, y);
    setThreads(1);
    same(bracket(frozen, params, x, y), b);
  });

  test('under a kernel hook: every kernel call is seen here (the flop count is the serial one)', () => {
    shutdownBracketWorker();
    const loss = modelLoss(m, LOSSES.bce);
    const count = (t: number) => {
      setThreads(t);
      let n = 0;
      withKernelHook(
        (_p, _s, _i, _q, run) => {
          n++;
          run();
        },
        () => bracket(loss, params, x, y),
      );
      return n;
    };
    const one = count(1);
    expect(count(2)).toBe(one);
    expect(bracketWorkerRunning()).toBe(false);
    bracket(loss, params, x, y); // (without the hook: in halves)
    expect(bracketWorkerRunning()).toBe(true);
  });

  test('BatchNorm with batch statistics: the running-statistics updates stay in this thread’s state', () => {
    const s = small();
    const state = trainState(initBuffers(s));
    const loss = modelLoss(s, LOSSES.bce, state);
    setThreads(2);
    shutdownBracketWorker();
    for (let i = 0; i < 2; i++) bracket(loss, initModel(s, 7, 'float64'), example(s, 1, 'float64', 15), example(s, 1, 'float64', 16));
    expect(bracketWorkerRunning()).toBe(false);
    expect(Object.keys(state.updates).length).toBeGreaterThan(0);
  });

  test("'auto': serial trials, then trials in halves only above parallelMinMs, then the faster way", () => {
    bracketTuning.mode = 'auto';
    const min = bracketTuning.parallelMinMs;
    try {
      shutdownBracketWorker();
      bracketTuning.parallelMinMs = 1e9;
      const loss = modelLoss(m, LOSSES.bce);
      for (let i = 0; i < 6; i++) bracket(loss, params, x, y);
      expect(bracketWorkerRunning()).toBe(false);
      bracketTuning.parallelMinMs = 0;
      const other = modelLoss(m, LOSSES.bce);
      for (let i = 0; i < bracketTuning.trials; i++) bracket(other, params, x, y);
      expect(bracketWorkerRunning()).toBe(false);
      bracket(other, params, x, y); // (the first of its trials in halves)
      expect(bracketWorkerRunning()).toBe(true);
      const serial = bracket(other, params, x, y);
      setThreads(1);
      same(bracket(other, params, x, y), serial);
    } finally {
      bracketTuning.mode = 'always';
      bracketTuning.parallelMinMs = min;
    }
  });
});

describe('failures', () => {
  const m = getModel('mlp');
  const params = initModel(m, 8, 'float32');
  const x = example(m, 1, 'float32', 17);
  const y = example(m, 1, 'float32', 18);
  const loss = modelLoss(m, LOSSES.bce);

  for (const kind of ['throw', 'exit'] as const) {
    test(`a worker that ${kind === 'throw' ? 'throws' : 'exits'} mid-bracket is a one-line error; the next bracket starts a fresh worker`, () => {
      setThreads(1);
      const serial = bracket(loss, params, x, y);
      setThreads(2);
      bracket(loss, params, x, y);
      __injectBracketWorkerFailure(kind);
      let msg = '';
      try {
        bracket(loss, params, x, y);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg).toMatch(kind === 'throw' ? /injected failure/ : /worker thread exited/);
      expect(msg.split('\n')).toHaveLength(1);
      expect(bracketWorkerRunning()).toBe(false);
      same(serial, bracket(loss, params, x, y));
      expect(bracketWorkerRunning()).toBe(true);
    });
  }
});

test('RSS stays flat over repeated parallel brackets', () => {
  const s = small();
  const params = initModel(s, 9, 'float32');
  const loss = modelLoss(s, LOSSES.bce, evalState(initBuffers(s)));
  const x = example(s, 1, 'float32', 19);
  const y = example(s, 1, 'float32', 20);
  const pool = new Scratch();
  setThreads(2);
  const gc = (globalThis as { gc?: () => void }).gc;
  const rss = () => {
    gc?.();
    return process.memoryUsage().rss / 2 ** 20;
  };
  for (let i = 0; i < 50; i++) withScratch(pool, () => bracket(loss, params, x, y));
  expect(bracketWorkerRunning()).toBe(true);
  const start = rss();
  for (let i = 0; i < 450; i++) withScratch(pool, () => bracket(loss, params, x, y));
  // (each bracket moves ~1 MB between the threads; a leak of one exchange per bracket would add hundreds of MB)
  expect(rss() - start).toBeLessThan(40);
});

/**
 * The start of a child process's module code (run with `node --input-type=module -e`): the built
 * package's bracket, parallel-bracket and thread controls, always in halves, an mlp, its bce loss
 * and examples ex(v).
 */
const CHILD_PRELUDE = `
    const d = ${JSON.stringify(join(root, 'dist'))};
    const { setThreads, threadStats } = await import(d + '/engine/kernels/threads.js');
    const { bracket, modelLoss } = await import(d + '/bracket/bracket.js');
    const { bracketTuning, bracketWorkerRunning } = await import(d + '/bracket/parallel.js');
    bracketTuning.mode = 'always';
    const { getModel, initModel } = await import(d + '/nn/models.js');
    const { LOSSES } = await import(d + '/nn/losses.js');
    const { Tensor } = await import(d + '/engine/tensor.js');
    const m = getModel('mlp');
    const ex = (v) => ({ x: new Tensor(new Float64Array(784).fill(v), [1, 1, 28, 28]), t: new Tensor(new Float64Array(10).fill(1), [1, 10]) });
    const loss = modelLoss(m, LOSSES.bce);
`;

test('workers start under node options a worker refuses (V8 flags such as relaxed SIMD, per-process ones): they apply process-wide', () => {
  // (new Worker throws ERR_WORKER_INVALID_EXEC_ARGV when given these; they must be dropped, not passed on)
  const code = `${CHILD_PRELUDE}
    const { wasmVariant } = await import(d + '/engine/kernels/wasm.js');
    const { matmul } = await import(d + '/engine/ops.js');
    setThreads(2);
    const a = new Tensor(new Float32Array(512 * 512).fill(0.5), [512, 512]);
    const c = matmul(a, a);
    for (let i = 0; i < 2; i++) bracket(loss, initModel(m, 0, 'float64'), ex(0.1), ex(0.2));
    console.log(wasmVariant(), threadStats().calls > 0, c.data[0], bracketWorkerRunning());
  `;
  const flags = ['--experimental-wasm-relaxed-simd', '--no-liftoff', '--max-old-space-size=4096', '--title', 'lbtest'];
  const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toBe('relaxed-simd true 128 true');
});

test('models and losses with a recipe are frozen: a half rebuilt from the recipe cannot differ from a model changed in place', () => {
  const m = getModel('mlp');
  expect(() => {
    (m as { apply: unknown }).apply = () => null;
  }).toThrow(TypeError);
  expect(() => {
    (LOSSES.bce as { perExample: unknown }).perExample = () => null;
  }).toThrow(TypeError);
  const spec = modelFromSpec(xresnetSpec({ input: [3, 32, 32], outputs: 2, widths: [4, 4, 4, 4], stem: [4, 4, 4] }));
  expect(Object.isFrozen(spec)).toBe(true);
});

test('withoutRefused drops the options Node names, with their separate values', () => {
  expect(
    withoutRefused(
      ['--no-liftoff', '--conditions', 'dev', '--title', 'x', '--max-old-space-size=9', '--enable-source-maps'],
      ['--no-liftoff', '--title', '--max-old-space-size=9'],
    ),
  ).toEqual(['--conditions', 'dev', '--enable-source-maps']);
  expect(withoutRefused(['--expose-gc', '--no-warnings'], ['--expose-gc'])).toEqual(['--no-warnings']);
});

test('a process exits promptly after a parallel bracket (the worker keeps nothing alive)', () => {
  const code = `${CHILD_PRELUDE}
    setThreads(2);
    for (let i = 0; i < 2; i++) bracket(loss, initModel(m, 0, 'float64'), ex(0.1), ex(0.2)); // (the first serially)
    console.log(bracketWorkerRunning());
  `;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toBe('true');
  expect(Date.now() - t0).toBeLessThan(30_000); // (a hang would run into the 60 s timeout)
});
