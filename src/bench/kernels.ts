/**
 * Micro-benchmark of the linear-algebra kernels of the three kernel sets: reference
 * (linalg_ref.ts), js (js.ts, plain JS) and wasm (wasm.ts, WebAssembly SIMD) on the shapes of the reference convnet and MLP, in
 * float32 and float64.
 *
 *   npm run build && node dist/bench/kernels.js [--batch 1,8] [--quick]
 *   node dist/bench/kernels.js --peak-threads N   the SIMD peak of 1 and of N worker threads at once (are the cores real?)
 *   npx tsx src/bench/kernels.ts [--batch 1,8] [--quick]      (tsx is not a dependency)
 *
 * Prints the median time per call over several samples and the rate in GFLOP/s (2 flops per
 * multiply-add of the mathematical operation, whatever the kernel does internally). Each call
 * includes zero-filling the output buffer, which the kernel contract guarantees.
 */
import { allocBuf, type Buf, type DType } from '../engine/dtype.js';
import { kernelOutput, Scratch, withScratch } from '../engine/scratch.js';
import { setThreads, threads } from '../engine/kernels/index.js';
import { jsKernels } from '../engine/kernels/js.js';
import { linalgReference } from '../engine/kernels/linalg_ref.js';
import type { KIn } from '../engine/kernels/types.js';
import { wasmAvailable, wasmSimdPeakGflops, wasmVariant, wasmKernels } from '../engine/kernels/wasm.js';
import { windowOut, type ConvParams, type PoolParams } from '../engine/prims.js';
import { sizeOf, type Shape } from '../engine/shape.js';
import { Worker } from 'node:worker_threads';

type Table = typeof linalgReference;

interface Case {
  readonly name: string;
  readonly flops: number; // 0: report time only
  /** Returns a closure that runs the kernel of `table` once on prepared data. */
  readonly prepare: (table: Table, dtype: DType) => () => void;
}

let seed = 12345;
function rand(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296 - 0.5;
}

function randIn(shape: Shape, dtype: DType): KIn {
  const data = allocBuf(dtype, sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = rand();
  return { data, shape };
}

let sink = 0; // keeps results observable
function consume(b: Buf): void {
  sink += b[0]! + b[b.length - 1]!;
}

function convCases(label: string, B: number, C: number, H: number, O: number, k: number, pad: number): Case[] {
  const p: ConvParams = { stride: [1, 1], padding: [pad, pad], dilation: [1, 1], groups: 1 };
  const OH = windowOut(H, k, 1, pad);
  const xs: Shape = [B, C, H, H],
    ws: Shape = [O, C, k, k],
    ys: Shape = [B, O, OH, OH];
  const flops = 2 * B * O * OH * OH * C * k * k;
  return [
    {
      name: `${label} conv2d`,
      flops,
      prepare: (t, dt) => {
        const x = randIn(xs, dt),
          w = randIn(ws, dt);
        const out = allocBuf(dt, sizeOf(ys));
        return () => {
          out.fill(0);
          t.conv2d(out, ys, [x, w], p);
          consume(out);
        };
      },
    },
    {
      name: `${label} input_grad`,
      flops,
      prepare: (t, dt) => {
        const dy = randIn(ys, dt),
          w = randIn(ws, dt);
        const q = { ...p, inputShape: xs };
        const out = allocBuf(dt, sizeOf(xs));
        return () => {
          out.fill(0);
          t.conv2d_input_grad(out, xs, [dy, w], q);
          consume(out);
        };
      },
    },
    {
      name: `${label} filter_grad`,
      flops,
      prepare: (t, dt) => {
        const x = randIn(xs, dt),
          dy = randIn(ys, dt);
        const q = { ...p, filterShape: ws };
        const out = allocBuf(dt, sizeOf(ws));
        return () => {
          out.fill(0);
          t.conv2d_filter_grad(out, ws, [x, dy], q);
          consume(out);
        };
      },
    },
  ];
}

function poolCases(label: string, B: number, C: number, H: number): Case[] {
  const p: PoolParams = { kernel: [2, 2], stride: [2, 2], padding: [0, 0] };
  const xs: Shape = [B, C, H, H],
    ys: Shape = [B, C, H / 2, H / 2];
  return [
    {
      name: `${label} maxpool2d`,
      flops: 0,
      prepare: (t, dt) => {
        const x = randIn(xs, dt);
        const out = allocBuf(dt, sizeOf(ys));
        return () => {
          out.fill(0);
          t.maxpool2d(out, ys, [x, x], p);
          consume(out);
        };
      },
    },
    {
      name: `${label} maxpool2d_scatter`,
      flops: 0,
      prepare: (t, dt) => {
        const x = randIn(xs, dt),
          dy = randIn(ys, dt);
        const q = { ...p, inputShape: xs };
        const out = allocBuf(dt, sizeOf(xs));
        return () => {
          out.fill(0);
          t.maxpool2d_scatter(out, xs, [x, dy], q);
          consume(out);
        };
      },
    },
  ];
}

/** [M, K] · [K, N] in one storage order; `what` says what it is in the network. */
function matmulCase(what: string, M: number, N: number, K: number, transA: boolean, transB: boolean): Case {
  const as: Shape = transA ? [K, M] : [M, K];
  const bs: Shape = transB ? [N, K] : [K, N];
  const tag = `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`;
  return {
    name: `${what} ${M}×${K}·${K}×${N} ${tag}`,
    flops: 2 * M * N * K,
    prepare: (t, dt) => {
      const a = randIn(as, dt),
        b = randIn(bs, dt);
      const p = { transA, transB };
      const out = allocBuf(dt, M * N);
      return () => {
        out.fill(0);
        t.matmul(out, [M, N], [a, b], p);
        consume(out);
      };
    },
  };
}

function cases(B: number): Case[] {
  return [
    ...convCases(`conv1 B${B} 1→16 28²`, B, 1, 28, 16, 3, 1),
    ...convCases(`conv2 B${B} 16→32 14²`, B, 16, 14, 32, 3, 1),
    ...poolCases(`pool1 B${B} 16×28²`, B, 16, 28),
    ...poolCases(`pool2 B${B} 32×14²`, B, 32, 14),
    matmulCase('fc 1568→10 fwd', B, 10, 1568, false, true),
    matmulCase('mlp1 fwd', B, 128, 784, false, true), // x · Wᵀ
    matmulCase('mlp1 dx', B, 784, 128, false, false), // dy · W
    matmulCase('mlp1 dW', 128, 784, B, true, false), // dyᵀ · x
    matmulCase('mlp1 TT', 128, 784, B, true, true),
    matmulCase('mlp2 fwd', B, 10, 128, false, true),
  ];
}

/** Median ms per call: samples of ≥ `minMs` each, after a warm-up. */
function time(f: () => void, samples: number, minMs: number): number {
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) f();
    const dt = performance.now() - t0;
    if (dt >= minMs) break;
    reps = Math.min(reps * 2 * Math.ceil(minMs / Math.max(dt, 0.01) / 2), reps * 64);
  }
  const out: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) f();
    out.push((performance.now() - t0) / reps);
  }
  out.sort((a, b) => a - b);
  return out[Math.floor(out.length / 2)]!;
}

function fmt(x: number, w: number, digits = 3): string {
  return x.toFixed(digits).padStart(w);
}

/**
 * The float32 SIMD multiply-add peak of each of `n` worker threads running it at the same time
 * (best of 5 rounds each): on a machine whose cores are real, every thread keeps the one-thread rate.
 */
async function peakThreads(n: number): Promise<number[]> {
  const wasmUrl = new URL('../engine/kernels/wasm.js', import.meta.url).href;
  const code = `const { parentPort } = require('node:worker_threads');
import(${JSON.stringify(wasmUrl)}).then((m) => parentPort.postMessage(m.wasmSimdPeakGflops(20000000, 5)));`;
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(code, { eval: true });
          w.once('message', (g: number) => {
            resolve(g);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
}

function main(): void {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const bi = args.indexOf('--batch');
  const batches = bi >= 0 && args[bi + 1] ? args[bi + 1]!.split(',').map(Number) : [1, 8];
  const samples = quick ? 3 : 7;
  const minMs = quick ? 10 : 40;
  console.log(`node ${process.version}; median of ${samples} samples; GFLOP/s = 2·MACs / time`);
  console.log(
    `js = js.ts (plain JS); wasm = wasm.ts (WebAssembly ${wasmVariant() === 'relaxed-simd' ? 'relaxed SIMD' : 'SIMD'}${wasmAvailable ? '' : ': NOT AVAILABLE, these are the js kernels'})`,
  );
  console.log(
    `${'case'.padEnd(38)} ${'dtype'.padEnd(7)} ${'ref ms'.padStart(9)} ${'js ms'.padStart(9)} ${'wasm ms'.padStart(9)} ${'ref GF/s'.padStart(9)} ${'js GF/s'.padStart(9)} ${'wasm GF/s'.padStart(9)} ${'wasm/js'.padStart(8)}`,
  );
  // Warm-up: run every kernel on every shape first, so that the measurements below see code
  // that V8 has already optimised for all the shapes and dtypes (the steady state of a run).
  const warm = (f: () => void): void => {
    const t0 = performance.now();
    do f();
    while (performance.now() - t0 < (quick ? 5 : 20));
  };
  for (const B of batches) {
    for (const c of cases(B)) {
      for (const dt of ['float32', 'float64'] as const) {
        warm(c.prepare(linalgReference, dt));
        warm(c.prepare(jsKernels, dt));
        warm(c.prepare(wasmKernels, dt));
      }
    }
  }
  for (const B of batches) {
    for (const c of cases(B)) {
      for (const dt of ['float32', 'float64'] as const) {
        const tr = time(c.prepare(linalgReference, dt), samples, minMs);
        const tf = time(c.prepare(jsKernels, dt), samples, minMs);
        const tw = time(c.prepare(wasmKernels, dt), samples, minMs);
        const gf = (t: number): string => (c.flops ? fmt(c.flops / t / 1e6, 9, 2) : '-'.padStart(9));
        console.log(
          `${c.name.padEnd(38)} ${dt.padEnd(7)} ${fmt(tr, 9)} ${fmt(tf, 9)} ${fmt(tw, 9)} ${gf(tr)} ${gf(tf)} ${gf(tw)} ${fmt(tf / tw, 7, 1)}×`,
        );
      }
    }
  }
  // The xresnet training step's hottest conv shapes (batch 32, float32; train-bench --profile),
  // in the wasm kernels only, against the SIMD multiply-add peak of one thread.
  const before = threads();
  setThreads(1);
  const peak = wasmSimdPeakGflops();
  console.log(
    `\nxresnet step, batch 32, float32, wasm, 1 thread; SIMD peak ${peak.toFixed(1)} GFLOP/s (12 independent f32x4 multiply-adds in registers)`,
  );
  console.log(`${'case'.padEnd(38)} ${'ms'.padStart(9)} ${'GFLOP/s'.padStart(9)} ${'of peak'.padStart(8)}`);
  const hot = [
    ...convCases('stem B32 16→32 32²', 32, 16, 32, 32, 3, 1),
    ...convCases('stem B32 32→32 32²', 32, 32, 32, 32, 3, 1),
    ...convCases('stage1 B32 32→32 16²', 32, 32, 16, 32, 3, 1),
    ...convCases('stage4 B32 256→256 2²', 32, 256, 2, 256, 3, 1),
  ];
  for (const c of hot) {
    const f = c.prepare(wasmKernels, 'float32');
    warm(f);
    const t = time(f, samples, minMs);
    const gf = c.flops / t / 1e6;
    console.log(`${c.name.padEnd(38)} ${fmt(t, 9)} ${fmt(gf, 9, 2)} ${fmt((100 * gf) / peak, 7, 0)}%`);
  }
  // Resident buffers (scratch-pool buffers in the wasm memory, used in place) against plain arrays
  // (copied in and out at every call): a float32 multiply of 1 M elements, 1 thread.
  const n = 1 << 20;
  const plain = [randIn([n], 'float32'), randIn([n], 'float32')];
  const outPlain = allocBuf('float32', n);
  const pool = new Scratch();
  const [resident, copied] = withScratch(pool, () => {
    const a = kernelOutput('float32', n, false);
    const b = kernelOutput('float32', n, false);
    const o = kernelOutput('float32', n, false);
    a.set(plain[0]!.data);
    b.set(plain[1]!.data);
    const ins = [
      { data: a, shape: [n] },
      { data: b, shape: [n] },
    ];
    const fr = () => wasmKernels.mul(o, [n], ins, {});
    const fp = () => wasmKernels.mul(outPlain, [n], plain, {});
    warm(fr);
    warm(fp);
    return [time(fr, samples, minMs), time(fp, samples, minMs)];
  });
  pool.dispose();
  console.log(
    `\nfloat32 mul of 1 M elements, 1 thread: resident buffers ${fmt(resident, 6)} ms, plain arrays (copied in and out) ${fmt(copied, 6)} ms`,
  );
  setThreads(before);
  if (sink === 0.123456789) console.log(sink);
}

const pi = process.argv.indexOf('--peak-threads');
if (pi >= 0) {
  const n = Number(process.argv[pi + 1]);
  if (!Number.isInteger(n) || n < 1) {
    console.error('kernels: --peak-threads needs a positive integer');
    process.exit(2);
  }
  for (const k of [1, n, 1, n]) {
    const g = await peakThreads(k);
    console.log(`${k} thread${k > 1 ? 's' : ''} at once: ${g.map((v) => v.toFixed(1)).join(', ')} GFLOP/s each`);
  }
} else {
  main();
}
