/**
 * The whole experiment in one call: train → sweep → statistics → (all-pairs matrix, swap
 * verification) → report. Every stage is resumable and reused when already finished, so running
 * the same study again continues where it stopped.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { batch } from '../data/dataset.js';
import { allPairsLogitEffects } from '../bracket/projected.js';
import { UserError } from '../errors.js';
import { runVerify, type VerifyOptions } from './verify-report.js';
import { openRun } from './run.js';
import { runSweep, type SweepResult } from './sweep.js';
import {
  configDifferences,
  formatConfigDifferences,
  lossFor,
  openConfigData,
  parseTrainConfig,
  readRunFile,
  trainAsync,
  type ConfigDifference,
  type StopSignal,
  type TrainConfig,
  type TrainSummary,
} from './train.js';
import { resolveModel } from './resolve.js';
import { describeDataset } from '../data/dataset.js';
import { readSummary, type Summary } from './sweep-stats.js';
import { readAllPairsFile, writeAllPairsFile, type AllPairsLine } from './allpairs-file.js';
import { readVerifyFile, writeVerifyFile } from './verify-file.js';

export interface StudyOptions {
  /** All pairs among the first K test examples (default 6, as the seed study), unless `pairs` is given. */
  first?: number;
  /** The sweep's pairs as test-split indices instead of all pairs among the first K (not with `first`). */
  pairs?: readonly (readonly [number, number])[];
  /** Probe batch: the first N test examples (default 32), unless `probeIndices` is given. */
  probes?: number;
  /** The probe batch as test-split indices instead of the first N (not with `probes`). */
  probeIndices?: readonly number[];
  /** Compute the N×N logit-effect matrices of the first N test examples at the last checkpoint (0: no). */
  allPairs?: number;
  /** Run the swap verification (pair 0,1 at the last checkpoint). */
  verify?: boolean;
  /** Save the sweep's bracket vectors (sweep/vectors/step-<n>.safetensors). */
  saveVectors?: boolean;
  /** Step sizes ε of the swap verification (default 1e-1, 1e-2, 1e-3, 1e-4). */
  verifyEps?: number[];
  workers?: number;
  /**
   * Runs the training stage with a stop signal (the CLI's aborts on SIGINT); an aborted training
   * stops at a step boundary with `TrainingInterrupted`.
   */
  interruptible?: <T>(fn: (signal: StopSignal) => Promise<T>) => Promise<T>;
  /**
   * Analyse the run in `runDir` as it is (ours, or one made by `lie-bracket import`) without
   * training: it must be complete, and `wanted` is ignored (the run's own configuration is used).
   */
  skipTrain?: boolean;
  /** How to name a field where the flags differ from an existing run (default: its flag). */
  differenceLabel?: (d: ConfigDifference) => string;
  /**
   * The report stage: writes the run's report and returns its path (report/report.ts's
   * writeReport; passed in, so that the pipeline does not depend on the report). Skipped when absent.
   */
  report?: (runDir: string) => string;
  onStage?: (stage: string, detail?: string) => void;
  onStep?: (step: number, loss: number) => void;
  onUnit?: (done: number, total: number) => void;
}

export interface StudyResult {
  runDir: string;
  train: TrainSummary | 'reused';
  sweep: SweepResult;
  summary: Summary | null;
  allPairs?: string;
  verify?: string;
  /** The report's path; null when no report stage was given. */
  report: string | null;
  seconds: number;
}

/** The swap verification's default step sizes. */
export const STUDY_VERIFY_EPS: readonly number[] = [1e-1, 1e-2, 1e-3, 1e-4];

export async function runStudy(wanted: TrainConfig, runDir: string, o: StudyOptions = {}): Promise<StudyResult> {
  const t0 = performance.now();
  let config = wanted;
  const stage = o.onStage ?? (() => {});
  // 1. train (or reuse / resume)
  const runJson = join(runDir, 'run.json');
  let trained: TrainSummary | 'reused' = 'reused';
  const prior = existsSync(runJson) ? readRunFile(runDir) : null;
  if (o.skipTrain) {
    if (!prior) throw new UserError(`--skip-train: ${runDir} holds no run (no run.json); train one, or bring checkpoints in with lie-bracket import`);
    if (prior.status !== 'complete') {
      throw new UserError(`--skip-train: the run in ${runDir} is ${prior.status}, not complete; resume it with lie-bracket train --resume ${runDir}`);
    }
  } else if (prior) {
    const own = parseTrainConfig(prior.config, runJson);
    const diffs = configDifferences(own, config);
    if (diffs.length > 0) {
      throw new UserError(
        `${runDir} holds a run with a different configuration: ${formatConfigDifferences(diffs, o.differenceLabel)}; rerun with the run's settings, choose another --out, or delete it`,
      );
    }
    config = own; // the same training, as the run wrote it
  }
  if (prior?.status !== 'complete') {
    stage('train', prior ? 'resuming' : undefined);
    const trainSet = openConfigData(config, 'train');
    const testSet = openConfigData(config, 'test');
    const ctx = {
      config,
      train: trainSet,
      test: testSet,
      model: resolveModel(config.model, trainSet, { batch: config.batchSize, dtype: config.dtype }),
      loss: lossFor(config, trainSet),
    };
    const run = (signal?: StopSignal) =>
      trainAsync(ctx, runDir, {
        resume: prior !== null,
        datasetInfo: { spec: config.data, train: describeDataset(trainSet), test: describeDataset(testSet) },
        onStep: o.onStep,
        signal,
      });
    trained = o.interruptible ? await o.interruptible(run) : await run();
  } else stage('train', 'reused');

  // 2. sweep + statistics (the sweep resumes by itself and writes summary.json when complete)
  stage('sweep');
  const sweep = await runSweep({
    runDir,
    ...(o.pairs !== undefined ? { pairs: o.pairs, first: o.first } : { first: o.first ?? 6 }),
    ...(o.probeIndices !== undefined ? { probeIndices: o.probeIndices, probes: o.probes } : { probes: o.probes ?? 32 }),
    saveVectors: o.saveVectors,
    workers: o.workers,
    onUnit: o.onUnit,
  });
  const summaryFile = join(sweep.out, 'summary.json');
  const summary = existsSync(summaryFile) ? readSummary(summaryFile) : null;

  const run = openRun(runDir);
  const last = run.steps[run.steps.length - 1]!;
  const result: StudyResult = { runDir, train: trained, sweep, summary, report: null, seconds: 0 };

  // 3. the all-pairs matrix at the last checkpoint
  if (o.allPairs && o.allPairs >= 2) {
    const file = join(sweep.out, 'allpairs.jsonl');
    const n = Math.min(o.allPairs, run.test.length);
    const existing = readAllPairsFile(file);
    if (!existing || existing.step !== last || existing.indices.length !== n) {
      stage('all-pairs', `N = ${n} at step ${last}`);
      const ck = run.checkpoint(last);
      const indices = Array.from({ length: n }, (_, i) => i);
      const examples = indices.map((i) => batch(run.test, [i], run.config.dtype));
      const probe = 0;
      const m = allPairsLogitEffects(run.model, run.loss, ck.params, examples, batch(run.test, [probe], run.config.dtype).x, {
        state: { training: false, buffers: ck.buffers, updates: {} },
      });
      const line: AllPairsLine = {
        step: last,
        method: m.method,
        outputs: [...run.test.labelNames],
        probe,
        indices,
        seconds: m.seconds,
        matrices: m.matrices.map((mat) => Array.from({ length: n }, (_, i) => Array.from(mat.subarray(i * n, (i + 1) * n)))),
      };
      writeAllPairsFile(file, line);
    }
    result.allPairs = file;
  }

  // 4. swap verification at the last checkpoint
  if (o.verify) {
    const file = join(runDir, 'verify.json');
    const eps = [...(o.verifyEps ?? STUDY_VERIFY_EPS)];
    const existing = readVerifyFile(file);
    if (!existing || existing.weights !== `${runDir} step ${last}` || JSON.stringify(existing.eps) !== JSON.stringify(eps)) {
      stage('verify', `pair 0,1 at step ${last}`);
      const flags: VerifyOptions = { run: runDir, step: last, pairs: [[0, 1]], eps, dtype: 'float64', seed: 0, split: 'test', bn: 'eval' };
      const r = runVerify(flags);
      writeVerifyFile(file, r);
    }
    result.verify = file;
  }

  // 5. the report
  if (o.report) {
    stage('report');
    result.report = o.report(runDir);
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
