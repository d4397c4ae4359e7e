/**
 * Sweeps: brackets of example pairs at every chosen checkpoint of a run, written incrementally as
 * JSON Lines so that a killed sweep resumes where it stopped and ends with the same file; sharding
 * for batch schedulers (`--shard i/n`, joined by `merge`); worker threads (piscina) for the cores.
 * The formats are documented in docs/sweep-format.md.
 *
 * Work units are (step, pair) in step-major order: unit u = stepIndex · P + pairIndex. A unit's
 * line is appended (one appendFileSync of the complete line) only after the unit is computed and,
 * with --save-vectors, after its vector part is on disk. On start, a trailing partial line is
 * dropped (the file is rewritten atomically) and units with a line are skipped. When every unit of
 * the file is done, the file is rewritten atomically in unit order, so its bytes do not depend on
 * interruptions, worker scheduling or sharding.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firstKPairs } from '../bracket/analysis.js';
import type { Vec } from '../bracket/vec.js';
import { writeFileAtomic } from '../data/atomic.js';
import { readSafetensors, writeSafetensors } from '../data/safetensors.js';
import { z } from 'zod';
import type { DType } from '../engine/dtype.js';
import { UserError } from '../errors.js';
import { index, parseWith } from '../file-schema.js';
import { acquireLock } from './lock.js';
import { openRun, type Run } from './run.js';
import { summarizeSweep, type Summary } from './sweep-stats.js';
import { parseUnitRecord, unitRecordSchema, UnitComputer, vectorFilePath, vectorPartPath, type UnitOptions } from './sweep-unit.js';
import type { UnitReply, UnitTask } from './sweep-worker.js';
import { checkpointPath } from './train.js';

export const SWEEP_FORMAT = 'lie-bracket sweep v1';

export const shardSchema = z.strictObject({ index, count: z.number().int().positive() });
export type Shard = z.infer<typeof shardSchema>;

/** sweep.json (docs/sweep-format.md): everything that determines the results. */
export const sweepParamsSchema = z.strictObject({
  format: z.literal(SWEEP_FORMAT),
  /** Absolute path of the run directory (informational: runs are identified by `checkpoints`). */
  runDir: z.string(),
  model: z.string(),
  paramCount: index,
  /** Parameter tensor names, in the model's order (the keys of each line's `tensors`). */
  tensors: z.array(z.string()),
  /** Output (feature) names, the columns of `probeEffects`. */
  outputs: z.array(z.string()),
  steps: z.array(index),
  /** Pairs of test-split indices. */
  pairs: z.array(z.tuple([index, index])),
  /** Test-split indices of the probe batch (the rows of `probeEffects`). */
  probeIndices: z.array(index),
  options: z.strictObject({ bn: z.enum(['eval', 'train']), dtype: z.enum(['float32', 'float64']), saveVectors: z.boolean() }),
  /** step → first 16 hex digits of the SHA-256 of the checkpoint file: which weights these are. */
  checkpoints: z.record(z.string(), z.string()),
  /** steps.length × pairs.length. */
  units: index,
  shard: shardSchema.nullable(),
});
export type SweepParams = z.infer<typeof sweepParamsSchema>;

export interface SweepOptions {
  runDir: string;
  /** Checkpoint steps (default: all complete checkpoints of the run). */
  steps?: readonly number[];
  /** All pairs among the first K test examples (default 6), unless `pairs` is given. */
  first?: number;
  pairs?: readonly (readonly [number, number])[];
  /** Probe batch: the first N test examples (default 32; 0 for none), unless `probeIndices` is given. */
  probes?: number;
  /** Probe batch as explicit test-split indices instead (distinct, in range; may be empty). */
  probeIndices?: readonly number[];
  bn?: 'eval' | 'train';
  /** Default: the run's dtype. */
  dtype?: DType;
  saveVectors?: boolean;
  /** Default: <runDir>/sweep. */
  out?: string;
  shard?: Shard;
  /** Worker threads (default: the number of cores); 1 computes in this thread. */
  workers?: number;
  /** Write summary.json when an unsharded sweep completes (default true). */
  summary?: boolean;
  /** Before computing: units already done (resumed) and the total of this shard. */
  onStart?: (done: number, total: number) => void;
  /**
   * After each unit's line is written. An exception thrown here stops the sweep as a kill would
   * (the tests interrupt sweeps this way).
   */
  onUnit?: (done: number, total: number) => void;
}

export interface SweepResult {
  out: string;
  paramsFile: string;
  resultsFile: string;
  /** Units of this shard (all units when unsharded). */
  units: number;
  /** Units found done at the start. */
  resumed: number;
  computed: number;
  complete: boolean;
  /** Wall time of the whole call. */
  seconds: number;
  /** Units computed per second of computing (0 when none was computed). */
  unitsPerSecond: number;
  workers: number;
  /** Why fewer workers than asked for were used, if so. */
  workerNote?: string;
  vectorFiles: string[];
  summaryFile?: string;
}

export interface Unit {
  index: number;
  step: number;
  x: number;
  y: number;
}

export const unitKey = (step: number, x: number, y: number): string => `${step}:${x},${y}`;

export function shardSuffix(shard: Shard | null): string {
  return shard ? `.shard-${shard.index}-of-${shard.count}` : '';
}
export const paramsFileName = (shard: Shard | null): string => `sweep${shardSuffix(shard)}.json`;
export const resultsFileName = (shard: Shard | null): string => `results${shardSuffix(shard)}.jsonl`;

/** "i/n" → { index: i, count: n }. */
export function parseShard(v: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(v);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || !(count >= 1) || !(index < count)) throw new UserError(`--shard must be i/n with 0 ≤ i < n, e.g. 0/4, got "${v}"`);
  return { index, count };
}

/** Every unit of a sweep, in unit order. */
export function allUnits(p: Pick<SweepParams, 'steps' | 'pairs'>): Unit[] {
  const out: Unit[] = [];
  for (const step of p.steps) for (const [x, y] of p.pairs) out.push({ index: out.length, step, x, y });
  return out;
}

export function shardUnits(units: readonly Unit[], shard: Shard | null): Unit[] {
  return shard ? units.filter((u) => u.index % shard.count === shard.index) : [...units];
}

function fileHash(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16);
}

/** The sweep's parameters from options and the run (validates every index and step). */
export function resolveSweepParams(run: Run, o: SweepOptions): SweepParams {
  let steps: number[];
  if (o.steps !== undefined) {
    steps = [...new Set(o.steps)].sort((a, b) => a - b);
    if (steps.length === 0) throw new UserError('--steps: give at least one checkpoint step');
    for (const s of steps)
      if (!run.steps.includes(s)) throw new UserError(`${run.dir}: no checkpoint at step ${s}; available: ${run.steps.join(', ')}`);
  } else steps = [...run.steps];
  const n = run.test.length;
  if (o.pairs !== undefined && o.first !== undefined) throw new UserError('give either --first K or --pairs, not both');
  let pairs: [number, number][];
  if (o.pairs !== undefined) {
    pairs = o.pairs.map(([x, y]) => [x, y]);
    if (pairs.length === 0) throw new UserError('--pairs: give at least one pair, e.g. "0,1"');
    const seen = new Set<string>();
    for (const [x, y] of pairs) {
      if (x === y) throw new UserError(`pair ${x},${y}: an example with itself has a zero bracket`);
      if (seen.has(`${x},${y}`)) throw new UserError(`pair ${x},${y} is given twice`);
      seen.add(`${x},${y}`);
    }
  } else {
    const k = o.first ?? 6;
    if (k < 2) throw new UserError('--first needs at least 2 examples to form a pair');
    if (k > n) throw new UserError(`--first ${k}: the test split of ${run.config.data} has only ${n} examples`);
    pairs = firstKPairs(k);
  }
  for (const [x, y] of pairs) {
    for (const i of [x, y])
      if (!Number.isInteger(i) || i < 0 || i >= n)
        throw new UserError(`example index ${i} is out of range: the test split of ${run.config.data} has ${n} examples (0…${n - 1})`);
  }
  let probeIndices: number[];
  if (o.probeIndices !== undefined) {
    if (o.probes !== undefined) throw new UserError('give either a probe count (--probes N) or probe indices, not both');
    probeIndices = [...o.probeIndices];
    const seen = new Set<number>();
    for (const i of probeIndices) {
      if (!Number.isInteger(i) || i < 0 || i >= n)
        throw new UserError(`probe index ${i} is out of range: the test split of ${run.config.data} has ${n} examples (0…${n - 1})`);
      if (seen.has(i)) throw new UserError(`probe index ${i} is given twice`);
      seen.add(i);
    }
  } else {
    const probes = o.probes ?? 32;
    if (!Number.isInteger(probes) || probes < 0) throw new UserError(`--probes must be an integer ≥ 0, got ${probes}`);
    probeIndices = Array.from({ length: Math.min(probes, n) }, (_, i) => i);
  }
  const checkpoints: Record<string, string> = {};
  for (const s of steps) checkpoints[String(s)] = fileHash(checkpointPath(run.dir, s));
  const tensors = Object.keys(run.model.paramShapes);
  const paramCount = Object.values(run.model.paramShapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  return {
    format: SWEEP_FORMAT,
    runDir: resolve(run.dir),
    model: run.model.name,
    paramCount,
    tensors,
    outputs: [...run.test.labelNames],
    steps,
    pairs,
    probeIndices,
    options: { bn: o.bn ?? 'eval', dtype: o.dtype ?? run.config.dtype, saveVectors: o.saveVectors ?? false },
    checkpoints,
    units: steps.length * pairs.length,
    shard: o.shard ?? null,
  };
}

/** The first field in which two sweeps' parameters differ (ignoring the given fields), or undefined. */
export function paramsDiffer(a: SweepParams, b: SweepParams, ignore: readonly (keyof SweepParams)[]): string | undefined {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)] as (keyof SweepParams)[]);
  for (const k of keys) {
    if (ignore.includes(k)) continue;
    const va = JSON.stringify(a[k]);
    const vb = JSON.stringify(b[k]);
    if (va !== vb) {
      const short = (s: string | undefined) => (s === undefined ? 'absent' : s.length > 60 ? `${s.slice(0, 57)}…` : s);
      // long lists that differ past the cut would print alike: say where they part
      const x = a[k];
      const y = b[k];
      if (Array.isArray(x) && Array.isArray(y) && (va?.length ?? 0) > 60) {
        const at = x.findIndex((v, i) => JSON.stringify(v) !== JSON.stringify(y[i]));
        const where =
          at < 0
            ? `the first ${x.length} agree`
            : `entry ${at}: ${JSON.stringify(x[at])} vs ${y[at] === undefined ? 'absent' : JSON.stringify(y[at])}`;
        return `${k}: ${x.length} vs ${y.length} entries, ${where}`;
      }
      return `${k}: ${short(va)} vs ${short(vb)}`;
    }
  }
  return undefined;
}

export function readParams(path: string): SweepParams {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || (v as { format?: unknown }).format !== SWEEP_FORMAT) {
    throw new UserError(`${path}: not a sweep description (format "${SWEEP_FORMAT}" expected)`);
  }
  return parseWith(sweepParamsSchema, v, path);
}

function writeParams(path: string, p: SweepParams): void {
  writeFileAtomic(path, `${JSON.stringify(p, null, 2)}\n`);
}

/** Complete lines of a results file; a trailing line without its newline (a killed write) is left out. */
export function readLines(path: string): { lines: string[]; partial: boolean; complete: string } {
  if (!existsSync(path)) return { lines: [], partial: false, complete: '' };
  const text = readFileSync(path, 'utf8');
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return { lines: complete.split('\n').filter((l) => l !== ''), partial: complete.length !== text.length, complete };
}

/** Parse result lines and map each to its unit; throws a one-line error on a foreign or repeated unit. */
export function mapLines(
  lines: readonly { line: string; where: string }[],
  unitOf: ReadonlyMap<string, Unit>,
  seen: Map<number, { line: string; where: string }> = new Map(),
): Map<number, { line: string; where: string }> {
  for (const l of lines) {
    let raw: unknown;
    try {
      raw = JSON.parse(l.line);
    } catch {
      throw new UserError(`${l.where}: not a JSON line; the file is corrupt`);
    }
    const rec = parseWith(unitRecordSchema, raw, l.where);
    const u = unitOf.get(unitKey(rec.step, rec.x, rec.y));
    if (!u) throw new UserError(`${l.where}: step ${rec.step} pair ${rec.x},${rec.y} is not a unit of this sweep`);
    const prev = seen.get(u.index);
    if (prev) throw new UserError(`unit step ${u.step} pair ${u.x},${u.y} appears twice (${prev.where} and ${l.where})`);
    seen.set(u.index, l);
  }
  return seen;
}

/**
 * Join the vector parts of one checkpoint into vectors/step-<n>.safetensors (keys `<x>_<y>/<param>`),
 * looking for parts under each of `roots`; parts under `out` are removed afterwards.
 */
export function assembleVectors(out: string, roots: readonly string[], p: SweepParams, step: number): string {
  const tensors: Vec = {};
  for (const [x, y] of p.pairs) {
    const found = roots.map((r) => vectorPartPath(r, step, x, y)).find((f) => existsSync(f));
    if (!found)
      throw new UserError(
        `the bracket vector of step ${step} pair ${x},${y} is missing (no ${vectorPartPath(roots[0] ?? out, step, x, y)}); run the sweep again to recompute it`,
      );
    Object.assign(tensors, readSafetensors(found).tensors);
  }
  const file = vectorFilePath(out, step);
  writeSafetensors(file, tensors, { format: 'lie-bracket sweep vectors v1', model: p.model, step: String(step), run: p.runDir });
  rmSync(join(out, 'vectors', 'parts', `step-${step}`), { recursive: true, force: true });
  const partsDir = join(out, 'vectors', 'parts');
  if (existsSync(partsDir) && readdirSync(partsDir).length === 0) rmSync(partsDir, { recursive: true, force: true });
  return file;
}

/** The compiled worker module next to this file, when running from the built package. */
function workerFile(): string | undefined {
  const url = new URL('./sweep-worker.js', import.meta.url);
  if (url.protocol !== 'file:') return undefined;
  const path = fileURLToPath(url);
  return existsSync(path) ? path : undefined;
}

export function defaultWorkers(): number {
  return Math.max(1, availableParallelism());
}

/** Write the summary of a complete, unsharded sweep directory. */
export function writeSummary(out: string, p: SweepParams, lines: readonly string[]): { file: string; summary: Summary } {
  const summary = summarizeSweep({ dir: out, params: p, records: lines.map((l, i) => parseUnitRecord(l, `${join(out, 'results.jsonl')}:${i + 1}`)) });
  const file = join(out, 'summary.json');
  writeFileAtomic(file, `${JSON.stringify(summary, null, 2)}\n`);
  return { file, summary };
}

export async function runSweep(o: SweepOptions): Promise<SweepResult> {
  const t0 = performance.now();
  const run = openRun(o.runDir);
  // a run still being written (or one that stopped part-way) would be swept over the checkpoints
  // that happen to exist so far, and its summary would silently cover part of the training
  const status = run.file.status;
  if (status !== 'complete' && o.steps === undefined) {
    throw new UserError(
      `${o.runDir}: the run is ${status}, not complete (checkpoints so far: ${run.steps.join(', ')}); let it finish or resume it (lie-bracket train --resume ${o.runDir}), or give --steps to sweep the checkpoints written so far`,
    );
  }
  const params = resolveSweepParams(run, o);
  const shard = params.shard;
  if (o.workers !== undefined && (!Number.isInteger(o.workers) || o.workers < 1))
    throw new UserError(`--workers must be an integer ≥ 1, got ${o.workers}`);
  const out = o.out ?? join(o.runDir, 'sweep');
  mkdirSync(out, { recursive: true });
  const paramsFile = join(out, paramsFileName(shard));
  const resultsFile = join(out, resultsFileName(shard));
  const release = acquireLock(join(out, `.${resultsFileName(shard)}.lock`), 'sweep');
  try {
    if (existsSync(paramsFile)) {
      const diff = paramsDiffer(readParams(paramsFile), params, ['runDir']);
      if (diff)
        throw new UserError(`${out} holds a sweep with other parameters (${diff}); choose another --out, or remove ${paramsFile} to start over`);
    } else {
      if (existsSync(resultsFile)) throw new UserError(`${resultsFile} exists without ${basename(paramsFile)}; remove it or choose another --out`);
      writeParams(paramsFile, params);
    }

    const units = allUnits(params);
    const mine = shardUnits(units, shard);
    const unitOf = new Map(mine.map((u) => [unitKey(u.step, u.x, u.y), u]));
    const existing = readLines(resultsFile);
    if (existing.partial) writeFileAtomic(resultsFile, existing.complete); // drop the line a kill cut short
    const done = new Map<number, string>();
    for (const [i, l] of mapLines(
      existing.lines.map((line, i) => ({ line, where: `${resultsFile}:${i + 1}` })),
      unitOf,
    ))
      done.set(i, l.line);
    const resumed = done.size;
    const todo = mine.filter((u) => !done.has(u.index));
    const total = mine.length;
    o.onStart?.(resumed, total);

    // checkpoints whose every unit is done get their vector file (unsharded sweeps only: merge does it for shards)
    const vectorFiles: string[] = [];
    const remaining = new Map<number, number>(params.steps.map((s) => [s, 0]));
    for (const u of todo) remaining.set(u.step, remaining.get(u.step)! + 1);
    const assembleIfDone = (step: number) => {
      if (!params.options.saveVectors || shard) return;
      if (remaining.get(step) === 0) {
        const f = vectorFilePath(out, step);
        if (!existsSync(f) || existsSync(join(out, 'vectors', 'parts', `step-${step}`))) assembleVectors(out, [out], params, step);
        vectorFiles.push(f);
      }
    };
    for (const s of params.steps) if (remaining.get(s) === 0) assembleIfDone(s);

    const finish = (u: Unit, line: string) => {
      appendFileSync(resultsFile, `${line}\n`);
      done.set(u.index, line);
      remaining.set(u.step, remaining.get(u.step)! - 1);
      assembleIfDone(u.step);
      o.onUnit?.(done.size, total);
    };

    const unitOpts: UnitOptions = {
      bn: params.options.bn,
      dtype: params.options.dtype,
      probeIndices: params.probeIndices,
      saveVectors: params.options.saveVectors,
    };
    let workers = Math.min(o.workers ?? defaultWorkers(), Math.max(1, todo.length));
    let workerNote: string | undefined;
    const file = workers > 1 ? workerFile() : undefined;
    if (workers > 1 && !file) {
      workerNote = 'worker threads need the compiled package (dist/study/sweep-worker.js); computed in this thread';
      workers = 1;
    }
    const tc = performance.now();
    if (workers === 1) {
      const computer = new UnitComputer(run, unitOpts, out);
      let yielded = performance.now();
      for (const u of todo) {
        finish(u, computer.compute(u.step, u.x, u.y));
        // between units (each line is on disk whole), let a signal handler run: SIGTERM or Ctrl-C
        // then ends the sweep with its lock released
        if (performance.now() - yielded > 50) {
          await new Promise<void>((r) => setImmediate(r));
          yielded = performance.now();
        }
      }
    } else {
      await runPool(
        file!,
        workers,
        todo,
        (u) => ({ runDir: params.runDir, outDir: resolve(out), opts: unitOpts, step: u.step, x: u.x, y: u.y }),
        finish,
      );
    }
    const computeSeconds = (performance.now() - tc) / 1000;

    const complete = done.size === total;
    let summaryFile: string | undefined;
    if (complete) {
      const canonical = mine.map((u) => done.get(u.index)!);
      const text = canonical.map((l) => `${l}\n`).join('');
      if (!existsSync(resultsFile) || readFileSync(resultsFile, 'utf8') !== text) writeFileAtomic(resultsFile, text); // (a shard may own no unit)
      if (!shard && o.summary !== false) summaryFile = writeSummary(out, params, canonical).file;
    }
    return {
      out,
      paramsFile,
      resultsFile,
      units: total,
      resumed,
      computed: todo.length,
      complete,
      seconds: (performance.now() - t0) / 1000,
      unitsPerSecond: todo.length > 0 ? todo.length / computeSeconds : 0,
      workers,
      ...(workerNote ? { workerNote } : {}),
      vectorFiles: [...new Set(vectorFiles)],
      ...(summaryFile ? { summaryFile } : {}),
    };
  } finally {
    release();
  }
}

/**
 * Units on a piscina pool, at most 2 per thread in flight, submitted in unit order (so threads
 * mostly share a checkpoint); `finish` runs on this thread as each completes. A failure — of a
 * unit, or thrown by `finish` — stops the submissions and tears the pool down.
 */
async function runPool(
  file: string,
  workers: number,
  todo: readonly Unit[],
  task: (u: Unit) => UnitTask,
  finish: (u: Unit, line: string) => void,
): Promise<void> {
  const { Piscina } = await import('piscina');
  const pool = new Piscina<UnitTask, UnitReply>({ filename: file, minThreads: workers, maxThreads: workers, idleTimeout: 5_000 });
  try {
    await new Promise<void>((resolvePromise, reject) => {
      let next = 0;
      let inFlight = 0;
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        reject(e instanceof Error ? e : new Error(String(e)));
      };
      const launch = () => {
        while (!failed && inFlight < 2 * workers && next < todo.length) {
          const u = todo[next++]!;
          inFlight++;
          pool.run(task(u)).then(
            (r) => {
              inFlight--;
              if (failed) return;
              try {
                if ('error' in r)
                  throw r.user ? new UserError(r.error) : new Error(`sweep worker failed on step ${u.step} pair ${u.x},${u.y}: ${r.error}`);
                finish(u, r.line);
              } catch (e) {
                fail(e);
                return;
              }
              if (next >= todo.length && inFlight === 0) resolvePromise();
              else launch();
            },
            (e: unknown) => {
              inFlight--;
              fail(e);
            },
          );
        }
      };
      if (todo.length === 0) resolvePromise();
      else launch();
    });
  } finally {
    await pool.destroy();
  }
}

export interface MergeResult {
  out: string;
  shards: string[];
  units: number;
  resultsFile: string;
  paramsFile: string;
  vectorFiles: string[];
  summaryFile?: string;
}

/** The shard result files named by the inputs: files, or directories holding results.shard-i-of-n.jsonl. */
function shardFiles(inputs: readonly string[]): string[] {
  const out: string[] = [];
  for (const inp of inputs) {
    if (!existsSync(inp)) throw new UserError(`${inp}: no such file or directory`);
    if (statSync(inp).isDirectory()) {
      const found = readdirSync(inp)
        .filter((f) => /^results\.shard-\d+-of-\d+\.jsonl$/.test(f))
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
        .map((f) => join(inp, f));
      if (found.length === 0) throw new UserError(`${inp}: no shard results (results.shard-<i>-of-<n>.jsonl) here`);
      out.push(...found);
    } else {
      if (!/^results\.shard-\d+-of-\d+\.jsonl$/.test(basename(inp)))
        throw new UserError(`${inp}: not a shard results file (results.shard-<i>-of-<n>.jsonl)`);
      out.push(inp);
    }
  }
  return [...new Set(out.map((f) => resolve(f)))];
}

/**
 * Join shard outputs into one sweep: sweep.json, results.jsonl in unit order (byte-identical to an
 * unsharded sweep's), vectors/step-<n>.safetensors when vectors were saved, and summary.json.
 * Every unit must be covered exactly once and every shard must have the same parameters.
 */
export function mergeShards(inputs: readonly string[], opts: { out?: string; summary?: boolean } = {}): MergeResult {
  if (inputs.length === 0) throw new UserError('merge: give the sweep directory, or shard result files or directories');
  const files = shardFiles(inputs);
  const shards = files.map((f) => {
    const m = /^results(\.shard-(\d+)-of-(\d+))\.jsonl$/.exec(basename(f))!;
    const pf = join(dirname(f), `sweep${m[1]}.json`);
    if (!existsSync(pf)) throw new UserError(`${f}: its sweep description ${basename(pf)} is missing beside it`);
    const p = readParams(pf);
    if (!p.shard || p.shard.index !== Number(m[2]) || p.shard.count !== Number(m[3]))
      throw new UserError(`${pf}: its shard field does not match the file name`);
    return { file: f, params: p };
  });
  const first = shards[0]!;
  for (const s of shards.slice(1)) {
    const diff = paramsDiffer(first.params, s.params, ['runDir', 'shard']);
    if (diff) throw new UserError(`${s.file} and ${first.file} come from different sweeps (${diff})`);
    if (s.params.shard!.count !== first.params.shard!.count)
      throw new UserError(`${s.file} splits the sweep in ${s.params.shard!.count} shards, ${first.file} in ${first.params.shard!.count}`);
  }
  const params: SweepParams = { ...first.params, shard: null };
  const units = allUnits(params);
  const unitOf = new Map(units.map((u) => [unitKey(u.step, u.x, u.y), u]));
  const seen = new Map<number, { line: string; where: string }>();
  for (const s of shards) {
    const { lines } = readLines(s.file);
    mapLines(
      lines.map((line, i) => ({ line, where: `${s.file}:${i + 1}` })),
      unitOf,
      seen,
    );
  }
  const missing = units.filter((u) => !seen.has(u.index));
  if (missing.length > 0) {
    const u = missing[0]!;
    const n = first.params.shard!.count;
    throw new UserError(
      `unit step ${u.step} pair ${u.x},${u.y} is missing (shard ${u.index % n}/${n})` +
        (missing.length > 1 ? ` and ${missing.length - 1} more units` : '') +
        `; complete the shards with lie-bracket sweep ${params.runDir} --shard i/${n}`,
    );
  }
  const out = opts.out ?? (statSync(inputs[0]!).isDirectory() ? inputs[0]! : dirname(inputs[0]!));
  mkdirSync(out, { recursive: true });
  const paramsFile = join(out, paramsFileName(null));
  if (existsSync(paramsFile)) {
    const diff = paramsDiffer(readParams(paramsFile), params, ['runDir']);
    if (diff) throw new UserError(`${out} already holds a different sweep (${diff}); choose another --out`);
  }
  const lines = units.map((u) => seen.get(u.index)!.line);
  const vectorFiles: string[] = [];
  if (params.options.saveVectors) {
    const roots = [...new Set([out, ...shards.map((s) => dirname(s.file))])];
    for (const step of params.steps) vectorFiles.push(assembleVectors(out, roots, params, step));
  }
  writeParams(paramsFile, params);
  const resultsFile = join(out, resultsFileName(null));
  writeFileAtomic(resultsFile, lines.map((l) => `${l}\n`).join(''));
  const summaryFile = opts.summary !== false ? writeSummary(out, params, lines).file : undefined;
  return {
    out,
    shards: shards.map((s) => s.file),
    units: units.length,
    resultsFile,
    paramsFile,
    vectorFiles,
    ...(summaryFile ? { summaryFile } : {}),
  };
}
