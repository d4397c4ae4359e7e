/** Model weights from safetensors: validated against the model's layout and cast to a dtype. */
import type { DType } from '../engine/dtype.js';
import { cast } from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { concrete } from '../engine/transforms.js';
import type { Model } from '../nn/models.js';
import { checkParamShapes, readSafetensors } from './safetensors.js';

export function loadModelWeights(model: Model, path: string, dtype: DType): Record<string, Tensor> {
  const { tensors } = readSafetensors(path);
  checkParamShapes(tensors, model.paramShapes, path, { model: model.name });
  const out: Record<string, Tensor> = {};
  for (const name of Object.keys(model.paramShapes)) out[name] = concrete(cast(tensors[name]!, dtype));
  return out;
}
