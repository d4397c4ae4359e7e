/**
 * Run directories for the report's tests, written to the documented schemas (not by the sweep
 * code): sweep/sweep.json, sweep/results.jsonl, sweep/summary.json, sweep/allpairs.jsonl and
 * verify.json.
 *
 * - `trainedRun`: a real 4-step training run of the mlp on the shipped data, with real brackets
 *   and probe effects (bracket/analysis.ts) at each checkpoint;
 * - `syntheticRun`: no training, made-up but well-formed numbers, any label names (for escaping),
 *   and a data set that may not open (no images).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzePairs, firstKPairs } from '../src/bracket/analysis.js';
import { openDataset } from '../src/data/registry.js';
import { Rng } from '../src/engine/random.js';
import { evalState } from '../src/nn/layers.js';
import { resolveModel } from '../src/study/resolve.js';
import { openRun } from '../src/study/run.js';
import { lossFor, parseTrainConfig, train } from '../src/study/train.js';

const jsonl = (rows: readonly unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

function writeSweep(dir: string, meta: unknown, results: readonly unknown[], summary: unknown): void {
  mkdirSync(join(dir, 'sweep'), { recursive: true });
  writeFileSync(join(dir, 'sweep', 'sweep.json'), JSON.stringify(meta, null, 2));
  writeFileSync(join(dir, 'sweep', 'results.jsonl'), jsonl(results));
  writeFileSync(join(dir, 'sweep', 'summary.json'), JSON.stringify(summary, null, 2));
}

function verifyJson(model: string, pair: [number, number]) {
  return {
    eps: [1e-1, 3e-2, 1e-2, 3e-3, 1e-3],
    relErrors: [0.41, 0.118, 0.0395, 0.0121, 0.0041],
    orders: [1.03, 1.0, 0.98, 0.99],
    kinks: [3, 0, 0, 0, 0],
    model,
    pair,
  };
}

/**
 * Train the mlp for 4 steps on the shipped Fashion-MNIST subset (bce), then bracket the first
 * `nExamples` test examples pairwise at every checkpoint with `nProbes` probes, and write the
 * sweep files, an all-pairs file (from the same numbers) and verify.json.
 */
export function trainedRun(dir: string, opts: { nExamples?: number; nProbes?: number } = {}): void {
  const nExamples = opts.nExamples ?? 5;
  const nProbes = opts.nProbes ?? 12;
  const config = parseTrainConfig(
    { model: 'mlp', loss: 'bce', steps: 4, evalSize: 200, evalEvery: 1, batchSize: 32, optimizer: { name: 'adam', lr: 3e-3 } },
    'fixture',
  );
  const trainSet = openDataset(config.data, 'train', { loss: config.loss });
  const testSet = openDataset(config.data, 'test', { loss: config.loss });
  const model = resolveModel(config.model, trainSet);
  train({ config, model, loss: lossFor(config, trainSet), train: trainSet, test: testSet }, dir);

  const run = openRun(dir);
  const pairs = firstKPairs(nExamples);
  const probeIndices = Array.from({ length: nProbes }, (_, i) => 100 + i);
  const results: unknown[] = [];
  const allpairs: unknown[] = [];
  const sizes = Object.fromEntries(Object.entries(run.model.paramShapes).map(([k, s]) => [k, s.reduce((a, b) => a * b, 1)]));
  for (const step of run.steps) {
    const ck = run.checkpoint(step);
    const a = analyzePairs(
      {
        model: run.model,
        loss: run.loss,
        dtype: run.config.dtype,
        params: ck.params,
        forward: () => evalState(ck.buffers),
        data: run.test,
        probes: run.test,
      },
      pairs,
      { probeIndices },
    );
    for (const p of a.pairs) {
      const tensors = Object.fromEntries(
        Object.entries(p.tensors).map(([k, t]) => [
          k,
          { ...t, gradRmsX: t.gradNormX / Math.sqrt(sizes[k]!), gradRmsY: t.gradNormY / Math.sqrt(sizes[k]!) },
        ]),
      );
      results.push({
        step,
        x: p.x,
        y: p.y,
        lossX: p.lossX,
        lossY: p.lossY,
        gradNormX: p.gradNormX,
        gradNormY: p.gradNormY,
        bracketNorm: p.bracketNorm,
        gradCosine: p.gradCosine,
        tensors,
        probeEffects: p.probeEffects,
      });
    }
    // the all-pairs matrices for probe 0, from the same pair effects (antisymmetric)
    const k = run.test.labelNames.length;
    const idx = Array.from({ length: nExamples }, (_, i) => i);
    const m = Array.from({ length: k }, () => idx.map(() => idx.map(() => 0)));
    for (const p of a.pairs) {
      for (let f = 0; f < k; f++) {
        const v = p.probeEffects![0]![f]!;
        m[f]![p.x]![p.y] = v;
        m[f]![p.y]![p.x] = -v;
      }
    }
    allpairs.push({ step, method: 'direct', outputs: [...run.test.labelNames], probe: probeIndices[0], indices: idx, matrices: m });
  }
  // summary.json: the overall feature ranking of docs/sweep-format.md (each pair's score averaged
  // over checkpoints, then mean, standard error and a 90% interval over pairs)
  const labels = [...run.test.labelNames];
  const perPair = pairs.map(([x, y]) => {
    const rows = results.filter((r) => (r as { x: number; y: number }).x === x && (r as { y: number }).y === y) as {
      probeEffects: number[][];
      gradNormX: number;
      gradNormY: number;
    }[];
    return labels.map(
      (_, f) => rows.reduce((a, r) => a + r.probeEffects.reduce((b, e) => b + Math.abs(e[f]!), 0) / r.probeEffects.length, 0) / rows.length,
    );
  });
  const features = labels
    .map((feature, f) => {
      const xs = perPair.map((p) => p[f]!);
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      const se = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1) / xs.length);
      return { feature, meanAbsEffect: m, stderr: se, ci90: [m - 1.645 * se, m + 1.645 * se] };
    })
    .sort((a, b) => b.meanAbsEffect - a.meanAbsEffect)
    .map((f, i) => ({ ...f, rank: i + 1 }));
  writeSweep(
    dir,
    {
      format: 'lie-bracket sweep v1',
      runDir: dir,
      model: 'mlp',
      paramCount: Object.values(sizes).reduce((a, b) => a + b, 0),
      tensors: Object.keys(sizes),
      outputs: labels,
      steps: run.steps,
      pairs,
      probeIndices,
      options: { bn: 'eval', dtype: 'float32', saveVectors: false },
      checkpoints: {},
      units: run.steps.length * pairs.length,
      shard: null,
    },
    results,
    { format: 'lie-bracket sweep summary v1', bootstrap: { samples: 0, seed: 0, level: 0.9 }, overall: { features } },
  );
  writeFileSync(join(dir, 'sweep', 'allpairs.jsonl'), jsonl(allpairs));
  writeFileSync(join(dir, 'verify.json'), JSON.stringify(verifyJson('mlp', [0, 1])));
}

export interface SyntheticOptions {
  labels: string[];
  /** The run's data spec (an unopenable one means no images and labels from run.json). */
  data?: string;
  steps?: number[];
  nExamples?: number;
  nProbes?: number;
  withAllPairs?: boolean;
  withVerify?: boolean;
  withSweep?: boolean;
  /** Extra config values (e.g. hostile strings). */
  configExtra?: Record<string, unknown>;
}

/** A run directory with made-up, well-formed numbers (no training, no checkpoints). */
export function syntheticRun(dir: string, o: SyntheticOptions): void {
  const rng = new Rng(7);
  const steps = o.steps ?? [0, 1, 2, 5];
  const nEx = o.nExamples ?? 4;
  const nProbes = o.nProbes ?? 6;
  mkdirSync(dir, { recursive: true });
  const config = {
    model: 'mlp',
    data: o.data ?? 'not-a-data-set:/nowhere',
    loss: 'bce',
    optimizer: { name: 'adam', lr: 0.001 },
    batchSize: 32,
    steps: Math.max(...steps),
    seed: 0,
    dtype: 'float32',
    evalSize: 100,
    ...o.configExtra,
  };
  writeFileSync(
    join(dir, 'run.json'),
    JSON.stringify({
      format: 'lie-bracket run v1',
      status: 'complete',
      config,
      versions: { lieBracket: '0.0.0-test', node: process.version },
      model: { name: 'mlp', description: 'fixture', paramCount: 101770 },
      data: { spec: config.data, test: { labelNames: o.labels } },
      train: { fingerprint: 'f', length: 5000 },
      test: { fingerprint: 'g', length: 1000 },
      checkpoints: steps,
    }),
  );
  writeFileSync(
    join(dir, 'metrics.jsonl'),
    jsonl(
      steps.map((s, i) => ({
        step: s,
        trainLoss: i === 0 ? null : 0.7 / (1 + i),
        eval: {
          loss: 0.7 / (1 + i * 0.8),
          accuracy: o.labels.map((_, j) => 0.5 + 0.05 * i + 0.01 * j),
          auc: o.labels.map(() => 0.5 + 0.1 * i),
          classAccuracy: 0.1 + 0.2 * i,
        },
        seconds: i,
      })),
    ),
  );
  if (o.withSweep === false) return;
  const pairs = firstKPairs(nEx);
  const probeIndices = Array.from({ length: nProbes }, (_, i) => 20 + i);
  const tensorNames = ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'];
  const sizes = [100352, 128, 1280, 10];
  const results: unknown[] = [];
  for (const step of steps) {
    for (const [x, y] of pairs) {
      const pairFactor = Math.exp(rng.normal());
      const tensors: Record<string, unknown> = {};
      let sq = 0;
      tensorNames.forEach((name, t) => {
        const gRmsX = 1e-3 * Math.exp(t + 0.3 * rng.normal());
        const gRmsY = 1e-3 * Math.exp(t + 0.3 * rng.normal());
        const bRms = pairFactor * Math.sqrt(gRmsX * gRmsY) * 0.1 * Math.exp(0.1 * rng.normal());
        const bNorm = bRms * Math.sqrt(sizes[t]!);
        sq += bNorm ** 2;
        tensors[name] = {
          bracketNorm: bNorm,
          bracketRms: bRms,
          gradNormX: gRmsX * Math.sqrt(sizes[t]!),
          gradNormY: gRmsY * Math.sqrt(sizes[t]!),
          gradRmsX: gRmsX,
          gradRmsY: gRmsY,
        };
      });
      results.push({
        step,
        x,
        y,
        lossX: 0.5,
        lossY: 0.6,
        gradNormX: 0.3,
        gradNormY: 0.4,
        bracketNorm: Math.sqrt(sq),
        gradCosine: 0.1 * rng.normal(),
        tensors,
        probeEffects: probeIndices.map(() => o.labels.map((_, f) => (1 + step) * 1e-3 * (f + 1) * rng.normal())),
      });
    }
  }
  const fit = (slope: number) => ({
    gradientFit: { n: 24, groups: 6, slope, slopeStderr: 0.01, r2: 0.987, withinR2: 0.912, residualSd: 0.1, intercepts: [], dropped: 0 },
    tensorModel: { r2: 0.975, r2Rows: 0.5, r2Cols: 0.4 },
  });
  writeSweep(dir, { format: 'lie-bracket sweep v1', run: dir, steps, pairs, probeIndices, options: { split: 'test' } }, results, {
    format: 'lie-bracket sweep summary v1',
    bootstrap: { samples: 100, seed: 0, level: 0.9 },
    checkpoints: steps.map((step, i) => ({ step, pairs: pairs.length, ...fit(1.1 + 0.01 * i), features: [] })),
    overall: {
      ...fit(1.234),
      features: [...o.labels].reverse().map((feature, i) => ({
        feature,
        rank: i + 1,
        meanAbsEffect: 1 / (i + 1),
        stderr: 0.01,
        ci90: [0.9 / (i + 1), 1.1 / (i + 1)],
        rankNormalized: i + 1,
        normalized: 0.5 / (i + 1),
      })),
    },
  });
  if (o.withAllPairs) {
    const idx = Array.from({ length: nEx }, (_, i) => i);
    const lines = steps.map((step) => ({
      step,
      method: 'projected',
      outputs: o.labels,
      probe: probeIndices[0],
      indices: idx,
      matrices: o.labels.map(() => {
        const m = idx.map(() => idx.map(() => 0));
        for (const i of idx)
          for (const j of idx)
            if (i < j) {
              const v = rng.normal() * (1 + step);
              m[i]![j] = v;
              m[j]![i] = -v;
            }
        return m;
      }),
    }));
    writeFileSync(join(dir, 'sweep', 'allpairs.jsonl'), jsonl(lines));
  }
  if (o.withVerify) writeFileSync(join(dir, 'verify.json'), JSON.stringify(verifyJson('mlp', [0, 1])));
}
