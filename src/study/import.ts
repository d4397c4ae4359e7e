/**
 * Importing a run trained elsewhere (PyTorch, typically on a GPU): state_dict checkpoints
 * (`step-<n>.safetensors`, or files with their steps) become a run directory in this tool's
 * format, so that sweep, stats and report work on it as on a run of `lie-bracket train`.
 *
 * run.json holds what is known (model, data, loss, dtype, the checkpoint steps) and, under
 * `provenance`, what is not: the optimizer and its hyper-parameters (learning rate included), the
 * batch size, the seed (initialisation and data order) and the training subset are left out of
 * `config` and listed in `provenance.unknown`; a consumer that needs one of them (resuming the
 * training, verify --optimizer run) fails naming it. Every checkpoint is validated (tensor names,
 * shapes, finite values, BatchNorm statistics: data/weights.ts loadModelState) and written as a
 * state_dict in the run's dtype (no optimizer file). The run directory appears whole or not at
 * all: it is built in a temporary directory beside it and renamed.
 */
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { describeDataset } from '../data/dataset.js';
import { mkdirOrExplain, writeFileAtomic } from '../data/atomic.js';
import { openDataset } from '../data/registry.js';
import { readSafetensors } from '../data/safetensors.js';
import { loadModelState } from '../data/weights.js';
import type { DType } from '../engine/dtype.js';
import { UserError } from '../errors.js';
import { parseWith } from '../file-schema.js';
import { resolveModel } from './resolve.js';
import { CHECKPOINT_FORMAT, checkpointPath, IMPORTED_UNKNOWN, lossFor, RUN_FORMAT, runFileSchema, writeStateDict } from './train.js';
import { VERSION } from '../version.js';

export interface ImportOptions {
  /** The run directory to create (must not exist). */
  out: string;
  /** A directory of step-<n>.safetensors files, or "a.safetensors:100,b.safetensors:200". */
  checkpoints: string;
  /** A preset name, a JSON spec file (or an inline spec), or any model resolveModel accepts. */
  model: string | Record<string, unknown>;
  data: string;
  loss?: 'bce' | 'ce' | 'grouped';
  /** The run's dtype; default: float64 when the first checkpoint's parameters are F64, else float32. */
  dtype?: DType;
  /** Called after each checkpoint is validated and written. */
  onCheckpoint?: (done: number, total: number) => void;
}

export interface ImportResult {
  runDir: string;
  from: string;
  model: string;
  paramCount: number;
  dtype: DType;
  steps: number[];
  unknown: string[];
}

export interface CheckpointFile {
  path: string;
  step: number;
}

const STEP_FILE = /^step-(.*)\.safetensors$/;

function stepOf(text: string, where: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UserError(`${where}: the step "${text}" is not a non-negative integer`);
  }
  return Number(text);
}

/**
 * The checkpoints named by `spec`: a directory's step-<n>.safetensors files (their .optim files
 * aside), or a comma-separated list of FILE:STEP (a FILE named step-<n>.safetensors may omit
 * :STEP). Ascending by step; a step given twice is an error.
 */
export function checkpointFiles(spec: string): CheckpointFile[] {
  let out: CheckpointFile[];
  const isDir = existsSync(spec) && statSync(spec).isDirectory();
  if (isDir) {
    out = [];
    for (const f of readdirSync(spec).sort()) {
      if (f.endsWith('.optim.safetensors')) continue; // this tool's optimizer state, not a state_dict
      const m = STEP_FILE.exec(f);
      if (m) out.push({ path: join(spec, f), step: stepOf(m[1]!, join(spec, f)) });
    }
    if (out.length === 0) throw new UserError(`${spec}: no step-<n>.safetensors files in this directory (e.g. step-100.safetensors)`);
  } else {
    const items = spec
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (items.length === 0) throw new UserError('--checkpoints: give a directory of step-<n>.safetensors files or FILE:STEP,FILE:STEP');
    if (items.length === 1 && !existsSync(items[0]!) && !/:[^/\\]*$/.test(items[0]!)) {
      throw new UserError(`${items[0]}: not found (--checkpoints takes a directory of step-<n>.safetensors files or FILE:STEP,FILE:STEP)`);
    }
    out = items.map((item) => {
      const i = item.lastIndexOf(':');
      if (i > 0 && !/[/\\]/.test(item.slice(i + 1))) return { path: item.slice(0, i), step: stepOf(item.slice(i + 1), item) };
      const m = STEP_FILE.exec(basename(item));
      if (!m) throw new UserError(`--checkpoints ${item}: give its training step, as ${item}:STEP`);
      return { path: item, step: stepOf(m[1]!, item) };
    });
  }
  out.sort((a, b) => a.step - b.step);
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.step === out[i - 1]!.step)
      throw new UserError(`--checkpoints: step ${out[i]!.step} is given twice (${out[i - 1]!.path}, ${out[i]!.path})`);
  }
  for (const c of out) {
    if (!existsSync(c.path)) throw new UserError(`${c.path}: checkpoint file not found`);
    if (!statSync(c.path).isFile()) throw new UserError(`${c.path}: not a file`);
  }
  return out;
}

/** Create the run directory `o.out` from checkpoints trained elsewhere (see the file comment). */
export function importRun(o: ImportOptions): ImportResult {
  const out = o.out;
  if (existsSync(out)) throw new UserError(`${out} already exists; choose another output directory, or remove it`);
  const files = checkpointFiles(o.checkpoints);
  const loss = o.loss ?? 'bce';
  const trainSet = openDataset(o.data, 'train', { loss });
  const testSet = openDataset(o.data, 'test', { loss });
  const first = readSafetensors(files[0]!.path);
  const model = resolveModel(o.model, trainSet, { batch: 1, dtype: o.dtype ?? 'float64' });
  // the dtype the parameters were saved in, unless given
  const dtype: DType = o.dtype ?? (Object.keys(model.paramShapes).some((k) => first.dtypes[k] === 'F64') ? 'float64' : 'float32');
  const steps = files.map((f) => f.step);
  const config = {
    model: o.model,
    data: o.data,
    loss,
    dtype,
    steps: steps[steps.length - 1]!,
    checkpointSteps: steps,
  };
  const from = isDirectory(o.checkpoints) ? resolve(o.checkpoints) : files.map((f) => `${resolve(f.path)}:${f.step}`).join(',');
  const paramCount = Object.values(model.paramShapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  const run = {
    format: RUN_FORMAT,
    status: 'complete',
    config,
    versions: { lieBracket: VERSION, node: process.version },
    model: { name: model.name, description: model.description, paramCount },
    data: { spec: o.data, train: describeDataset(trainSet), test: describeDataset(testSet) },
    train: { fingerprint: trainSet.fingerprint(), length: trainSet.length },
    test: { fingerprint: testSet.fingerprint(), length: testSet.length },
    checkpoints: steps,
    provenance: { source: 'imported', from, unknown: [...IMPORTED_UNKNOWN] },
  };
  // the same checks as any run.json reader (and the loss: a grouped loss needs the data's groups)
  lossFor(parseWith(runFileSchema, run, `${out}/run.json`).config, trainSet);

  const parent = dirname(resolve(out));
  mkdirOrExplain(parent);
  const tmp = join(parent, `.${basename(resolve(out))}.import-${process.pid}-${Date.now()}.tmp`);
  try {
    mkdirOrExplain(join(tmp, 'checkpoints'));
    files.forEach((f, i) => {
      const state = loadModelState(model, f.path, dtype);
      writeStateDict(checkpointPath(tmp, f.step), state, dtype, {
        format: CHECKPOINT_FORMAT,
        step: String(f.step),
        model: model.name,
        importedFrom: resolve(f.path),
      });
      o.onCheckpoint?.(i + 1, files.length);
    });
    writeFileAtomic(join(tmp, 'run.json'), `${JSON.stringify(run, null, 2)}\n`);
    if (existsSync(out)) throw new UserError(`${out} already exists; choose another output directory, or remove it`);
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { runDir: out, from, model: model.name, paramCount, dtype, steps, unknown: [...IMPORTED_UNKNOWN] };
}

function isDirectory(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}
