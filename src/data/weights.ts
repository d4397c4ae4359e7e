/**
 * Model weights from safetensors: validated against the model's layout and cast to a dtype. The one
 * place that loads a weights file for analysis (the CLI's --weights and the library alike).
 *
 * - Every parameter must be present with the model's shape, stored as F32 or F64 (an integer dtype
 *   is refused for a parameter: integer tensors are buffers, never trained weights).
 * - BatchNorm buffers: running_mean and running_var must be present (eval-mode BatchNorm depends
 *   on them), unless `freshBnStats` asks for fresh statistics (running_mean 0, running_var 1,
 *   num_batches_tracked 0), in which case the file's statistics, if any, are not used. A missing
 *   `num_batches_tracked` alone is accepted and set to 0: it is only a counter of training steps,
 *   which eval-mode analysis never reads (PyTorch itself fills it in for old state_dicts). It is
 *   typically I64 in a PyTorch state_dict and loads as a float64 tensor.
 * - A tensor in the file that is neither a parameter nor a buffer of the model is an error.
 * - The tool's own checkpoints load as they are: today's runs/<run>/checkpoints/step-<n>.safetensors
 *   is a plain state_dict; in the old layout ("format": "lie-bracket checkpoint v1" in the
 *   metadata) the optimizer state under `optim.` is ignored here.
 * - F16 and BF16 tensors load too (exactly) and are cast to the requested dtype like F32 ones.
 */
import type { DType } from '../engine/dtype.js';
import { cast } from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { concrete } from '../engine/transforms.js';
import { UserError } from '../errors.js';
import { freshBuffers, type Model } from '../nn/models.js';
import { checkParamShapes, INTEGER_DTYPES, readSafetensors } from './safetensors.js';

export interface LoadWeightsOptions {
  /** Use fresh BatchNorm statistics (mean 0, variance 1) instead of the file's, which may be absent. */
  freshBnStats?: boolean;
}

export interface ModelState {
  /** The model's parameters, cast to the requested dtype. */
  params: Record<string, Tensor>;
  /** The model's buffers (BatchNorm running statistics), from the file or fresh. */
  buffers: Record<string, Tensor>;
  /** Whether the BatchNorm statistics are fresh (`freshBnStats` on a model with BatchNorm). */
  freshBnStats: boolean;
}

/** The metadata `format` of the tool's old checkpoints (src/study/train.ts CHECKPOINT_FORMAT_V1), optimizer state included. */
const OLD_CHECKPOINT_FORMAT = 'lie-bracket checkpoint v1';

const BN_STAT = /\.(running_mean|running_var)$/;

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 4).join(', ');
  return names.length > 4 ? `${shown} (and ${names.length - 4} more)` : shown;
}

/** Load a model's parameters and buffers from a safetensors file, checked as described above. */
export function loadModelState(model: Model, path: string, dtype: DType, opts: LoadWeightsOptions = {}): ModelState {
  const file = readSafetensors(path);
  const { dtypes } = file;
  let tensors = file.tensors;
  if (file.metadata.format === OLD_CHECKPOINT_FORMAT) {
    // a checkpoint of the old layout: its optimizer state is not part of the model
    tensors = Object.fromEntries(Object.entries(tensors).filter(([k]) => !k.startsWith('optim.')));
  }
  const has = (k: string) => Object.prototype.hasOwnProperty.call(tensors, k);
  const intParams = Object.keys(model.paramShapes).filter((k) => has(k) && INTEGER_DTYPES.includes(dtypes[k]!));
  if (intParams.length > 0) {
    const more = intParams.length > 1 ? ` (and ${intParams.length - 1} more)` : '';
    throw new UserError(
      `${path}: parameter ${intParams[0]} is stored as ${dtypes[intParams[0]!]}${more}, an integer dtype; parameters must be F32 or F64` +
        ' (integer tensors load only as buffers such as num_batches_tracked)',
    );
  }
  const presentBuffers = Object.entries(model.bufferShapes).filter(([k]) => has(k));
  checkParamShapes(tensors, { ...model.paramShapes, ...Object.fromEntries(presentBuffers) }, path, { model: model.name });
  const fresh = opts.freshBnStats === true && Object.keys(model.bufferShapes).length > 0;
  if (!fresh) {
    const missing = Object.keys(model.bufferShapes).filter((k) => BN_STAT.test(k) && !has(k));
    if (missing.length > 0) {
      throw new UserError(
        `${path}: BatchNorm running statistics missing: ${listNames(missing)}; save the full state_dict,` +
          ' or pass --fresh-bn-stats to use fresh statistics (running_mean 0, running_var 1)',
      );
    }
  }
  const params: Record<string, Tensor> = {};
  for (const k of Object.keys(model.paramShapes)) {
    const t = tensors[k]!;
    params[k] = t.dtype === dtype ? t : concrete(cast(t, dtype));
  }
  const buffers = freshBuffers(model);
  if (!fresh) for (const [k] of presentBuffers) buffers[k] = tensors[k]!;
  return { params, buffers, freshBnStats: fresh };
}

/** The parameters alone (see `loadModelState` for the checks, BatchNorm statistics included). */
export function loadModelWeights(model: Model, path: string, dtype: DType, opts: LoadWeightsOptions = {}): Record<string, Tensor> {
  return loadModelState(model, path, dtype, opts).params;
}
