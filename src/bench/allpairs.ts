/**
 * All-pairs benchmark (issue 4, point 4): the N×N logit-effect matrices J_f(z)_k·B_ij for N = 256
 * examples of the shipped Fashion-MNIST test split (the first 256), the 10 outputs of 1 probe (test
 * example 256), on the reference convnet at seeded init 0, float32, loss bce — by the projected
 * algorithm (N·10 HVPs and 10 matrix products). Target: ≤ 60 s on 2 cores.
 *
 *   node dist/bench/allpairs.js [--n 256] [--workers K] [--dtype float32|float64] [--model convnet] [--json]
 *
 * Prints the single-thread time, then (when K > 1, default: the machine's cores, at most 8) the
 * time with K worker threads. The work splits by direction: each worker takes every example for
 * its share of the 10 directions, so it gets the gradients g_j for free from its own HVPs, forms
 * its matrices itself and sends back only N×N numbers per direction. Both runs must give the same
 * matrices (checked).
 */
import { availableParallelism, loadavg } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { modelLoss, type Example } from '../bracket/bracket.js';
import { allPairsLogitEffects, layout, probeDirections, projectedBrackets } from '../bracket/projected.js';
import type { Vec } from '../bracket/vec.js';
import { batchOf } from '../data/examples.js';
import { loadFashion } from '../data/fashion.js';
import { allocBuf, type Buf, type DType } from '../engine/dtype.js';
import { Tensor } from '../engine/tensor.js';
import { LOSSES } from '../nn/losses.js';
import { getModel, initModel } from '../nn/models.js';
import { setThreads } from '../engine/kernels/threads.js';

interface Setup {
  model: string;
  dtype: DType;
  n: number;
  probe: number;
}

interface WorkerInput {
  setup: Setup;
  /** This worker's directions, flattened in parameter order (param dtype). */
  directions: Buf[];
}

/** Everything both threads need, rebuilt deterministically from the setup (data, seeded init). */
function build(s: Setup) {
  const model = getModel(s.model);
  const params = initModel(model, 0, s.dtype);
  const data = loadFashion(undefined, 'test', { limit: Math.max(s.n, s.probe + 1) });
  const examples: Example[] = Array.from({ length: s.n }, (_, i) => batchOf(data, [i], s.dtype));
  const z = batchOf(data, [s.probe], s.dtype).x;
  return { model, params, examples, z, lossFn: modelLoss(model, LOSSES.bce) };
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

function unflatten(flat: Buf, like: Vec): Vec {
  const out: Vec = {};
  let o = 0;
  for (const [k, t] of Object.entries(like)) {
    out[k] = new Tensor(flat.slice(o, o + t.size), t.shape);
    o += t.size;
  }
  return out;
}

if (!isMainThread) {
  const input = workerData as WorkerInput;
  const { params, examples, lossFn } = build(input.setup);
  const dirs = input.directions.map((d) => unflatten(d, params));
  const r = projectedBrackets(lossFn, params, examples, dirs, { method: 'projected' });
  parentPort!.postMessage(
    r.matrices,
    r.matrices.map((m) => m.buffer as ArrayBuffer),
  );
} else {
  await main();
}

async function parallel(s: Setup, k: number): Promise<{ matrices: Float64Array[]; seconds: number }> {
  const t0 = performance.now();
  const { model, params, z } = build(s);
  const { keys, size, dtype } = layout(params);
  const dirs = probeDirections(model, params, z).map((d) => {
    const b = allocBuf(dtype, size);
    let o = 0;
    for (const key of keys) {
      b.set(d[key]!.data, o);
      o += d[key]!.size;
    }
    return b;
  });
  // contiguous shares of the directions, one per worker
  const nw = Math.min(k, dirs.length);
  const shares = Array.from({ length: nw }, (_, w) => dirs.slice(Math.floor((w * dirs.length) / nw), Math.floor(((w + 1) * dirs.length) / nw)));
  const results = await Promise.all(
    shares.map(
      (directions) =>
        new Promise<Float64Array[]>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: { setup: s, directions } satisfies WorkerInput });
          w.once('message', (m: Float64Array[]) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  return { matrices: results.flat(), seconds: (performance.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (f: string) => {
    const i = args.indexOf(f);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const n = Number(value('--n') ?? 256);
  const dtype = (value('--dtype') ?? 'float32') as DType;
  const setup: Setup = { model: value('--model') ?? 'convnet', dtype, n, probe: n };
  const workers = Number(value('--workers') ?? Math.min(8, availableParallelism()));
  setThreads(1); // this bench compares one thread with worker threads over the matrix rows
  const json = args.includes('--json');
  const log = (s: string) => {
    if (!json) process.stdout.write(`${s}\n`);
  };

  const { model, params, examples, z } = build(setup);
  log(
    `all-pairs logit effects: ${model.name} (${layout(params).size.toLocaleString('en-US')} parameters), ${dtype}, N = ${n} examples of the Fashion-MNIST test split, 1 probe × ${model.numOutputs} outputs`,
  );
  const cpu0 = process.cpuUsage();
  const single = allPairsLogitEffects(model, LOSSES.bce, params, examples, z, { method: 'projected' });
  const singleCpu = cpuSeconds(cpu0);
  log(
    `single thread: ${single.seconds.toFixed(1)} s wall, ${singleCpu.toFixed(1)} s CPU (${single.counts.hvps} HVPs, projected; estimate in HVP-equivalents: projected ${single.cost.projected.toFixed(0)}, direct ${single.cost.direct.toFixed(0)})`,
  );
  const report: Record<string, unknown> = {
    model: model.name,
    dtype,
    n,
    outputs: model.numOutputs,
    probes: 1,
    singleThreadSeconds: single.seconds,
    singleThreadCpuSeconds: singleCpu,
    loadAverage: loadavg()[0] ?? 0,
    hvps: single.counts.hvps,
    cost: single.cost,
    cores: availableParallelism(),
  };
  if (workers > 1) {
    const cpu1 = process.cpuUsage();
    const par = await parallel(setup, workers);
    const parCpu = cpuSeconds(cpu1);
    let diff = 0;
    let scale = 0;
    par.matrices.forEach((m, d) =>
      m.forEach((v, i) => {
        diff = Math.max(diff, Math.abs(v - single.matrices[d]![i]!));
        scale = Math.max(scale, Math.abs(v));
      }),
    );
    log(
      `${workers} worker threads: ${par.seconds.toFixed(1)} s wall, ${parCpu.toFixed(1)} s CPU in all threads (max difference from single thread ${(diff / scale).toExponential(1)} relative)`,
    );
    Object.assign(report, { workers, workerSeconds: par.seconds, workerCpuSeconds: parCpu, maxRelativeDifference: diff / scale });
  }
  const load = loadavg()[0] ?? 0;
  if (load > availableParallelism())
    log(`(note: load average ${load.toFixed(1)} on ${availableParallelism()} cores — other processes compete; the CPU times are the better guide)`);
  let big = 0;
  for (const m of single.matrices) for (const v of m) big = Math.max(big, Math.abs(v));
  report.maxAbsEffect = big;
  log(`largest |J_f(z)_k·B_ij|: ${big.toExponential(3)}`);
  if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
}
