/** Training: learns on the shipped data, bit-identical reruns, resume after a crash, and its errors. */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { captureOutput } from './capture-output.js';
import { main } from '../src/cli/main.js';
import { resolveModel } from '../src/study/resolve.js';
import {
  allFinite,
  checkpointSchedule,
  CHECKPOINT_FORMAT_V1,
  checkpointPath,
  listCheckpoints,
  loadCheckpoint,
  optimizerStatePath,
  freshCheckpoint,
  lossFor,
  openConfigData,
  parseTrainConfig,
  stepIndices,
  StepBuffers,
  train,
  trainStep,
  type Checkpoint,
  type RunContext,
} from '../src/study/train.js';
import { batch } from '../src/data/dataset.js';
import { mean } from '../src/engine/ops.js';
import { concrete, valueAndGrad } from '../src/engine/transforms.js';
import type { Params } from '../src/engine/tree.js';
import { trainState } from '../src/nn/layers.js';
import { optimizerStep, type OptimizerConfig } from '../src/nn/optim.js';
import { readSafetensors, serializeSafetensors } from '../src/data/safetensors.js';
import { loadModelState } from '../src/data/weights.js';
import { Tensor } from '../src/engine/tensor.js';
import { wasmMemoryBytes } from '../src/engine/kernels/wasm.js';
import { userError } from './expect-user-error.js';

const tmp = mkdtempSync(join(tmpdir(), 'lb-train-'));

function context(raw: Record<string, unknown>): RunContext {
  const config = parseTrainConfig(raw, 'test');
  const trainSet = openConfigData(config, 'train');
  const testSet = openConfigData(config, 'test');
  return { config, train: trainSet, test: testSet, model: resolveModel(config.model, trainSet), loss: lossFor(config, trainSet) };
}

/** A small conv net with BatchNorm, so buffers are part of every checkpoint. */
const bnSpec = {
  input: [1, 28, 28],
  layers: [
    { type: 'conv2d', out: 4, kernel: 3, stride: 2 },
    { type: 'batchnorm2d' },
    { type: 'relu' },
    { type: 'maxpool2d', kernel: 2 },
    { type: 'flatten' },
    { type: 'linear', out: 10 },
  ],
};

/** An onStep callback that throws at `step` (a crash after the checkpoints before it). */
const crashAt = (step: number) => (s: number) => {
  if (s === step) throw new Error('crash');
};

const files = (dir: string) =>
  Object.fromEntries(readdirSync(join(dir, 'checkpoints')).map((f) => [f, readFileSync(join(dir, 'checkpoints', f)).toString('base64')]));

describe('training', () => {
  test('the MLP learns Fashion-MNIST (shipped subset) well above chance in 150 steps', () => {
    const ctx = context({ model: 'mlp', loss: 'ce', steps: 150, optimizer: { name: 'adam', lr: 2e-3 }, evalSize: 400, checkpointSteps: [0, 150] });
    const s = train(ctx, join(tmp, 'learn'));
    expect(s.final.classAccuracy).toBeGreaterThan(0.65); // chance is 0.1
    const lines = readFileSync(join(tmp, 'learn', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0].step).toBe(0);
    expect(lines.at(-1).step).toBe(150);
    expect(lines.at(-1).eval.loss).toBeLessThan(lines[0].eval.loss);
    const run = JSON.parse(readFileSync(join(tmp, 'learn', 'run.json'), 'utf8'));
    expect(run.status).toBe('complete');
    expect(run.train.fingerprint).toMatch(/^[0-9a-f]{16,}$/);
  });

  test('deterministic: the same config gives bit-identical checkpoints (with BatchNorm buffers and Adam state)', () => {
    const raw = { model: bnSpec, loss: 'bce', steps: 12, trainSize: 300, evalSize: 50, checkpointSteps: [0, 4, 12] };
    train(context(raw), join(tmp, 'det-a'));
    train(context(raw), join(tmp, 'det-b'));
    const a = files(join(tmp, 'det-a'));
    expect(Object.keys(a).sort()).toEqual([
      'step-0.optim.safetensors',
      'step-0.safetensors',
      'step-12.optim.safetensors',
      'step-12.safetensors',
      'step-4.optim.safetensors',
      'step-4.safetensors',
    ]);
    expect(files(join(tmp, 'det-b'))).toEqual(a);
    expect(readFileSync(join(tmp, 'det-a', 'metrics.jsonl'), 'utf8').replace(/"seconds":[0-9.e-]+/g, '')).toEqual(
      readFileSync(join(tmp, 'det-b', 'metrics.jsonl'), 'utf8').replace(/"seconds":[0-9.e-]+/g, ''),
    );
  });

  test('resume: a run killed after a checkpoint continues and ends identical to an uninterrupted run', () => {
    const raw = {
      model: bnSpec,
      loss: 'ce',
      steps: 12,
      trainSize: 300,
      evalSize: 50,
      checkpointSteps: [0, 5, 12],
      optimizer: { name: 'momentum', lr: 0.05 },
    };
    train(context(raw), join(tmp, 'whole'));
    const dir = join(tmp, 'killed');
    expect(() =>
      train(context(raw), dir, {
        onStep: (step) => {
          if (step === 8) throw new Error('simulated crash');
        },
      }),
    ).toThrow(/simulated crash/);
    expect(Object.keys(files(dir)).sort()).toEqual([
      'step-0.optim.safetensors',
      'step-0.safetensors',
      'step-5.optim.safetensors',
      'step-5.safetensors',
    ]);
    const s = train(context(raw), dir, { resume: true });
    expect(s.resumedFrom).toBe(5);
    expect(files(dir)).toEqual(files(join(tmp, 'whole')));
  });

  test('checkpoint schedule: log-spaced by default, or every N and/or a list', () => {
    expect(checkpointSchedule({ steps: 300 })).toEqual([0, 1, 2, 5, 10, 20, 50, 100, 200, 300]);
    expect(checkpointSchedule({ steps: 10, checkpointEvery: 4 })).toEqual([0, 4, 8, 10]);
    expect(checkpointSchedule({ steps: 10, checkpointEvery: 5, checkpointSteps: [3] })).toEqual([0, 3, 5, 10]);
  });

  test('minibatches: each step is a function of (seed, step); every example once per epoch', () => {
    expect(stepIndices(3, 7, 8, 100)).toEqual(stepIndices(3, 7, 8, 100));
    expect(stepIndices(3, 7, 8, 100)).not.toEqual(stepIndices(4, 7, 8, 100));
    const epoch = Array.from({ length: 10 }, (_, s) => stepIndices(1, s, 10, 100)).flat();
    expect(new Set(epoch).size).toBe(100);
  });
});

describe('lie-bracket train (CLI)', () => {
  const io = captureOutput();
  const run = (...args: string[]) => main(['node', 'lie-bracket', 'train', ...args]);

  test('flags override the config file; --json summary; a second run into the same directory needs --resume', async () => {
    const cfg = join(tmp, 'cfg.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(cfg, JSON.stringify({ model: 'mlp', loss: 'ce', steps: 50, optimizer: { name: 'sgd', lr: 0.1 } }));
    const dir = join(tmp, 'cli-run');
    expect(await run('--config', cfg, '--steps', '6', '--eval-size', '50', '--out', dir, '--json')).toBe(0);
    const s = JSON.parse(io.out);
    expect(s.steps).toBe(6);
    expect(s.config.optimizer).toMatchObject({ name: 'sgd', lr: 0.1 });
    io.out = '';
    expect(await run('--config', cfg, '--steps', '6', '--out', dir)).not.toBe(0);
    expect(io.err).toMatch(/already holds a run; use --resume/);
    io.err = '';
    expect(await run('--resume', dir, '--json')).toBe(0);
    expect(JSON.parse(io.out).resumedFrom).toBe(6);
  });

  test('a training step with recycled intermediates equals the same step computed without them', () => {
    // batch 32 × 4 × 14 × 14 activations are large enough to come from the scratch pool, which
    // this suite poisons with NaN on release (vitest.config.ts): an escaped tensor would show
    const ctx = context({ model: bnSpec, loss: 'bce', steps: 3, trainSize: 300, batchSize: 32 });
    const opt = ctx.config.optimizer as OptimizerConfig;
    let ck = freshCheckpoint(ctx, opt);
    for (let i = 0; i < 3; i++) {
      const b = batch(ctx.train, stepIndices(ctx.config.seed, ck.step, 32, 300), ctx.config.dtype);
      const fwd = trainState(ck.buffers);
      const [value, grads] = valueAndGrad((p: Params) => mean(ctx.loss.perExample(ctx.model.apply(p, b.x, fwd), b.t)))(ck.params);
      const g = Object.fromEntries(Object.entries(grads).map(([k, v]) => [k, concrete(v)]));
      const want = optimizerStep(opt, ck.params, g, ck.optimizer);
      const got = trainStep(ctx, ck, opt);
      expect(got.loss).toBe(concrete(value).item());
      for (const [k, t] of Object.entries(want.params)) expect(Array.from(got.next.params[k]!.data), k).toEqual(Array.from(t.data));
      for (const [k, t] of Object.entries(fwd.updates)) expect(Array.from(got.next.buffers[k]!.data), k).toEqual(Array.from(t.data));
      ck = got.next;
    }
  });

  test('steps whose parameters and Adam state live in StepBuffers (recycled, in wasm memory) equal steps in fresh arrays, bit for bit; a reused checkpoint is refused', () => {
    const ctx = context({ model: bnSpec, loss: 'bce', steps: 6, trainSize: 300, batchSize: 32 });
    const opt = ctx.config.optimizer as OptimizerConfig;
    const bufs = new StepBuffers();
    let plain = freshCheckpoint(ctx, opt);
    let pooled = plain;
    const kept: Checkpoint[] = [];
    for (let i = 0; i < 6; i++) {
      const a = trainStep(ctx, plain, opt);
      const b = trainStep(ctx, pooled, opt, bufs);
      expect(b.loss).toBe(a.loss);
      for (const [k, t] of Object.entries(a.next.params)) expect(Array.from(b.next.params[k]!.data), k).toEqual(Array.from(t.data));
      for (const [k, t] of Object.entries(a.next.optimizer.buffers))
        expect(Array.from(b.next.optimizer.buffers[k]!.data), k).toEqual(Array.from(t.data));
      plain = a.next;
      pooled = b.next;
      kept.push(b.next);
    }
    // (where the wasm kernels run, the parameters and moments are views of its shared memory; the fresh ones are not)
    if (wasmMemoryBytes() > 0) {
      for (const t of [...Object.values(pooled.params), ...Object.values(pooled.optimizer.buffers)])
        expect(t.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    }
    for (const t of Object.values(plain.params)) expect(t.data.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    // the checkpoint of step 3 shares its buffers with step 5's: continuing it would read step 5's numbers
    expect(() => trainStep(ctx, kept[2]!, opt, bufs)).toThrow(/reused; continue from the last checkpoint/);
    // the last one continues, as before the refusal
    const a = trainStep(ctx, plain, opt);
    const b = trainStep(ctx, pooled, opt, bufs);
    for (const [k, t] of Object.entries(a.next.params)) expect(Array.from(b.next.params[k]!.data), k).toEqual(Array.from(t.data));
    bufs.dispose();
  });

  test('bad input: one-line errors', async () => {
    expect(await run('--resume', join(tmp, 'nothing-here'))).not.toBe(0);
    expect(io.err).toMatch(/run\.json.*not found/);
    io.err = '';
    expect(await run('--model', 'convnet', '--data', 'synthetic', '--out', join(tmp, 'x'))).not.toBe(0);
    expect(io.err).toMatch(/takes input \[1,28,28\]/);
    io.err = '';
    expect(await run('--lr', 'fast')).not.toBe(0);
    expect(io.err).toMatch(/--lr must be a number/);
    io.err = '';
    expect(await run('--loss', 'grouped', '--data', 'fashion-mnist', '--optimizer', 'adam', '--beta1', '1.5', '--out', join(tmp, 'y'))).not.toBe(0);
    expect(io.err.trim().split('\n')).toHaveLength(1);
  });

  test('checkpoints are plain PyTorch state_dicts (float32 parameters and statistics, I64 num_batches_tracked); the optimizer state is beside them', () => {
    const raw = { model: bnSpec, loss: 'bce', steps: 4, trainSize: 64, batchSize: 8, evalSize: 16, checkpointSteps: [0, 4] };
    const ctx = context(raw);
    const dir = join(tmp, 'layout');
    train(ctx, dir);
    expect(listCheckpoints(dir)).toEqual([0, 4]); // not the .optim files
    const sd = readSafetensors(checkpointPath(dir, 4));
    expect(Object.keys(sd.tensors).sort()).toEqual([...Object.keys(ctx.model.paramShapes), ...Object.keys(ctx.model.bufferShapes)].sort());
    expect(sd.dtypes).toEqual({
      '0.weight': 'F32',
      '0.bias': 'F32',
      '1.weight': 'F32',
      '1.bias': 'F32',
      '1.running_mean': 'F32',
      '1.running_var': 'F32',
      '1.num_batches_tracked': 'I64',
      '5.weight': 'F32',
      '5.bias': 'F32',
    });
    expect(sd.tensors['1.num_batches_tracked']!.toArray()).toEqual([4]);
    expect(sd.metadata).toEqual({ format: 'lie-bracket checkpoint v2', step: '4', model: 'custom', optimizer: 'step-4.optim.safetensors' });
    const op = readSafetensors(optimizerStatePath(dir, 4));
    expect(op.metadata).toEqual({ format: 'lie-bracket optimizer state v2', step: '4', model: 'custom', checkpoint: 'step-4.safetensors' });
    expect(op.tensors['step']!.toArray()).toEqual([4]);
    expect(Object.keys(op.tensors).filter((k) => k.startsWith('exp_avg.'))).toHaveLength(Object.keys(ctx.model.paramShapes).length);
    // the exact float64 statistics, for resuming; the state_dict holds them rounded to float32
    const exact = op.tensors['buffers.1.running_var']!;
    expect(exact.dtype).toBe('float64');
    expect(Array.from(sd.tensors['1.running_var']!.data)).toEqual(Array.from(exact.data, Math.fround));
    // loaded back: float64 statistics in memory, the optimizer state read when used
    const ck = loadCheckpoint(dir, 4, ctx.model, ctx.config.optimizer, 'float32');
    expect(ck.buffers['1.running_var']!.dtype).toBe('float64');
    expect(ck.optimizer.step).toBe(4);
    // --weights takes the tool's own checkpoint as it is
    const w = loadModelState(ctx.model, checkpointPath(dir, 4), 'float64');
    expect(Array.from(w.params['0.weight']!.data)).toEqual(Array.from(sd.tensors['0.weight']!.data));
  });

  test('old-layout checkpoints (optimizer state under optim. in the one file) still load, resume identically, and work as --weights', () => {
    const raw = {
      model: bnSpec,
      loss: 'ce',
      steps: 8,
      trainSize: 64,
      batchSize: 8,
      evalSize: 16,
      checkpointSteps: [0, 4, 8],
      optimizer: { name: 'momentum', lr: 0.05 },
    };
    const whole = join(tmp, 'v1-whole');
    train(context(raw), whole);
    const dir = join(tmp, 'v1-killed');
    expect(() => train(context(raw), dir, { onStep: crashAt(6) })).toThrow(/crash/);
    // rewrite step 4 in the old layout: float64 buffers, optim.* tensors, no .optim file
    const sd = readSafetensors(checkpointPath(dir, 4)).tensors;
    const op = readSafetensors(optimizerStatePath(dir, 4)).tensors;
    const v1: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(sd)) v1[k] = k.endsWith('num_batches_tracked') ? t : (op[`buffers.${k}`] ?? t);
    for (const [k, t] of Object.entries(op)) if (!k.startsWith('buffers.')) v1[`optim.${k}`] = t;
    writeFileSync(checkpointPath(dir, 4), serializeSafetensors(v1, { step: '4', model: 'custom', format: CHECKPOINT_FORMAT_V1 }));
    for (const s of [0, 4]) rmSync(optimizerStatePath(dir, s));
    const ctx = context(raw);
    const w = loadModelState(ctx.model, checkpointPath(dir, 4), 'float32'); // optim.* ignored there
    expect(Object.keys(w.params).sort()).toEqual(Object.keys(ctx.model.paramShapes).sort());
    expect(loadCheckpoint(dir, 4, ctx.model, ctx.config.optimizer as OptimizerConfig, 'float32').optimizer.step).toBe(4);
    const s = train(ctx, dir, { resume: true });
    expect(s.resumedFrom).toBe(4);
    for (const f of ['step-8.safetensors', 'step-8.optim.safetensors']) {
      expect(readFileSync(join(dir, 'checkpoints', f)).equals(readFileSync(join(whole, 'checkpoints', f))), f).toBe(true);
    }
  });

  test('resuming without the last checkpoint’s optimizer file: one line naming it', async () => {
    const dir = join(tmp, 'no-optim');
    const raw = { model: 'mlp', steps: 2, trainSize: 32, batchSize: 8, evalSize: 8, checkpointSteps: [0, 1] };
    expect(() => train(context(raw), dir, { onStep: crashAt(2) })).toThrow(/crash/);
    rmSync(optimizerStatePath(dir, 1));
    expect(userError(() => train(context(raw), dir, { resume: true }))).toBe(
      `${optimizerStatePath(dir, 1)} is missing: checkpoint step 1 has no optimizer state (needed to resume training or for the run's optimizer)`,
    );
    expect(await run('--resume', dir)).toBe(2);
    expect(io.err.trim().split('\n')).toHaveLength(1);
    expect(io.err).toContain('step-1.optim.safetensors is missing');
  });
});

describe('dataOptions (synthetic data options in the config)', () => {
  const io = captureOutput();
  const spec = { input: [3, 16, 16], layers: [{ type: 'flatten' }, { type: 'linear', out: 6 }] };
  test('a run trains on the data its dataOptions name, and reopens with the same data', async () => {
    const { openRun } = await import('../src/study/run.js');
    const { SyntheticDataset } = await import('../src/data/synthetic.js');
    const dir = join(tmp, 'data-options');
    const cfg = {
      model: spec,
      data: 'synthetic',
      dataOptions: { seed: 5, size: 16, ambiguity: 0.3 },
      loss: 'grouped',
      steps: 2,
      checkpointSteps: [0, 2],
    };
    writeFileSync(join(tmp, 'data-options.json'), JSON.stringify(cfg));
    const code = await main(['node', 'lie-bracket', 'train', '--config', join(tmp, 'data-options.json'), '--out', dir, '--json']);
    expect(io.err).not.toMatch(/error/);
    expect(code).toBe(0);
    const run = openRun(dir);
    expect(run.config.dataOptions).toEqual({ seed: 5, size: 16, ambiguity: 0.3 });
    const want = new SyntheticDataset('train', { seed: 5, size: 16, ambiguity: 0.3 });
    expect(run.train.fingerprint()).toBe(want.fingerprint());
    // q changes the labels, so a run that dropped dataOptions would see other data
    expect(new SyntheticDataset('train', { seed: 5, size: 16 }).fingerprint()).not.toBe(want.fingerprint());
    expect(run.test.fingerprint()).toBe(new SyntheticDataset('test', { seed: 5, size: 16, ambiguity: 0.3 }).fingerprint());
  });
  test('dataOptions with data other than synthetic is an error, not ignored', () => {
    expect(() => context({ data: 'fashion-mnist', dataOptions: { ambiguity: 0.2 } })).toThrow(
      /dataOptions \(ambiguity\) apply to the synthetic data only/,
    );
  });
  test('out-of-range and unknown dataOptions are refused', () => {
    expect(() => parseTrainConfig({ data: 'synthetic', dataOptions: { ambiguity: 0.7 } }, 'test')).toThrow(/ambiguity/);
    expect(() => parseTrainConfig({ data: 'synthetic', dataOptions: { hue: 1 } }, 'test')).toThrow(/hue/);
  });
});

describe('allFinite (the check after every training step)', () => {
  test('false for a NaN or an infinity anywhere (body or tail of the four-way loop), true otherwise, in float32 and float64', () => {
    for (const n of [0, 1, 3, 4, 7, 64, 1001]) {
      for (const make of [(k: number) => new Float32Array(k), (k: number) => new Float64Array(k)]) {
        const d = make(n);
        for (let i = 0; i < n; i++) d[i] = (i % 7) - 3 + (i % 2 ? 3.4e38 / 2 : -1e-40);
        expect(allFinite(d), `n=${n}`).toBe(true);
        for (const bad of [NaN, Infinity, -Infinity]) {
          for (const at of [0, n >> 1, n - 1]) {
            if (n === 0) continue;
            const e = d.slice();
            e[at] = bad;
            expect(allFinite(e), `n=${n} ${bad} at ${at}`).toBe(false);
          }
        }
      }
    }
  });
});
