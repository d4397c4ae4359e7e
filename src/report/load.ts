/**
 * Reading a run directory for the report, defensively: run.json, metrics.jsonl, sweep/sweep.json,
 * sweep/results.jsonl, sweep/summary.json, sweep/allpairs.jsonl and verify.json are each optional;
 * a missing or malformed file (or line) becomes a note in the report instead of an error. Each is
 * checked against its format's schema (next to its writer in src/study and src/bracket): a file or
 * line that does not match is still shown as far as it can be read, with a note naming the field. Images
 * of the bracketed and probe examples come from the run's data set when it can be opened.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { z } from 'zod';
import { tensorStatsSchema, type TensorStats } from '../bracket/pair-stats.js';
import { allPairsLineSchema } from '../study/allpairs-file.js';
import { openRun } from '../study/run.js';
import { summarySchema } from '../study/sweep-stats.js';
import { sweepParamsSchema } from '../study/sweep.js';
import { unitRecordSchema, type UnitRecord } from '../study/sweep-unit.js';
import { metricsLineSchema, openConfigData, runFileSchema, type TrainConfig } from '../study/train.js';
import { verifyFileSchema } from '../study/verify-file.js';
import { formatIssue } from '../zod-message.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface MetricsRow {
  step: number;
  trainLoss: number | null;
  evalLoss: number | null;
  accuracy: (number | null)[];
  auc: (number | null)[];
  classAccuracy: number | null;
  seconds: number | null;
}

type Nullable<T> = { [K in keyof T]: T[K] | null };

/**
 * A results.jsonl line (src/study/sweep-unit.ts's schema) as the report reads it: a number that is
 * missing, non-finite or not a number becomes null.
 */
export type TensorRow = Nullable<TensorStats>;
export type ResultRow = Pick<UnitRecord, 'step' | 'x' | 'y'> &
  Nullable<Omit<UnitRecord, 'step' | 'x' | 'y' | 'tensors' | 'probeEffects'>> & {
    tensors: Record<string, TensorRow>;
    /** [probes][outputs]; null entries where the file held a non-number. */
    probeEffects: (number | null)[][] | null;
  };

export interface AllPairsSet {
  step: number;
  method: string | null;
  outputs: string[] | null;
  probe: number | null;
  indices: number[];
  /** [K][N][N]. */
  matrices: (number | null)[][][];
}

export interface VerifyData {
  eps: number[];
  relErrors: (number | null)[];
  orders: (number | null)[];
  kinks: (number | null)[] | null;
  model: string | null;
  pair: [number, number] | null;
  /** Whether the activation pattern was frozen (lie-bracket verify --frozen). */
  frozen: boolean;
}

export interface RunFiles {
  runDir: string;
  /** run.json, when readable. */
  run: JsonObject | null;
  config: JsonObject | null;
  metrics: MetricsRow[];
  sweepMeta: JsonObject | null;
  /** Pairs of the sweep: sweep.json's, then any further pairs found in the results. */
  pairs: [number, number][];
  probeIndices: number[] | null;
  results: ResultRow[];
  summary: Json | null;
  allPairs: AllPairsSet[];
  verify: VerifyData | null;
  /** Output feature names. */
  labels: string[];
  /** Where example and probe indices point, when the data set opened. */
  pairData: Dataset | null;
  probeData: Dataset | null;
  pairSplit: 'train' | 'test';
  probeSplit: 'train' | 'test';
  /** Problems met while reading (missing files, skipped lines), in words. */
  notes: string[];
  /** Which optional inputs were present. */
  present: { run: boolean; metrics: boolean; sweep: boolean; results: boolean; summary: boolean; allPairs: boolean; verify: boolean };
}

const isObj = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const numArr = (v: unknown): (number | null)[] | null => (Array.isArray(v) ? v.map(num) : null);

function pairOf(v: unknown): [number, number] | null {
  if (Array.isArray(v) && v.length === 2 && int(v[0]) !== null && int(v[1]) !== null) return [v[0] as number, v[1] as number];
  if (isObj(v) && int(v.x) !== null && int(v.y) !== null) return [v.x as number, v.y as number];
  return null;
}

function readJson(path: string, what: string, notes: string[]): Json | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Json;
  } catch (e) {
    notes.push(`${what} is not valid JSON (${(e as Error).message}); ignored`);
    return null;
  }
}

/**
 * Whether a value read (and shown as far as it goes) is what its format's schema says; the first
 * problem, naming the field, as a note otherwise.
 */
function schemaNote(schema: z.ZodType, v: unknown, what: string): string | null {
  const r = schema.safeParse(v);
  return r.success ? null : `${what} does not match its format (${formatIssue(r.error.issues[0]!)}); what can be read is shown`;
}

function readJsonl<T>(path: string, what: string, notes: string[], parse: (v: Json) => T | null, schema?: z.ZodType): T[] | null {
  if (!existsSync(path)) return null;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    notes.push(`${what} could not be read (${(e as Error).message})`);
    return null;
  }
  const out: T[] = [];
  let bad = 0;
  let partial = false;
  let offSchema = 0;
  let firstOff = null as string | null; // (assigned in a callback: the annotation alone would narrow it to null)
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let v: Json;
    try {
      v = JSON.parse(line) as Json;
    } catch {
      // a last line without its newline is one being written (or cut short by a kill)
      if (i === lines.length - 1) partial = true;
      else bad++;
      return;
    }
    const r = parse(v);
    if (r === null) bad++;
    else {
      out.push(r);
      const note = schema ? schemaNote(schema, v, `${what}:${i + 1}`) : null;
      if (note !== null) {
        offSchema++;
        firstOff ??= note;
      }
    }
  });
  if (firstOff !== null) notes.push(offSchema > 1 ? `${firstOff} (and ${offSchema - 1} more line(s))` : firstOff);
  if (bad > 0) notes.push(`${what}: ${bad} line(s) malformed or not in the expected schema, skipped`);
  if (partial) notes.push(`${what} ends with an incomplete line (is it still being written?); skipped`);
  return out;
}

function parseMetrics(v: Json): MetricsRow | null {
  if (!isObj(v) || int(v.step) === null) return null;
  const ev = isObj(v.eval) ? v.eval : null;
  return {
    step: v.step as number,
    trainLoss: num(v.trainLoss),
    evalLoss: ev ? num(ev.loss) : null,
    accuracy: (ev && numArr(ev.accuracy)) || [],
    auc: (ev && numArr(ev.auc)) || [],
    classAccuracy: ev ? num(ev.classAccuracy) : null,
    seconds: num(v.seconds),
  };
}

const numbersOf = <K extends string>(o: JsonObject, keys: readonly K[]): Record<K, number | null> =>
  Object.fromEntries(keys.map((k) => [k, num(o[k])])) as Record<K, number | null>;
/** The number fields of a sweep line and of its tensors, from the line's schema. */
const TENSOR_FIELDS = Object.keys(tensorStatsSchema.shape) as (keyof TensorStats)[];
const LINE_NUMBER_FIELDS = Object.keys(unitRecordSchema.shape).filter((k) => !['step', 'x', 'y', 'tensors', 'probeEffects'].includes(k)) as Exclude<
  keyof UnitRecord,
  'step' | 'x' | 'y' | 'tensors' | 'probeEffects'
>[];

function parseResult(v: Json): ResultRow | null {
  if (!isObj(v) || int(v.step) === null || int(v.x) === null || int(v.y) === null) return null;
  const tensors: Record<string, TensorRow> = {};
  if (isObj(v.tensors)) {
    for (const [name, t] of Object.entries(v.tensors)) {
      if (!isObj(t)) continue;
      tensors[name] = numbersOf(t, TENSOR_FIELDS);
    }
  }
  let probeEffects: (number | null)[][] | null = null;
  if (Array.isArray(v.probeEffects) && v.probeEffects.every((r) => Array.isArray(r))) probeEffects = v.probeEffects.map((r) => numArr(r)!);
  return {
    step: v.step as number,
    x: v.x as number,
    y: v.y as number,
    ...numbersOf(v, LINE_NUMBER_FIELDS),
    tensors,
    probeEffects,
  };
}

function parseAllPairs(v: Json): AllPairsSet | null {
  if (!isObj(v) || int(v.step) === null || !Array.isArray(v.indices) || !Array.isArray(v.matrices)) return null;
  const indices = v.indices.map(int);
  if (indices.some((i) => i === null)) return null;
  const n = indices.length;
  const matrices: (number | null)[][][] = [];
  for (const m of v.matrices) {
    if (!Array.isArray(m) || m.length !== n) return null;
    const rows: (number | null)[][] = [];
    for (const r of m) {
      if (!Array.isArray(r) || r.length !== n) return null;
      rows.push(r.map(num));
    }
    matrices.push(rows);
  }
  const outputs = Array.isArray(v.outputs) && v.outputs.every((s) => typeof s === 'string') ? v.outputs : null;
  return { step: v.step as number, method: str(v.method), outputs, probe: int(v.probe), indices: indices as number[], matrices };
}

function parseVerify(v: Json | null, notes: string[]): VerifyData | null {
  if (v === null) return null;
  if (!isObj(v) || !Array.isArray(v.eps) || !Array.isArray(v.relErrors)) {
    notes.push('verify.json does not have the expected {eps: [...], relErrors: [...]} fields; the swap verification is not shown');
    return null;
  }
  const eps = v.eps.map(num);
  if (eps.some((e) => e === null || e <= 0) || v.relErrors.length !== eps.length) {
    notes.push('verify.json: eps must be positive numbers with one relative error each; the swap verification is not shown');
    return null;
  }
  let kinks: (number | null)[] | null = null;
  if (Array.isArray(v.kinks)) {
    kinks = v.kinks.map((k) => {
      if (typeof k === 'number') return num(k);
      if (isObj(k)) {
        // an object of counts (e.g. per layer): its numeric total
        const vals = Object.values(k)
          .map(num)
          .filter((x): x is number => x !== null);
        return vals.length ? vals.reduce((a, b) => a + b, 0) : null;
      }
      return null;
    });
  }
  return {
    eps: eps as number[],
    relErrors: v.relErrors.map(num),
    orders: numArr(v.orders) ?? [],
    kinks,
    model: str(v.model) ?? (isObj(v.model) ? str(v.model.name) : null),
    pair: pairOf(v.pair),
    frozen: v.frozen === true,
  };
}

function openData(runDir: string, config: JsonObject | null, notes: string[]): { train: Dataset | null; test: Dataset | null } {
  try {
    const r = openRun(runDir);
    return { train: r.train, test: r.test };
  } catch {
    // the run may have no checkpoints yet, or a model that no longer resolves: try the data alone
  }
  const spec = config ? str(config.data) : null;
  if (!spec) {
    notes.push('the run has no data set in run.json; example images are not shown');
    return { train: null, test: null };
  }
  try {
    const loss = str(config?.loss) ?? undefined;
    const dataOptions = config?.dataOptions;
    // through openConfigData, as every command that reopens a run's data: dataOptions only with the synthetic data
    const c = {
      data: spec,
      loss,
      ...(dataOptions !== null && typeof dataOptions === 'object' && !Array.isArray(dataOptions) ? { dataOptions: dataOptions } : {}),
    } as Pick<TrainConfig, 'data' | 'loss' | 'dataOptions'>;
    return { train: openConfigData(c, 'train'), test: openConfigData(c, 'test') };
  } catch (e) {
    notes.push(`the data set "${spec}" could not be opened (${(e as Error).message}); example images are not shown`);
    return { train: null, test: null };
  }
}

export function loadRun(runDir: string): RunFiles {
  const notes: string[] = [];
  const runRaw = readJson(join(runDir, 'run.json'), 'run.json', notes);
  const run = isObj(runRaw) ? runRaw : null;
  if (!run) notes.push(`${runDir} has no readable run.json; the run's configuration is not shown`);
  const note = (schema: z.ZodType, v: unknown, what: string) => {
    const n = schemaNote(schema, v, what);
    if (n !== null) notes.push(n);
  };
  if (run) note(runFileSchema, run, 'run.json');
  const config = run && isObj(run.config) ? run.config : null;

  const metrics = readJsonl(join(runDir, 'metrics.jsonl'), 'metrics.jsonl', notes, parseMetrics, metricsLineSchema);
  const sweepDir = join(runDir, 'sweep');
  const sweepRaw = readJson(join(sweepDir, 'sweep.json'), 'sweep/sweep.json', notes);
  const sweepMeta = isObj(sweepRaw) ? sweepRaw : null;
  if (sweepMeta) note(sweepParamsSchema, sweepMeta, 'sweep/sweep.json');
  const resultsRaw = readJsonl(join(sweepDir, 'results.jsonl'), 'sweep/results.jsonl', notes, parseResult, unitRecordSchema);
  const summary = readJson(join(sweepDir, 'summary.json'), 'sweep/summary.json', notes);
  if (summary !== null) note(summarySchema, summary, 'sweep/summary.json');
  const allPairs = readJsonl(join(sweepDir, 'allpairs.jsonl'), 'sweep/allpairs.jsonl', notes, parseAllPairs, allPairsLineSchema);
  const verifyRaw = readJson(join(runDir, 'verify.json'), 'verify.json', notes);
  const verify = parseVerify(verifyRaw, notes);
  if (verify !== null) note(verifyFileSchema, verifyRaw, 'verify.json');

  // results: the last line for each (step, x, y) wins (a resumed sweep may repeat one)
  const byKey = new Map<string, ResultRow>();
  for (const r of resultsRaw ?? []) byKey.set(`${r.step}|${r.x}|${r.y}`, r);
  const results = [...byKey.values()];

  const pairs: [number, number][] = [];
  const seen = new Set<string>();
  const addPair = (p: [number, number]) => {
    const k = `${p[0]},${p[1]}`;
    if (!seen.has(k)) {
      seen.add(k);
      pairs.push(p);
    }
  };
  if (sweepMeta && Array.isArray(sweepMeta.pairs))
    for (const p of sweepMeta.pairs) {
      const q = pairOf(p);
      if (q) addPair(q);
    }
  for (const r of results) addPair([r.x, r.y]);

  const probeIndices =
    sweepMeta && Array.isArray(sweepMeta.probeIndices) && sweepMeta.probeIndices.every((i) => int(i) !== null)
      ? (sweepMeta.probeIndices as number[])
      : null;
  const options = sweepMeta && isObj(sweepMeta.options) ? sweepMeta.options : {};
  const pairSplit = options.split === 'train' ? 'train' : 'test';
  const probeSplit = options.probeSplit === 'train' ? 'train' : 'test';

  const data = openData(runDir, config, notes);
  const pairData = pairSplit === 'train' ? data.train : data.test;
  const probeData = probeSplit === 'train' ? data.train : data.test;

  // output names: the data set's, else the sweep's, else run.json's description of the data, else the all-pairs file's
  const strings = (v: unknown): string[] | null => (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string') ? v : null);
  const d = run && isObj(run.data) ? run.data : null;
  const labels: string[] = [
    ...((data.test ? [...data.test.labelNames] : null) ??
      strings(sweepMeta?.outputs) ??
      strings(d && isObj(d.test) ? d.test.labelNames : null) ??
      strings(d && isObj(d.train) ? d.train.labelNames : null) ??
      allPairs?.find((a) => a.outputs)?.outputs ??
      []),
  ];
  const k = Math.max(0, ...results.flatMap((r) => (r.probeEffects ?? []).map((e) => e.length)), ...(metrics ?? []).map((m) => m.accuracy.length));
  for (let j = labels.length; j < k; j++) labels.push(`output ${j}`);

  if (!metrics) notes.push('no metrics.jsonl: training curves are not shown');
  if (!resultsRaw) notes.push('no sweep/results.jsonl: the bracket figures are not shown (run lie-bracket sweep on this run)');
  return {
    runDir,
    run,
    config,
    metrics: metrics ?? [],
    sweepMeta,
    pairs,
    probeIndices,
    results,
    summary,
    allPairs: allPairs ?? [],
    verify,
    labels,
    pairData,
    probeData,
    pairSplit,
    probeSplit,
    notes,
    present: {
      run: run !== null,
      metrics: metrics !== null,
      sweep: sweepMeta !== null,
      results: resultsRaw !== null,
      summary: summary !== null,
      allPairs: allPairs !== null && allPairs.length > 0,
      verify: verify !== null,
    },
  };
}

export { isObj, num, int, str, pairOf };
