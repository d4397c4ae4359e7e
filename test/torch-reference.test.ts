/**
 * Number-by-number agreement with an independent oracle: PyTorch's double-backward brackets
 * (scripts/torch_peer.py, float64), stored in test/fixtures/torch by scripts/make-torch-fixtures.mjs.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { bracket, logitEffect, modelLoss, type Example } from '../src/bracket/bracket.js';
import { readSafetensors } from '../src/data/safetensors.js';
import { loadModelWeights } from '../src/data/weights.js';
import { allocBuf, type DType } from '../src/engine/dtype.js';
import { withKernels, type KernelSet } from '../src/engine/kernels/index.js';
import { cast, sliceAxis } from '../src/engine/ops.js';
import { Tensor } from '../src/engine/tensor.js';
import { concrete } from '../src/engine/transforms.js';
import { sumSq } from '../src/bracket/vec.js';
import { getLoss } from '../src/nn/losses.js';
import { getModel } from '../src/nn/models.js';
import { rel, sampledError, type TorchPairBase } from './torch-fixture.js';

const DIR = 'test/fixtures/torch';
interface TorchPair extends TorchPairBase {
  sampleStride: number;
}
const inputs = readSafetensors(`${DIR}/inputs.safetensors`).tensors;

function ex(i: number, dtype: DType): Example {
  const x = concrete(cast(sliceAxis(inputs.x!, 0, i, i + 1), dtype));
  const t = allocBuf(dtype, 10);
  t[inputs.labels!.data[i]!] = 1;
  return { x, t: new Tensor(t, [1, 10]) };
}

const cases = ['mlp', 'convnet', 'smoothconvnet'].flatMap((m) => ['bce', 'ce'].map((l) => [m, l] as const));

describe.each(['wasm', 'js', 'reference'] as KernelSet[])('agreement with PyTorch (%s kernels)', (kernels) => {
  test.each(cases)('%s / %s, float64', (modelName, lossName) => {
    const fixture = JSON.parse(readFileSync(`${DIR}/${modelName}-${lossName}.json`, 'utf8')) as { pairs: TorchPair[] };
    const model = getModel(modelName);
    const params = loadModelWeights(model, `${DIR}/${modelName}-weights.safetensors`, 'float64');
    const lossFn = modelLoss(model, getLoss(lossName));
    withKernels(kernels, () => {
      for (const p of fixture.pairs) {
        const r = bracket(lossFn, params, ex(p.x, 'float64'), ex(p.y, 'float64'));
        expect(rel(r.lossX, p.lossX)).toBeLessThan(1e-12);
        expect(rel(r.lossY, p.lossY)).toBeLessThan(1e-12);
        for (const [name, t] of Object.entries(p.tensors)) {
          expect(rel(Math.sqrt(sumSq(r.gradX[name]!)), t.gradNormX)).toBeLessThan(1e-11);
          expect(rel(Math.sqrt(sumSq(r.bracket[name]!)), t.bracketNorm)).toBeLessThan(1e-9);
          expect(sampledError(r.bracket[name]!, p.bracket[name]!, p.sampleStride)).toBeLessThan(1e-9);
          expect(sampledError(r.gradX[name]!, p.gradX[name]!, p.sampleStride)).toBeLessThan(1e-11);
        }
        const eff = logitEffect(model, params, ex(4, 'float64').x, r.bracket);
        const scale = Math.sqrt(p.logitEffect.reduce((s, v) => s + v * v, 0));
        p.logitEffect.forEach((v, i) => expect(Math.abs(eff.data[i]! - v) / scale).toBeLessThan(1e-9));
      }
    });
  });
});

test.each(cases)('%s / %s, float32 within 1e-4 of PyTorch float64', (modelName, lossName) => {
  const fixture = JSON.parse(readFileSync(`${DIR}/${modelName}-${lossName}.json`, 'utf8')) as { pairs: TorchPair[] };
  const model = getModel(modelName);
  const params = loadModelWeights(model, `${DIR}/${modelName}-weights.safetensors`, 'float32');
  const p = fixture.pairs[0]!;
  const r = bracket(modelLoss(model, getLoss(lossName)), params, ex(p.x, 'float32'), ex(p.y, 'float32'));
  for (const [name, t] of Object.entries(p.tensors)) {
    expect(r.bracket[name]!.dtype).toBe('float32');
    expect(rel(Math.sqrt(sumSq(r.bracket[name]!)), t.bracketNorm)).toBeLessThan(1e-4);
  }
});
