/**
 * A bracket's two halves at once. [v_x, v_y] = H_y g_x − H_x g_y needs, per example, a gradient
 * recorded for a second backward pass and then one backward pass along the other example's
 * gradient (half.ts). With threads() = T ≥ 2, x's half runs here on ⌈T/2⌉ kernel threads while a
 * second engine instance in a worker thread (bracket-worker.ts, one per process, started at the
 * first parallel bracket) runs y's half on ⌊T/2⌋:
 *
 *   here:    record x's gradient ── send g_x ── wait for g_y ── H_x g_y ── wait for H_y g_x ── B
 *   worker:  record y's gradient ── send g_y ── wait for g_x ── H_y g_x ── send it
 *
 * A bracket of one example pair is too small to split each kernel call well over threads (the
 * calls last 0.1–1 ms), while the halves share nothing until their gradients are known.
 *
 * Results are bit-identical to the serial bracket (bracket.ts) at every thread count: the worker
 * builds the same model and loss again from their recipes (nn/recipe.ts), applies this thread's
 * engine settings (kernel set, wasm build, tuning knobs: kernels/index.ts engineSettings), and
 * computes exactly what the serial path computes for y. Used only where that holds: a loss from
 * `modelLoss`/`meanModelLoss` of a model and loss that carry recipes, concrete tensors, BatchNorm
 * not in batch-statistics training mode (whose running-statistics updates belong to this
 * thread's state), and no kernel hook (profiling counts this thread's calls). Anything else runs
 * serially, with the same result.
 *
 * The exchange is synchronous, as the engine is: messages go over a MessagePort, read here and
 * there with receiveMessageOnPort, and each side wakes the other through a shared Int32Array
 * (Atomics.wait/notify), so neither side's event loop has to run. The worker never hangs the
 * caller: it reports whatever it throws as a message, and its own exit handler (and the 'exit'
 * event, where this thread's loop runs) marks it dead, which the caller checks between bounded
 * waits. A failure on this side stops the worker (the next parallel bracket starts a fresh one).
 * The worker is unref()'d: it never keeps the process alive.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { engineSettings, threads, withThreadLimit, type EngineSettings } from '../engine/kernels/index.js';
import { newWorker, POLL_MS, START_MS, threadTuning } from '../engine/kernels/threads.js';
import type { DType } from '../engine/dtype.js';
import { Tensor } from '../engine/tensor.js';
import { residentCopy } from '../engine/scratch.js';
import { concrete } from '../engine/transforms.js';
import type { Params } from '../engine/tree.js';
import { UserError } from '../errors.js';
import { lossRecipe, modelRecipe, type LossRecipe, type ModelRecipe } from '../nn/recipe.js';
import type { Model } from '../nn/models.js';
import type { BracketResult } from './bracket.js';
import { asVec, bracketHalf, bracketOf, modelLossParts, type Example, type LossFn } from './half.js';
import type { Vec } from './vec.js';

// ---------------------------------------------------------------------------------------------
// the exchange (shared with bracket-worker.ts)

/**
 * Where a tensor lies in the exchange buffer, a SharedArrayBuffer of both threads that carries
 * every tensor of a request: the parameters, buffers and y's input and target (written here),
 * g_x (here), g_y and H_y g_x (there). Messages carry only the layout and small values, so a
 * bracket allocates nothing per call for its exchange.
 */
export interface Slot {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Bytes from the start of the exchange buffer (a multiple of 8). */
  readonly offset: number;
}

export interface Layout {
  readonly params: readonly Slot[];
  readonly buffers: readonly Slot[];
  readonly x: Slot;
  readonly t: Slot;
  readonly gradX: readonly Slot[];
  readonly gradY: readonly Slot[];
  readonly hvp: readonly Slot[];
  readonly bytes: number;
}

export type ToWorker =
  | {
      type: 'half';
      id: number;
      /** This thread's id of the model; `recipe` comes with the first request that names it. */
      model: number;
      recipe?: ModelRecipe;
      loss: LossRecipe;
      reduce: 'sum' | 'mean';
      training: boolean;
      perExample: boolean;
      settings: EngineSettings;
      threads: number;
      /** µs that the worker polls for the next message before it sleeps (threadTuning.spinMicros). */
      spin: number;
      /** Test hook (`__injectBracketWorkerFailure`): throw, or exit the thread, once x's gradient has come. */
      fail?: 'throw' | 'exit';
      /** A new exchange buffer (when the old one is too small), kept until the next. */
      exchange?: SharedArrayBuffer;
      layout: Layout;
    }
  | { type: 'tangent'; id: number };

export type FromWorker =
  { type: 'grad'; id: number; loss: number } | { type: 'hvp'; id: number } | { type: 'error'; id: number; message: string; user: boolean };

/** Words of the control block: each side's message counter, and the worker's state. */
export const TO_WORKER = 0;
export const TO_MAIN = 1;
export const STATE = 2; // 0 starting, 1 ready, 2 exited
const CTL_WORDS = 4;

/** A slot's tensor: a view of the exchange buffer (valid until the next request). */
export function slotTensor(buf: SharedArrayBuffer, s: Slot): Tensor {
  const n = s.shape.reduce((a, b) => a * b, 1);
  return new Tensor(s.dtype === 'float32' ? new Float32Array(buf, s.offset, n) : new Float64Array(buf, s.offset, n), s.shape);
}

/** A tree of slots' tensors, in the slots' order. */
export function slotTree(buf: SharedArrayBuffer, slots: readonly Slot[]): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const s of slots) out[s.name] = slotTensor(buf, s);
  return out;
}

/** Copy a tree's tensors into their slots. */
export function writeSlots(buf: SharedArrayBuffer, slots: readonly Slot[], tree: Readonly<Record<string, unknown>>): void {
  for (const s of slots) {
    const v = tree[s.name];
    if (!(v instanceof Tensor) || v.dtype !== s.dtype || v.size !== s.shape.reduce((a, b) => a * b, 1)) {
      throw new Error(`parallel bracket: ${s.name} does not fit its exchange slot`);
    }
    slotTensor(buf, s).data.set(v.data);
  }
}

function layoutOf(params: Readonly<Record<string, Tensor>>, buffers: Readonly<Record<string, Tensor>>, x: Tensor, t: Tensor): Layout {
  let bytes = 0;
  const slot = (name: string, v: Tensor): Slot => {
    const s = { name, shape: [...v.shape], dtype: v.dtype, offset: bytes };
    bytes += Math.ceil((v.size * (v.dtype === 'float32' ? 4 : 8)) / 8) * 8;
    return s;
  };
  const tree = (r: Readonly<Record<string, Tensor>>) => Object.entries(r).map(([k, v]) => slot(k, v));
  const p = tree(params);
  const b = tree(buffers);
  const xs = slot('x', x);
  const ts = slot('t', t);
  const gradX = tree(params);
  const gradY = tree(params);
  const hvp = tree(params);
  return { params: p, buffers: b, x: xs, t: ts, gradX, gradY, hvp, bytes };
}

// ---------------------------------------------------------------------------------------------
// the worker

interface HalfWorker {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly ctl: Int32Array;
  /** Models whose recipe this worker has. */
  readonly models: Set<number>;
  /** The exchange buffer the worker has. */
  exchange: SharedArrayBuffer | null;
}

let current: HalfWorker | null = null;
let injected: 'throw' | 'exit' | undefined;

/** Test-only: make the worker's half of the next parallel bracket throw, or exit its thread, mid-request. */
export function __injectBracketWorkerFailure(kind: 'throw' | 'exit'): void {
  injected = kind;
}
let nextId = 1;
const modelIds = new WeakMap<Model, number>();
let nextModel = 1;

/**
 * The compiled worker module: next to this file in the built package, or the built package's
 * when this file runs from the TypeScript sources (tests); undefined when neither exists.
 */
function workerFile(): string | undefined {
  const here = new URL(import.meta.url);
  if (here.protocol !== 'file:') return undefined;
  const candidates = [new URL('./bracket-worker.js', here)];
  if (fileURLToPath(here).endsWith('.ts')) candidates.push(new URL('../../dist/bracket/bracket-worker.js', here));
  for (const c of candidates) {
    const path = fileURLToPath(c);
    if (existsSync(path)) return path;
  }
  return undefined;
}

// The worker's first code (CommonJS, evaluated): its exit handler, before anything can fail, then
// the module, whose import error (a missing file, a syntax error) becomes the start's error.
const BOOT = `
'use strict';
const { workerData } = require('node:worker_threads');
const ctl = new Int32Array(workerData.ctl);
process.on('exit', () => {
  Atomics.store(ctl, ${STATE}, 2);
  Atomics.notify(ctl, ${STATE});
  Atomics.notify(ctl, ${TO_MAIN});
});
import(workerData.file).catch((e) => {
  workerData.port.postMessage({ type: 'error', id: 0, message: String((e && e.message) || e).split('\\n')[0], user: false });
  process.exit(1);
});
`;

function startWorker(file: string): HalfWorker {
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  const { port1, port2 } = new MessageChannel();
  const worker = newWorker(BOOT, {
    eval: true,
    workerData: { ctl: ctl.buffer, port: port2, file: pathToFileURL(file).href },
    transferList: [port2],
  });
  // (delivered only when this thread's event loop runs: a backstop for exits the worker's own handler missed)
  worker.on('exit', () => {
    Atomics.store(ctl, STATE, 2);
  });
  worker.on('error', () => {});
  worker.unref();
  port1.unref();
  const w: HalfWorker = { worker, port: port1, ctl, models: new Set(), exchange: null };
  const deadline = Date.now() + START_MS;
  while (Atomics.load(ctl, STATE) === 0) {
    const left = deadline - Date.now();
    if (left <= 0) {
      stop(w);
      throw new Error(`parallel bracket: the worker thread did not start within ${START_MS / 1000} s`);
    }
    Atomics.wait(ctl, STATE, 0, Math.min(left, POLL_MS));
  }
  if (Atomics.load(ctl, STATE) !== 1) {
    const m = receiveMessageOnPort(port1)?.message as FromWorker | undefined;
    stop(w);
    throw new Error(`parallel bracket: the worker thread failed to start${m?.type === 'error' ? `: ${m.message}` : ''}`);
  }
  return w;
}

function stop(w: HalfWorker): void {
  w.port.close();
  void w.worker.terminate().catch(() => {});
}

/** Stop the bracket worker thread, if one runs (the next parallel bracket starts another). */
export function shutdownBracketWorker(): void {
  if (current === null) return;
  const w = current;
  current = null;
  stop(w);
}

/** Whether a bracket worker thread runs now (for tests). */
export function bracketWorkerRunning(): boolean {
  return current !== null;
}

/** Whether parallel brackets can run here: the compiled worker module exists. */
export function parallelBracketAvailable(): boolean {
  return workerFile() !== undefined;
}

function send(w: HalfWorker, msg: ToWorker): void {
  w.port.postMessage(msg);
  Atomics.add(w.ctl, TO_WORKER, 1);
  Atomics.notify(w.ctl, TO_WORKER);
}

function receive(w: HalfWorker, id: number, want: 'grad' | 'hvp'): FromWorker {
  for (;;) {
    const seen = Atomics.load(w.ctl, TO_MAIN);
    const m = receiveMessageOnPort(w.port)?.message as FromWorker | undefined;
    if (m !== undefined) {
      if (m.id !== id) throw new Error(`parallel bracket: the worker answered request ${m.id} during request ${id}`);
      if (m.type === 'error') throw m.user ? new UserError(m.message) : new Error(`parallel bracket worker: ${m.message}`);
      if (m.type !== want) throw new Error(`parallel bracket: expected the worker's ${want}, got its ${m.type}`);
      return m;
    }
    if (Atomics.load(w.ctl, STATE) === 2) throw new Error('parallel bracket: the worker thread exited during a bracket');
    if (!poll(w.ctl, TO_MAIN, seen, threadTuning.spinMicros)) Atomics.wait(w.ctl, TO_MAIN, seen, POLL_MS);
  }
}

/**
 * Poll word i of ctl for up to `micros` µs while it is `seen`; true once it changed. A thread
 * asleep in Atomics.wait takes 0.1–0.5 ms to wake here (a 2-core virtual machine), four times per
 * bracket, against 2–40 ms brackets; the waiting side's core has nothing else to do meanwhile.
 */
export function poll(ctl: Int32Array, i: number, seen: number, micros: number): boolean {
  if (micros <= 0) return false;
  const end = performance.now() + micros / 1000;
  let k = 0;
  while (Atomics.load(ctl, i) === seen) if ((++k & 255) === 0 && performance.now() >= end) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// the bracket

/**
 * When the halves run at once (`mode` 'auto'): each loss's first brackets at a thread count run
 * serially (`trials` of them, timed), then, if the fastest took at least `parallelMinMs`, as many
 * run in halves, and the faster way (by its fastest bracket) serves that loss from then on. Below
 * `parallelMinMs` the hand-offs cost more than they save: here (2 cores) the mlp's 1.2–2.9 ms
 * bracket took 2.6–4.0 ms in halves and the convnet's 6 ms 0.98× its time, while the xresnet's
 * 75–95 ms took 0.7–0.8×. 'always' and 'never' skip the trials (tests, benchmarks). Which way runs
 * never changes a result.
 */
export const bracketTuning: { mode: 'auto' | 'always' | 'never'; parallelMinMs: number; trials: number } = {
  mode: 'auto',
  parallelMinMs: 20,
  trials: 3,
};

interface Trial {
  serial: number[];
  parallel: number[];
}
const trials = new WeakMap<object, Map<number, Trial>>();

function trialOf(loss: object, t: number): Trial {
  let m = trials.get(loss);
  if (!m) trials.set(loss, (m = new Map<number, Trial>()));
  let r = m.get(t);
  if (!r) m.set(t, (r = { serial: [], parallel: [] }));
  return r;
}

/** Record how long a serial bracket of `loss` took at `threads()` (bracket.ts). */
export function noteSerialBracket(loss: object, ms: number): void {
  const r = trialOf(loss, threads());
  if (r.serial.length < bracketTuning.trials) r.serial.push(ms);
}

function wantParallel(loss: object, t: number): boolean {
  if (bracketTuning.mode !== 'auto') return bracketTuning.mode === 'always';
  const r = trialOf(loss, t);
  const n = bracketTuning.trials;
  if (r.serial.length < n) return false;
  const serial = Math.min(...r.serial);
  if (serial < bracketTuning.parallelMinMs) return false;
  if (r.parallel.length < n) return true;
  return Math.min(...r.parallel) < serial;
}

const isExample = (e: unknown): e is Example =>
  typeof e === 'object' && e !== null && (e as Example).x instanceof Tensor && (e as Example).t instanceof Tensor;

/**
 * [v_x, v_y] with y's half on the worker thread, or null where the serial bracket must run
 * (see the file comment).
 */
export function parallelBracket<E>(loss: LossFn<E>, params: Vec, x: E, y: E): BracketResult | null {
  const t = threads();
  if (t < 2) return null;
  const parts = modelLossParts(loss);
  if (!parts) return null;
  const recipe = modelRecipe(parts.model);
  const lr = lossRecipe(parts.loss);
  if (!recipe || !lr) return null;
  const { state } = parts;
  if (state.training && !state.perExample) return null;
  if (!isExample(x) || !isExample(y)) return null;
  if (!Object.values(params).every((p) => p instanceof Tensor && p.size > 0)) return null;
  if (!Object.values(state.buffers).every((b) => b instanceof Tensor)) return null;
  const settings = engineSettings();
  if (settings.hooked) return null;
  if (!wantParallel(loss, t)) return null;
  const t0 = performance.now();
  if (current === null) {
    const file = workerFile();
    if (file === undefined) return null;
    current = startWorker(file);
  }
  const w = current;
  let modelId = modelIds.get(parts.model);
  if (modelId === undefined) modelIds.set(parts.model, (modelId = nextModel++));
  const id = nextId++;
  const here = t - (t >> 1);
  try {
    const layout = layoutOf(params, state.buffers, y.x, y.t);
    let fresh: SharedArrayBuffer | undefined;
    if (w.exchange === null || w.exchange.byteLength < layout.bytes) w.exchange = fresh = new SharedArrayBuffer(layout.bytes);
    const buf = w.exchange;
    writeSlots(buf, layout.params, params);
    writeSlots(buf, layout.buffers, state.buffers);
    writeSlots(buf, [layout.x, layout.t], { x: y.x, t: y.t });
    send(w, {
      type: 'half',
      id,
      model: modelId,
      recipe: w.models.has(modelId) ? undefined : recipe,
      loss: lr,
      reduce: parts.reduce,
      training: state.training,
      perExample: state.perExample === true,
      settings,
      threads: t >> 1,
      spin: threadTuning.spinMicros,
      exchange: fresh,
      layout,
      fail: injected,
    });
    injected = undefined;
    w.models.add(modelId);
    // (this thread's kernels on its share of the threads throughout: a kernel worker woken here
    // would poll for its next part on the core that the other half runs on)
    return withThreadLimit(here, () => {
      const resident = residentCopy(params); // (inside withScratch: read in place by the wasm kernels)
      const hx = bracketHalf(loss as LossFn<Example>, resident as Params, x);
      writeSlots(buf, layout.gradX, hx.grad);
      send(w, { type: 'tangent', id });
      const g = receive(w, id, 'grad') as Extract<FromWorker, { type: 'grad' }>;
      const gy = slotTree(buf, layout.gradY);
      const hxgy = hx.hvp(gy);
      receive(w, id, 'hvp');
      const B = bracketOf(slotTree(buf, layout.hvp), hxgy);
      const gradY: Vec = {};
      for (const [k, v] of Object.entries(gy)) gradY[k] = new Tensor(v.data.slice(), v.shape); // (the buffer serves the next request)
      const r = trialOf(loss, t);
      if (r.parallel.length < bracketTuning.trials) r.parallel.push(performance.now() - t0);
      return { bracket: B, gradX: asVec(hx.grad), gradY, lossX: concrete(hx.loss).item(), lossY: g.loss };
    });
  } catch (e) {
    // the worker may still be inside this request (or dead): a fresh one serves the next
    if (current === w) shutdownBracketWorker();
    throw e;
  }
}
