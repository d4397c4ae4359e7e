/** `lie-bracket train`: train a model with checkpoints into a run directory (resumable, deterministic). */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { describeDataset } from '../data/dataset.js';
import { readFileOrExplain } from '../data/read-file.js';
import { releaseHeldLocks } from '../study/lock.js';
import { UserError } from '../errors.js';
import { parseWith } from '../file-schema.js';
import { MODELS } from '../nn/models.js';
import { resolveModel } from '../study/resolve.js';
import {
  configDifferences,
  formatConfigDifferences,
  lossFor,
  openConfigData,
  parseTrainConfig,
  runFileSchema,
  trainAsync,
  trainConfigSchema,
  TrainingInterrupted,
  type ConfigDifference,
  type StopSignal,
  type MetricsLine,
  type TrainConfig,
  type TrainSummary,
} from '../study/train.js';
import { resolveOptimizerConfig } from '../nn/optim.js';
import { commandReporter, parseIntArg, table, type ProgressTask, type Reporter } from './util.js';

export interface TrainFlags {
  config?: string;
  model?: string;
  data?: string;
  loss?: string;
  optimizer?: string;
  lr?: number;
  momentum?: number;
  beta1?: number;
  beta2?: number;
  /** Adam's ε (`--adam-eps`; `--eps` is the swap step sizes of verify). */
  adamEps?: number;
  weightDecay?: number;
  steps?: number;
  batchSize?: number;
  seed?: number;
  dtype?: string;
  checkpointEvery?: number;
  checkpointSteps?: number[];
  evalEvery?: number;
  evalSize?: number;
  trainSize?: number;
  out?: string;
  resume?: string;
  json?: boolean;
}

const parseNum = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UserError(`${name} must be a number, got "${v}"`);
  return n;
};
const parseList = (v: string) =>
  v.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0) throw new UserError(`--checkpoint-steps must be a list of steps like "0,10,100", got "${v}"`);
    return n;
  });

function readJson(path: string, what: string): Record<string, unknown> {
  if (!existsSync(path)) throw new UserError(`${path}: ${what} not found`);
  const text = new TextDecoder().decode(readFileOrExplain(path)); // a regular file (not a FIFO or device)
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`${path}: ${what} is not valid JSON (${(e as Error).message})`);
  }
}

/** `base` (a config object) with the flags on top. */
function withFlags(base: Record<string, unknown>, f: TrainFlags): Record<string, unknown> {
  const set = (k: string, v: unknown) => {
    if (v !== undefined) base[k] = v;
  };
  set('model', f.model);
  set('data', f.data);
  set('loss', f.loss);
  set('steps', f.steps);
  set('batchSize', f.batchSize);
  set('seed', f.seed);
  set('dtype', f.dtype);
  set('checkpointEvery', f.checkpointEvery);
  set('checkpointSteps', f.checkpointSteps);
  set('evalEvery', f.evalEvery);
  set('evalSize', f.evalSize);
  set('trainSize', f.trainSize);
  const opt = { ...((base.optimizer as Record<string, unknown> | undefined) ?? {}) };
  const setOpt = (k: string, v: unknown) => {
    if (v !== undefined) opt[k] = v;
  };
  setOpt('name', f.optimizer);
  setOpt('lr', f.lr);
  setOpt('momentum', f.momentum);
  setOpt('eps', f.adamEps);
  setOpt('weightDecay', f.weightDecay);
  if (f.beta1 !== undefined || f.beta2 !== undefined) {
    const betas = (opt.betas as [number, number] | undefined) ?? [0.9, 0.999];
    opt.betas = [f.beta1 ?? betas[0], f.beta2 ?? betas[1]];
  }
  if (Object.keys(opt).length > 0) base.optimizer = opt;
  return base;
}

/**
 * How to name a differing field: its flag when that flag was given, else the config key in the
 * --config file (when one was given).
 */
export function differenceLabel(f: TrainFlags): (d: ConfigDifference) => string {
  return (d) => {
    const prop = d.flag.replace(/^--/, '').replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()) as keyof TrainFlags;
    if (d.flag.startsWith('--') && f[prop] !== undefined) return d.flag;
    return f.config ? `${d.key} (in ${f.config})` : d.flag;
  };
}

/** The config: a run's own (on --resume, where flags may only repeat it), else the --config file, with flags on top. */
export function configFromFlags(f: TrainFlags): { config: TrainConfig; runDir: string; resume: boolean } {
  if (f.resume) {
    const runJson = join(f.resume, 'run.json');
    const run = readJson(runJson, 'run description (is this a run directory?)');
    const { config } = parseWith(runFileSchema, run, runJson);
    if (f.out !== undefined && resolve(f.out) !== resolve(f.resume)) {
      throw new UserError(`--out ${f.out} differs from the run directory ${f.resume}: --resume continues a run in its own directory; drop --out`);
    }
    // the run's config with --config and the flags on top must be the run's config
    const base = JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
    if (f.config) {
      const file = readJson(f.config, 'config file');
      Object.assign(base, file, { optimizer: { ...(base.optimizer as object), ...((file.optimizer as object | undefined) ?? {}) } });
    }
    const diffs = configDifferences(config, parseTrainConfig(withFlags(base, f), f.config ?? 'flags'));
    if (diffs.length > 0) {
      const steps = diffs.some((d) => d.key === 'steps')
        ? ' (a run cannot be extended: its checkpoint and evaluation schedules depend on --steps)'
        : '';
      throw new UserError(
        `${f.resume}: ${formatConfigDifferences(diffs, differenceLabel(f))}; --resume continues the run as configured${steps}: drop these flags, or train a new run with another --out`,
      );
    }
    return { config, runDir: f.resume, resume: true };
  }
  const base = withFlags(f.config ? readJson(f.config, 'config file') : {}, f);
  const config = parseTrainConfig(base, f.config ?? 'flags');
  const name = typeof config.model === 'string' ? config.model.replace(/^.*\//, '').replace(/\.json$/, '') : 'custom';
  return {
    config,
    runDir: f.out ?? join('runs', `${name}-${config.data.replace(/[^a-z0-9]+/gi, '_')}-${config.loss}-seed${config.seed}`),
    resume: false,
  };
}

/** Trains; `progress` (a bar on a terminal, lines in a log) if given. */
export async function runTrain(f: TrainFlags, progress?: Reporter, signal?: StopSignal): Promise<TrainSummary & { config: TrainConfig }> {
  const { config, runDir, resume } = configFromFlags(f);
  const trainSet = openConfigData(config, 'train');
  const testSet = openConfigData(config, 'test');
  const model = resolveModel(config.model, trainSet, { batch: config.batchSize, dtype: config.dtype });
  const loss = lossFor(config, trainSet);
  let bar: ProgressTask | undefined;
  const summary = await trainAsync({ model, loss, train: trainSet, test: testSet, config }, runDir, {
    resume,
    signal,
    datasetInfo: { spec: config.data, train: describeDataset(trainSet), test: describeDataset(testSet) },
    onStep: (step, l) => {
      if (!progress) return;
      bar ??= progress.task('train', config.steps, { unit: 'steps', start: step - 1 });
      bar.update(step, `loss ${l.toFixed(4)}`);
    },
    onEval: (line: MetricsLine) => void line,
  });
  progress?.stop();
  return { ...summary, config };
}

function formatSummary(s: TrainSummary & { config: TrainConfig }, labels: readonly string[]): string {
  const e = s.final;
  const lines = [
    `trained ${typeof s.config.model === 'string' ? s.config.model : 'custom model'} on ${s.config.data} (${s.config.loss}, ${s.config.optimizer.name} lr ${s.config.optimizer.lr}) for ${s.steps} steps${s.resumedFrom !== null ? ` (resumed from step ${s.resumedFrom})` : ''}`,
    `${s.seconds.toFixed(1)} s, ${s.msPerStep.toFixed(1)} ms/step; run directory ${s.runDir} (${s.checkpoints.length} checkpoints)`,
    `held-out loss ${e.loss.toFixed(4)}${e.classAccuracy !== undefined ? `, class accuracy ${(100 * e.classAccuracy).toFixed(1)}%` : ''}`,
    '',
    table(
      ['output', 'accuracy', 'AUC'],
      labels.map((l, i) => [l, `${(100 * e.accuracy[i]!).toFixed(1)}%`, Number.isFinite(e.auc[i]!) ? e.auc[i]!.toFixed(3) : '–']),
    ),
  ];
  return lines.join('\n');
}

/** The defaults of the training config, as the help shows them: from the schema and the optimizer, which apply them. */
export const TRAIN_DEFAULTS = trainConfigSchema.parse({});
const OPTIMIZER_DEFAULTS = {
  momentum: resolveOptimizerConfig({ name: 'momentum', lr: 1 }).momentum,
  betas: resolveOptimizerConfig({ name: 'adam', lr: 1 }).betas,
  weightDecay: resolveOptimizerConfig({ name: 'sgd', lr: 1 }).weightDecay,
  weightDecayAdamw: resolveOptimizerConfig({ name: 'adamw', lr: 1 }).weightDecay,
};
const dflt = (v: unknown) => `(default: ${typeof v === 'string' ? v : JSON.stringify(v)})`;

/**
 * Run `fn` with a stop signal that SIGINT (Ctrl-C) aborts, so that training stops at a step
 * boundary; a second SIGINT exits at once (130). The listener is removed when `fn` settles.
 */
export async function whileSigintStops<T>(fn: (signal: StopSignal) => Promise<T>): Promise<T> {
  const signal = sigintSignal;
  signal.aborted = false;
  const onSigint = () => {
    if (signal.aborted) {
      releaseHeldLocks(); // a second Ctrl-C: at once, but without leaving the run locked
      process.exit(130);
    }
    signal.aborted = true;
  };
  process.on('SIGINT', onSigint);
  try {
    return await fn(signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

const sigintSignal = { aborted: false };

/** After an interrupted training: `interrupted at step N; resume with …` on stderr, and exit 130 (main passes it through). */
export function exitInterrupted(e: TrainingInterrupted, resumeCommand: string): never {
  const msg = `interrupted at step ${e.step}; resume with ${resumeCommand}`;
  process.stderr.write(`${msg}\n`);
  throw new CommanderError(130, 'lie-bracket.interrupted', msg);
}

/** A word as a POSIX shell reads it back. */
export function shellQuote(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** The training flags, shared by `train` and `study`. */
export function addTrainOptions(cmd: Command): Command {
  const d = TRAIN_DEFAULTS;
  return cmd
    .option('--config <file>', 'JSON config (every field is also a flag; flags win)')
    .option(
      '--model <name|spec.json|model.onnx>',
      `model: ${Object.keys(MODELS).join(', ')}, a JSON model spec file, or an ONNX file (starts from its weights) ${dflt(d.model)}`,
    )
    .option('--data <spec>', `fashion-mnist (shipped subset), synthetic, celeba:<dir>, or a directory of IDX files / CelebA ${dflt(d.data)}`)
    .addOption(
      new Option('--loss <loss>', `bce (independent sigmoids), ce (softmax), grouped (softmax per exclusive group) ${dflt(d.loss)}`).choices([
        'bce',
        'ce',
        'grouped',
      ]),
    )
    .addOption(
      new Option('--optimizer <name>', `optimizer (PyTorch conventions) ${dflt(d.optimizer.name)}`).choices(['sgd', 'momentum', 'adam', 'adamw']),
    )
    .option('--lr <x>', `learning rate ${dflt(d.optimizer.lr)}`, parseNum('--lr'))
    .option('--momentum <x>', `momentum (optimizer momentum) ${dflt(OPTIMIZER_DEFAULTS.momentum)}`, parseNum('--momentum'))
    .option('--beta1 <x>', `Adam β1 ${dflt(OPTIMIZER_DEFAULTS.betas[0])}`, parseNum('--beta1'))
    .option('--beta2 <x>', `Adam β2 ${dflt(OPTIMIZER_DEFAULTS.betas[1])}`, parseNum('--beta2'))
    .option('--adam-eps <x>', `Adam ε ${dflt(resolveOptimizerConfig({ name: 'adam', lr: 1 }).eps)}`, parseNum('--adam-eps'))
    .option(
      '--weight-decay <x>',
      `weight decay (L2; decoupled for adamw) (default: ${OPTIMIZER_DEFAULTS.weightDecay}, adamw ${OPTIMIZER_DEFAULTS.weightDecayAdamw})`,
      parseNum('--weight-decay'),
    )
    .option('--steps <n>', `optimizer steps ${dflt(d.steps)}`, parseIntArg('--steps'))
    .option('--batch-size <n>', `minibatch size ${dflt(d.batchSize)}`, parseIntArg('--batch-size', 1))
    .option('--seed <n>', `seed of the init and the minibatch order ${dflt(d.seed)}`, parseIntArg('--seed'))
    .addOption(new Option('--dtype <dtype>', `float type ${dflt(d.dtype)}`).choices(['float32', 'float64']))
    .option('--checkpoint-every <n>', 'checkpoint every N steps (default: log-spaced 0,1,2,5,10,20,50,…)', parseIntArg('--checkpoint-every', 1))
    .option('--checkpoint-steps <list>', 'explicit checkpoint steps, e.g. "0,10,100"', parseList)
    .option('--eval-every <n>', 'evaluate on held-out data every M steps (default: steps/10)', parseIntArg('--eval-every', 1))
    .option('--eval-size <n>', `held-out examples to evaluate on ${dflt(d.evalSize)}`, parseIntArg('--eval-size', 1))
    .option('--train-size <n>', 'use only the first N training examples (default: all)', parseIntArg('--train-size', 1))
    .option('--out <dir>', 'run directory (default: runs/<model>-<data>-<loss>-seed<seed>)')
    .option('--resume <dir>', 'continue a run from its last complete checkpoint');
}

export function trainCommand(): Command {
  return addTrainOptions(
    new Command('train').description('train a model with checkpoints into a run directory (deterministic; resumable with --resume)'),
  )
    .option('--json', 'print a JSON summary instead of a table')
    .addOption(new Option('--eps <x>').hideHelp()) // refused: Adam's ε is --adam-eps
    .addHelpText(
      'after',
      `
Examples:
  lie-bracket train --model smoothconvnet --data fashion-mnist --loss bce --steps 300 --out runs/fm
  lie-bracket train --config study.json --lr 5e-3 --beta1 0.8          # flags override the file
  lie-bracket train --model xresnet --data synthetic --loss grouped --checkpoint-every 100 --out runs/syn
  lie-bracket train --resume runs/fm                                   # continue after a crash or Ctrl-C`,
    )
    .action(async (f: TrainFlags & { eps?: string }, c: Command) => {
      if (f.eps !== undefined) throw new UserError(`--eps is the swap step size of verify; Adam's ε is --adam-eps`);
      const progress = commandReporter(c);
      let s: Awaited<ReturnType<typeof runTrain>> | undefined;
      let stopped: TrainingInterrupted | undefined;
      try {
        s = await whileSigintStops((signal) => runTrain(f, progress, signal));
      } catch (e) {
        if (!(e instanceof TrainingInterrupted)) throw e;
        stopped = e;
      } finally {
        progress.stop();
      }
      if (stopped !== undefined || s === undefined) return exitInterrupted(stopped!, `lie-bracket train --resume ${shellQuote(stopped!.runDir)}`);
      const test = openConfigData(s.config, 'test');
      process.stdout.write(f.json ? `${JSON.stringify(s)}\n` : `${formatSummary(s, test.labelNames)}\n`);
    });
}
