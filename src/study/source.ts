/**
 * Where an analysis's model, weights and data come from — a run directory and checkpoint (`run`,
 * `step`), or a model with weights or a seeded init (`model`, `weights`, `seed`) on a data set
 * (`data`) — and how to compute (`loss`, `dtype`, `bn`): the options behind the analysis commands'
 * shared flags (cli/source.ts), resolved into everything a computation needs.
 */
import type { Dataset } from '../data/dataset.js';
import { openDataset } from '../data/registry.js';
import { loadModelState } from '../data/weights.js';
import type { DType } from '../engine/dtype.js';
import { cast } from '../engine/ops.js';
import { concrete } from '../engine/transforms.js';
import { UserError } from '../errors.js';
import { evalState, perExampleState, type ForwardState } from '../nn/layers.js';
import { getLoss, type Loss } from '../nn/losses.js';
import { initBuffers, initModel, type Model } from '../nn/models.js';
import type { OptimizerConfig, OptimizerState } from '../nn/optim.js';
import { count, type Vec } from '../bracket/vec.js';
import { resolveModel } from './resolve.js';
import { openRun, type Run } from './run.js';
import { requireKnown, resolveGroups } from './train.js';

export interface SourceOptions {
  run?: string;
  step?: number;
  model?: string;
  weights?: string;
  seed: number;
  data?: string;
  split: 'train' | 'test';
  loss?: string;
  dtype?: DType;
  bn: 'eval' | 'train';
  /** With --weights: fresh BatchNorm statistics (mean 0, variance 1) instead of the file's. */
  freshBnStats?: boolean;
}

export interface Source {
  readonly model: Model;
  readonly loss: Loss;
  readonly dtype: DType;
  /** The split the example indices refer to. */
  readonly data: Dataset;
  /** The test split, where probe examples come from. */
  readonly probes: Dataset;
  readonly params: Vec;
  readonly buffers: Vec;
  /** BatchNorm mode for the computation (eval by default: the seed study's choice). */
  readonly forward: () => ForwardState;
  /** Where the weights came from, for reports. */
  readonly weights: string;
  readonly dataSpec: string;
  readonly run?: Run;
  readonly step?: number;
  readonly optimizer?: { config: OptimizerConfig; state: OptimizerState };
}

/** What resolveSource uses without --run when a flag is not given; the help shows these. */
export const SOURCE_DEFAULTS = { model: 'mlp', data: 'fashion-mnist', loss: 'bce', dtype: 'float64' } as const satisfies Partial<SourceOptions>;

function castVec(v: Vec, dtype: DType): Vec {
  const out: Vec = {};
  for (const [k, t] of Object.entries(v)) out[k] = t.dtype === dtype ? t : concrete(cast(t, dtype));
  return out;
}

/** --weights: the checks (BatchNorm statistics included) live in data/weights.ts, shared with the library. */
function loadWeights(model: Model, path: string, dtype: DType, freshBnStats: boolean): { params: Vec; buffers: Vec; weights: string } {
  if (freshBnStats && Object.keys(model.bufferShapes).length === 0) {
    throw new UserError(`--fresh-bn-stats: model ${model.name} has no BatchNorm running statistics; drop the flag`);
  }
  const st = loadModelState(model, path, dtype, { freshBnStats });
  return { params: st.params, buffers: st.buffers, weights: st.freshBnStats ? `${path} (fresh BatchNorm statistics)` : path };
}

export function resolveSource(f: SourceOptions): Source {
  const forwardFor = (buffers: Vec) => () => (f.bn === 'train' ? perExampleState(buffers) : evalState(buffers));
  if (f.freshBnStats && f.weights === undefined)
    throw new UserError('--fresh-bn-stats needs --weights (a seeded init has fresh BatchNorm statistics already)');
  if (f.run) {
    for (const [flag, v] of [
      ['--model', f.model],
      ['--weights', f.weights],
      ['--data', f.data],
    ] as const) {
      if (v !== undefined) throw new UserError(`${flag} cannot be combined with --run (the run fixes it)`);
    }
    const run = openRun(f.run);
    const step = f.step ?? run.steps[run.steps.length - 1]!;
    const ck = run.checkpoint(step);
    const dtype = f.dtype ?? run.config.dtype;
    const loss = f.loss ? getLoss(f.loss, { groups: resolveGroups(run.config, run.train), numOutputs: run.train.labelNames.length }) : run.loss;
    return {
      model: run.model,
      loss,
      dtype,
      data: f.split === 'train' ? run.train : run.test,
      probes: run.test,
      params: castVec(ck.params, dtype),
      buffers: ck.buffers,
      forward: forwardFor(ck.buffers),
      weights: `${f.run} step ${step}`,
      dataSpec: run.config.data,
      run,
      step,
      // read when used (verify --optimizer run): an imported run has neither optimizer nor state
      get optimizer() {
        requireKnown(run.dir, run.file, ['optimizer'], 'the run’s optimizer (--optimizer run)');
        return { config: run.config.optimizer, state: ck.optimizer };
      },
    };
  }
  if (f.step !== undefined) throw new UserError('--step needs --run');
  const dtype = f.dtype ?? SOURCE_DEFAULTS.dtype;
  const dataSpec = f.data ?? SOURCE_DEFAULTS.data;
  const lossName = f.loss ?? SOURCE_DEFAULTS.loss;
  const data = openDataset(dataSpec, f.split, { loss: lossName });
  const probes = f.split === 'test' ? data : openDataset(dataSpec, 'test', { loss: lossName });
  const model = resolveModel(f.model ?? SOURCE_DEFAULTS.model, data);
  const groups = resolveGroups({ groups: undefined } as never, data);
  const loss = getLoss(lossName, { groups, numOutputs: data.labelNames.length });
  if (model.initialState && !f.weights && f.seed !== 0) {
    throw new UserError(
      `--seed: model ${model.name} carries its own weights (its ONNX initializers), so there is no seeded init; drop --seed or give --weights`,
    );
  }
  const { params, buffers, weights } = f.weights
    ? loadWeights(model, f.weights, dtype, f.freshBnStats === true)
    : {
        params: initModel(model, f.seed, dtype),
        buffers: initBuffers(model),
        // a model that carries its weights (ONNX initializers) starts from them, not from the seed
        weights: model.initialState ? `the weights in ${f.model ?? SOURCE_DEFAULTS.model}` : `seed ${f.seed}`,
      };
  return { model, loss, dtype, data, probes, params, buffers, forward: forwardFor(buffers), weights, dataSpec };
}

/** What every analysis report says about where its numbers come from. */
export interface SourceHeader {
  model: string;
  loss: string;
  dtype: DType;
  paramCount: number;
  weights: string;
  data: string;
  split: 'train' | 'test';
  bn: 'eval' | 'train';
}

export function sourceHeader(src: Source, f: Pick<SourceOptions, 'split' | 'bn'>): SourceHeader {
  return {
    model: src.model.name,
    loss: src.loss.name,
    dtype: src.dtype,
    paramCount: count(src.params),
    weights: src.weights,
    data: src.dataSpec,
    split: f.split,
    bn: f.bn,
  };
}
