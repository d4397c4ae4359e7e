/** `lie-bracket train`: train a model with checkpoints into a run directory (resumable, deterministic). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { describeDataset } from '../data/dataset.js';
import { openDataset } from '../data/registry.js';
import { UserError } from '../errors.js';
import { MODELS } from '../nn/models.js';
import { resolveModel } from '../study/resolve.js';
import { lossFor, parseTrainConfig, train, type MetricsLine, type TrainConfig, type TrainSummary } from '../study/train.js';
import { parseIntArg, table } from './util.js';

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
  eps?: number;
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
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`${path}: ${what} is not valid JSON (${(e as Error).message})`);
  }
}

/** The config: a run's own (on --resume), else the --config file, with flags on top. */
export function configFromFlags(f: TrainFlags): { config: TrainConfig; runDir: string; resume: boolean } {
  if (f.resume) {
    const run = readJson(join(f.resume, 'run.json'), 'run description (is this a run directory?)');
    return { config: parseTrainConfig(run.config, join(f.resume, 'run.json')), runDir: f.resume, resume: true };
  }
  const base: Record<string, unknown> = f.config ? readJson(f.config, 'config file') : {};
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
  setOpt('eps', f.eps);
  setOpt('weightDecay', f.weightDecay);
  if (f.beta1 !== undefined || f.beta2 !== undefined) {
    const betas = (opt.betas as [number, number] | undefined) ?? [0.9, 0.999];
    opt.betas = [f.beta1 ?? betas[0], f.beta2 ?? betas[1]];
  }
  if (Object.keys(opt).length > 0) base.optimizer = opt;
  const config = parseTrainConfig(base, f.config ?? 'flags');
  const name = typeof config.model === 'string' ? config.model.replace(/^.*\//, '').replace(/\.json$/, '') : 'custom';
  return { config, runDir: f.out ?? join('runs', `${name}-${config.data.replace(/[^a-z0-9]+/gi, '_')}-${config.loss}-seed${config.seed}`), resume: false };
}

export function runTrain(f: TrainFlags, progress = false): TrainSummary & { config: TrainConfig } {
  const { config, runDir, resume } = configFromFlags(f);
  const trainSet = openDataset(config.data, 'train', { loss: config.loss });
  const testSet = openDataset(config.data, 'test', { loss: config.loss });
  const model = resolveModel(config.model, trainSet);
  const loss = lossFor(config, trainSet);
  let bar: cliProgress.SingleBar | undefined;
  let last = 0;
  if (progress && process.stderr.isTTY) {
    bar = new cliProgress.SingleBar(
      { format: 'train [{bar}] {value}/{total} | loss {loss} | {speed} steps/s | eta {eta_formatted}', stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
  }
  const t0 = performance.now();
  const summary = train({ model, loss, train: trainSet, test: testSet, config }, runDir, {
    resume,
    datasetInfo: { spec: config.data, train: describeDataset(trainSet), test: describeDataset(testSet) },
    onStep: (step, l) => {
      if (!bar) return;
      if (last === 0) bar.start(config.steps, step - 1, { loss: l.toFixed(4), speed: '…' });
      last = step;
      bar.update(step, { loss: l.toFixed(4), speed: (step / ((performance.now() - t0) / 1000)).toFixed(1) });
    },
    onEval: (line: MetricsLine) => void line,
  });
  bar?.stop();
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

/** The training flags, shared by `train` and `study`. */
export function addTrainOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'JSON config (every field is also a flag; flags win)')
    .option('--model <name|spec.json>', `model: ${Object.keys(MODELS).join(', ')}, or a JSON model spec file`)
    .option('--data <spec>', 'fashion-mnist (shipped subset), synthetic, celeba:<dir>, or a directory of IDX files / CelebA')
    .addOption(new Option('--loss <loss>', 'bce (independent sigmoids), ce (softmax), grouped (softmax per exclusive group)').choices(['bce', 'ce', 'grouped']))
    .addOption(new Option('--optimizer <name>', 'optimizer (PyTorch conventions)').choices(['sgd', 'momentum', 'adam', 'adamw']))
    .option('--lr <x>', 'learning rate', parseNum('--lr'))
    .option('--momentum <x>', 'momentum (optimizer momentum)', parseNum('--momentum'))
    .option('--beta1 <x>', 'Adam β1', parseNum('--beta1'))
    .option('--beta2 <x>', 'Adam β2', parseNum('--beta2'))
    .option('--eps <x>', 'Adam ε', parseNum('--eps'))
    .option('--weight-decay <x>', 'weight decay (L2; decoupled for adamw)', parseNum('--weight-decay'))
    .option('--steps <n>', 'optimizer steps (default 300)', parseIntArg('--steps'))
    .option('--batch-size <n>', 'minibatch size (default 32)', parseIntArg('--batch-size', 1))
    .option('--seed <n>', 'seed of the init and the minibatch order (default 0)', parseIntArg('--seed'))
    .addOption(new Option('--dtype <dtype>', 'float type (default float32)').choices(['float32', 'float64']))
    .option('--checkpoint-every <n>', 'checkpoint every N steps (default: log-spaced 0,1,2,5,10,20,50,…)', parseIntArg('--checkpoint-every', 1))
    .option('--checkpoint-steps <list>', 'explicit checkpoint steps, e.g. "0,10,100"', parseList)
    .option('--eval-every <n>', 'evaluate on held-out data every M steps (default steps/10)', parseIntArg('--eval-every', 1))
    .option('--eval-size <n>', 'held-out examples to evaluate on (default 500)', parseIntArg('--eval-size', 1))
    .option('--train-size <n>', 'use only the first N training examples', parseIntArg('--train-size', 1))
    .option('--out <dir>', 'run directory (default runs/<model>-<data>-<loss>-seed<seed>)')
    .option('--resume <dir>', 'continue a run from its last complete checkpoint');
}

export function trainCommand(): Command {
  return addTrainOptions(new Command('train').description('train a model with checkpoints into a run directory (deterministic; resumable with --resume)'))
    .option('--json', 'print a JSON summary instead of a table')
    .addHelpText(
      'after',
      `
Examples:
  lie-bracket train --model smoothconvnet --data fashion-mnist --loss bce --steps 300 --out runs/fm
  lie-bracket train --config study.json --lr 5e-3 --beta1 0.8          # flags override the file
  lie-bracket train --model xresnet --data synthetic --loss grouped --checkpoint-every 100 --out runs/syn
  lie-bracket train --resume runs/fm                                   # continue after a crash or Ctrl-C`,
    )
    .action((f: TrainFlags) => {
      const s = runTrain(f, !f.json);
      const test = openDataset(s.config.data, 'test', { loss: s.config.loss });
      process.stdout.write(f.json ? `${JSON.stringify(s)}\n` : `${formatSummary(s, test.labelNames)}\n`);
    });
}
