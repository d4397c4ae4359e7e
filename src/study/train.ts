/**
 * Training with checkpoints: config → run directory with run.json, metrics.jsonl and, at each
 * checkpoint step n,
 *
 *   checkpoints/step-<n>.safetensors        the model's PyTorch state_dict, nothing else: parameters
 *                                           in the run's dtype, BatchNorm running_mean/var in the
 *                                           same dtype, num_batches_tracked as I64, under PyTorch
 *                                           names (`module.load_state_dict(load_file(f), strict=True)`)
 *   checkpoints/step-<n>.optim.safetensors  what resuming needs besides: the optimizer state
 *                                           (`step`, `exp_avg.<param>`, …) and the exact float64
 *                                           BatchNorm statistics (`buffers.<name>`, float32 runs)
 *
 * The optimizer file is written first, then the state_dict, each atomically, so the state_dict's
 * presence means the step is complete. Checkpoints of the old layout ('lie-bracket checkpoint v1':
 * float64 buffers and the optimizer state under `optim.` in the one file) still load.
 * Deterministic: the minibatch of step s is a function of (seed, s) alone, so a resumed run ends
 * bit-identical to an uninterrupted one.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../data/atomic.js';
import { openDataset } from '../data/registry.js';
import { acquireLock } from './lock.js';
import { batch, type Dataset } from '../data/dataset.js';
import { readSafetensors, writeSafetensors } from '../data/safetensors.js';
import type { DType } from '../engine/dtype.js';
import { cast, mean } from '../engine/ops.js';
import { Rng } from '../engine/random.js';
import { Tensor } from '../engine/tensor.js';
import { residentCopy, Scratch, withScratch } from '../engine/scratch.js';
import { concrete, valueAndGrad } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { UserError } from '../errors.js';
import { evalState, trainState } from '../nn/layers.js';
import { getLoss, type Loss, type OutputGroup } from '../nn/losses.js';
import { initBuffers, initModel, type Model } from '../nn/models.js';
import {
  initOptimizerState,
  optimizerConfigSchema,
  optimizerStep,
  stateFromTensors,
  stateToTensors,
  type OptimizerConfig,
  type OptimizerState,
} from '../nn/optim.js';
import type { Vec } from '../bracket/vec.js';
import { outputMetrics, outputMetricsSchema } from './metrics.js';
import { VERSION } from '../version.js';
import { zodUserError } from '../zod-message.js';
import { index, jsonNumber, parseJsonText, readJsonFile } from '../file-schema.js';

export const trainConfigSchema = z
  .object({
    /** A preset name (mlp, convnet, smoothconvnet, xresnet) or a JSON model spec object. */
    model: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).default('smoothconvnet'),
    /** fashion-mnist (the shipped subset), synthetic, celeba:<dir>, or a directory. */
    data: z.string().min(1).default('fashion-mnist'),
    /**
     * Options of the synthetic data (docs/synthetic-data.md): its seed, image side, difficulty and
     * hair-label ambiguity q, the same for both splits. Only with `data: "synthetic"` (elsewhere an
     * error: they would be silently ignored).
     */
    dataOptions: z
      .strictObject({
        seed: z.number().int().nonnegative().optional(),
        size: z.number().int().min(16).optional(),
        difficulty: z.number().positive().optional(),
        ambiguity: z.number().min(0).max(0.5).optional(),
      })
      .optional(),
    loss: z.enum(['bce', 'ce', 'grouped']).default('bce'),
    /** Output groups for `grouped` (default: the data set's declared groups). */
    groups: z.array(z.strictObject({ name: z.string(), members: z.array(z.string()).min(1), allowNone: z.boolean().default(false) })).optional(),
    optimizer: z
      .strictObject({
        name: z.enum(['sgd', 'momentum', 'adam', 'adamw']).default('adam'),
        lr: z.number().default(1e-3),
        momentum: z.number().optional(),
        dampening: z.number().optional(),
        nesterov: z.boolean().optional(),
        betas: z.tuple([z.number(), z.number()]).optional(),
        eps: z.number().optional(),
        weightDecay: z.number().optional(),
      })
      // the optimizer's own rules (ranges, fields that do not apply to the chosen optimizer)
      .superRefine((o, ctx) => {
        const r = optimizerConfigSchema.safeParse(o);
        if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
      })
      .default({ name: 'adam', lr: 1e-3 }),
    batchSize: z.number().int().positive().default(32),
    steps: z.number().int().nonnegative().default(300),
    seed: z.number().int().nonnegative().default(0),
    dtype: z.enum(['float32', 'float64']).default('float32'),
    /** Checkpoint every N steps (in addition to `checkpointSteps`). */
    checkpointEvery: z.number().int().positive().optional(),
    /** Explicit checkpoint steps; default (when neither is given): log-spaced 0, 1, 2, 5, 10, 20, 50, … and the last step. */
    checkpointSteps: z.array(z.number().int().nonnegative()).optional(),
    /** Evaluate on held-out examples every M steps (and at the end). */
    evalEvery: z.number().int().positive().optional(),
    /** Number of held-out (test split) examples to evaluate on. */
    evalSize: z.number().int().positive().default(500),
    /** Limit the training split to its first N examples. */
    trainSize: z.number().int().positive().optional(),
  })
  .strict();

export type TrainConfig = z.infer<typeof trainConfigSchema>;

/** The data set of a run's config, one split: `data` opened with the config's loss and `dataOptions`. */
export function openConfigData(config: Pick<TrainConfig, 'data' | 'loss' | 'dataOptions'>, split: 'train' | 'test'): Dataset {
  if (config.dataOptions !== undefined && Object.keys(config.dataOptions).length > 0 && config.data !== 'synthetic') {
    throw new UserError(`dataOptions (${Object.keys(config.dataOptions).join(', ')}) apply to the synthetic data only, but data is "${config.data}"`);
  }
  return openDataset(config.data, split, { loss: config.loss, ...(config.dataOptions ?? {}) });
}

export function parseTrainConfig(raw: unknown, source: string): TrainConfig {
  const r = trainConfigSchema.safeParse(raw);
  if (!r.success) throw zodUserError(r.error, source, trainConfigSchema);
  return r.data;
}

/** One field where two configs differ: its config key, the flag that sets it, and both values. */
export interface ConfigDifference {
  key: string;
  flag: string;
  wanted: unknown;
  run: unknown;
}

const OPTIMIZER_FLAGS: Record<string, string> = {
  name: '--optimizer',
  lr: '--lr',
  momentum: '--momentum',
  dampening: 'dampening',
  nesterov: 'nesterov',
  eps: '--adam-eps',
  weightDecay: '--weight-decay',
};
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const defaultBetas: [number, number] = [0.9, 0.999];

/**
 * Where `wanted` differs from a run's `run` config, field by field (optimizer betas as --beta1 and
 * --beta2; Adam's default betas count as given). Empty: the same training.
 */
export function configDifferences(run: TrainConfig, wanted: TrainConfig): ConfigDifference[] {
  const out: ConfigDifference[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const keys = [...new Set([...Object.keys(run), ...Object.keys(wanted)])] as (keyof TrainConfig)[];
  for (const k of keys) {
    if (k === 'optimizer') continue;
    if (!same(run[k], wanted[k])) out.push({ key: k, flag: k === 'groups' ? 'groups' : `--${kebab(k)}`, wanted: wanted[k], run: run[k] });
  }
  const ro = run.optimizer as Record<string, unknown>;
  const wo = wanted.optimizer as Record<string, unknown>;
  for (const k of [...new Set([...Object.keys(ro), ...Object.keys(wo)])]) {
    if (k === 'betas') {
      const rb = (ro.betas as number[] | undefined) ?? defaultBetas;
      const wb = (wo.betas as number[] | undefined) ?? defaultBetas;
      for (const i of [0, 1]) if (rb[i] !== wb[i]) out.push({ key: `optimizer.betas[${i}]`, flag: `--beta${i + 1}`, wanted: wb[i], run: rb[i] });
    } else if (!same(ro[k], wo[k])) out.push({ key: `optimizer.${k}`, flag: OPTIMIZER_FLAGS[k] ?? `optimizer.${k}`, wanted: wo[k], run: ro[k] });
  }
  return out;
}

const showValue = (v: unknown): string => {
  if (v === undefined) return 'unset';
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v.join(',');
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  const j = JSON.stringify(v);
  return j.length > 60 ? `${j.slice(0, 57)}...` : j;
};

/** "--lr 0.5 differs from the run's 0.001; --model mlp differs from the run's smoothconvnet" (`label`: how to name a field). */
export function formatConfigDifferences(diffs: readonly ConfigDifference[], label: (d: ConfigDifference) => string = (d) => d.flag): string {
  return diffs.map((d) => `${label(d)} ${showValue(d.wanted)} differs from the run's ${showValue(d.run)}`).join('; ');
}

/** Log-spaced (1-2-5) checkpoint steps up to `steps`, always with 0 and `steps`. */
export function checkpointSchedule(cfg: Pick<TrainConfig, 'steps' | 'checkpointEvery' | 'checkpointSteps'>): number[] {
  const s = new Set<number>([0, cfg.steps]);
  if (cfg.checkpointSteps) for (const v of cfg.checkpointSteps) if (v <= cfg.steps) s.add(v);
  if (cfg.checkpointEvery) for (let v = cfg.checkpointEvery; v < cfg.steps; v += cfg.checkpointEvery) s.add(v);
  if (!cfg.checkpointSteps && !cfg.checkpointEvery) {
    for (let d = 1; d <= cfg.steps; d *= 10) for (const m of [1, 2, 5]) if (m * d <= cfg.steps) s.add(m * d);
  }
  return [...s].sort((a, b) => a - b);
}

/** The last few epoch permutations (a step's batch may straddle two epochs); each is n numbers. */
const permCache: { seed: number; epoch: number; n: number; perm: readonly number[] }[] = [];

/** The permutation of epoch `epoch`, seeded by (seed, epoch); cached, as every step of an epoch needs it. */
function epochPermutation(seed: number, epoch: number, n: number): readonly number[] {
  const hit = permCache.find((c) => c.seed === seed && c.epoch === epoch && c.n === n);
  if (hit) return hit.perm;
  const perm = new Rng((seed * 1_000_003 + epoch * 7919 + 17) >>> 0).permutation(n);
  permCache.push({ seed, epoch, n, perm });
  if (permCache.length > 4) permCache.shift();
  return perm;
}

/** The example indices of step `step`: epoch e is a permutation seeded by (seed, e). */
export function stepIndices(seed: number, step: number, batchSize: number, n: number): number[] {
  const out: number[] = [];
  let pos = step * batchSize;
  while (out.length < batchSize) {
    const perm = epochPermutation(seed, Math.floor(pos / n), n);
    out.push(perm[pos % n]!);
    pos++;
  }
  return out;
}

export interface RunContext {
  readonly model: Model;
  readonly loss: Loss;
  readonly train: Dataset;
  readonly test: Dataset;
  readonly config: TrainConfig;
}

/** Output groups of the loss as indices, from the config or the data set. */
export function resolveGroups(config: TrainConfig, ds: Dataset): OutputGroup[] {
  const groups = config.groups ?? ds.groups ?? [];
  return groups.map((g) => ({
    name: g.name,
    allowNone: g.allowNone,
    members: g.members.map((m) => {
      const i = ds.labelNames.indexOf(m);
      if (i < 0) throw new UserError(`group ${g.name}: ${m} is not an output of ${ds.name} (${ds.labelNames.join(', ')})`);
      return i;
    }),
  }));
}

export function lossFor(config: TrainConfig, ds: Dataset): Loss {
  return getLoss(config.loss, { groups: resolveGroups(config, ds), numOutputs: ds.labelNames.length });
}

export interface ModelState {
  params: Vec;
  buffers: Vec;
}

export interface Checkpoint extends ModelState {
  step: number;
  optimizer: OptimizerState;
}

export function checkpointPath(runDir: string, step: number): string {
  return join(runDir, 'checkpoints', `step-${step}.safetensors`);
}

/** The optimizer state (and exact buffers) of a checkpoint, next to its state_dict. */
export function optimizerStatePath(runDir: string, step: number): string {
  return join(runDir, 'checkpoints', `step-${step}.optim.safetensors`);
}

/** The `format` metadata of a checkpoint's state_dict file (this layout, and the old one). */
export const CHECKPOINT_FORMAT = 'lie-bracket checkpoint v2';
export const CHECKPOINT_FORMAT_V1 = 'lie-bracket checkpoint v1';
/** The `format` metadata of a checkpoint's optimizer file. */
export const OPTIMIZER_STATE_FORMAT = 'lie-bracket optimizer state v2';

/** Steps of the complete checkpoints (their state_dict files; not the .optim files) in a run directory, ascending. */
export function listCheckpoints(runDir: string): number[] {
  const dir = join(runDir, 'checkpoints');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => /^step-(\d+)\.safetensors$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** BatchNorm's step counter, an integer buffer (I64 in a PyTorch state_dict). */
export const isIntegerBuffer = (name: string): boolean => name === 'num_batches_tracked' || name.endsWith('.num_batches_tracked');

const toDtype = (t: Tensor, dtype: DType): Tensor => (t.dtype === dtype ? t : concrete(cast(t, dtype)));

/**
 * Write a model state as PyTorch would save its state_dict: parameters and float buffers in
 * `dtype`, integer buffers (num_batches_tracked) as I64. Atomic.
 */
export function writeStateDict(path: string, state: ModelState, dtype: DType, metadata: Record<string, string>): void {
  const tensors: Record<string, Tensor> = {};
  const stored: Record<string, 'I64'> = {};
  for (const [k, t] of Object.entries(state.params)) tensors[k] = toDtype(t, dtype);
  for (const [k, t] of Object.entries(state.buffers)) {
    if (isIntegerBuffer(k)) {
      tensors[k] = t;
      stored[k] = 'I64';
    } else tensors[k] = toDtype(t, dtype);
  }
  writeSafetensors(path, tensors, metadata, { stored });
}

/** The dtype of a parameter tree (all parameters share one). */
function dtypeOf(params: Vec): DType {
  return Object.values(params)[0]?.dtype ?? 'float64';
}

export function saveCheckpoint(runDir: string, model: Model, ck: Checkpoint): void {
  const dtype = dtypeOf(ck.params);
  const optim: Record<string, Tensor> = { ...stateToTensors(ck.optimizer) };
  // float32 runs: the state_dict holds float32 statistics; resuming needs the exact ones
  if (dtype !== 'float64') for (const [k, t] of Object.entries(ck.buffers)) if (!isIntegerBuffer(k)) optim[`buffers.${k}`] = t;
  const step = String(ck.step);
  const file = basename(checkpointPath(runDir, ck.step));
  writeSafetensors(optimizerStatePath(runDir, ck.step), optim, { format: OPTIMIZER_STATE_FORMAT, step, model: model.name, checkpoint: file });
  writeStateDict(checkpointPath(runDir, ck.step), ck, dtype, {
    format: CHECKPOINT_FORMAT,
    step,
    model: model.name,
    optimizer: basename(optimizerStatePath(runDir, ck.step)),
  });
}

export interface LoadCheckpointOptions {
  /**
   * For resuming: read the optimizer file now (a missing one is an error) and take the exact
   * BatchNorm statistics from it. Otherwise the optimizer state is read when first used.
   */
  resume?: boolean;
}

/**
 * A checkpoint of a run: its state_dict (either layout), with float buffers as float64 in memory
 * and the optimizer state (from the .optim file, or the old layout's `optim.` tensors) read when
 * `optimizer` is first used, unless `o.resume`. A missing optimizer file is a one-line UserError then.
 */
export function loadCheckpoint(
  runDir: string,
  step: number,
  model: Model,
  opt: OptimizerConfig,
  dtype: DType,
  o: LoadCheckpointOptions = {},
): Checkpoint {
  const path = checkpointPath(runDir, step);
  const { tensors, metadata } = readSafetensors(path);
  const params: Vec = {};
  const buffers: Vec = {};
  const optim: Record<string, Tensor> = {};
  const isParam = (k: string) => Object.prototype.hasOwnProperty.call(model.paramShapes, k);
  const isBuffer = (k: string) => Object.prototype.hasOwnProperty.call(model.bufferShapes, k);
  const v1 = metadata.format === CHECKPOINT_FORMAT_V1 || Object.keys(tensors).some((k) => k.startsWith('optim.') && !isParam(k) && !isBuffer(k));
  for (const [k, t] of Object.entries(tensors)) {
    if (v1 && k.startsWith('optim.')) optim[k.slice(6)] = t;
    else if (isParam(k)) params[k] = t;
    else if (isBuffer(k)) buffers[k] = toDtype(t, 'float64');
    else throw new UserError(`${path}: tensor ${k} is neither a parameter nor a buffer of model ${model.name}`);
  }
  for (const k of Object.keys(model.paramShapes)) {
    if (!params[k]) throw new UserError(`${path}: parameter ${k} is missing`);
    if (params[k].dtype !== dtype) throw new UserError(`${path}: parameter ${k} is ${params[k].dtype}, the run is ${dtype}`);
  }
  for (const k of Object.keys(model.bufferShapes)) if (!buffers[k]) throw new UserError(`${path}: buffer ${k} is missing`);

  let state: OptimizerState | undefined;
  const readOptimizer = (): OptimizerState => {
    if (state) return state;
    if (v1) return (state = stateFromTensors(optim, opt, params, path));
    const op = optimizerStatePath(runDir, step);
    if (!existsSync(op)) {
      throw new UserError(`${op} is missing: checkpoint step ${step} has no optimizer state (needed to resume training or for the run's optimizer)`);
    }
    const f = readSafetensors(op);
    if (f.metadata.step !== undefined && f.metadata.step !== String(step)) {
      throw new UserError(`${op}: holds the optimizer state of step ${f.metadata.step}, not of step ${step}`);
    }
    const own: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(f.tensors)) {
      if (k.startsWith('buffers.')) {
        const b = k.slice(8);
        if (!isBuffer(b)) throw new UserError(`${op}: tensor ${k}: ${b} is not a buffer of model ${model.name}`);
        if (o.resume) buffers[b] = toDtype(t, 'float64');
      } else own[k] = t;
    }
    return (state = stateFromTensors(own, opt, params, op));
  };
  const ck = { step, params, buffers } as Checkpoint;
  Object.defineProperty(ck, 'optimizer', { get: readOptimizer, enumerable: true, configurable: true });
  if (o.resume) readOptimizer();
  return ck;
}

export const evalResultSchema = z.strictObject({ loss: jsonNumber, ...outputMetricsSchema.shape });
export type EvalResult = z.infer<typeof evalResultSchema>;

/** Loss and per-output metrics on the first `evalSize` test examples, BatchNorm in eval mode. */
export function evaluate(ctx: RunContext, state: ModelState, chunk = 100): EvalResult {
  const n = Math.min(ctx.config.evalSize, ctx.test.length);
  const k = ctx.test.labelNames.length;
  const probs = new Float64Array(n * k);
  const targets = new Float64Array(n * k);
  let lossSum = 0;
  for (let s = 0; s < n; s += chunk) {
    const idx = Array.from({ length: Math.min(chunk, n - s) }, (_, i) => s + i);
    const b = batch(ctx.test, idx, ctx.config.dtype);
    const z = ctx.model.apply(state.params, b.x, evalState(state.buffers));
    lossSum += concrete(ctx.loss.perExample(z, b.t))
      .toArray()
      .reduce((a, v) => a + v, 0);
    probs.set(concrete(ctx.loss.probabilities(z)).data, s * k);
    targets.set(b.t.data, s * k);
  }
  // one-of-K targets (class labels, or one exclusive group over every output): also report argmax accuracy
  const oneOfK = ctx.test.labelKind === 'class' || (ctx.test.groups ?? []).some((g) => g.members.length === k && !g.allowNone);
  return { loss: lossSum / n, ...outputMetrics(probs, targets, n, k, oneOfK) };
}

const scratchPools = new WeakMap<RunContext, Scratch>();

/** The scratch pool of a run's training steps (dropped with the context). */
function scratchFor(ctx: RunContext): Scratch {
  let s = scratchPools.get(ctx);
  if (s === undefined) {
    s = new Scratch();
    scratchPools.set(ctx, s);
  }
  return s;
}

/**
 * Where a chain of training steps puts its parameters and optimizer state: two pools of buffers
 * (in WebAssembly memory where the wasm kernels run: the next step's kernels read the weights,
 * and the fused Adam update reads and writes the parameters and moments, in place instead of
 * copying them in and out), used alternately, so that each step reuses the buffers of the
 * checkpoint from two steps before. The contract: of the checkpoints that `trainStep` returns
 * with the same StepBuffers, only the last may be continued and only the last two read (`train`
 * keeps only the last); `trainStep` refuses to continue any other checkpoint that lives in them.
 */
export class StepBuffers {
  private readonly pools = [new Scratch(), new Scratch()];
  private turn = 0;
  private last: Vec | null = null;

  /** The pool for the outputs of a step from (params, buffers): its buffers of two steps back are given back first. */
  begin(params: Vec, buffers: Readonly<Record<string, Tensor>>): Scratch {
    if (params !== this.last) {
      for (const tree of [params, buffers]) {
        for (const [k, t] of Object.entries(tree)) {
          if (this.pools.some((p) => p.owns(t.data))) {
            throw new Error(
              `trainStep: ${k} of the given checkpoint lives in StepBuffers that a later step has reused; continue from the last checkpoint that trainStep returned with them`,
            );
          }
        }
      }
    }
    const pool = this.pools[this.turn]!;
    this.turn = 1 - this.turn;
    pool.release(0);
    return pool;
  }

  /** Record the parameters that the step just made (the only ones `begin` continues from). */
  end(params: Vec): void {
    this.last = params;
  }

  /** Give every buffer back (no checkpoint made with these buffers may be used afterwards). */
  dispose(): void {
    this.last = null;
    for (const p of this.pools) {
      p.release(0);
      p.dispose();
    }
  }
}

/**
 * One optimizer step on the minibatch of `step`; returns the new state and the batch's mean loss.
 * With `into`, the new parameters and optimizer state live in its buffers (see StepBuffers);
 * without, in fresh arrays. The results are the same either way.
 */
export function trainStep(ctx: RunContext, ck: Checkpoint, opt: OptimizerConfig, into?: StepBuffers): { next: Checkpoint; loss: number } {
  const n = ctx.config.trainSize ? Math.min(ctx.config.trainSize, ctx.train.length) : ctx.train.length;
  const b = batch(ctx.train, stepIndices(ctx.config.seed, ck.step, ctx.config.batchSize, n), ctx.config.dtype);
  const out = into?.begin(ck.params, ck.optimizer.buffers);
  const alloc = out === undefined ? undefined : (dtype: DType, size: number) => out.alloc(dtype, size, false);
  // The step's intermediates come from a pool recycled from step to step (src/engine/scratch.ts),
  // the gradients included (the update reads them there): only the loss, the new BatchNorm
  // buffers and the update's results (fresh arrays, or `into`'s buffers) leave the scope.
  const { value, params, state, updates } = withScratch(scratchFor(ctx), () => {
    const fwd = trainState(ck.buffers);
    const { x } = residentCopy({ x: b.x }); // (read by the first convolution and its filter gradient)
    const [value, grads] = valueAndGrad((p: Params) => mean(ctx.loss.perExample(ctx.model.apply(p, x, fwd), b.t)))(ck.params);
    const g: Vec = {};
    for (const [k, v] of Object.entries(grads)) g[k] = concrete(v);
    const { params, state } = optimizerStep(opt, ck.params, g, ck.optimizer, alloc);
    return { value, params, state, updates: fwd.updates };
  });
  const loss = concrete(value).item();
  if (!Number.isFinite(loss)) throw new TrainingDiverged(ck.step, `the loss is ${loss}`);
  const bad = firstNonFinite(params);
  if (bad !== undefined) throw new TrainingDiverged(ck.step, `its update made ${bad} non-finite`);
  into?.end(params);
  return { next: { step: ck.step + 1, params, buffers: { ...ck.buffers, ...updates }, optimizer: state }, loss };
}

export function freshCheckpoint(ctx: RunContext, opt: OptimizerConfig): Checkpoint {
  const params = initModel(ctx.model, ctx.config.seed, ctx.config.dtype);
  return { step: 0, params, buffers: initBuffers(ctx.model), optimizer: initOptimizerState(opt, params) };
}

/** One line of metrics.jsonl: an evaluation (and the training loss since the previous line). */
export const metricsLineSchema = z.strictObject({
  step: index,
  /** Mean training loss over the steps since the previous line (null: no step since). */
  trainLoss: z.number().nullable(),
  eval: evalResultSchema.optional(),
  seconds: jsonNumber,
});
export type MetricsLine = z.infer<typeof metricsLineSchema>;

export const RUN_FORMAT = 'lie-bracket run v1' as const;

/** run.json: the run's configuration, status and provenance, rewritten at each change of status. */
export const runFileSchema = z.strictObject({
  format: z.literal(RUN_FORMAT),
  status: z.enum(['running', 'interrupted', 'failed', 'complete']),
  config: trainConfigSchema,
  versions: z.strictObject({ lieBracket: z.string(), node: z.string() }),
  model: z.strictObject({ name: z.string(), description: z.string(), paramCount: index }),
  /** The data set's description (src/data/dataset.ts describeDataset), as given by the caller. */
  data: z.unknown().optional(),
  train: z.strictObject({ fingerprint: z.string(), length: index }),
  test: z.strictObject({ fingerprint: z.string(), length: index }),
  checkpoints: z.array(index),
  /** status 'interrupted': where it stopped. */
  interrupted: z.strictObject({ step: index, lastCheckpoint: z.number().int() }).optional(),
  /** status 'failed': where and why. */
  failure: z.strictObject({ step: index, reason: z.string(), lastCheckpoint: z.number().int() }).optional(),
  /** status 'complete'. */
  timings: z.strictObject({ seconds: jsonNumber, msPerStep: jsonNumber, resumedFrom: index.nullable() }).optional(),
  /**
   * Where the run comes from, when not from `lie-bracket train`: `source` 'imported' (by
   * `lie-bracket import`, from the checkpoints at `from`), and the settings of its training that
   * are `unknown` (config keys: optimizer, batchSize, seed, …). Their values in `config` are
   * absent from the file (the schema's defaults fill them in memory) and must not be used: a
   * consumer that needs one fails naming it (`requireKnown`).
   */
  provenance: z
    .strictObject({
      source: z.literal('imported'),
      from: z.string(),
      unknown: z.array(z.string()),
    })
    .optional(),
});
export type RunFile = z.infer<typeof runFileSchema>;
export type Provenance = NonNullable<RunFile['provenance']>;

/** What an imported run does not know about its training (docs/pytorch-runs.md). */
export const IMPORTED_UNKNOWN: readonly string[] = ['optimizer', 'batchSize', 'seed', 'trainSize'];

/**
 * Fails with a one-line UserError when `what` (e.g. "resuming training") needs settings of the run
 * that are unknown (an imported run), naming them.
 */
export function requireKnown(runDir: string, run: Pick<RunFile, 'provenance'>, fields: readonly string[], what: string): void {
  const p = run.provenance;
  if (!p) return;
  const missing = fields.filter((f) => p.unknown.includes(f));
  if (missing.length === 0) return;
  throw new UserError(
    `${what} needs the run's ${missing.join(', ')}, unknown for ${runDir}: it was imported from ${p.from} (lie-bracket import), trained elsewhere`,
  );
}

/** A run directory's run.json under its schema; a file that fails it is a one-line error naming the field. */
export function readRunFile(runDir: string): RunFile {
  return readJsonFile(runFileSchema, join(runDir, 'run.json'));
}

export interface TrainCallbacks {
  onStep?(step: number, loss: number): void;
  onEval?(line: MetricsLine): void;
}

export interface TrainSummary {
  runDir: string;
  steps: number;
  resumedFrom: number | null;
  seconds: number;
  msPerStep: number;
  final: EvalResult;
  checkpoints: number[];
}

function readMetrics(runDir: string, upTo: number): MetricsLine[] {
  const p = join(runDir, 'metrics.jsonl');
  if (!existsSync(p)) return [];
  const out: MetricsLine[] = [];
  readFileSync(p, 'utf8')
    .split('\n')
    .forEach((l, i) => {
      if (l.trim() !== '') out.push(parseJsonText(metricsLineSchema, l, `${p}:${i + 1}`));
    });
  return out.filter((m) => m.step <= upTo);
}

/** A non-finite loss or parameter at `step` (the state before that step is the last good one). */
export class TrainingDiverged extends UserError {
  constructor(
    readonly step: number,
    readonly reason: string,
  ) {
    super(`training diverged at step ${step}: ${reason}; lower the learning rate`);
  }
}

/** The first tensor of `tensors` with a non-finite entry, or undefined. */
function firstNonFinite(tensors: Record<string, Tensor>): string | undefined {
  for (const [k, t] of Object.entries(tensors)) if (!allFinite(t.data)) return k;
  return undefined;
}

/**
 * Whether every element is finite: x·0 is 0 for a finite x and NaN for ±Infinity or NaN, so the
 * sum of them is 0 exactly when all are finite. Four running sums and no branch per element:
 * 0.9 ms for the xresnet's 1.25 M float32 parameters here, against 2.2 ms for a loop of
 * Number.isFinite (run after every training step).
 */
export function allFinite(d: ArrayLike<number>): boolean {
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0;
  const n = d.length - (d.length % 4);
  let i = 0;
  for (; i < n; i += 4) {
    s0 += d[i]! * 0;
    s1 += d[i + 1]! * 0;
    s2 += d[i + 2]! * 0;
    s3 += d[i + 3]! * 0;
  }
  for (; i < d.length; i++) s0 += d[i]! * 0;
  return s0 + s1 + s2 + s3 === 0;
}

/** A stop request that `train` checks between steps (an `AbortSignal` will do). */
export interface StopSignal {
  readonly aborted: boolean;
}

/** `train` stopped at a step boundary because its signal was aborted; run.json says 'interrupted'. */
export class TrainingInterrupted extends Error {
  override readonly name = 'TrainingInterrupted';
  constructor(
    readonly runDir: string,
    /** The step reached (every step before it was taken). */
    readonly step: number,
    /** The last checkpoint on disk: where a resumed run continues. */
    readonly lastCheckpoint: number,
  ) {
    super(`interrupted at step ${step} (last checkpoint: step ${lastCheckpoint})`);
  }
}

export interface TrainOptions extends TrainCallbacks {
  resume?: boolean;
  datasetInfo?: unknown;
  /** Checked between steps: when aborted, training stops there with `TrainingInterrupted`. */
  signal?: StopSignal;
}

/** The lock file of a run directory, held while a training writes to it. */
export const TRAIN_LOCK = '.train.lock';

/**
 * The training as a generator that yields after each step (with the step reached), so that a
 * driver can hand control to the event loop between steps (`trainAsync`) or not (`train`).
 */
function* trainSteps(ctx: RunContext, runDir: string, opts: TrainOptions): Generator<number, TrainSummary, void> {
  const cfg = ctx.config;
  const opt = cfg.optimizer as OptimizerConfig;
  const schedule = checkpointSchedule(cfg);
  const evalEvery = cfg.evalEvery ?? Math.max(1, Math.round(cfg.steps / 10));
  const evalAt = new Set([...schedule, ...Array.from({ length: Math.floor(cfg.steps / evalEvery) }, (_, i) => (i + 1) * evalEvery)]);
  mkdirSync(runDir, { recursive: true });
  // one training per directory: taken before the first write, released on every way out
  const release = acquireLock(join(runDir, TRAIN_LOCK), 'training');
  try {
    mkdirSync(join(runDir, 'checkpoints'), { recursive: true });
    const t0 = performance.now();

    let ck: Checkpoint;
    let resumedFrom: number | null = null;
    let metrics: MetricsLine[] = [];
    const existing = listCheckpoints(runDir);
    if (opts.resume && existing.length > 0) {
      const prior = readRunStatus(runDir);
      if (prior) requireKnown(runDir, prior, IMPORTED_UNKNOWN, 'resuming training');
      if (prior?.status === 'failed') {
        const f = prior.failure;
        throw new UserError(
          `${runDir} failed${f ? ` at step ${f.step} (${f.reason})` : ''}; resuming it would fail the same way and other settings would not match its checkpoints: start a new run (another --out) with a lower --lr`,
        );
      }
      const last = existing[existing.length - 1]!;
      ck = loadCheckpoint(runDir, last, ctx.model, opt, cfg.dtype, { resume: true });
      resumedFrom = last;
      metrics = readMetrics(runDir, last);
    } else {
      if (existing.length > 0) throw new UserError(`${runDir} already holds a run; use --resume ${runDir} to continue it, or choose another --out`);
      ck = freshCheckpoint(ctx, opt);
    }
    const writeRun = (status: RunFile['status'], extra: Pick<RunFile, 'interrupted' | 'failure' | 'timings'> = {}) =>
      writeFileAtomic(
        join(runDir, 'run.json'),
        `${JSON.stringify({ format: RUN_FORMAT, status, config: cfg, versions: { lieBracket: VERSION, node: process.version }, model: { name: ctx.model.name, description: ctx.model.description, paramCount: Object.values(ctx.model.paramShapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0) }, data: opts.datasetInfo, train: { fingerprint: ctx.train.fingerprint(), length: ctx.train.length }, test: { fingerprint: ctx.test.fingerprint(), length: ctx.test.length }, checkpoints: schedule, ...extra } satisfies RunFile, null, 2)}\n`,
      );
    const writeMetrics = () =>
      writeFileAtomic(join(runDir, 'metrics.jsonl'), metrics.map((m) => JSON.stringify(m)).join('\n') + (metrics.length ? '\n' : ''));
    let lastSaved = resumedFrom ?? -1;
    /** Metrics first, then the checkpoint: a checkpoint's presence means its metrics are written. Nothing non-finite is saved. */
    const save = () => {
      const tensors: Record<string, Tensor> = { ...ck.params, ...ck.buffers, ...stateToTensors(ck.optimizer) };
      const bad = firstNonFinite(tensors);
      if (bad !== undefined) throw new TrainingDiverged(ck.step, `${bad} is not finite`);
      writeMetrics();
      saveCheckpoint(runDir, ctx.model, ck);
      lastSaved = ck.step;
    };
    writeRun('running');

    let lossAcc = 0;
    let lossCount = 0;
    const doEval = () => {
      const line: MetricsLine = {
        step: ck.step,
        trainLoss: lossCount ? lossAcc / lossCount : null,
        eval: evaluate(ctx, ck),
        seconds: (performance.now() - t0) / 1000,
      };
      lossAcc = 0;
      lossCount = 0;
      metrics.push(line);
      opts.onEval?.(line);
      return line;
    };
    const tLoop = performance.now();
    const startStep = ck.step;
    const stepBuffers = new StepBuffers();
    try {
      if (resumedFrom === null) {
        doEval();
        save();
      }
      while (ck.step < cfg.steps) {
        if (opts.signal?.aborted) {
          // at a step boundary: the last checkpoint (and the metrics up to it) stay the resume point
          writeRun('interrupted', { interrupted: { step: ck.step, lastCheckpoint: lastSaved } });
          throw new TrainingInterrupted(runDir, ck.step, lastSaved);
        }
        const r = trainStep(ctx, ck, opt, stepBuffers);
        ck = r.next;
        lossAcc += r.loss;
        lossCount++;
        opts.onStep?.(ck.step, r.loss);
        if (evalAt.has(ck.step)) doEval();
        if (schedule.includes(ck.step)) save();
        yield ck.step;
      }
    } catch (e) {
      if (e instanceof TrainingDiverged) {
        writeRun('failed', { failure: { step: e.step, reason: e.reason, lastCheckpoint: lastSaved } });
        throw new UserError(`${e.message}; the run is marked failed, its checkpoints up to step ${lastSaved} are kept`);
      }
      throw e;
    }
    const stepsDone = ck.step - startStep;
    const msPerStep = stepsDone > 0 ? (performance.now() - tLoop) / stepsDone : 0;
    const final = metrics[metrics.length - 1]?.eval ?? evaluate(ctx, ck);
    const seconds = (performance.now() - t0) / 1000;
    writeRun('complete', { timings: { seconds, msPerStep, resumedFrom } });
    stepBuffers.dispose(); // (the last checkpoint's memory: nothing below reads it)
    return { runDir, steps: ck.step, resumedFrom, seconds, msPerStep, final, checkpoints: schedule };
  } finally {
    release();
  }
}

/** status and failure of a run directory's run.json, or null when it has none (or it is unreadable). */
function readRunStatus(runDir: string): Pick<RunFile, 'status' | 'failure' | 'provenance'> | null {
  try {
    return readRunFile(runDir);
  } catch {
    return null;
  }
}

/**
 * Train from scratch into `runDir`, or continue a run from its last complete checkpoint
 * (`resume`). Evaluations happen at every checkpoint step and every `evalEvery` steps. The run
 * directory is locked while training (a second training into it is refused). A non-finite loss or
 * parameter stops the run ('failed' in run.json; the checkpoints before stay); an aborted
 * `signal` stops it at a step boundary with `TrainingInterrupted`.
 */
export function train(ctx: RunContext, runDir: string, opts: TrainOptions = {}): TrainSummary {
  const g = trainSteps(ctx, runDir, opts);
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

/**
 * `train`, handing control to the event loop after every step, so that a signal handler (SIGINT)
 * can abort `opts.signal` while it runs.
 */
export async function trainAsync(ctx: RunContext, runDir: string, opts: TrainOptions = {}): Promise<TrainSummary> {
  const g = trainSteps(ctx, runDir, opts);
  try {
    for (;;) {
      const r = g.next();
      if (r.done) return r.value;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    g.return(undefined as never); // releases the lock if we were left early
  }
}
