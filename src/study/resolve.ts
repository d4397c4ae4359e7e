/** Model resolution for runs: a preset name, a path to a JSON spec or an ONNX file, or an inline spec, fitted to the data. */
import { existsSync } from 'node:fs';
import { totalmem } from 'node:os';
import type { Dataset } from '../data/dataset.js';
import { loadOnnx } from '../data/onnx.js';
import { readFileOrExplain } from '../data/read-file.js';
import type { DType } from '../engine/dtype.js';
import { UserError } from '../errors.js';
import { memoryEstimate, MODELS, type Model } from '../nn/models.js';
import { modelFromSpec, xresnetSpec } from '../nn/spec.js';

export interface FitOptions {
  /** Examples per forward pass (the training batch, or the probe batch of an analysis). */
  batch: number;
  dtype: DType;
}

/**
 * Refuse a model that would not fit in this machine's memory at `fit` (memoryEstimate, against 80%
 * of the physical memory), with the estimate, before any long work starts.
 */
export function checkFitsInMemory(m: Model, fit: FitOptions, limit = 0.8 * totalmem()): void {
  const need = memoryEstimate(m, fit.batch, fit.dtype);
  if (need > limit) {
    const gb = (b: number) => `${(b / 1e9).toFixed(1)} GB`;
    throw new UserError(
      `model ${m.name} needs about ${gb(need)} of memory at batch ${fit.batch} in ${fit.dtype}, more than the ${gb(limit)} available here; use a smaller model, batch or --dtype float32`,
    );
  }
}

/**
 * The model named by `model` (preset, spec file, .onnx file or inline spec), checked against the data set's
 * input shape and outputs and against the memory it needs at `fit` (default: batch 32, float64).
 */
export function resolveModel(
  model: string | Record<string, unknown>,
  ds: Pick<Dataset, 'inputShape' | 'labelNames' | 'name'>,
  fit: FitOptions = { batch: 32, dtype: 'float64' },
): Model {
  const k = ds.labelNames.length;
  let m: Model;
  if (typeof model !== 'string') m = modelFromSpec(model);
  else if (/\.onnx$/i.test(model)) m = loadOnnx(model);
  else if (model.endsWith('.json')) {
    if (!existsSync(model)) throw new UserError(`${model}: model spec file not found`);
    const text = new TextDecoder().decode(readFileOrExplain(model)); // a regular file (not a FIFO or device)
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new UserError(`${model}: not valid JSON (${(e as Error).message})`);
    }
    m = modelFromSpec(raw, model.replace(/^.*\//, '').replace(/\.json$/, ''));
  } else if (model === 'xresnet') {
    m = modelFromSpec(xresnetSpec({ input: [...ds.inputShape], outputs: k }));
  } else {
    const preset = MODELS[model];
    if (!preset) throw new UserError(`unknown model "${model}"; choose ${Object.keys(MODELS).join(', ')} or give a JSON spec file or an .onnx file`);
    m = preset;
  }
  const want = m.inputShape.join(',');
  // the same shape, or a flat model input of the same size (a spec MLP on images); never another
  // image shape of the same size, which would silently scramble the data
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const fits = want === ds.inputShape.join(',') || (m.inputShape.length === 1 && size(m.inputShape) === size(ds.inputShape));
  if (!fits) {
    throw new UserError(
      `model ${m.name} takes input [${want}] but ${ds.name} has [${ds.inputShape.join(',')}]; use xresnet or a spec with "input": [${ds.inputShape.join(',')}]`,
    );
  }
  if (m.numOutputs !== k) {
    throw new UserError(
      `model ${m.name} has ${m.numOutputs} outputs but ${ds.name} has ${k} labels; use xresnet or a spec whose last layer has ${k} outputs`,
    );
  }
  checkFitsInMemory(m, fit);
  return m;
}
