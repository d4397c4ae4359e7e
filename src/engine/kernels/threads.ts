/**
 * Intra-op parallelism for the wasm kernels: the thread count, and a pool of kernel worker
 * threads that run parts of one kernel call on the calling thread's shared WebAssembly memory.
 *
 * Design (all synchronous, since kernels are called synchronously by the engine):
 * - T threads share a call: the calling thread and T − 1 worker_threads, each with its own
 *   instance of the same WebAssembly module on ONE shared WebAssembly.Memory (wasm.ts owns the
 *   memory and decides the parts: every part writes its own output elements, so results are
 *   bit-identical for any thread count).
 * - A part is a short program of export calls ([name, ...numeric args]); the calling thread
 *   writes each worker's program into its slot of a shared control block, bumps the slot's
 *   sequence number and notifies it (Atomics.notify), runs its own part, then waits until
 *   every worker has stored its completion (and status) in its slot. Both sides poll a while
 *   (threadTuning.spinMicros) before they sleep in Atomics.wait: a sleeping thread is slow to
 *   wake, and a call follows a call within microseconds inside a bracket or a step.
 * - Failure never hangs: a worker catches whatever its part throws and reports it (status and
 *   message in its slot); a worker that exits (process.exit, an uncaught error) marks its slot
 *   dead from its 'exit' handler and notifies; the caller waits in bounded slices (no overall
 *   timeout: a part may take as long as it takes) and re-checks the liveness flag between them.
 *   Either way the caller throws a one-line Error once all live workers are done, and the pool
 *   is shut down (a later parallel call starts a fresh one).
 * - Workers start once per process, lazily, at the first parallel call (blocking until they are
 *   ready, or throwing if they cannot start), are unref()'d so that they never keep the process
 *   alive, and stop when the thread count changes, the memory is replaced, or
 *   `shutdownThreads()` is called.
 */
import { availableParallelism, cpus } from 'node:os';
import { isMainThread, Worker, type WorkerOptions } from 'node:worker_threads';

// ---------------------------------------------------------------------------------------------
// the thread count

const ENV = 'LIE_BRACKET_THREADS';

/**
 * The default kernel thread count: `LIE_BRACKET_THREADS` when set (an integer ≥ 1, else an
 * Error naming the variable), else `os.availableParallelism()`. Inside a worker thread (e.g. the
 * sweep's piscina workers, which each load the engine) it is 1 whatever the variable says, so
 * that W workers do not start W × T threads; `setThreads` there still chooses another count.
 */
export function defaultThreads(): number {
  if (!isMainThread) return 1;
  const raw = process.env[ENV];
  if (raw !== undefined && raw.trim() !== '') {
    const s = raw.trim();
    const n = Number(s);
    if (!/^[0-9]+$/.test(s) || !Number.isSafeInteger(n) || n < 1) throw new Error(`${ENV}: expected an integer ≥ 1, got "${raw}"`);
    return n;
  }
  return typeof availableParallelism === 'function' ? availableParallelism() : Math.max(1, cpus().length);
}

let count: number | null = null;

/**
 * The number of threads that one wasm kernel call may use (the calling thread included); see
 * `setThreads`. The first call resolves the default (`defaultThreads()`), so an invalid
 * `LIE_BRACKET_THREADS` throws here (and at the first kernel call).
 */
export function threads(): number {
  return Math.min(configuredThreads(), limit);
}

/** The count set (or defaulted): the size of the worker pool, whatever `withThreadLimit` says. */
function configuredThreads(): number {
  if (count === null) count = defaultThreads();
  return count;
}

let limit = Infinity;

/**
 * Run `f` with kernel calls split into at most n parts (`threads()` ≤ n), leaving the worker pool
 * as it is: for a caller that runs other work on the remaining cores meanwhile (the two halves of
 * a parallel bracket). Nests (the smaller limit wins); results do not depend on it.
 */
export function withThreadLimit<T>(n: number, f: () => T): T {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`withThreadLimit: expected an integer ≥ 1, got ${String(n)}`);
  const prev = limit;
  limit = Math.min(prev, n);
  try {
    return f();
  } finally {
    limit = prev;
  }
}

/**
 * Set the number of threads that one wasm kernel call may use: the calling thread plus n − 1
 * kernel worker threads, started at the first call large enough to be split (small calls always
 * run on the calling thread alone). n must be an integer ≥ 1; 1 runs every kernel on the calling
 * thread, as before threads existed (no worker is started, and running workers are stopped).
 * Results are bit-identical for every n: the kernels partition their outputs, never a sum.
 * The default is `defaultThreads()` (LIE_BRACKET_THREADS, else all available cores; 1 inside
 * worker threads).
 */
export function setThreads(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`setThreads: expected an integer ≥ 1, got ${String(n)}`);
  if (n === count) return;
  count = n;
  if (pool !== null && pool.workers.length !== n - 1) shutdownThreads();
}

// ---------------------------------------------------------------------------------------------
// the control block (one SharedArrayBuffer, Int32 words unless noted)

const BELL = 0; // the sequence number of the current call (−1: quit); workers wait on it
const CLAIM = 1; // (seq << 12) | (parts << 6) | next part: parts are claimed by compare-and-swap
const PD = 64; // PD + k: the sequence number of the call whose part k is done
const PS = PD + 64; // PS + k: 0 part k succeeded, 1 it threw, 2 its thread exited
const CLAIMER = PS + 64; // CLAIMER + k: the worker that claimed part k (−1: the calling thread, or not yet known)
const ALIVE = 256; // ALIVE + w: worker w is 0 starting, 1 running, 2 exited
const MSGLEN = ALIVE + 64; // MSGLEN + w: bytes of worker w's last error message
const SPIN = MSGLEN + 64; // µs that a worker polls BELL after its last part before it sleeps (threadTuning.spinMicros)
const MAX_PARTS = 63;
const MAX_WORKERS = 64;
const PROG_OFF = 4096; // bytes: part k's program, float64 [calls, (fn, nargs, ...args)…]
const PROG_MAX = 256; // float64 per part
const MSG_OFF = PROG_OFF + MAX_PARTS * PROG_MAX * 8;
const MSG_MAX = 1024; // bytes per worker
const CTL_BYTES = MSG_OFF + MAX_WORKERS * MSG_MAX;
const SEQ_MOD = 1 << 19; // sequence numbers 1…SEQ_MOD−1 (seq << 12 stays a positive int32)

/** Pseudo-functions of a program (test hooks): throw an Error, or exit the worker thread. */
const FN_THROW = -1;
const FN_EXIT = -2;

/** One call of a part's program: an export's name and its numeric arguments. */
export type Call = readonly [name: string, ...args: number[]];

/** What the pool runs on: the compiled module, the shared memory, the exports programs may call. */
export interface ThreadTarget {
  readonly module: object;
  readonly memory: object;
  readonly names: readonly string[];
  /** Run a call on the calling thread's own instance. */
  readonly local: (call: Call) => void;
}

// The worker's source (CommonJS, evaluated: no file to resolve, from src/ under vitest or dist/).
// It claims parts of the current call until none is left, then sleeps on BELL.
const WORKER_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
const { module, memory, ctl, slot, names } = workerData;
const I = new Int32Array(ctl, 0, ${PROG_OFF / 4});
const F = new Float64Array(ctl, ${PROG_OFF}, ${MAX_PARTS * PROG_MAX});
const MSG = new Uint8Array(ctl, ${MSG_OFF} + slot * ${MSG_MAX}, ${MSG_MAX});
function report(e) {
  let s = e instanceof Error ? e.name + ': ' + e.message : String(e);
  s = s.replace(/\\s+/g, ' ').trim();
  const b = Buffer.from(s, 'utf8').subarray(0, ${MSG_MAX});
  MSG.set(b);
  Atomics.store(I, ${MSGLEN} + slot, b.length);
}
let cur = -1, curSeq = 0;
process.on('exit', (code) => {
  if (cur >= 0) {
    report('exited with code ' + code);
    Atomics.store(I, ${PS} + cur, 2);
    Atomics.store(I, ${PD} + cur, curSeq);
    Atomics.notify(I, ${PD} + cur);
  }
  Atomics.store(I, ${ALIVE} + slot, 2);
  Atomics.notify(I, ${ALIVE} + slot);
});
let fns;
try {
  const ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
  fns = names.map((n) => ex[n]);
} catch (e) {
  report(e);
  process.exit(1);
}
Atomics.store(I, ${ALIVE} + slot, 1);
Atomics.notify(I, ${ALIVE} + slot);
function run(k) {
  let j = k * ${PROG_MAX};
  const calls = F[j++];
  for (let c = 0; c < calls; c++) {
    const f = F[j++], na = F[j++];
    if (f === ${FN_THROW}) throw new Error('injected failure (test hook)');
    if (f === ${FN_EXIT}) process.exit(3);
    const a = [];
    for (let i = 0; i < na; i++) a.push(F[j + i]);
    j += na;
    fns[f](...a);
  }
}
let seen = 0;
for (;;) {
  let s = Atomics.load(I, ${BELL});
  if (s === seen) {
    // poll for the next call a while before sleeping: a sleeping thread takes tens to hundreds
    // of µs to wake (a halted virtual CPU: more), a polling one about one
    const spin = Atomics.load(I, ${SPIN});
    if (spin > 0) {
      const end = performance.now() + spin / 1000;
      let k = 0;
      while ((s = Atomics.load(I, ${BELL})) === seen && ((++k & 255) !== 0 || performance.now() < end));
    }
    if (s === seen) {
      Atomics.wait(I, ${BELL}, seen);
      continue;
    }
  }
  if (s < 0) break;
  seen = s;
  for (;;) {
    const c = Atomics.load(I, ${CLAIM});
    if (c >>> 12 !== s) break;
    const k = c & 63;
    if (k >= ((c >>> 6) & 63)) break;
    cur = k; // (before the claim: if this thread dies once it holds the part, the exit handler reports it)
    curSeq = s;
    if (Atomics.compareExchange(I, ${CLAIM}, c, c + 1) !== c) {
      cur = -1;
      continue;
    }
    Atomics.store(I, ${CLAIMER} + k, slot);
    let status = 0;
    try {
      run(k);
    } catch (e) {
      status = 1;
      report(e);
    }
    cur = -1;
    Atomics.store(I, ${PS} + k, status);
    Atomics.store(I, ${PD} + k, s);
    Atomics.notify(I, ${PD} + k);
  }
}
`;

/**
 * The Node options of a worker thread: this process's, less `--input-type` (which `node
 * --input-type=module -e …` passes on, and under which a worker refuses to load a file and runs
 * evaluated source as a module, without `require`), and less the options a worker refuses (V8's,
 * such as `--experimental-wasm-relaxed-simd` or `--no-liftoff`, and per-process ones, such as
 * `--max-old-space-size`): those apply to the whole process, the worker included, and passing
 * them makes `new Worker` throw. Which ones those are is learnt from the first refusal
 * (`newWorker`).
 */
let execArgv: string[] | null = null;
function workerExecArgv(): string[] {
  const args = process.execArgv;
  return (execArgv ??= withoutRefused(
    args,
    args.filter((a) => a === '--input-type' || a.startsWith('--input-type=')),
  ));
}

/** `args` less `refused` (as Node names them: each as given, an option's separate value not included). */
export function withoutRefused(args: readonly string[], refused: readonly string[]): string[] {
  const bad = new Set(refused);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!bad.has(a)) out.push(a);
    else if (!a.includes('=') && i + 1 < args.length && !args[i + 1]!.startsWith('-')) i++; // (its value)
  }
  return out;
}

/**
 * A worker thread with `workerExecArgv()`'s options. Where Node refuses some of them
 * (ERR_WORKER_INVALID_EXEC_ARGV, thrown before any thread starts or any port is transferred),
 * they are dropped, here and for every later worker, and it tries once more.
 */
export function newWorker(source: string | URL, options: Omit<WorkerOptions, 'execArgv'>): Worker {
  try {
    return new Worker(source, { ...options, execArgv: workerExecArgv() });
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown };
    const m = /flags: (.*)$/.exec(String(err.message));
    if (err.code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || !m) throw e;
    const before = workerExecArgv();
    const after = withoutRefused(before, m[1]!.split(', '));
    if (after.length === before.length) throw e;
    execArgv = after;
    return new Worker(source, { ...options, execArgv: after });
  }
}

interface Pool {
  readonly target: ThreadTarget;
  readonly workers: Worker[];
  readonly ctl: SharedArrayBuffer;
  readonly I: Int32Array;
  readonly F: Float64Array;
  readonly index: Map<string, number>;
  seq: number;
}

let pool: Pool | null = null;

/**
 * spinMicros: how long (µs) an idle kernel worker polls for the next call before it sleeps in
 * Atomics.wait, and the calling thread polls for the workers' parts before it does. Waking a
 * sleeping thread took a median 100–125 µs here (a 2-core virtual machine, after 1 ms idle; 13–31
 * µs after shorter gaps), against under 1 µs for a polling one (scripts/wake-latency.mjs), while a
 * bracket's parallel kernels last 0.1–1 ms each. The cost: a worker keeps its core busy for up
 * to this long after each call. 0: sleep at once.
 */
export const threadTuning = {
  spinMicros: 2000,
};

/** How long worker threads may take to start before their pool gives up (a start, not a kernel: generous). */
export const START_MS = 60_000;
/** A caller re-checks a busy worker's liveness this often while it waits (not a deadline). */
export const POLL_MS = 200;

function message(p: Pool, w: number): string {
  const len = Atomics.load(p.I, MSGLEN + w);
  const bytes = new Uint8Array(p.ctl, MSG_OFF + w * MSG_MAX, len).slice();
  return Buffer.from(bytes).toString('utf8');
}

function startPool(target: ThreadTarget, n: number): Pool {
  const ctl = new SharedArrayBuffer(CTL_BYTES);
  const I = new Int32Array(ctl, 0, PROG_OFF / 4);
  const p: Pool = {
    target,
    workers: [],
    ctl,
    I,
    F: new Float64Array(ctl, PROG_OFF, MAX_PARTS * PROG_MAX),
    index: new Map(target.names.map((s, i) => [s, i])),
    seq: 0,
  };
  try {
    for (let w = 0; w < n; w++) {
      const worker = newWorker(WORKER_SOURCE, {
        eval: true,
        workerData: { module: target.module, memory: target.memory, ctl, slot: w, names: target.names },
        stdout: false,
        stderr: false,
      });
      // (delivered only when the caller's event loop runs: a backstop for exits that the
      // worker's own handler did not record)
      worker.on('exit', () => {
        Atomics.store(I, ALIVE + w, 2);
      });
      worker.on('error', () => {});
      worker.unref();
      p.workers.push(worker);
    }
    const deadline = Date.now() + START_MS;
    for (let w = 0; w < n; w++) {
      while (Atomics.load(I, ALIVE + w) === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`kernel threads: worker ${w + 1} did not start within ${START_MS / 1000} s`);
        Atomics.wait(I, ALIVE + w, 0, Math.min(left, POLL_MS));
      }
      if (Atomics.load(I, ALIVE + w) !== 1) throw new Error(`kernel threads: worker ${w + 1} failed to start: ${message(p, w) || 'it exited'}`);
    }
  } catch (e) {
    stopPool(p);
    throw e;
  }
  return p;
}

function stopPool(p: Pool): void {
  Atomics.store(p.I, BELL, -1);
  Atomics.notify(p.I, BELL);
  for (const worker of p.workers) void worker.terminate().catch(() => {});
}

/** Stop the kernel worker threads (if any); the next parallel kernel call starts them again. */
export function shutdownThreads(): void {
  if (pool === null) return;
  const p = pool;
  pool = null;
  stopPool(p);
}

/** How many kernel worker threads are running now (for tests and diagnostics). */
export function threadsRunning(): number {
  return pool === null ? 0 : pool.workers.length;
}

/**
 * Counters of the parallel calls (those that runParts split over threads) since the last
 * `resetThreadStats()`, for diagnostics (`train-bench --profile`): how many, ms in them, ms of
 * them that the calling thread spent waiting for workers' parts after it had run its own (the
 * imbalance), and how many the calling thread ran every part of (no worker took one in time).
 */
export interface ThreadStats {
  calls: number;
  ms: number;
  waitMs: number;
  ranAllHere: number;
}

const stats: ThreadStats = { calls: 0, ms: 0, waitMs: 0, ranAllHere: 0 };

/** A copy of the parallel-call counters (see ThreadStats). */
export function threadStats(): ThreadStats {
  return { ...stats };
}

/** Zero the parallel-call counters. */
export function resetThreadStats(): void {
  stats.calls = stats.ms = stats.waitMs = stats.ranAllHere = 0;
}

let injected: 'throw' | 'exit' | null = null;

/**
 * Test-only: make the worker parts of the next parallel call throw, or exit their thread (the
 * calling thread waits until a worker has claimed a part, so that one fails).
 */
export function __injectWorkerFailure(kind: 'throw' | 'exit'): void {
  injected = kind;
}

function encode(p: Pool, k: number, part: readonly Call[], fail: 'throw' | 'exit' | null): void {
  const F = p.F;
  let j = k * PROG_MAX;
  F[j++] = part.length + (fail !== null ? 1 : 0);
  if (fail !== null) {
    F[j++] = fail === 'throw' ? FN_THROW : FN_EXIT;
    F[j++] = 0;
  }
  for (const [name, ...args] of part) {
    const f = p.index.get(name);
    if (f === undefined) throw new Error(`kernel threads: unknown export "${name}"`);
    if (j + 2 + args.length > (k + 1) * PROG_MAX) throw new Error('kernel threads: a part is too long');
    F[j++] = f;
    F[j++] = args.length;
    for (const a of args) F[j++] = a;
  }
}

/** Claim the next part of call `seq`, or −1 when none is left. */
function claim(I: Int32Array, seq: number): number {
  for (;;) {
    const c = Atomics.load(I, CLAIM);
    if (c >>> 12 !== seq) return -1;
    const k = c & 63;
    if (k >= ((c >>> 6) & 63)) return -1;
    if (Atomics.compareExchange(I, CLAIM, c, c + 1) === c) return k;
  }
}

/**
 * Run the parts of one kernel call, each exactly once, on the calling thread and the kernel
 * worker threads (started on first use), all on `target`'s memory, and return when all are done.
 * The parts are claimed dynamically: the calling thread takes the next unclaimed part until none
 * is left, then waits for those that workers took (so a worker that is slow to wake, e.g. on a
 * busy machine, costs no more than running its part here). Which thread runs a part never changes
 * its result. Throws a one-line Error when a part fails, after every part has finished (so that
 * nothing still writes the memory); the pool is then shut down (the next call starts a fresh one).
 */
export function runParts(target: ThreadTarget, parts: readonly (readonly Call[])[]): void {
  const n = parts.length;
  const nw = Math.min(configuredThreads(), MAX_WORKERS + 1) - 1;
  if (n <= 1 || nw < 1 || threads() <= 1) {
    for (const part of parts) for (const c of part) target.local(c);
    return;
  }
  if (n > MAX_PARTS) throw new Error(`kernel threads: at most ${MAX_PARTS} parts per call, got ${n}`);
  if (
    pool !== null &&
    (pool.target !== target || pool.workers.length !== nw || pool.workers.some((_, w) => Atomics.load(pool!.I, ALIVE + w) !== 1))
  ) {
    shutdownThreads(); // another memory, another thread count, or a worker that has exited since: a fresh pool
  }
  if (pool === null) pool = startPool(target, nw);
  const t0 = performance.now(); // (after a start-up: the counters time calls, not worker starts)
  const p = pool;
  const I = p.I;
  const fail = injected;
  injected = null;
  for (let k = 0; k < n; k++) {
    encode(p, k, parts[k]!, fail); // (this thread runs its parts from `parts`: a hook fails only in a worker)
    I[PD + k] = 0;
    I[PS + k] = 0;
    I[CLAIMER + k] = -1;
  }
  const seq = (p.seq = (p.seq % (SEQ_MOD - 1)) + 1);
  Atomics.store(I, SPIN, Math.max(0, Math.round(threadTuning.spinMicros)));
  Atomics.store(I, CLAIM, (seq << 12) | (n << 6));
  Atomics.store(I, BELL, seq);
  Atomics.notify(I, BELL, Math.min(nw, n - 1));
  if (fail !== null) {
    // test hook: let a worker take a (failing) part before this thread takes any
    while (Atomics.load(I, CLAIM) === ((seq << 12) | (n << 6))) Atomics.wait(I, CLAIM, (seq << 12) | (n << 6), 5);
  }
  let localError: unknown = null;
  for (let k = claim(I, seq); k >= 0; k = claim(I, seq)) {
    try {
      for (const c of parts[k]!) target.local(c);
    } catch (e) {
      localError ??= e;
    }
    I[PD + k] = seq;
  }
  const tOwn = performance.now();
  let failure: string | null = null;
  let spinEnd = 0;
  for (let k = 0; k < n; k++) {
    for (;;) {
      const d = Atomics.load(I, PD + k);
      if (d === seq) {
        const st = Atomics.load(I, PS + k);
        const w = Atomics.load(I, CLAIMER + k);
        if (st === 1) failure ??= `kernel worker thread ${w + 1} failed: ${message(p, w)}`;
        else if (st === 2) failure ??= `kernel worker thread ${w + 1} exited during a kernel call (${message(p, w)})`;
        break;
      }
      const w = Atomics.load(I, CLAIMER + k);
      if (w >= 0 && Atomics.load(I, ALIVE + w) !== 1) {
        failure ??= `kernel worker thread ${w + 1} exited during a kernel call`;
        break;
      }
      // poll first (a part that ends soon is seen at once), then sleep in slices
      if (spinEnd === 0) spinEnd = performance.now() + threadTuning.spinMicros / 1000;
      if (performance.now() < spinEnd) continue;
      Atomics.wait(I, PD + k, d, POLL_MS);
    }
  }
  const t1 = performance.now();
  stats.calls++;
  stats.ms += t1 - t0;
  stats.waitMs += t1 - tOwn;
  let here = 0;
  for (let k = 0; k < n; k++) if (I[CLAIMER + k] === -1) here++;
  if (here === n) stats.ranAllHere++;
  if (failure !== null) {
    shutdownThreads();
    throw new Error(failure);
  }
  if (localError !== null) throw localError instanceof Error ? localError : new Error(`a kernel part failed: ${JSON.stringify(localError)}`);
}
