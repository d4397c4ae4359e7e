/**
 * ONNX models exported from PyTorch (scripts/make-onnx-fixtures.py, committed in
 * test/fixtures/onnx/torch): loaded by `loadOnnx`, with the float64 state_dict, our losses,
 * gradients, brackets B = H_y g_x − H_x g_y and logit effects J_f(probe)·B must equal PyTorch's
 * double-backward values in float64 (BatchNorm in eval mode), and the loaded model's parameter and
 * buffer names and shapes must be PyTorch's state_dict, so its checkpoints load strictly into the
 * PyTorch module. With a python3 that has torch, a checkpoint trained by our library from the ONNX
 * model is loaded with strict=True into the rebuilt PyTorch module, whose logits must be ours.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bracket, logitEffect, modelLoss, type Example } from '../src/bracket/bracket.js';
import { sumSq } from '../src/bracket/vec.js';
import type { Dataset } from '../src/data/dataset.js';
import { loadOnnx } from '../src/data/onnx.js';
import { KERNEL_SETS, withKernels } from '../src/engine/kernels/index.js';
import { readSafetensors } from '../src/data/safetensors.js';
import { loadModelState } from '../src/data/weights.js';
import { sliceAxis } from '../src/engine/ops.js';
import { concrete } from '../src/engine/transforms.js';
import { evalState } from '../src/nn/layers.js';
import { getLoss } from '../src/nn/losses.js';
import type { Model } from '../src/nn/models.js';
import { initOptimizerState } from '../src/nn/optim.js';
import { checkpointPath, parseTrainConfig, saveCheckpoint, trainStep, type Checkpoint, type RunContext } from '../src/study/train.js';
import { rel, sampledError, type TorchPairBase } from './torch-fixture.js';

const DIR = 'test/fixtures/onnx/torch';
const PYTHON = '/usr/bin/python3';

interface TorchPair extends TorchPairBase {
  gradY: Record<string, number[]>;
}
interface Fixture {
  model: string;
  inputShape: number[];
  probe: number;
  sampleStride: Record<string, number>;
  stateDict: { name: string; shape: number[]; dtype: string }[];
  parameters: string[];
  logits: number[][];
  pairs: TorchPair[];
}

/** The ONNX files and the fixture (model) each belongs to. */
const CASES = [
  ['mlp', 'mlp'],
  ['resnet', 'resnet'],
  ['transformer-op17', 'transformer'],
  ['transformer-op13', 'transformer'],
] as const;

const fixture = (name: string) => JSON.parse(readFileSync(`${DIR}/${name}.json`, 'utf8')) as Fixture;
const inputsOf = (name: string) => readSafetensors(`${DIR}/${name}.inputs.safetensors`).tensors;

/** Largest |a − b| relative to ‖b‖ (vectors). */
function vecError(a: ArrayLike<number>, b: readonly number[]): number {
  const scale = Math.sqrt(b.reduce((s, v) => s + v * v, 0)) || 1;
  let worst = 0;
  b.forEach((v, i) => (worst = Math.max(worst, Math.abs(a[i]! - v) / scale)));
  return worst;
}

/** The worst error of each quantity over every case, printed at the end (the report's numbers). */
const worst: Record<string, Record<string, number>> = {};
function record(file: string, what: string, err: number): number {
  const w = (worst[file] ??= {});
  w[what] = Math.max(w[what] ?? 0, err);
  return err;
}
afterAll(() => {
  for (const [file, w] of Object.entries(worst))
    console.log(
      `${file}: ${Object.entries(w)
        .map(([k, v]) => `${k} ${v.toExponential(2)}`)
        .join(', ')}`,
    );
});

describe.each(CASES)('%s.onnx against PyTorch (float64)', (file, name) => {
  const fx = fixture(name);
  const inputs = inputsOf(name);
  let model: Model;
  beforeAll(() => {
    model = loadOnnx(`${DIR}/${file}.onnx`);
  });
  const ex = (i: number): Example => ({
    x: concrete(sliceAxis(inputs.x!, 0, i, i + 1)),
    t: concrete(sliceAxis(inputs.t!, 0, i, i + 1)),
  });

  test('parameter and buffer names and shapes are the PyTorch state_dict (a checkpoint loads with strict=True)', () => {
    expect(model.inputShape).toEqual(fx.inputShape);
    expect(model.numOutputs).toBe(5);
    expect(Object.keys(model.paramShapes).sort()).toEqual([...fx.parameters].sort());
    const ours: Record<string, readonly number[]> = { ...model.paramShapes, ...model.bufferShapes };
    const theirs = Object.fromEntries(fx.stateDict.map((e) => [e.name, e.shape]));
    // num_batches_tracked is no input of an eval-mode graph, so ONNX exports drop it; PyTorch's
    // BatchNorm fills in a missing one (0) when loading a plain state_dict, also with strict=True
    const optional = (k: string) => k.endsWith('.num_batches_tracked');
    for (const [k, shape] of Object.entries(theirs)) if (!optional(k) || k in ours) expect([k, ours[k]]).toEqual([k, shape]);
    for (const k of Object.keys(ours)) expect(theirs[k], `${k} is not in PyTorch's state_dict`).toBeDefined();
  });

  test("the ONNX initializers are the state_dict's values", () => {
    expect(model.initialState).toBeTypeOf('function');
    const init = model.initialState!('float64');
    const weights = readSafetensors(`${DIR}/${name}.weights.safetensors`).tensors;
    for (const [k, t] of Object.entries({ ...init.params, ...init.buffers })) {
      if (k.endsWith('.num_batches_tracked')) continue;
      expect(Array.from(t.data), k).toEqual(Array.from(weights[k]!.data));
    }
  });

  test.each(KERNEL_SETS)('logits, losses, gradients, brackets and logit effects equal PyTorch to 1e-9 (%s kernels)', (kernels) =>
    withKernels(kernels, () => compareWithTorch()),
  );

  function compareWithTorch(): void {
    const { params, buffers } = loadModelState(model, `${DIR}/${name}.weights.safetensors`, 'float64');
    const state = evalState(buffers);
    const z = concrete(model.apply(params, inputs.x!, state));
    expect(z.shape).toEqual([fx.logits.length, 5]);
    fx.logits.forEach((row, i) => expect(record(file, 'logits', vecError(z.data.subarray(i * 5, i * 5 + 5), row))).toBeLessThan(1e-9));

    const lossFn = modelLoss(model, getLoss('bce'), state);
    for (const p of fx.pairs) {
      const r = bracket(lossFn, params, ex(p.x), ex(p.y));
      expect(record(file, 'loss', Math.max(rel(r.lossX, p.lossX), rel(r.lossY, p.lossY)))).toBeLessThan(1e-9);
      expect(Object.keys(r.bracket).sort()).toEqual(Object.keys(p.tensors).sort());
      for (const [k, t] of Object.entries(p.tensors)) {
        const s = fx.sampleStride[k]!;
        expect(
          record(file, 'gradNorm', Math.max(rel(Math.sqrt(sumSq(r.gradX[k]!)), t.gradNormX), rel(Math.sqrt(sumSq(r.gradY[k]!)), t.gradNormY))),
        ).toBeLessThan(1e-9);
        expect(record(file, 'grad', Math.max(sampledError(r.gradX[k]!, p.gradX[k]!, s), sampledError(r.gradY[k]!, p.gradY[k]!, s)))).toBeLessThan(
          1e-9,
        );
        expect(record(file, 'bracketTensorNorm', rel(Math.sqrt(sumSq(r.bracket[k]!)), t.bracketNorm))).toBeLessThan(1e-9);
        expect(record(file, 'bracket', sampledError(r.bracket[k]!, p.bracket[k]!, s))).toBeLessThan(1e-9);
      }
      const norm = Math.sqrt(Object.values(r.bracket).reduce((a, t) => a + sumSq(t), 0));
      expect(record(file, 'bracketNorm', rel(norm, p.bracketNorm))).toBeLessThan(1e-9);
      const effect = logitEffect(model, params, ex(fx.probe).x, r.bracket, state);
      expect(effect.shape).toEqual([1, 5]);
      expect(record(file, 'logitEffect', vecError(effect.data, p.logitEffect))).toBeLessThan(1e-9);
    }
  }
});

const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

/** A data set of the fixture's 8 examples (pixels as float32, as every data set gives them). */
function fixtureDataset(name: string): Dataset {
  const inputs = inputsOf(name);
  const [n, ...shape] = inputs.x!.shape;
  const px = shape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from(inputs.x!.data);
  const t = Float32Array.from(inputs.t!.data);
  return {
    name: `onnx-fixture-${name}`,
    split: 'train',
    length: n!,
    inputShape: shape as unknown as readonly [number, number, number],
    labelNames: ['a', 'b', 'c', 'd', 'e'],
    labelKind: 'binary',
    get: (i) => ({ x: x.slice(i * px, (i + 1) * px), y: t.slice(i * 5, (i + 1) * 5) }),
    fingerprint: () => name,
  };
}

describe.skipIf(!hasTorch)('round trip: trained from ONNX by lie-bracket, loaded strictly into PyTorch', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'lb-onnx-torch-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  test.each(CASES.filter(([file]) => file !== 'transformer-op13'))('%s: 20 Adam steps, PyTorch logits equal ours to 1e-6', (file, name) => {
    const model = loadOnnx(`${DIR}/${file}.onnx`);
    const ds = fixtureDataset(name);
    const config = parseTrainConfig({ steps: 20, batchSize: 4, dtype: 'float64', optimizer: { name: 'adam', lr: 1e-2 } }, 'test');
    const ctx: RunContext = { model, loss: getLoss('bce'), train: ds, test: ds, config };
    const start = loadModelState(model, `${DIR}/${name}.weights.safetensors`, 'float64');
    let ck: Checkpoint = { step: 0, params: start.params, buffers: start.buffers, optimizer: initOptimizerState(config.optimizer, start.params) };
    for (let s = 0; s < 20; s++) ck = trainStep(ctx, ck, config.optimizer).next;
    const runDir = join(tmp, file);
    mkdirSync(join(runDir, 'checkpoints'), { recursive: true });
    saveCheckpoint(runDir, model, ck);
    const path = checkpointPath(runDir, 20);
    // the training moved the weights (and BatchNorm's running statistics)
    const moved = Object.keys(ck.params).some((k) => vecError(ck.params[k]!.data, Array.from(start.params[k]!.data)) > 1e-3);
    expect(moved).toBe(true);
    for (const k of Object.keys(ck.buffers).filter((b) => b.endsWith('.running_mean')))
      expect(vecError(ck.buffers[k]!.data, Array.from(start.buffers[k]!.data)), k).toBeGreaterThan(1e-6);

    // the checkpoint holds the state_dict's names (and, in the old layout, `optim.*`); BatchNorm counted the steps
    const saved = readSafetensors(path).tensors;
    const stateDict = new Set(fixture(name).stateDict.map((e) => e.name));
    expect(Object.keys(saved).filter((k) => !stateDict.has(k) && !k.startsWith('optim.'))).toEqual([]);
    for (const [k, t] of Object.entries(saved))
      if (k.endsWith('.num_batches_tracked')) expect([k, t.data[0]]).toEqual([k, start.buffers[k]!.data[0]! + 20]);

    const x = inputsOf(name).x!;
    const ours = concrete(model.apply(ck.params, x, evalState(ck.buffers)));
    const py = spawnSync(
      PYTHON,
      ['scripts/make-onnx-fixtures.py', '--check-state-dict', path, '--model', name, '--inputs', `${DIR}/${name}.inputs.safetensors`],
      {
        encoding: 'utf8',
      },
    );
    expect(py.stderr.split('\n').filter((l) => /error/i.test(l))).toEqual([]);
    expect(py.status).toBe(0);
    const res = JSON.parse(py.stdout) as { logits: number[]; shape: number[]; droppedOptimKeys: number };
    expect(res.shape).toEqual(ours.shape);
    record(`${file} round trip`, 'droppedOptimKeys', res.droppedOptimKeys);
    expect(record(`${file} round trip`, 'logits', vecError(ours.data, res.logits))).toBeLessThan(1e-6);
  });
});
