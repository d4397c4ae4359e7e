/** Opening a finished (or running) training run for analysis: its config, model, data and checkpoints. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import type { Loss } from '../nn/losses.js';
import type { Model } from '../nn/models.js';
import type { Vec } from '../bracket/vec.js';
import { resolveModel } from './resolve.js';
import { listCheckpoints, loadCheckpoint, lossFor, openConfigData, readRunFile, type Checkpoint, type RunFile, type TrainConfig } from './train.js';

export interface Run {
  readonly dir: string;
  readonly config: TrainConfig;
  /** Its run.json as read when the run was opened (status, provenance …). */
  readonly file: RunFile;
  readonly model: Model;
  readonly loss: Loss;
  readonly train: Dataset;
  readonly test: Dataset;
  /** Steps of the complete checkpoints, ascending. */
  readonly steps: readonly number[];
  /** Parameters, BatchNorm buffers and optimizer state at a checkpoint step. */
  checkpoint(step: number): Checkpoint;
}

export function openRun(dir: string): Run {
  const runJson = join(dir, 'run.json');
  if (!existsSync(runJson)) throw new UserError(`${dir}: not a run directory (no run.json); create one with lie-bracket train --out ${dir}`);
  const file = readRunFile(dir);
  const { config } = file;
  const train = openConfigData(config, 'train');
  const test = openConfigData(config, 'test');
  const model = resolveModel(config.model, train, { batch: config.batchSize, dtype: config.dtype });
  const steps = listCheckpoints(dir);
  if (steps.length === 0) throw new UserError(`${dir}: the run has no checkpoints yet`);
  return {
    dir,
    config,
    file,
    model,
    loss: lossFor(config, train),
    train,
    test,
    steps,
    checkpoint: (step) => {
      if (!steps.includes(step)) throw new UserError(`${dir}: no checkpoint at step ${step}; available: ${steps.join(', ')}`);
      return loadCheckpoint(dir, step, model, config.optimizer, config.dtype);
    },
  };
}

export type { Vec };
