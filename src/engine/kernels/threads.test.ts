/**
 * Intra-op parallelism (threads.ts, wasm.ts): every parallel kernel gives bit-identical results at
 * 1, 2 and 3 threads (the parts partition output elements, never a sum), on odd shapes with the
 * thresholds lowered so that every call is split, and on shapes above the default thresholds; an
 * xresnet bracket is identical across thread counts; a failing worker surfaces as a one-line
 * Error without hanging; a process using threads exits by itself; memory stays flat; the thread
 * count's default and validation.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { randn, rng } from '../../../test/kernel-inputs.js';
import { bracket, modelLoss } from '../../bracket/bracket.js';
import { bracketTuning, bracketWorkerRunning } from '../../bracket/parallel.js';
import { evalState } from '../../nn/layers.js';
import { LOSSES } from '../../nn/losses.js';
import { getModel, initBuffers, initModel } from '../../nn/models.js';
import { allocBuf, type Buf, type DType } from '../dtype.js';
import { windowOut, type ConvParams, type PoolParams } from '../prims.js';
import { Rng } from '../random.js';
import { sizeOf, type Shape } from '../shape.js';
import { Tensor } from '../tensor.js';
import {
  __injectWorkerFailure,
  defaultThreads,
  resetThreadStats,
  setThreads,
  shutdownThreads,
  threads,
  threadsRunning,
  threadStats,
  threadTuning,
} from './threads.js';
import type { KIn } from './types.js';
import { wasmKernels, wasmMemoryBytes, wasmTuning } from './wasm.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const COUNTS = [1, 2, 3];
const DEFAULT_TUNING = { ...wasmTuning };
const DEFAULT_SPIN = threadTuning.spinMicros;

/** Lower every parallel threshold to 1, so that each call is split into `threads()` parts where it can be. */
function splitEverything(): void {
  wasmTuning.parallelMinFlops = 1;
  wasmTuning.parallelMinElements = 1;
  wasmTuning.parallelMinMath = 1;
}

afterEach(() => {
  Object.assign(wasmTuning, DEFAULT_TUNING);
  setThreads(1);
});
afterAll(() => shutdownThreads());

function bytes(b: Buf): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** `f` at 1, 2 and 3 threads: bit-identical results; and the calls at 2 and 3 threads did use worker threads. */
function expectSameAtEveryCount(f: () => Buf, what: string, mustSplit = true): void {
  setThreads(1);
  const one = Buffer.from(bytes(f()));
  expect(threadsRunning()).toBe(0);
  for (const n of COUNTS.slice(1)) {
    setThreads(n);
    const r = bytes(f());
    if (!r.equals(one)) {
      const a = new Float32Array(one.buffer, one.byteOffset, one.byteLength / 4);
      const i = a.findIndex((_, k) => r.readUInt32LE(4 * k) !== one.readUInt32LE(4 * k));
      expect.fail(`${what}: ${n} threads differ from 1 thread (first differing 32-bit word ${i})`);
    }
    if (mustSplit) expect(threadsRunning(), what).toBe(n - 1);
  }
}

function call<P>(
  k: (out: Buf, outShape: Shape, inputs: readonly KIn[], params: P) => void,
  outShape: Shape,
  inputs: KIn[],
  params: P,
  dtype: DType,
): Buf {
  const out = allocBuf(dtype, sizeOf(outShape));
  out.fill(NaN); // every element must be written (or zeroed) by some part
  k(out, outShape, inputs, params);
  return out;
}

describe.each(['float32', 'float64'] as const)('every call split (thresholds lowered), %s', (dtype) => {
  it('matmul: rows of batches, columns, every storage order, the dot form and the transposing path', () => {
    splitEverything();
    const r = rng(dtype === 'float32' ? 31 : 32);
    // (rows ≥ 8·parts split by rows, else N ≥ 16·parts by columns; K ≥ 16 with transB: the dot form)
    const shapes: [number[], number, number, number][] = [
      [[], 37, 19, 23],
      [[3], 13, 9, 17],
      [[2], 29, 33, 5],
      [[], 2, 70, 20],
      [[], 1, 97, 3],
      [[4, 2], 6, 7, 40],
      [[], 64, 64, 64],
      [[], 5, 3, 2],
    ];
    for (const [batch, M, N, K] of shapes) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = randn([...batch, ...(transA ? [K, M] : [M, K])], dtype, r);
          const b = randn([...batch, ...(transB ? [N, K] : [K, N])], dtype, r);
          const p = { transA, transB };
          expectSameAtEveryCount(
            () => call(wasmKernels.matmul, [...batch, M, N], [a, b], p, dtype),
            `matmul ${JSON.stringify({ batch, M, N, K, transA, transB })}`,
            false,
          );
        }
      }
    }
  });

  it('the conv family: groups, stride, padding, dilation, batches, chunked filter gradients', () => {
    splitEverything();
    const r = rng(dtype === 'float32' ? 41 : 42);
    const pick = (xs: number[]): number => xs[Math.floor(r() * xs.length)]!;
    let done = 0;
    for (let trial = 0; done < 24 && trial < 1000; trial++) {
      const G = pick([1, 1, 2, 3, 4]);
      const Cg = pick([1, 3, 5, 8, 13]),
        Og = pick([1, 2, 5, 12, 13]);
      const KH = pick([1, 2, 3]),
        KW = pick([1, 3, 5]);
      const H = pick([3, 6, 9, 13]),
        W = pick([4, 7, 10, 17]);
      const N = pick([1, 2, 3, 5]);
      const p: ConvParams = {
        stride: [pick([1, 1, 2]), pick([1, 1, 2])],
        padding: [pick([0, 1, 2]), pick([0, 1])],
        dilation: [pick([1, 1, 2]), pick([1, 2])],
        groups: G,
      };
      if (trial % 5 === 0) Object.assign(p, { stride: [1, 1], padding: [0, 0] });
      const OH = windowOut(H, KH, p.stride[0], p.padding[0], p.dilation[0]);
      const OW = windowOut(W, KW, p.stride[1], p.padding[1], p.dilation[1]);
      if (OH < 1 || OW < 1) continue;
      done++;
      const C = G * Cg,
        O = G * Og;
      const x = randn([N, C, H, W], dtype, r);
      const w = randn([O, Cg, KH, KW], dtype, r);
      const dy = randn([N, O, OH, OW], dtype, r);
      const what = JSON.stringify({ N, C, O, H, W, KH, KW, p });
      wasmTuning.filterGradChunk = trial % 3 === 0 ? 1 : DEFAULT_TUNING.filterGradChunk; // per = 1 or all images
      expectSameAtEveryCount(() => call(wasmKernels.conv2d, [N, O, OH, OW], [x, w], p, dtype), `conv2d ${what}`, false);
      const pi = { ...p, inputShape: [N, C, H, W] };
      const pf = { ...p, filterShape: [O, Cg, KH, KW] };
      expectSameAtEveryCount(() => call(wasmKernels.conv2d_input_grad, [N, C, H, W], [dy, w], pi, dtype), `conv2d_input_grad ${what}`, false);
      expectSameAtEveryCount(() => call(wasmKernels.conv2d_filter_grad, [O, Cg, KH, KW], [x, dy], pf, dtype), `conv2d_filter_grad ${what}`, false);
    }
    expect(done).toBe(24);
  });

  it('max-pooling and its scatter, by planes', () => {
    splitEverything();
    const r = rng(dtype === 'float32' ? 51 : 52);
    const pools: PoolParams[] = [
      { kernel: [2, 2], stride: [2, 2], padding: [0, 0] },
      { kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
      { kernel: [3, 2], stride: [3, 2], padding: [1, 0] },
    ];
    for (const p of pools) {
      for (const [N, C, H, W] of [
        [1, 1, 9, 8],
        [2, 3, 9, 13],
        [3, 5, 16, 16],
      ] as const) {
        const OH = windowOut(H, p.kernel[0], p.stride[0], p.padding[0], 1);
        const OW = windowOut(W, p.kernel[1], p.stride[1], p.padding[1], 1);
        const x = randn([N, C, H, W], dtype, r);
        const dy = randn([N, C, OH, OW], dtype, r);
        const what = JSON.stringify({ N, C, H, W, p });
        expectSameAtEveryCount(() => call(wasmKernels.maxpool2d, [N, C, OH, OW], [x, x], p, dtype), `maxpool2d ${what}`, false);
        const ps = { ...p, inputShape: [N, C, H, W] };
        expectSameAtEveryCount(() => call(wasmKernels.maxpool2d_scatter, [N, C, H, W], [x, dy], ps, dtype), `maxpool2d_scatter ${what}`, false);
      }
    }
  });

  it('the elementwise kernels, by contiguous ranges', () => {
    splitEverything();
    const r = rng(dtype === 'float32' ? 61 : 62);
    for (const n of [1031, 60013]) {
      const a = randn([n], dtype, r);
      const b = randn([n], dtype, r);
      const pos = { data: a.data.map(Math.abs), shape: a.shape };
      const shape = [n];
      const k = wasmKernels;
      const cases: [string, () => Buf][] = [
        ['add', () => call(k.add, shape, [a, b], {}, dtype)],
        ['sub', () => call(k.sub, shape, [a, b], {}, dtype)],
        ['mul', () => call(k.mul, shape, [a, b], {}, dtype)],
        ['div', () => call(k.div, shape, [a, b], {}, dtype)],
        ['max', () => call(k.max, shape, [a, b], {}, dtype)],
        ['min', () => call(k.min, shape, [a, b], {}, dtype)],
        ['compare', () => call(k.compare, shape, [a, b], { op: 'gt' }, dtype)],
        ['select', () => call(k.select, shape, [a, a, b], {}, dtype)],
        ['neg', () => call(k.neg, shape, [a], {}, dtype)],
        ['abs', () => call(k.abs, shape, [a], {}, dtype)],
        ['sqrt', () => call(k.sqrt, shape, [pos], {}, dtype)],
        ['pow 2', () => call(k.pow, shape, [a], { exponent: 2 }, dtype)],
        ['exp', () => call(k.exp, shape, [a], {}, dtype)],
        ['log', () => call(k.log, shape, [pos], {}, dtype)],
        ['log1p', () => call(k.log1p, shape, [pos], {}, dtype)],
        ['tanh', () => call(k.tanh, shape, [a], {}, dtype)],
        ['mish', () => call(k.mish, shape, [a], {}, dtype)],
        ['mish_grad', () => call(k.mish_grad, shape, [a], {}, dtype)],
        ['mish_vjp', () => call(k.mish_vjp, shape, [a, b], {}, dtype)],
      ];
      // (float64 exp … mish_vjp are the reference's JS loops: single-threaded, checked all the same)
      const jsOnly = new Set(['exp', 'log', 'log1p', 'tanh', 'mish', 'mish_grad', 'mish_vjp']);
      for (const [name, f] of cases) expectSameAtEveryCount(f, `${name} n=${n}`, dtype === 'float32' || !jsOnly.has(name));
    }
  });
});

describe('default thresholds: calls above them are split, results identical', () => {
  it('matmul, the conv family, pooling and elementwise at xresnet-like sizes (float32)', () => {
    const r = rng(71);
    const dtype = 'float32';
    const a = randn([256, 288], dtype, r);
    const b = randn([288, 512], dtype, r);
    expectSameAtEveryCount(() => call(wasmKernels.matmul, [256, 512], [a, b], { transA: false, transB: false }, dtype), 'matmul 256×288·288×512');
    const p: ConvParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    for (const N of [1, 4]) {
      const x = randn([N, 32, 32, 32], dtype, r);
      const w = randn([32, 32, 3, 3], dtype, r);
      const dy = randn([N, 32, 32, 32], dtype, r);
      expectSameAtEveryCount(() => call(wasmKernels.conv2d, [N, 32, 32, 32], [x, w], p, dtype), `conv2d N=${N}`);
      const pi = { ...p, inputShape: [N, 32, 32, 32] };
      const pf = { ...p, filterShape: [32, 32, 3, 3] };
      expectSameAtEveryCount(() => call(wasmKernels.conv2d_input_grad, [N, 32, 32, 32], [dy, w], pi, dtype), `conv2d_input_grad N=${N}`);
      expectSameAtEveryCount(() => call(wasmKernels.conv2d_filter_grad, [32, 32, 3, 3], [x, dy], pf, dtype), `conv2d_filter_grad N=${N}`);
    }
    const x = randn([8, 32, 64, 64], dtype, r);
    const pool: PoolParams = { kernel: [2, 2], stride: [2, 2], padding: [0, 0] };
    const dy = randn([8, 32, 32, 32], dtype, r);
    expectSameAtEveryCount(() => call(wasmKernels.maxpool2d, [8, 32, 32, 32], [x, x], pool, dtype), 'maxpool2d');
    const ps = { ...pool, inputShape: [8, 32, 64, 64] };
    expectSameAtEveryCount(() => call(wasmKernels.maxpool2d_scatter, [8, 32, 64, 64], [x, dy], ps, dtype), 'maxpool2d_scatter');
    const n = 1 << 20;
    const u = randn([n], dtype, r);
    const v = randn([n], dtype, r);
    expectSameAtEveryCount(() => call(wasmKernels.mul, [n], [u, v], {}, dtype), 'mul 1 Mi');
    expectSameAtEveryCount(() => call(wasmKernels.mish, [n], [u], {}, dtype), 'mish 1 Mi');
  });

  it('workers that sleep between calls (spinMicros 1, gaps of 20 ms) or poll (1 s) still wake for each call, with the same results', () => {
    const r = rng(73);
    const a = randn([128, 96], 'float32', r);
    const b = randn([96, 160], 'float32', r);
    const mm = () => call(wasmKernels.matmul, [128, 160], [a, b], { transA: false, transB: false }, 'float32');
    splitEverything();
    setThreads(1);
    const one = Buffer.from(bytes(mm()));
    setThreads(2);
    const nap = new Int32Array(new SharedArrayBuffer(4));
    try {
      for (const spin of [1, 1_000_000]) {
        threadTuning.spinMicros = spin;
        for (let i = 0; i < 4; i++) {
          Atomics.wait(nap, 0, 0, 20); // (idle long enough for a worker with a 1 µs poll to be asleep)
          expect(bytes(mm()).equals(one), `spinMicros ${spin}, call ${i}`).toBe(true);
        }
        expect(threadsRunning()).toBe(1);
      }
      // a part that only a worker may take (the test hook makes the caller wait for a worker's
      // claim) after a nap: it hangs unless the sleeping worker wakes
      threadTuning.spinMicros = 1;
      mm();
      Atomics.wait(nap, 0, 0, 20);
      __injectWorkerFailure('throw');
      expect(mm).toThrow(/kernel worker thread 1 failed: Error: injected failure/);
    } finally {
      threadTuning.spinMicros = DEFAULT_SPIN;
    }
  });

  it('small calls stay on the calling thread (no worker is started for them)', () => {
    setThreads(1);
    shutdownThreads();
    setThreads(2);
    const r = rng(72);
    const a = randn([16, 16], 'float32', r);
    call(wasmKernels.matmul, [16, 16], [a, a], { transA: false, transB: false }, 'float32');
    const u = randn([2000], 'float32', r);
    call(wasmKernels.add, [2000], [u, u], {}, 'float32');
    expect(threadsRunning()).toBe(0);
  });

  it('threadStats counts the split calls only: their time, the wait after the own parts, and calls run wholly here', () => {
    const r = rng(73);
    const a = randn([256, 256], 'float32', r); // 2·256³ flops: split at the default threshold
    const mm = (): Buf => call(wasmKernels.matmul, [256, 256], [a, a], { transA: false, transB: false }, 'float32');
    setThreads(1);
    resetThreadStats();
    mm();
    expect(threadStats()).toEqual({ calls: 0, ms: 0, waitMs: 0, ranAllHere: 0 });
    setThreads(2);
    mm();
    mm();
    const st = threadStats();
    expect(st.calls).toBe(2);
    expect(st.ms).toBeGreaterThan(0);
    expect(st.waitMs).toBeGreaterThanOrEqual(0);
    expect(st.waitMs).toBeLessThanOrEqual(st.ms);
    expect(st.ranAllHere).toBeGreaterThanOrEqual(0);
    expect(st.ranAllHere).toBeLessThanOrEqual(2);
    resetThreadStats();
    expect(threadStats().calls).toBe(0);
  });
});

describe('a whole computation', () => {
  it('an xresnet bracket (float32, 3×64×64, BatchNorm eval) is bit-identical at 1, 2 and 3 threads', () => {
    const model = getModel('xresnet');
    const params = initModel(model, 0, 'float32');
    const lossFn = modelLoss(model, LOSSES.bce, evalState(initBuffers(model)));
    const rg = new Rng(3);
    const ex = () => ({
      x: rg.normalTensor([1, ...model.inputShape], 'float32'),
      t: new Tensor(
        Float32Array.from({ length: model.numOutputs }, (_, i) => i % 2),
        [1, model.numOutputs],
      ),
    });
    const x = ex(),
      y = ex();
    const flat = (): Buffer => {
      const b = bracket(lossFn, params, x, y).bracket;
      return Buffer.concat(
        Object.keys(b)
          .sort()
          .map((k) => Buffer.from(bytes(b[k]!.data))),
      );
    };
    setThreads(1);
    const one = flat();
    const mode = bracketTuning.mode;
    bracketTuning.mode = 'always'; // (not after timed trials: in halves from the first bracket)
    onTestFinished(() => {
      bracketTuning.mode = mode;
    });
    for (const n of [2, 3]) {
      setThreads(n);
      expect(flat().equals(one), `${n} threads`).toBe(true);
      // the halves of the bracket at once (src/bracket/parallel.ts): here on ⌈n/2⌉ kernel threads
      // (the pool keeps n − 1 workers once started), y's on a second engine instance
      expect(bracketWorkerRunning()).toBe(true);
      expect(threadsRunning()).toBe(n === 2 ? 0 : n - 1);
    }
  }, 60_000);
});

describe('failures', () => {
  const big = (): Buf => {
    const r = rng(81);
    const a = randn([256, 256], 'float32', r); // 33 Mflop: above the default threshold
    return call(wasmKernels.matmul, [256, 256], [a, a], { transA: false, transB: false }, 'float32');
  };

  it('a worker that throws surfaces as a one-line Error in the caller, and the next call works', () => {
    setThreads(2);
    const good = Buffer.from(bytes(big()));
    __injectWorkerFailure('throw');
    let err: unknown;
    try {
      big();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^kernel worker thread 1 failed: Error: injected failure \(test hook\)$/);
    expect(msg).not.toContain('\n');
    expect(bytes(big()).equals(good)).toBe(true); // a fresh pool
    expect(threadsRunning()).toBe(1);
  });

  it('a worker that exits during a call surfaces as an Error (no hang), and the next call works', () => {
    setThreads(3);
    const good = Buffer.from(bytes(big()));
    __injectWorkerFailure('exit');
    expect(() => big()).toThrow(/^kernel worker thread \d exited during a kernel call/);
    expect(bytes(big()).equals(good)).toBe(true);
    expect(threadsRunning()).toBe(2);
  });
});

describe('memory', () => {
  it('stays flat over repeated parallel brackets (wasm memory and RSS after warm-up)', () => {
    splitEverything();
    setThreads(2);
    const mode = bracketTuning.mode;
    bracketTuning.mode = 'always'; // (the convnet's bracket is small: in halves all the same)
    onTestFinished(() => {
      bracketTuning.mode = mode;
    });
    const model = getModel('convnet');
    const params = initModel(model, 0, 'float32');
    const lossFn = modelLoss(model, LOSSES.bce);
    const rg = new Rng(4);
    const ex = () => ({
      x: rg.normalTensor([1, ...model.inputShape], 'float32'),
      t: new Tensor(
        Float32Array.from({ length: model.numOutputs }, (_, i) => (i === 3 ? 1 : 0)),
        [1, model.numOutputs],
      ),
    });
    const x = ex(),
      y = ex();
    const gc = (globalThis as { gc?: () => void }).gc;
    const rss = (): number => {
      gc?.();
      return process.memoryUsage().rss / 2 ** 20;
    };
    for (let i = 0; i < 50; i++) bracket(lossFn, params, x, y);
    const mem0 = wasmMemoryBytes();
    const rss0 = rss();
    for (let i = 0; i < 300; i++) bracket(lossFn, params, x, y);
    expect(wasmMemoryBytes()).toBe(mem0);
    expect(rss() - rss0).toBeLessThan(30);
    expect(bracketWorkerRunning()).toBe(true); // (the halves at once; each on one kernel thread)
  }, 60_000);
});

describe('the thread count', () => {
  it('setThreads validates its argument; 1 stops the workers', () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity]) expect(() => setThreads(bad)).toThrow(/^setThreads: expected an integer ≥ 1/);
    setThreads(2);
    splitEverything();
    const u = randn([4096], 'float32', rng(91));
    call(wasmKernels.add, [4096], [u, u], {}, 'float32');
    expect(threads()).toBe(2);
    expect(threadsRunning()).toBe(1);
    setThreads(1);
    expect(threadsRunning()).toBe(0);
    call(wasmKernels.add, [4096], [u, u], {}, 'float32');
    expect(threadsRunning()).toBe(0);
  });

  it('defaults to LIE_BRACKET_THREADS (validated) or all available cores', () => {
    const saved = process.env.LIE_BRACKET_THREADS;
    try {
      delete process.env.LIE_BRACKET_THREADS;
      expect(defaultThreads()).toBe(availableParallelism());
      process.env.LIE_BRACKET_THREADS = '3';
      expect(defaultThreads()).toBe(3);
      for (const bad of ['0', 'two', '1.5', '-2', '3x']) {
        process.env.LIE_BRACKET_THREADS = bad;
        expect(() => defaultThreads()).toThrow(new RegExp(`^LIE_BRACKET_THREADS: expected an integer ≥ 1, got "${bad.replace('.', '\\.')}"$`));
      }
    } finally {
      if (saved === undefined) delete process.env.LIE_BRACKET_THREADS;
      else process.env.LIE_BRACKET_THREADS = saved;
    }
  });
});

/** src/engine transpiled to JavaScript in a temporary directory (for child processes and worker threads, which cannot load TypeScript). */
function transpiledEngine(): string {
  const out = mkdtempSync(join(tmpdir(), 'lb-threads-'));
  const src = join(ROOT, 'src', 'engine');
  const walk = (dir: string): void => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.as.ts') && !f.endsWith('.d.ts')) {
        const js = ts.transpileModule(readFileSync(p, 'utf8'), {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
        }).outputText;
        const dst = join(out, 'engine', relative(src, p)).replace(/\.ts$/, '.js');
        mkdirSync(dirname(dst), { recursive: true });
        writeFileSync(dst, js);
      }
    }
  };
  walk(src);
  writeFileSync(join(out, 'package.json'), '{"type":"module"}');
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'), 'dir'); // the engine's dependencies (erf's kernel)
  return out;
}

describe('processes', () => {
  it('a process that used 2 threads exits by itself, promptly; inside a worker thread the default is 1', () => {
    const dir = transpiledEngine();
    try {
      const script = `
        import { Worker } from 'node:worker_threads';
        const t = await import('./engine/kernels/threads.js');
        const { wasmKernels } = await import('./engine/kernels/wasm.js');
        t.setThreads(2);
        const n = 256, a = new Float32Array(n * n).map((_, i) => Math.sin(i));
        const out = new Float32Array(n * n);
        wasmKernels.matmul(out, [n, n], [{ data: a, shape: [n, n] }, { data: a, shape: [n, n] }], { transA: false, transB: false });
        const url = new URL('./engine/kernels/threads.js', import.meta.url).href;
        const inWorker = await new Promise((res, rej) => {
          const w = new Worker("import(" + JSON.stringify(url) + ").then((t) => require('node:worker_threads').parentPort.postMessage(t.defaultThreads()))",
            { eval: true, env: { ...process.env, LIE_BRACKET_THREADS: '4' } });
          w.once('message', res); w.once('error', rej);
        });
        console.log(JSON.stringify({ running: t.threadsRunning(), inWorker, sum: out.reduce((s, v) => s + v, 0) }));
      `;
      writeFileSync(join(dir, 'child.mjs'), script);
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [join(dir, 'child.mjs')], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
      const ms = Date.now() - t0;
      expect(r.error).toBeUndefined();
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const res = JSON.parse(r.stdout.trim()) as { running: number; inWorker: number; sum: number };
      expect(res.running).toBe(1);
      expect(res.inWorker).toBe(1);
      expect(Number.isFinite(res.sum)).toBe(true);
      expect(ms).toBeLessThan(10_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
