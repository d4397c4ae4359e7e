/**
 * Training figure of `npm run bench` (issue 3, point 6): median milliseconds per Adam step at batch
 * 32, float32 — `trainStep` of src/study/train.ts (with StepBuffers, as `train` runs it), i.e. minibatch assembly, a batched forward and
 * backward pass with BatchNorm in training mode, and the optimizer step — for
 *  - `convnet` on the shipped Fashion-MNIST subset (train split, one-hot targets, loss bce), and
 *  - `xresnet` (xresnetSpec: 64×64 RGB input, 40 outputs — the CelebA setup) on 32 random inputs
 *    (pixels uniform in [0, 1), targets 0/1 with probability ½, seeded), loss bce;
 * Adam with lr 1e-3, betas (0.9, 0.999), from the seeded initialisation.
 *
 * With PyTorch, scripts/torch_peer.py --train-bench times the same step (zero_grad, forward in
 * training mode, backward, Adam step; on the same --threads) of the same architecture — the reference module
 * for convnet, the JSON spec for xresnet — from the same initial weights and BatchNorm buffers, on
 * the first step's batch (lie-bracket draws a fresh minibatch each step, which costs it a little).
 *
 *   node dist/bench/train-bench.js [--quick] [--json] [--threads N] [--no-torch] [--models convnet,xresnet] [--kernels wasm|js|reference] [--profile]
 *
 * `--profile` also times the kernel calls of the steps (profileKernels) and prints the costliest
 * primitives and shapes per step — where a step's time goes, for whoever optimises next — and,
 * with threads, the calls split over them: their ms per step and how long the calling thread
 * waited for the workers' parts after its own (threadStats).
 *
 * `npm run bench` runs this file in a child process, so the steps run in a fresh process as in
 * `lie-bracket train`, with kernels that V8 has not yet specialised for the float64 arrays of the
 * bracket figures.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { batch, type Dataset } from '../data/dataset.js';
import { openDataset } from '../data/registry.js';
import { PACKAGE_ROOT } from '../paths.js';
import { writeSafetensors } from '../data/safetensors.js';
import { KERNEL_SETS, profileKernels, resetThreadStats, setKernels, threadStats, type KernelSet } from '../engine/kernels/index.js';
import { setThreads } from '../engine/kernels/threads.js';
import { Rng } from '../engine/random.js';
import { bce } from '../nn/losses.js';
import { getModel, type Model } from '../nn/models.js';
import type { OptimizerConfig } from '../nn/optim.js';
import { xresnetSpec, type ModelSpec } from '../nn/spec.js';
import { freshCheckpoint, StepBuffers, stepIndices, trainConfigSchema, trainStep, type Checkpoint, type RunContext } from '../study/train.js';

export interface TrainBenchRow {
  model: string;
  /** What the steps train on. */
  data: string;
  batch: number;
  dtype: 'float32';
  params: number;
  /** lie-bracket's kernel threads. */
  threads: number;
  /** The peer's threads (torch.set_num_threads), when it ran. */
  torchThreads?: number;
  /** Median over rounds of the median ms per Adam step over `repeats` steps (after `warmup`). */
  msPerStep: number;
  repeats: number;
  warmup: number;
  /** Rounds of ours-then-PyTorch (1 without the peer). */
  rounds: number;
  /** 1-minute load average when the row was measured (2 cores: above 2, other processes compete). */
  loadAverage: number;
  torchMsPerStep?: number;
  /** msPerStep / torchMsPerStep (lower is better). */
  ratio?: number;
  /** The ratio of each round. */
  roundRatios?: number[];
  /** With `profile`: the costliest kernel calls, ms per step by primitive and shapes. */
  profile?: { kernel: string; msPerStep: number; callsPerStep: number }[];
  /** With `profile`: ms per step in the kernels of each primitive (all shapes), and in all kernels. */
  profileByPrim?: { prim: string; msPerStep: number; callsPerStep: number }[];
  profileKernelMsPerStep?: number;
  /** With `profile`: ms per step of the profiled steps themselves (the kernels and everything between them). */
  profileStepMs?: number;
  /**
   * With `profile`: per step, the kernel calls split over threads, ms in them, ms of them that the
   * calling thread waited for the workers' parts after running its own, and how many of them it ran
   * every part of (threads.ts's threadStats).
   */
  profileThreads?: { callsPerStep: number; msPerStep: number; waitMsPerStep: number; ranAllHerePerStep: number };
  /** With `scaling` and threads > 1: the speed-up over one thread (pairedSpeedup). */
  speedup?: PairedSpeedup;
}

/**
 * The speed-up of `threads` threads over one, from steps that alternate between the two counts in
 * one process (one step at each count per pair, after an untimed step that warms the count up and
 * restarts the worker threads), so that both see the same drift in the machine's speed: the
 * median, min and max over the pairs of (1-thread ms) / (N-thread ms), and each count's median ms.
 */
export interface PairedSpeedup {
  threads: number;
  pairs: number;
  ms1: number;
  msN: number;
  median: number;
  min: number;
  max: number;
  /** 1-minute load average after the pairs (2 cores: above 2, other processes compete). */
  loadAverage: number;
}

/** A paired speed-up in words (`unit`: of the two medians). */
export function speedupText(sp: PairedSpeedup, unit = 'ms'): string {
  return `${sp.threads} threads vs 1 (${sp.pairs} alternating pairs): ${sp.ms1.toFixed(1)} → ${sp.msN.toFixed(1)} ${unit}, speed-up ${sp.median.toFixed(2)}× (pairs ${sp.min.toFixed(2)}–${sp.max.toFixed(2)}, load ${sp.loadAverage.toFixed(1)})`;
}

/** pairs × (one step at 1 thread, one at `threads`), each after an untimed one at its count; restores `threads`. */
export function pairedSpeedup(work: () => void, threads: number, pairs: number): PairedSpeedup {
  const t1: number[] = [];
  const tn: number[] = [];
  try {
    for (let i = 0; i < pairs; i++) {
      for (const [t, out] of [
        [1, t1],
        [threads, tn],
      ] as const) {
        setThreads(t);
        work();
        const t0 = performance.now();
        work();
        out.push(performance.now() - t0);
      }
    }
  } finally {
    setThreads(threads);
  }
  const ratios = t1.map((a, i) => a / tn[i]!);
  return {
    threads,
    pairs,
    ms1: median(t1),
    msN: median(tn),
    median: median(ratios),
    min: Math.min(...ratios),
    max: Math.max(...ratios),
    loadAverage: loadavg()[0] ?? 0,
  };
}

export interface TrainBenchOptions {
  quick: boolean;
  /** Run the PyTorch peer (the caller has checked that /usr/bin/python3 imports torch). */
  torch: boolean;
  /** A scratch directory for the peer's weights, inputs and spec. */
  tmpDir: string;
  /** Models to time (default convnet, xresnet). */
  models?: readonly string[];
  /** Also profile the kernel calls of `repeats` more steps. */
  profile?: boolean;
  /** Threads of both sides (lie-bracket's kernels are set by the caller; the peer's torch.set_num_threads). Default 1. */
  threads?: number;
  /** With threads > 1: also the paired speed-up over one thread (`speedup`, `repeats` pairs). */
  scaling?: boolean;
}

const BATCH = 32;
const OPT: OptimizerConfig = { name: 'adam', lr: 1e-3, betas: [0.9, 0.999] };

/** `n` examples of shape `inputShape` with pixels uniform in [0, 1) and `k` targets 0/1 (p = ½), seeded. */
export function randomDataset(inputShape: readonly [number, number, number], k: number, n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const px = inputShape[0] * inputShape[1] * inputShape[2];
  const xs = Array.from({ length: n }, () => Float32Array.from({ length: px }, () => rng.random()));
  const ys = Array.from({ length: n }, () => Float32Array.from({ length: k }, () => (rng.random() < 0.5 ? 1 : 0)));
  return {
    name: 'random',
    split: 'train',
    length: n,
    inputShape,
    labelNames: Array.from({ length: k }, (_, i) => `out${i}`),
    labelKind: 'binary',
    get: (i) => ({ x: xs[i]!, y: ys[i]! }),
    fingerprint: () => `random-${inputShape.join('x')}-${k}-${n}-${seed}`,
  };
}

interface Case {
  model: Model;
  data: string;
  train: Dataset;
  /** The JSON spec the peer builds the model from, or the reference model's name. */
  peer: { spec: ModelSpec } | { model: string };
  warmup: number;
  repeats: number;
  /** Rounds of ours-then-PyTorch when the peer runs. */
  rounds: number;
}

function makeCase(name: string, quick: boolean): Case {
  if (name === 'convnet') {
    return {
      model: getModel('convnet'),
      data: 'fashion-mnist (shipped subset, train split)',
      train: openDataset('fashion-mnist', 'train', { loss: 'bce' }),
      peer: { model: 'convnet' },
      warmup: quick ? 3 : 8,
      repeats: quick ? 10 : 40,
      rounds: quick ? 1 : 3,
    };
  }
  if (name === 'xresnet') {
    const spec = xresnetSpec({ input: [3, 64, 64], outputs: 40 });
    const model = getModel('xresnet');
    return {
      model,
      data: 'random 3×64×64 inputs, random 0/1 targets (40)',
      train: randomDataset([3, 64, 64], 40, BATCH, 0),
      peer: { spec },
      warmup: quick ? 1 : 2,
      repeats: quick ? 3 : 10,
      rounds: 1,
    };
  }
  throw new Error(`train bench: unknown model "${name}" (choose convnet, xresnet)`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Run scripts/torch_peer.py with Debian's /usr/bin/python3 (which has torch) and parse its one JSON object. */
export function runTorchPeer(args: readonly string[]): unknown {
  return JSON.parse(execFileSync('/usr/bin/python3', [join(PACKAGE_ROOT, 'scripts', 'torch_peer.py'), ...args], { encoding: 'utf8' })) as unknown;
}

/** The PyTorch peer's median ms per step for one model (its own warm-up and repeats). */
function torchPeer(name: string, c: Case, start: Checkpoint, seed: number, tmpDir: string, threads: number): number {
  const w = join(tmpDir, `train-${name}-w.safetensors`);
  const inp = join(tmpDir, `train-${name}-in.safetensors`);
  if (!existsSync(w)) {
    writeSafetensors(w, { ...start.params, ...start.buffers });
    const b = batch(c.train, stepIndices(seed, 0, BATCH, c.train.length), 'float32');
    writeSafetensors(inp, { x: b.x, t: b.t });
  }
  const modelArgs: string[] = [];
  if ('spec' in c.peer) {
    const specPath = join(tmpDir, `train-${name}-spec.json`);
    writeFileSync(specPath, JSON.stringify(c.peer.spec));
    modelArgs.push('--spec', specPath);
  } else {
    modelArgs.push('--model', c.peer.model);
  }
  const out = runTorchPeer([
    '--train-bench',
    ...modelArgs,
    '--weights',
    w,
    '--inputs',
    inp,
    '--dtype',
    'float32',
    '--batch',
    String(BATCH),
    '--lr',
    String(OPT.lr),
    '--repeats',
    String(c.repeats),
    '--warmup',
    String(c.warmup),
    '--threads',
    String(threads),
  ]);
  return (out as { trainBench: { msPerStep: number } }).trainBench.msPerStep;
}

/**
 * Time `trainStep` (and the PyTorch peer) for each model. With the peer, the two alternate in
 * `rounds` rounds (each: `repeats` steps of ours, then the peer's), so that both see the same
 * drift in the machine's load; the figures are the medians of the round medians.
 */
export function trainBench(opts: TrainBenchOptions): TrainBenchRow[] {
  const rows: TrainBenchRow[] = [];
  for (const name of opts.models ?? ['convnet', 'xresnet']) {
    const c = makeCase(name, opts.quick);
    const config = trainConfigSchema.parse({ model: name, batchSize: BATCH, dtype: 'float32', seed: 0, optimizer: OPT });
    const ctx: RunContext = { model: c.model, loss: bce, train: c.train, test: c.train, config };
    const start = freshCheckpoint(ctx, OPT);
    const bufs = new StepBuffers(); // (as `train` does: parameters and Adam state stay in wasm memory)
    let ck = start;
    for (let i = 0; i < c.warmup; i++) ck = trainStep(ctx, ck, OPT, bufs).next;
    const rounds = opts.torch ? c.rounds : 1;
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const ts: number[] = [];
      for (let i = 0; i < c.repeats; i++) {
        const t0 = performance.now();
        ck = trainStep(ctx, ck, OPT, bufs).next;
        ts.push(performance.now() - t0);
      }
      ours.push(median(ts));
      if (opts.torch) theirs.push(torchPeer(name, c, start, config.seed, opts.tmpDir, opts.threads ?? 1));
    }
    let profile: TrainBenchRow['profile'];
    let profileByPrim: TrainBenchRow['profileByPrim'];
    let profileKernelMsPerStep: number | undefined;
    let profileStepMs: number | undefined;
    let profileThreads: TrainBenchRow['profileThreads'];
    if (opts.profile) {
      resetThreadStats();
      const tp = performance.now();
      const { rows: prof } = profileKernels(() => {
        for (let i = 0; i < c.repeats; i++) ck = trainStep(ctx, ck, OPT, bufs).next;
      });
      profileStepMs = (performance.now() - tp) / c.repeats;
      const st = threadStats();
      profileThreads = {
        callsPerStep: st.calls / c.repeats,
        msPerStep: st.ms / c.repeats,
        waitMsPerStep: st.waitMs / c.repeats,
        ranAllHerePerStep: st.ranAllHere / c.repeats,
      };
      profile = prof
        .slice(0, Number(process.env['LB_PROFILE_ROWS'] ?? 15))
        .map((r) => ({ kernel: `${r.prim} ${r.shape}`, msPerStep: r.ms / c.repeats, callsPerStep: r.calls / c.repeats }));
      const byPrim = new Map<string, { prim: string; msPerStep: number; callsPerStep: number }>();
      for (const r of prof) {
        const b = byPrim.get(r.prim) ?? { prim: r.prim, msPerStep: 0, callsPerStep: 0 };
        b.msPerStep += r.ms / c.repeats;
        b.callsPerStep += r.calls / c.repeats;
        byPrim.set(r.prim, b);
      }
      profileByPrim = [...byPrim.values()].sort((a, b) => b.msPerStep - a.msPerStep);
      profileKernelMsPerStep = profileByPrim.reduce((a, r) => a + r.msPerStep, 0);
    }
    const threads = opts.threads ?? 1;
    const speedup =
      opts.scaling && threads > 1
        ? pairedSpeedup(
            () => {
              ck = trainStep(ctx, ck, OPT, bufs).next;
            },
            threads,
            c.repeats,
          )
        : undefined;
    const row: TrainBenchRow = {
      model: name,
      data: c.data,
      batch: BATCH,
      dtype: 'float32',
      params: Object.values(start.params).reduce((a, t) => a + t.size, 0),
      threads: opts.threads ?? 1,
      msPerStep: median(ours),
      repeats: c.repeats,
      warmup: c.warmup,
      rounds,
      loadAverage: loadavg()[0] ?? 0,
      ...(profile ? { profile, profileByPrim, profileKernelMsPerStep, profileStepMs, profileThreads } : {}),
      ...(speedup ? { speedup } : {}),
    };
    if (opts.torch) {
      row.torchThreads = opts.threads ?? 1;
      row.torchMsPerStep = median(theirs);
      row.ratio = row.msPerStep / row.torchMsPerStep;
      row.roundRatios = ours.map((m, i) => m / theirs[i]!);
    }
    rows.push(row);
    bufs.dispose();
  }
  return rows;
}

function main(): void {
  const args = process.argv.slice(2);
  if (args.includes('--help')) {
    process.stdout.write(
      'usage: node dist/bench/train-bench.js [--quick] [--json] [--threads N] [--no-torch] [--models convnet,xresnet] [--kernels wasm|js|reference] [--profile] [--scaling]\n' +
        'ms per Adam step (batch 32, float32), against PyTorch on the same threads when /usr/bin/python3 imports torch.\n' +
        '--scaling (with --threads N > 1): also the speed-up over 1 thread, from steps alternating between 1 and N threads in one process.\n',
    );
    return;
  }
  const flag = (f: string) => args.includes(f);
  const value = (f: string) => {
    const i = args.indexOf(f);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const kernels = value('--kernels');
  if (kernels !== undefined) {
    if (!(KERNEL_SETS as readonly string[]).includes(kernels)) throw new Error(`--kernels: expected ${KERNEL_SETS.join(', ')}, got "${kernels}"`);
    setKernels(kernels as KernelSet);
  }
  const torch = !flag('--no-torch') && spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  const tmpDir = mkdtempSync(join(tmpdir(), 'lb-train-bench-'));
  try {
    const models = value('--models')?.split(',');
    const threads = Number(value('--threads') ?? 1);
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads: expected an integer ≥ 1, got "${value('--threads')}"`);
    setThreads(threads);
    const rows = trainBench({
      quick: flag('--quick'),
      torch,
      tmpDir,
      profile: flag('--profile'),
      threads,
      scaling: flag('--scaling'),
      ...(models ? { models } : {}),
    });
    if (flag('--json')) process.stdout.write(`${JSON.stringify({ torch, rows })}\n`);
    else {
      for (const r of rows) {
        const rounds = r.roundRatios && r.roundRatios.length > 1 ? ` (rounds ${r.roundRatios.map((x) => x.toFixed(2)).join(', ')})` : '';
        console.log(
          `${r.model}: ${r.msPerStep.toFixed(1)} ms/step` +
            (r.torchMsPerStep !== undefined ? `, PyTorch ${r.torchMsPerStep.toFixed(1)} ms/step, ratio ${r.ratio!.toFixed(2)}${rounds}` : '') +
            ` (load ${r.loadAverage.toFixed(1)})`,
        );
        const sp = r.speedup;
        if (sp) console.log(`  ${speedupText(sp, 'ms/step')}`);
        for (const k of r.profile ?? []) console.log(`  ${k.msPerStep.toFixed(2).padStart(8)} ms  ×${k.callsPerStep}  ${k.kernel}`);
        if (r.profileByPrim) {
          console.log(
            `  by primitive (all kernels ${r.profileKernelMsPerStep!.toFixed(1)} ms of the profiled steps' ${r.profileStepMs!.toFixed(1)} ms):`,
          );
          for (const k of r.profileByPrim) console.log(`  ${k.msPerStep.toFixed(2).padStart(8)} ms  ×${k.callsPerStep}  ${k.prim}`);
        }
        const pt = r.profileThreads;
        if (pt && pt.callsPerStep > 0)
          console.log(
            `  split over threads: ${pt.callsPerStep.toFixed(0)} calls, ${pt.msPerStep.toFixed(1)} ms per step, of which the calling thread ` +
              `waited ${pt.waitMsPerStep.toFixed(1)} ms for workers' parts after its own; it ran every part of ${pt.ranAllHerePerStep.toFixed(1)} of them`,
          );
      }
    }
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
