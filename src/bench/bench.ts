/**
 * `npm run bench`: median milliseconds and achieved GFLOP/s of loss, grad, hvp and bracket for one
 * example (pair) on the reference nets, float32 and float64 — and, when /usr/bin/python3 can
 * import torch, the same figures from PyTorch (scripts/torch_peer.py, double backward, on --threads N threads like ours, default 1)
 * on identical weights and inputs, with the ratio lie-bracket / PyTorch (lower is better).
 * Then the training figure (train-bench.ts: ms per Adam step at batch 32, float32, convnet and
 * xresnet, with PyTorch's on the same architecture and weights) and the all-pairs figure
 * (allpairs.ts, run as a child process: N×N logit-effect matrices on the convnet).
 *   options: --quick (fewer repeats, all-pairs at N = 32), --json (one object for everything),
 *            --no-torch, --models mlp,convnet, --memory N,
 *            --kernels wasm|js|reference (default wasm: WebAssembly SIMD where available),
 *            --train-models convnet,xresnet | --no-train, --allpairs-n N | --no-allpairs,
 *            --no-xresnet (skip the xresnet float32 bracket), --threads N (both sides; default 1)
 *   `--json` prints one object whose `train` rows are {model, threads, msPerStep, torchMsPerStep,
 *   torchThreads, ratio} and `bracket` rows {model, dtype, threads, ms, torchMs, torchThreads, ratio}.
 *   With --threads N > 1, the train rows and the xresnet bracket row also have `speedup`: the
 *   speed-up over 1 thread from runs alternating between 1 and N threads in one process
 *   (train-bench.ts pairedSpeedup: median, min and max over the pairs, and the load).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bracket, modelLoss, type Example } from '../bracket/bracket.js';
import { bracketTuning } from '../bracket/parallel.js';
import { norm } from '../bracket/vec.js';
import { batch } from '../data/dataset.js';
import { batchOf } from '../data/examples.js';
import { loadFashion } from '../data/fashion.js';
import { writeSafetensors } from '../data/safetensors.js';
import type { DType } from '../engine/dtype.js';
import { activeKernels, KERNEL_SETS, measureFlops, setKernels, type KernelSet } from '../engine/kernels/index.js';
import { setThreads } from '../engine/kernels/threads.js';
import { wasmAvailable, wasmVariant } from '../engine/kernels/wasm.js';
import { Scratch, withScratch } from '../engine/scratch.js';
import { concrete, hvp, valueAndGrad } from '../engine/transforms.js';
import { Tensor } from '../engine/tensor.js';
import type { Params } from '../engine/tree.js';
import { LOSSES } from '../nn/losses.js';
import { evalState } from '../nn/layers.js';
import { getModel, initBuffers, initModel } from '../nn/models.js';
import { xresnetSpec } from '../nn/spec.js';
import { table } from '../cli/util.js';
import { pairedSpeedup, randomDataset, runTorchPeer, speedupText, type PairedSpeedup, type TrainBenchRow } from './train-bench.js';

const args = process.argv.slice(2);
if (args.includes('--help')) {
  process.stdout.write(
    [
      'usage: node dist/bench/bench.js [--quick] [--json] [--threads N] [--no-torch] [--models mlp,convnet] [--memory N]',
      '         [--kernels wasm|js|reference] [--train-models convnet,xresnet | --no-train] [--allpairs-n N | --no-allpairs] [--no-xresnet]',
      'Times loss, grad, hvp and bracket per model and dtype, the xresnet float32 bracket, training steps and all pairs,',
      'against PyTorch (scripts/torch_peer.py) on the same threads when /usr/bin/python3 imports torch.',
      '',
    ].join('\n'),
  );
  process.exit(0);
}
const flag = (f: string) => args.includes(f);
const value = (f: string) => {
  const i = args.indexOf(f);
  return i >= 0 ? args[i + 1] : undefined;
};
const QUICK = flag('--quick');
/** Threads of both sides: lie-bracket's kernels and the peer's torch.set_num_threads. */
const THREADS = Number(value('--threads') ?? 1);
if (!Number.isInteger(THREADS) || THREADS < 1) throw new Error(`--threads: expected an integer ≥ 1, got "${value('--threads')}"`);
setThreads(THREADS);
const KERNELS = value('--kernels');
if (KERNELS !== undefined) {
  if (!(KERNEL_SETS as readonly string[]).includes(KERNELS)) throw new Error(`--kernels: expected ${KERNEL_SETS.join(', ')}, got "${KERNELS}"`);
  setKernels(KERNELS as KernelSet);
}
const REPEATS = QUICK ? 10 : 40;
const WARMUP = QUICK ? 3 : 30; // enough calls for V8 to optimise the hot paths
const MODELS = (value('--models') ?? 'mlp,convnet').split(',');
const DTYPES: DType[] = ['float32', 'float64'];
const MEASURES = ['loss', 'grad', 'hvp', 'bracket'] as const;
type Measure = (typeof MEASURES)[number];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The intermediates' pool of the timed brackets, recycled from call to call as the CLI's bracket
 * and sweep do (analyzePairs, src/engine/scratch.ts).
 */
const pool = new Scratch();

function time(f: () => unknown, warmup = WARMUP, repeats = REPEATS): number {
  for (let i = 0; i < warmup; i++) f();
  const ts: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    f();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function torchAvailable(): boolean {
  if (flag('--no-torch')) return false;
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
  return r.status === 0;
}

/** A bracket figure of the JSON contract (`bracket` array). */
interface BracketRow {
  model: string;
  dtype: DType;
  threads: number;
  ms: number;
  torchMs?: number;
  torchThreads?: number;
  ratio?: number;
  /** |‖B‖ − ‖B_torch‖| / ‖B_torch‖: both sides computed the same bracket. */
  normRelDiff?: number;
  /** With --threads N > 1 (the xresnet bracket): the speed-up over 1 thread from alternating brackets (train-bench.ts pairedSpeedup). */
  speedup?: PairedSpeedup;
}

interface Row {
  model: string;
  dtype: DType;
  measure: Measure;
  ms: number;
  gflops: number;
  torchMs?: number;
  ratio?: number;
}

const data = loadFashion(undefined, 'test', { limit: 2 });
const rows: Row[] = [];
const withTorch = torchAvailable();
const tmp = mkdtempSync(join(tmpdir(), 'lb-bench-'));

for (const name of MODELS) {
  const model = getModel(name);
  for (const dtype of DTYPES) {
    const params = initModel(model, 0, dtype);
    const b = batchOf(data, [0, 1], dtype);
    const ex = (i: number): Example => batchOf(data, [i], dtype);
    const x = ex(0);
    const y = ex(1);
    const lossFn = modelLoss(model, LOSSES.bce);
    const fx = (p: Params) => lossFn(p, x);
    const gy = valueAndGrad((p: Params) => lossFn(p, y))(params)[1];
    const work: Record<Measure, () => unknown> = {
      loss: () => concrete(fx(params)),
      grad: () => valueAndGrad(fx)(params),
      hvp: () => hvp(fx, params, gy),
      bracket: () => withScratch(pool, () => bracket(lossFn, params, x, y)),
    };
    for (const m of MEASURES) {
      const flops = measureFlops(work[m]).flops;
      const ms = time(work[m]);
      rows.push({ model: name, dtype, measure: m, ms, gflops: flops / (ms * 1e6) });
    }
    if (withTorch) {
      const w = join(tmp, `${name}-${dtype}-w.safetensors`);
      const inp = join(tmp, `${name}-${dtype}-in.safetensors`);
      writeSafetensors(w, params);
      writeSafetensors(inp, { x: b.x, labels: new Tensor(Float64Array.from(b.labels), [2]) });
      const out = runTorchPeer([
        '--inputs',
        inp,
        '--weights',
        w,
        '--model',
        name,
        '--loss',
        'bce',
        '--dtype',
        dtype,
        '--pairs',
        '0,1',
        '--bench',
        '--repeats',
        String(REPEATS),
        '--warmup',
        String(WARMUP),
        '--threads',
        String(THREADS),
      ]);
      const bench = (out as { bench: Record<Measure, number> }).bench;
      for (const r of rows.filter((r) => r.model === name && r.dtype === dtype)) {
        r.torchMs = bench[r.measure];
        r.ratio = r.ms / r.torchMs;
      }
    }
  }
}

// ---- the xresnet bracket (float32, BatchNorm in eval mode as the seed study's brackets): one pair
// of random 3×64×64 inputs with 40 random 0/1 targets, against the peer's double backward on the
// same spec, weights and inputs
let xresnetBracket: BracketRow | undefined;
if (!flag('--no-xresnet')) {
  const spec = xresnetSpec({ input: [3, 64, 64], outputs: 40 });
  const model = getModel('xresnet');
  const ds = randomDataset([3, 64, 64], 40, 2, 0);
  const params = initModel(model, 0, 'float32');
  const buffers = initBuffers(model);
  const lossFn = modelLoss(model, LOSSES.bce, evalState(buffers));
  const [x, y] = [batch(ds, [0], 'float32'), batch(ds, [1], 'float32')];
  const reps = QUICK ? 3 : 10;
  const warm = 2 + 2 * bracketTuning.trials; // (past the serial and parallel trials: parallel.ts bracketTuning)
  const work = () => withScratch(pool, () => bracket(lossFn, params, x, y));
  const ours = norm(work().bracket);
  xresnetBracket = { model: 'xresnet', dtype: 'float32', threads: THREADS, ms: time(work, warm, reps) };
  if (THREADS > 1) xresnetBracket.speedup = pairedSpeedup(work, THREADS, reps);
  if (withTorch) {
    const w = join(tmp, 'xresnet-w.safetensors');
    const inp = join(tmp, 'xresnet-in.safetensors');
    const specFile = join(tmp, 'xresnet-spec.json');
    writeSafetensors(w, { ...params, ...buffers });
    const b = batch(ds, [0, 1], 'float32');
    writeSafetensors(inp, { x: b.x, t: b.t });
    writeFileSync(specFile, JSON.stringify(spec));
    const r = runTorchPeer([
      '--bracket-bench',
      '--spec',
      specFile,
      '--weights',
      w,
      '--inputs',
      inp,
      '--dtype',
      'float32',
      '--batch',
      '2',
      '--repeats',
      String(reps),
      '--warmup',
      String(warm),
      '--threads',
      String(THREADS),
    ]) as { bracketNorm: number; bracketBench: { ms: number } };
    Object.assign(xresnetBracket, {
      torchMs: r.bracketBench.ms,
      torchThreads: THREADS,
      ratio: xresnetBracket.ms / r.bracketBench.ms,
      normRelDiff: Math.abs(ours - r.bracketNorm) / r.bracketNorm,
    });
  }
}
rmSync(tmp, { recursive: true, force: true });

// ---- training: ms per Adam step (train-bench.ts, in a fresh process as `lie-bracket train` runs)
let training: TrainBenchRow[] | undefined;
if (!flag('--no-train')) {
  const script = fileURLToPath(new URL('./train-bench.js', import.meta.url));
  const models = value('--train-models');
  const extra = [
    ...(QUICK ? ['--quick'] : []),
    ...(withTorch ? [] : ['--no-torch']),
    ...(models ? ['--models', models] : []),
    ...(KERNELS !== undefined ? ['--kernels', KERNELS] : []),
    '--threads',
    String(THREADS),
    ...(THREADS > 1 ? ['--scaling'] : []),
  ];
  const out = execFileSync(process.execPath, [script, '--json', ...extra], { encoding: 'utf8', maxBuffer: 1 << 24 });
  training = (JSON.parse(out.trim().split('\n').pop()!) as { rows: TrainBenchRow[] }).rows;
}

// ---- all pairs (allpairs.ts in its own process: it times worker threads and reports load)
let allPairs: Record<string, unknown> | undefined;
if (!flag('--no-allpairs')) {
  const n = value('--allpairs-n') ?? (QUICK ? '32' : '256');
  const script = fileURLToPath(new URL('./allpairs.js', import.meta.url));
  const out = execFileSync(process.execPath, [script, '--n', n, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 });
  allPairs = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

let memory: { brackets: number; rssStartMB: number; rssEndMB: number } | undefined;
const memN = Number(value('--memory') ?? (QUICK ? 0 : 10000));
if (memN > 0) {
  // RSS over many brackets of the MLP: memory belongs to the garbage collector and must stay flat.
  const model = getModel('mlp');
  const params = initModel(model, 0, 'float32');
  const lossFn = modelLoss(model, LOSSES.bce);
  const ex = (i: number): Example => batchOf(data, [i], 'float32');
  const x = ex(0);
  const y = ex(1);
  const rss = () => process.memoryUsage().rss / 2 ** 20;
  let start = 0;
  for (let i = 0; i < memN; i++) {
    bracket(lossFn, params, x, y);
    if (i === Math.floor(memN / 10)) start = rss();
  }
  memory = { brackets: memN, rssStartMB: start, rssEndMB: rss() };
}

const kernelsLabel =
  activeKernels() === 'wasm'
    ? wasmAvailable
      ? `wasm (WebAssembly ${wasmVariant() === 'relaxed-simd' ? 'relaxed SIMD' : 'SIMD'})`
      : 'wasm (plain JS: no WebAssembly SIMD)'
    : activeKernels();

// the contract of `--json`: `train` and `bracket` rows with both sides' thread counts
const bracketRows: BracketRow[] = [
  ...rows
    .filter((r) => r.measure === 'bracket')
    .map((r) => ({
      model: r.model,
      dtype: r.dtype,
      threads: THREADS,
      ms: r.ms,
      ...(r.torchMs !== undefined ? { torchMs: r.torchMs, torchThreads: THREADS, ratio: r.ratio } : {}),
    })),
  ...(xresnetBracket ? [xresnetBracket] : []),
];
const trainRows = (training ?? []).map((r) => ({
  model: r.model,
  threads: r.threads,
  msPerStep: r.msPerStep,
  ...(r.torchMsPerStep !== undefined ? { torchMsPerStep: r.torchMsPerStep, torchThreads: r.torchThreads, ratio: r.ratio } : {}),
  ...(r.speedup ? { speedup: r.speedup } : {}),
}));

if (flag('--json')) {
  process.stdout.write(
    `${JSON.stringify({ repeats: REPEATS, warmup: WARMUP, kernels: kernelsLabel, threads: THREADS, cores: availableParallelism(), loadAverage: loadavg()[0], train: trainRows, bracket: bracketRows, rows, training, allPairs, memory })}\n`,
  );
} else {
  console.log(`lie-bracket benchmark: one example (pair), median of ${REPEATS} runs after ${WARMUP} warm-up; loss = bce; kernels: ${kernelsLabel}`);
  console.log(
    withTorch
      ? `PyTorch peer: scripts/torch_peer.py, double backward, ${THREADS} thread${THREADS > 1 ? 's' : ''} on both sides, same weights and inputs\n`
      : 'PyTorch peer: not available (/usr/bin/python3 cannot import torch)\n',
  );
  const header = ['model', 'dtype', 'measure', 'ms', 'GFLOP/s', ...(withTorch ? ['torch ms', 'ratio'] : [])];
  console.log(
    table(
      header,
      rows.map((r) => [
        r.model,
        r.dtype,
        r.measure,
        r.ms.toFixed(3),
        r.gflops.toFixed(2),
        ...(withTorch ? [r.torchMs!.toFixed(3), r.ratio!.toFixed(2)] : []),
      ]),
    ),
  );
  if (xresnetBracket) {
    const x = xresnetBracket;
    console.log(
      `\nxresnet bracket (float32, one pair of random 3×64×64 inputs, BatchNorm eval, ${x.threads} thread${x.threads > 1 ? 's' : ''}): ${x.ms.toFixed(1)} ms` +
        (x.torchMs !== undefined
          ? `; PyTorch ${x.torchMs.toFixed(1)} ms on ${x.torchThreads} thread(s), ratio ${x.ratio!.toFixed(2)} (‖B‖ agrees to ${x.normRelDiff!.toExponential(1)})`
          : '') +
        (x.speedup ? `; ${speedupText(x.speedup)}` : ''),
    );
  }
  if (training) {
    console.log(
      `\ntraining: ms per Adam step (lr 1e-3), batch 32, float32, loss bce — trainStep: minibatch, forward and backward with BatchNorm in training mode, optimizer step`,
    );
    if (withTorch)
      console.log(
        `PyTorch peer: torch_peer.py --train-bench, same architecture and initial weights, ${THREADS} thread${THREADS > 1 ? 's' : ''} on both sides, nn modules, torch.optim.Adam; rounds alternate ours and the peer, figures are medians over rounds`,
      );
    console.log('');
    console.log(
      table(
        ['model', 'params', 'data', 'steps', 'ms/step', 'load', ...(withTorch ? ['torch ms/step', 'ratio', 'ratio per round'] : [])],
        training.map((r) => [
          r.model,
          r.params.toLocaleString('en-US'),
          r.data,
          `${r.rounds > 1 ? `${r.rounds}×` : ''}${r.repeats} (+${r.warmup})`,
          r.msPerStep.toFixed(1),
          r.loadAverage.toFixed(1),
          ...(withTorch ? [r.torchMsPerStep!.toFixed(1), r.ratio!.toFixed(2), (r.roundRatios ?? []).map((x) => x.toFixed(2)).join(' ')] : []),
        ]),
      ),
    );
    for (const r of training) if (r.speedup) console.log(`${r.model}: ${speedupText(r.speedup, 'ms/step')}`);
  }
  if (allPairs) {
    const a = allPairs as {
      model: string;
      dtype: string;
      n: number;
      outputs: number;
      singleThreadSeconds: number;
      singleThreadCpuSeconds: number;
      workers?: number;
      workerSeconds?: number;
      workerCpuSeconds?: number;
      hvps: number;
      loadAverage: number;
    };
    console.log(
      `\nall pairs: ${a.n}×${a.n} logit-effect matrices (${a.outputs} outputs of 1 probe), ${a.model}, ${a.dtype}, projected (${a.hvps} HVPs)`,
    );
    console.log(
      `  single thread ${a.singleThreadSeconds.toFixed(1)} s wall (${a.singleThreadCpuSeconds.toFixed(1)} s CPU)` +
        (a.workers ? `; ${a.workers} workers ${a.workerSeconds!.toFixed(1)} s wall (${a.workerCpuSeconds!.toFixed(1)} s CPU)` : '') +
        `; load average ${a.loadAverage.toFixed(1)} on ${availableParallelism()} cores`,
    );
  }
  if (memory)
    console.log(
      `\nmemory: RSS ${memory.rssStartMB.toFixed(0)} MB after ${memory.brackets / 10} brackets, ${memory.rssEndMB.toFixed(0)} MB after ${memory.brackets} (mlp, float32)`,
    );
}
