// @ts-check
/**
 * What the experiment scripts share: command-line options and output places, running a study
 * (train → sweep → statistics → report, resumable) for a config, reading a sweep's bracket vectors
 * back and measuring their effect on predicted probabilities, small statistics (t intervals,
 * Spearman), result tables (JSON + Markdown) and figures (Vega-Lite → PNG).
 *
 * Everything numerical comes from the built package (../dist), so `npm run build` first (the
 * `npm run experiments` script does).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { batch, engine, logitEffect, openRun, probabilityEffect, readSafetensors, runStudy, writeReport } from '../dist/index.js';
import { evalState } from '../dist/nn/layers.js';
import { renderSvg } from '../dist/report/export.js';
import { mean, sd, spearman } from '../dist/study/sweep-stats.js';

export { mean, sd, spearman };

/** @typedef {import('../dist/study/train.js').TrainConfig} TrainConfig */
/** @typedef {import('../dist/study/run.js').Run} Run */
/** @typedef {import('../dist/bracket/vec.js').Vec} Vec */
/** @typedef {import('../dist/engine/tensor.js').Tensor} Tensor */
/** @typedef {import('../dist/study/sweep-stats.js').Summary} Summary */

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CONFIG_DIR = join(ROOT, 'experiments', 'configs');

/**
 * @typedef {object} Context
 * @property {boolean} quick   tiny sizes (CI): a pipeline check, not a result
 * @property {string} tables   where results tables go (JSON + Markdown, one pair per experiment)
 * @property {string} figures  where PNG figures go
 * @property {string} specs    where the figures' Vega-Lite specs go
 * @property {string} runs     where run directories go (resumable; reused across experiments)
 * @property {number | undefined} workers  sweep worker threads (default: the cores; quick: 1)
 * @property {(msg: string) => void} log  progress on stderr
 * @property {{ name: string, runDir: string, seconds: number, reused: boolean }[]} studies  the studies this invocation ran or reused
 */

/**
 * Parse `[--quick] [--out DIR] [--runs DIR] [--workers N] [names…]`.
 * Defaults — full: tables in experiments/results/, figures in docs/img/findings/, runs in
 * runs/experiments/; quick: everything under runs/experiments-quick/ (never the committed results).
 * With --out DIR: DIR/results, DIR/img (and DIR/vega), DIR/runs.
 * @param {readonly string[]} argv
 * @returns {{ ctx: Context, names: string[] }}
 */
export function parseArgs(argv) {
  let quick = false;
  /** @type {string | undefined} */
  let out;
  /** @type {string | undefined} */
  let runs;
  /** @type {number | undefined} */
  let workers;
  /** @type {string[]} */
  const names = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') quick = true;
    else if (a === '--out') out = resolve(value());
    else if (a === '--runs') runs = resolve(value());
    else if (a === '--workers') {
      workers = Number(value());
      if (!Number.isInteger(workers) || workers < 1) throw new Error('--workers must be an integer ≥ 1');
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(`usage: node experiments/run.mjs [a|b|c|d …] [--quick] [--out DIR] [--runs DIR] [--workers N]\n`);
      process.exit(0);
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else names.push(a);
  }
  const base = out ?? (quick ? join(ROOT, 'runs', 'experiments-quick') : undefined);
  const t0 = performance.now();
  return {
    names,
    ctx: {
      quick,
      tables: base ? join(base, 'results') : join(ROOT, 'experiments', 'results'),
      figures: base ? join(base, 'img') : join(ROOT, 'docs', 'img', 'findings'),
      specs: base ? join(base, 'vega') : join(ROOT, 'experiments', 'results', 'vega'),
      runs: runs ?? (base ? join(base, 'runs') : join(ROOT, 'runs', 'experiments')),
      workers: workers ?? (quick ? 1 : undefined),
      log: (msg) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`),
      studies: [],
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Configs and studies

/**
 * A study config (a `lie-bracket study --config` file) from experiments/configs/.
 * @param {string} name  file name without .json
 * @returns {Record<string, unknown>}
 */
export function loadConfig(name) {
  return JSON.parse(readFileSync(join(CONFIG_DIR, `${name}.json`), 'utf8'));
}

/**
 * The sweep settings every study of the experiments uses (shared run directories need the same
 * ones): all pairs among the first `first` test examples, the first `probes` test examples as
 * probes, and the bracket vectors saved for the probability effects.
 * @param {Context} ctx
 */
export function sweepSettings(ctx) {
  return ctx.quick ? { first: 3, probes: 4 } : { first: 8, probes: 32 };
}

/**
 * @typedef {object} StudyHandle
 * @property {string} name
 * @property {string} configFile   the config file this study comes from (relative to the repo)
 * @property {Record<string, unknown>} overrides  fields set on top of the file (seed, quick sizes)
 * @property {Record<string, unknown>} config     the effective config
 * @property {string} runDir   absolute
 * @property {string} runPath  relative to the repository
 * @property {string} command  the equivalent `lie-bracket study` command line
 * @property {number} seconds  wall time of this call (≈ 0 when everything was reused)
 */

/**
 * Run (or reuse) the study of config file `name` with `overrides`. The run directory is
 * <ctx.runs>/<name>-seed<s>-<hash of the config>, so two experiments asking for the same config
 * share one run, and a changed config never collides with an old run.
 * @param {Context} ctx
 * @param {string} name
 * @param {Record<string, unknown>} [overrides]
 * @returns {Promise<StudyHandle>}
 */
export async function study(ctx, name, overrides = {}) {
  const file = loadConfig(name);
  /** @type {Record<string, unknown>} */
  const o = { ...overrides };
  if (ctx.quick) Object.assign(o, QUICK_SIZES);
  const config = { ...file, ...o };
  const hash = createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 8);
  const seed = `-seed${Number(config.seed ?? 0)}`;
  const runDir = join(ctx.runs, `${name}${seed}-${hash}`);
  const s = sweepSettings(ctx);
  const flags = Object.entries(o)
    .map(([k, v]) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${Array.isArray(v) ? v.join(',') : String(v)}`)
    .join(' ');
  const command = `lie-bracket study --config experiments/configs/${name}.json${flags ? ` ${flags}` : ''} --first ${s.first} --probes ${s.probes} --save-vectors --out ${relative(ROOT, runDir)}`;
  const t0 = performance.now();
  const reused =
    existsSync(join(runDir, 'sweep', 'summary.json')) && JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')).status === 'complete';
  ctx.log(`study ${name}${seed} → ${relative(ROOT, runDir)}${reused ? ' (reused)' : ''}`);
  const { parseTrainConfig } = await import('../dist/study/train.js');
  const parsed = parseTrainConfig(config, `experiments/configs/${name}.json`);
  let lastStep = 0;
  await runStudy(parsed, runDir, {
    ...s,
    report: writeReport,
    saveVectors: true,
    workers: ctx.workers,
    onStage: (stage, detail) => ctx.log(`  ${name}${seed}: ${stage}${detail ? ` (${detail})` : ''}`),
    onStep: (step, loss) => {
      if (step - lastStep >= 100 || step === parsed.steps) {
        lastStep = step;
        ctx.log(`  ${name}${seed}: step ${step}/${parsed.steps}, loss ${loss.toFixed(4)}`);
      }
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const rel = relative(ROOT, runDir);
  if (!ctx.studies.some((x) => x.runDir === rel)) ctx.studies.push({ name: `${name}${seed}`, runDir: rel, seconds, reused });
  return { name, configFile: `experiments/configs/${name}.json`, overrides: o, config, runDir, runPath: rel, command, seconds };
}

/** Quick-mode sizes, on top of any config: a few steps, three checkpoints, a small evaluation. */
const QUICK_SIZES = { steps: 4, checkpointSteps: [0, 2, 4], evalSize: 50, evalEvery: 4 };

/**
 * The sweep summary of a study (written by the sweep when complete).
 * @param {string} runDir
 * @returns {Summary}
 */
export function readSummary(runDir) {
  return JSON.parse(readFileSync(join(runDir, 'sweep', 'summary.json'), 'utf8'));
}

/**
 * @param {string} runDir
 * @returns {import('../dist/study/sweep.js').SweepParams}
 */
export function readSweepParams(runDir) {
  return JSON.parse(readFileSync(join(runDir, 'sweep', 'sweep.json'), 'utf8'));
}

/**
 * The last evaluation of a run (metrics.jsonl): loss, per-output accuracy and AUC.
 * @param {string} runDir
 * @returns {{ loss: number, accuracy: number[], auc: number[], classAccuracy?: number }}
 */
export function finalEval(runDir) {
  const lines = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = JSON.parse(lines[i] ?? '{}');
    if (m.eval) return m.eval;
  }
  throw new Error(`${runDir}: no evaluation in metrics.jsonl`);
}

/**
 * Checkpoints in the second half of training (step ≥ steps/2): the "trained" regime.
 * @param {readonly number[]} steps
 */
export function lateSteps(steps) {
  const last = steps[steps.length - 1] ?? 0;
  return steps.filter((s) => s >= last / 2 && s > 0);
}

// ------------------------------------------------------------------------------------------------
// Probability effects of saved bracket vectors

/**
 * Per pair, per output, the pair's order sensitivity at checkpoint `step` of a study whose sweep
 * saved its vectors, in the four spaces of issue 10 (each a mean over the probes):
 *   logit   |J_f(z)·B|, the logit effect (the seed's measure);
 *   prob    |Δp_f|, the change of the predicted probability of output f along the bracket
 *           (probabilityEffect: the jvp of θ ↦ probabilities(f(θ, z)));
 *   fisher  |Δp_f| / √(p_f(1 − p_f)), the probability effect in units of output f's Bernoulli
 *           standard deviation (for `grouped`/`ce` p_f is the softmax's marginal for f, so the same
 *           formula is the per-output analogue of the group's Fisher metric);
 *   control p_f(1 − p_f) at the probes: no bracket involved (the same for every pair), the part of
 *           |Δp| that confidence alone explains (|Δp| = p(1−p)·|Δz| for a sigmoid).
 * `perProbe` keeps the unaveraged values, [pair][probe][output], for per-unit statistics; `pq` is
 * p(1 − p) [probe][output]. Also ‖B‖ per pair.
 * @param {string} runDir
 * @param {number} step
 * @returns {{ pairs: [number, number][], probeIndices: number[], prob: number[][], logit: number[][], fisher: number[][], control: number[],
 *   bracketNorm: number[], pq: number[][], perProbe: { logit: number[][][], prob: number[][][], fisher: number[][][] } }}
 */
export function probabilityScores(runDir, step) {
  const run = openRun(runDir);
  const params = readSweepParams(runDir);
  const ck = run.checkpoint(step);
  const file = join(runDir, 'sweep', 'vectors', `step-${step}.safetensors`);
  if (!existsSync(file)) throw new Error(`${file}: missing (the sweep must save its vectors)`);
  const { tensors } = readSafetensors(file);
  const dtype = run.config.dtype;
  const z = batch(run.test, params.probeIndices, dtype).x;
  const fwd = evalState(ck.buffers);
  const k = params.outputs.length;
  const np = params.probeIndices.length;
  const probs = engine.concrete(run.loss.probabilities(run.model.apply(ck.params, z, fwd))).data;
  /** @type {number[][]} */
  const pq = [];
  for (let i = 0; i < np; i++) {
    /** @type {number[]} */
    const row = [];
    for (let j = 0; j < k; j++) {
      const p = probs[i * k + j] ?? NaN;
      row.push(p * (1 - p));
    }
    pq.push(row);
  }
  /** @type {number[][]} */
  const prob = [];
  /** @type {number[][]} */
  const logit = [];
  /** @type {number[][]} */
  const fisher = [];
  /** @type {number[]} */
  const bracketNorm = [];
  /** @type {{ logit: number[][][], prob: number[][][], fisher: number[][][] }} */
  const perProbe = { logit: [], prob: [], fisher: [] };
  for (const [x, y] of params.pairs) {
    /** @type {Vec} */
    const v = {};
    let sq = 0;
    for (const name of Object.keys(run.model.paramShapes)) {
      const t = tensors[`${x}_${y}/${name}`];
      if (!t) throw new Error(`${file}: no vector for pair ${x},${y} tensor ${name}`);
      v[name] = t.dtype === dtype ? t : engine.concrete(engine.cast(t, dtype));
      for (const a of t.data) sq += a * a;
    }
    const dp = probabilityEffect(run.model, run.loss, ck.params, z, v, fwd).data;
    const dz = logitEffect(
      run.model,
      ck.params,
      z,
      Object.fromEntries(Object.keys(ck.params).map((name) => [name, /** @type {Tensor} */ (v[name])])),
      fwd,
    ).data;
    const rows = (/** @type {(i: number, j: number) => number} */ f) =>
      Array.from({ length: np }, (_, i) => Array.from({ length: k }, (_, j) => f(i, j)));
    const pl = rows((i, j) => Math.abs(dz[i * k + j] ?? NaN));
    const pp = rows((i, j) => Math.abs(dp[i * k + j] ?? NaN));
    const pf = rows((i, j) => Math.abs(dp[i * k + j] ?? NaN) / Math.sqrt(Math.max(pq[i]?.[j] ?? NaN, 1e-300)));
    perProbe.logit.push(pl);
    perProbe.prob.push(pp);
    perProbe.fisher.push(pf);
    logit.push(columnMeans(pl));
    prob.push(columnMeans(pp));
    fisher.push(columnMeans(pf));
    bracketNorm.push(Math.sqrt(sq));
  }
  return { pairs: params.pairs, probeIndices: [...params.probeIndices], prob, logit, fisher, control: columnMeans(pq), bracketNorm, pq, perProbe };
}

/**
 * Mean over the rows of a matrix, per column.
 * @param {readonly (readonly number[])[]} rows
 */
export function columnMeans(rows) {
  const k = rows[0]?.length ?? 0;
  return Array.from({ length: k }, (_, j) => mean(rows.map((r) => r[j] ?? NaN)));
}

/**
 * Test-set predictions of a checkpoint: argmax of the loss's probabilities, and the confusion
 * matrix (rows: true class, columns: predicted), for class-labelled data.
 * @param {string} runDir
 * @param {number} step
 * @param {number} [limit]  first N test examples (default all)
 */
export function confusion(runDir, step, limit) {
  const run = openRun(runDir);
  const ck = run.checkpoint(step);
  const k = run.test.labelNames.length;
  const n = Math.min(limit ?? run.test.length, run.test.length);
  const m = Array.from({ length: k }, () => new Array(k).fill(0));
  const fwd = evalState(ck.buffers);
  for (let s = 0; s < n; s += 200) {
    const idx = Array.from({ length: Math.min(200, n - s) }, (_, i) => s + i);
    const b = batch(run.test, idx, run.config.dtype);
    const p = engine.concrete(run.loss.probabilities(run.model.apply(/** @type {any} */ (ck.params), b.x, fwd))).data;
    const t = b.t.data;
    for (let i = 0; i < idx.length; i++) {
      let truth = 0;
      let pred = 0;
      for (let j = 1; j < k; j++) {
        if ((t[i * k + j] ?? 0) > (t[i * k + truth] ?? 0)) truth = j;
        if ((p[i * k + j] ?? 0) > (p[i * k + pred] ?? 0)) pred = j;
      }
      const row = m[truth];
      if (row) row[pred] += 1;
    }
  }
  return { labels: [...run.test.labelNames], matrix: m, n };
}

// ------------------------------------------------------------------------------------------------
// Statistics

/** Two-sided 95% quantiles of Student's t, df = 1…30. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08,
  2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/**
 * Mean with a 95% t-interval over independent values (NaN interval below 2 values).
 * @param {readonly number[]} xs
 * @returns {{ n: number, mean: number, sd: number, ci95: [number, number], positive: number }}
 */
export function tInterval(xs) {
  const n = xs.length;
  const m = mean(xs);
  const s = sd(xs);
  const t = n >= 2 ? (T975[n - 2] ?? 1.96) : NaN;
  const h = (t * s) / Math.sqrt(n);
  return { n, mean: m, sd: s, ci95: [m - h, m + h], positive: xs.filter((x) => x > 0).length };
}

/**
 * Median, minimum and maximum.
 * @param {readonly number[]} xs
 */
export function medianRange(xs) {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const q = (/** @type {number} */ p) => {
    if (s.length === 0) return NaN;
    const pos = p * (s.length - 1);
    const lo = Math.floor(pos);
    const a = s[lo] ?? NaN;
    const b = s[Math.min(lo + 1, s.length - 1)] ?? NaN;
    return a + (b - a) * (pos - lo);
  };
  return { n: s.length, median: q(0.5), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

// ------------------------------------------------------------------------------------------------
// Output: tables and figures

/**
 * A number for tables: 3 significant digits, scientific outside [1e-3, 1e4).
 * @param {number | null | undefined} v
 * @param {number} [digits]
 */
export function fmt(v, digits = 3) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(digits - 1);
  return Number(v.toPrecision(digits)).toString();
}

/** @param {[number, number]} ci */
export const fmtCi = (ci) => `[${fmt(ci[0])}, ${fmt(ci[1])}]`;

/**
 * A Markdown table.
 * @param {readonly string[]} head
 * @param {readonly (readonly (string | number)[])[]} rows
 */
export function mdTable(head, rows) {
  const esc = (/** @type {string | number} */ c) => String(c).replace(/\|/g, '\\|');
  return [`| ${head.map(esc).join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join(
    '\n',
  );
}

/**
 * Write a file atomically (temporary file, then rename).
 * @param {string} path
 * @param {string | Uint8Array} data
 */
export function writeAtomic(path, data) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * Write <tables>/<id>.json and <tables>/<id>.md.
 * @param {Context} ctx
 * @param {string} id
 * @param {Record<string, unknown>} json
 * @param {string} markdown
 */
export function writeResults(ctx, id, json, markdown) {
  writeAtomic(join(ctx.tables, `${id}.json`), `${JSON.stringify(json, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  writeAtomic(join(ctx.tables, `${id}.md`), `${markdown.trimEnd()}\n`);
  ctx.log(`wrote ${relative(ROOT, join(ctx.tables, `${id}.json`))} and .md`);
}

const VL_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const VL_CONFIG = {
  font: 'DejaVu Sans',
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 220 },
  title: { fontSize: 14, anchor: 'start', subtitleFontSize: 12, subtitleColor: '#555' },
  header: { labelFontSize: 12, titleFontSize: 12 },
};

/**
 * Render a Vega-Lite spec to PNG (<figures>/<id>.png) and keep the spec (<specs>/<id>.vl.json).
 * @param {Context} ctx
 * @param {string} id
 * @param {Record<string, unknown>} spec  Vega-Lite, data inline
 * @returns {Promise<string>} the PNG path
 */
export async function writeFigure(ctx, id, spec) {
  const full = { $schema: VL_SCHEMA, background: 'white', padding: 8, config: VL_CONFIG, ...spec };
  writeAtomic(join(ctx.specs, `${id}.vl.json`), `${JSON.stringify(full)}\n`);
  /** @type {string[]} */
  const warnings = [];
  const svg = await renderSvg(full, warnings, id);
  for (const w of warnings) ctx.log(`  figure warning: ${w}`);
  const { Resvg } = await import('@resvg/resvg-js');
  const png = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  })
    .render()
    .asPng();
  const path = join(ctx.figures, `${id}.png`);
  writeAtomic(path, png);
  ctx.log(`wrote ${relative(ROOT, path)}`);
  return path;
}

/**
 * Run an experiment module's `run` when the file is executed directly.
 * @param {string} metaUrl  import.meta.url of the module
 * @param {(ctx: Context) => Promise<unknown>} run
 */
export async function mainIfDirect(metaUrl, run) {
  if (process.argv[1] === undefined || resolve(process.argv[1]) !== fileURLToPath(metaUrl)) return;
  const { ctx } = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  await run(ctx);
  ctx.log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
