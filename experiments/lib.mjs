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
import { resolveGroups } from '../dist/study/train.js';
import { renderSvg } from '../dist/report/export.js';
import { hierarchicalBootstrap, signTest } from '../dist/study/robust-stats.js';
import { mean, quantileSorted, sd, spearman } from '../dist/study/sweep-stats.js';

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
      process.stdout.write(`usage: node experiments/run.mjs [a|b|c|d|e …] [--quick] [--out DIR] [--runs DIR] [--workers N]\n`);
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
 * @typedef {object} ImageSet  the sweep's images, when not the default ones (sweepSettings)
 * @property {[number, number][]} pairs  test-split index pairs
 * @property {number[]} probeIndices    test-split indices of the probes
 * @property {string} label             e.g. "test 32–39 (pairs), 32–63 (probes)"
 */

/**
 * The pair and probe images of the `k`-th image set of a fixed test split (Fashion-MNIST), so
 * that each seed can bracket images of its own: set k takes all pairs among test examples
 * [k·P, k·P + K) and the probes [k·P, k·P + P) (K, P of sweepSettings; the pair images are
 * probes too, as in the default). Set 0 is the default sweep (undefined: the shared run).
 * @param {Context} ctx
 * @param {number} k
 * @returns {ImageSet | undefined}
 */
export function imageSet(ctx, k) {
  if (k === 0) return undefined;
  const { first, probes } = sweepSettings(ctx);
  const o = k * probes;
  /** @type {[number, number][]} */
  const pairs = [];
  for (let i = 0; i < first; i++) for (let j = i + 1; j < first; j++) pairs.push([o + i, o + j]);
  return {
    pairs,
    probeIndices: Array.from({ length: probes }, (_, i) => o + i),
    label: `test ${o}–${o + first - 1} (pairs), ${o}–${o + probes - 1} (probes)`,
  };
}

/** "another training (pid 123) is writing here": a lock held by a live process (another experiment on the same run). */
const LOCKED = /another .* \(pid \d+[^)]*\) is writing here/;

/**
 * Run (or reuse) the study of config file `name` with `overrides`. The run directory is
 * <ctx.runs>/<name>-seed<s>-<hash of the config>, so two experiments asking for the same config
 * share one run, and a changed config never collides with an old run. With `images` (imageSet)
 * the sweep brackets those pairs and probes instead of the default ones; they enter the hash (a
 * run directory of its own). When another process is training or sweeping the same run directory
 * (another experiment running at the same time), this waits for it and then reuses its work.
 * @param {Context} ctx
 * @param {string} name
 * @param {Record<string, unknown>} [overrides]
 * @param {ImageSet} [images]
 * @returns {Promise<StudyHandle>}
 */
export async function study(ctx, name, overrides = {}, images = undefined) {
  const file = loadConfig(name);
  /** @type {Record<string, unknown>} */
  const o = { ...overrides };
  if (ctx.quick) Object.assign(o, QUICK_SIZES);
  const config = { ...file, ...o };
  const keyed = images ? { ...config, sweepImages: { pairs: images.pairs, probeIndices: images.probeIndices } } : config;
  const hash = createHash('sha256').update(JSON.stringify(keyed)).digest('hex').slice(0, 8);
  const seed = `-seed${Number(config.seed ?? 0)}`;
  const runDir = join(ctx.runs, `${name}${seed}-${hash}`);
  const s = sweepSettings(ctx);
  const isObject = (/** @type {unknown} */ v) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const flags = Object.entries(o)
    .filter(([, v]) => !isObject(v))
    .map(([k, v]) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${Array.isArray(v) ? v.join(',') : String(v)}`)
    .join(' ');
  // config fields without a flag (dataOptions), and the sweep's own images: named after the command
  const fields = Object.entries(o)
    .filter(([, v]) => isObject(v))
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  const notes = [
    ...(fields.length > 0 ? [`config ${fields.join(', ')}: a config field, no flag`] : []),
    ...(images ? [`sweep images ${images.label}: runStudy's pairs / probeIndices options, no flag`] : []),
  ];
  const sweepFlags = images ? '' : ` --first ${s.first} --probes ${s.probes}`;
  const command = `lie-bracket study --config experiments/configs/${name}.json${flags ? ` ${flags}` : ''}${sweepFlags} --save-vectors --out ${relative(ROOT, runDir)}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`;
  const t0 = performance.now();
  const reused =
    existsSync(join(runDir, 'sweep', 'summary.json')) && JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')).status === 'complete';
  ctx.log(`study ${name}${seed} → ${relative(ROOT, runDir)}${reused ? ' (reused)' : ''}`);
  const { parseTrainConfig } = await import('../dist/study/train.js');
  const parsed = parseTrainConfig(config, `experiments/configs/${name}.json`);
  let lastStep = 0;
  const sweepImages = images ? { pairs: images.pairs, probeIndices: images.probeIndices } : s;
  for (let waited = 0; ;) {
    try {
      await runStudy(parsed, runDir, {
        ...sweepImages,
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
      break;
    } catch (e) {
      if (!(e instanceof Error && LOCKED.test(e.message)) || waited > 3600) throw e;
      if (waited === 0) ctx.log(`  ${name}${seed}: ${e.message.split(';')[0]}; waiting for it`);
      await new Promise((r) => setTimeout(r, 5000));
      waited += 5;
    }
  }
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
 *   prob    |Δp_f|, the change of the predicted probability of output f along the bracket, the
 *           jvp of θ ↦ probabilities(f(θ, z)) — computed as J_p(z)·(J_f·B) in float64 from the
 *           logits and the logit effect (stableProbabilities), and checked against the engine's
 *           jvp (probabilityEffect) for the first pair where no output saturates;
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
  // p, p(1 − p) and Δp = J_p(z)·Δz in float64, from the logits and the logit effect, in forms that
  // stay accurate where an output saturates (float32 rounds p to 1 at a margin of ~17: then 1 − p is
  // 0 while the jvp's Δp keeps a rounding residue, and |Δp|/√(p(1−p)) explodes)
  const structure = outputStructure(run);
  const logits = Array.from(engine.concrete(run.model.apply(ck.params, z, fwd)).data);
  const rowOf = (/** @type {ArrayLike<number>} */ a, /** @type {number} */ i) => Array.from({ length: k }, (_, j) => a[i * k + j] ?? NaN);
  /** @type {number[][]} */
  const pq = Array.from({ length: np }, (_, i) => stableProbabilities(rowOf(logits, i), new Array(k).fill(0), structure).pq);
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
  params.pairs.forEach(([x, y], pairIndex) => {
    /** @type {Vec} */
    const v = {};
    let sq = 0;
    for (const name of Object.keys(run.model.paramShapes)) {
      const t = tensors[`${x}_${y}/${name}`];
      if (!t) throw new Error(`${file}: no vector for pair ${x},${y} tensor ${name}`);
      v[name] = t.dtype === dtype ? t : engine.concrete(engine.cast(t, dtype));
      for (const a of t.data) sq += a * a;
    }
    const dz = logitEffect(
      run.model,
      ck.params,
      z,
      Object.fromEntries(Object.keys(ck.params).map((name) => [name, /** @type {Tensor} */ (v[name])])),
      fwd,
    ).data;
    const stable = Array.from({ length: np }, (_, i) => stableProbabilities(rowOf(logits, i), rowOf(dz, i), structure));
    if (pairIndex === 0) {
      // check against the engine's jvp of the probabilities where nothing saturates
      const dpJvp = probabilityEffect(run.model, run.loss, ck.params, z, v, fwd).data;
      stable.forEach((st, i) =>
        st.dp.forEach((d, j) => {
          const ref = dpJvp[i * k + j] ?? NaN;
          const tol = 1e-3 * Math.max(Math.abs(ref), ...st.dp.map((w) => Math.abs(w))) + 1e-30;
          if ((st.pq[j] ?? 0) > 1e-3 && !(Math.abs(d - ref) <= tol))
            throw new Error(`${runDir} step ${step}: the stable Δp of output ${j} (${d}) disagrees with probabilityEffect (${ref})`);
        }),
      );
    }
    const rows = (/** @type {(i: number, j: number) => number} */ f) =>
      Array.from({ length: np }, (_, i) => Array.from({ length: k }, (_, j) => f(i, j)));
    const pl = rows((i, j) => Math.abs(dz[i * k + j] ?? NaN));
    const pp = rows((i, j) => Math.abs(stable[i]?.dp[j] ?? NaN));
    const pf = rows((i, j) => stable[i]?.fisher[j] ?? NaN);
    perProbe.logit.push(pl);
    perProbe.prob.push(pp);
    perProbe.fisher.push(pf);
    logit.push(columnMeans(pl));
    prob.push(columnMeans(pp));
    fisher.push(columnMeans(pf));
    bracketNorm.push(Math.sqrt(sq));
  });
  return { pairs: params.pairs, probeIndices: [...params.probeIndices], prob, logit, fisher, control: columnMeans(pq), bracketNorm, pq, perProbe };
}

/**
 * @typedef {object} OutputStructure  how a run's loss turns logits into per-output probabilities
 * @property {{ members: number[], allowNone: boolean }[]} blocks  softmax blocks (ce: all outputs; grouped: each group, with a "none" option at logit 0 where allowed)
 * @property {number[]} sigmoids  outputs with an independent sigmoid
 */

/**
 * @param {Run} run
 * @returns {OutputStructure}
 */
export function outputStructure(run) {
  const k = run.test.labelNames.length;
  const all = Array.from({ length: k }, (_, i) => i);
  if (run.config.loss === 'bce') return { blocks: [], sigmoids: all };
  if (run.config.loss === 'ce') return { blocks: [{ members: all, allowNone: false }], sigmoids: [] };
  const groups = resolveGroups(run.config, run.test);
  const grouped = new Set(groups.flatMap((g) => g.members));
  return { blocks: groups.map((g) => ({ members: [...g.members], allowNone: g.allowNone })), sigmoids: all.filter((i) => !grouped.has(i)) };
}

/** log(1 + eˣ), stable. @param {number} x */
const softplus = (x) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/**
 * One probe's per-output probability p, p(1 − p), the first-order change Δp = J_p(z)·Δz for a logit
 * change Δz, and the Fisher-normalised |Δp|/√(p(1−p)), in float64 and in forms without
 * cancellation: for a sigmoid p(1−p) = e^(−softplus(−z) − softplus(z)), Δp = p(1−p)Δz and the
 * Fisher value √(p(1−p))·|Δz|; in a softmax block (with the "none" option's logit 0 and Δz 0)
 * 1 − p_f = Σ_{g≠f} p_g and Δp_f = p_f Σ_{g≠f} p_g (Δz_f − Δz_g).
 * @param {readonly number[]} z
 * @param {readonly number[]} dz
 * @param {OutputStructure} st
 */
export function stableProbabilities(z, dz, st) {
  const k = z.length;
  const p = new Array(k).fill(NaN);
  const pq = new Array(k).fill(NaN);
  const dp = new Array(k).fill(NaN);
  const fisher = new Array(k).fill(NaN);
  for (const f of st.sigmoids) {
    const zf = z[f] ?? NaN;
    const lp = -softplus(-zf);
    const lq = -softplus(zf);
    p[f] = Math.exp(lp);
    pq[f] = Math.exp(lp + lq);
    dp[f] = pq[f] * (dz[f] ?? NaN);
    fisher[f] = Math.exp((lp + lq) / 2) * Math.abs(dz[f] ?? NaN);
  }
  for (const b of st.blocks) {
    const zs = b.members.map((i) => z[i] ?? NaN);
    const ds = b.members.map((i) => dz[i] ?? NaN);
    if (b.allowNone) {
      zs.push(0);
      ds.push(0);
    }
    const m = Math.max(...zs);
    const e = zs.map((v) => Math.exp(v - m));
    const S = e.reduce((a, v) => a + v, 0);
    const pr = e.map((v) => v / S);
    b.members.forEach((f, a) => {
      let q = 0;
      let d = 0;
      pr.forEach((pg, g) => {
        if (g === a) return;
        q += pg;
        d += pg * ((ds[a] ?? NaN) - (ds[g] ?? NaN));
      });
      const pf = pr[a] ?? NaN;
      p[f] = pf;
      pq[f] = pf * q;
      dp[f] = pf * d;
      fisher[f] = pf * q > 0 ? Math.sqrt(pf / q) * Math.abs(d) : 0;
    });
  }
  return { p, pq, dp, fisher };
}

/** The four spaces of issue 10 (the last, `control`, involves no bracket). */
export const SPACES = /** @type {const} */ (['logit', 'prob', 'fisher', 'control']);
/** @typedef {'logit' | 'prob' | 'fisher' | 'control'} Space */
/** The spaces' names in tables. */
export const SPACE_LABELS = { logit: 'logit |J_f·B|', prob: 'probability |Δp|', fisher: 'Fisher |Δp|/√(p(1−p))', control: 'control p(1−p)' };

/**
 * @typedef {object} ScoreUnit  one (checkpoint, pair, probe) of a study: each output's score in the four spaces
 * @property {number} step
 * @property {string} pair   "x,y" (test-split indices)
 * @property {number} probe  test-split index of the probe image
 * @property {number} bracketNorm  ‖B‖ of the pair at the checkpoint
 * @property {Record<Space, number[]>} scores  per output (the control p(1−p) is the probe's, the same for every pair)
 */

/**
 * Every (checkpoint, pair, probe) unit of a study at `steps`, with its scores in the four spaces
 * (probabilityScores, unaveraged).
 * @param {string} runDir
 * @param {readonly number[]} steps
 * @returns {{ outputs: string[], probeIndices: number[], pairs: [number, number][], units: ScoreUnit[] }}
 */
export function unitScores(runDir, steps) {
  const p = readSweepParams(runDir);
  /** @type {ScoreUnit[]} */
  const units = [];
  for (const step of steps) {
    const s = probabilityScores(runDir, step);
    s.pairs.forEach(([x, y], i) => {
      s.probeIndices.forEach((probe, j) => {
        units.push({
          step,
          pair: `${x},${y}`,
          probe,
          bracketNorm: s.bracketNorm[i] ?? NaN,
          scores: {
            logit: s.perProbe.logit[i]?.[j] ?? [],
            prob: s.perProbe.prob[i]?.[j] ?? [],
            fisher: s.perProbe.fisher[i]?.[j] ?? [],
            control: s.pq[j] ?? [],
          },
        });
      });
    });
  }
  return { outputs: [...p.outputs], probeIndices: [...p.probeIndices], pairs: p.pairs, units };
}

/** Bootstrap resamples: 2000 (quick mode: 200). @param {Context} ctx */
export const bootstrapSamples = (ctx) => (ctx.quick ? 200 : 2000);

/**
 * @typedef {object} CellIndex  a study's units arranged for the image bootstrap: one cell per (pair, probe), summed over checkpoints
 * @property {string[]} images  the study's image ids (test indices as strings): the probes, then any pair image that is no probe
 * @property {number} cells     pairs × probes
 * @property {Int32Array} cx    per cell, the index (into images) of the pair's first image
 * @property {Int32Array} cy    … of its second image
 * @property {Int32Array} cz    … of the probe
 * @property {Int32Array} unitCell  per unit (unitScores order), its cell
 * @property {Float64Array} count   per cell, its units (checkpoints)
 */

/**
 * The cell index of a study's units (unitScores): a resample that draws image i m_i times gives
 * the units of cell (pair x,y; probe z) the weight m_x·m_y·m_z, so images — pair images and
 * probes alike — are what is resampled, not pairs.
 * @param {ReturnType<typeof unitScores>} sc
 * @returns {CellIndex}
 */
export function cellIndex(sc) {
  const images = sc.probeIndices.map(String);
  for (const [x, y] of sc.pairs) for (const i of [x, y]) if (!images.includes(String(i))) images.push(String(i));
  const at = new Map(images.map((im, i) => [im, i]));
  const P = sc.pairs.length;
  const Z = sc.probeIndices.length;
  const cx = new Int32Array(P * Z);
  const cy = new Int32Array(P * Z);
  const cz = new Int32Array(P * Z);
  sc.pairs.forEach(([x, y], p) => {
    sc.probeIndices.forEach((z, j) => {
      cx[p * Z + j] = at.get(String(x)) ?? -1;
      cy[p * Z + j] = at.get(String(y)) ?? -1;
      cz[p * Z + j] = at.get(String(z)) ?? -1;
    });
  });
  const pairAt = new Map(sc.pairs.map(([x, y], p) => [`${x},${y}`, p]));
  const probeAt = new Map(sc.probeIndices.map((z, j) => [z, j]));
  const unitCell = Int32Array.from(sc.units, (u) => (pairAt.get(u.pair) ?? NaN) * Z + (probeAt.get(u.probe) ?? NaN));
  const count = new Float64Array(P * Z);
  for (const c of unitCell) count[c] = (count[c] ?? 0) + 1;
  return { images, cells: P * Z, cx, cy, cz, unitCell, count };
}

/**
 * Cell weights m_x·m_y·m_z for image multiplicities `m` (indexed like `ix.images`; null: all 1).
 * @param {CellIndex} ix
 * @param {Float64Array | null} m
 */
export function cellWeights(ix, m) {
  const w = new Float64Array(ix.cells);
  for (let c = 0; c < ix.cells; c++) w[c] = m ? (m[ix.cx[c] ?? 0] ?? 0) * (m[ix.cy[c] ?? 0] ?? 0) * (m[ix.cz[c] ?? 0] ?? 0) : 1;
  return w;
}

/**
 * @typedef {object} RatioCells  one study's sufficient statistics per cell for the log ratio of output group N against group D in one space
 * @property {Float64Array} num   Σ over the cell's units of the mean score over N
 * @property {Float64Array} den   … over D
 * @property {Float64Array} numT  the same over the units kept when the study's top 10% of units by size (Σ of the N and D scores) are dropped
 * @property {Float64Array} denT
 * @property {Float64Array} logSum  Σ of the per-unit log ratio r = mean log score over N − mean log score over D (finite r only)
 * @property {Float64Array} logN    units with a finite r
 * @property {Float64Array} sortedR  every finite per-unit r, ascending
 * @property {Int32Array} sortedCell  the cell of each
 */

/**
 * @param {ReturnType<typeof unitScores>} sc
 * @param {CellIndex} ix
 * @param {Space} space
 * @param {readonly number[]} num  output indices
 * @param {readonly number[]} den
 * @returns {RatioCells}
 */
export function ratioCells(sc, ix, space, num, den) {
  const n = ix.cells;
  const rc = {
    num: new Float64Array(n),
    den: new Float64Array(n),
    numT: new Float64Array(n),
    denT: new Float64Array(n),
    logSum: new Float64Array(n),
    logN: new Float64Array(n),
  };
  const avg = (/** @type {number[]} */ v, /** @type {readonly number[]} */ idx) => idx.reduce((a, i) => a + (v[i] ?? NaN), 0) / idx.length;
  const avgLog = (/** @type {number[]} */ v, /** @type {readonly number[]} */ idx) => idx.reduce((a, i) => a + Math.log(v[i] ?? NaN), 0) / idx.length;
  const a = sc.units.map((u) => avg(u.scores[space], num));
  const b = sc.units.map((u) => avg(u.scores[space], den));
  const size = a.map((x, i) => x * num.length + (b[i] ?? NaN) * den.length);
  const keep = Math.floor(0.9 * size.length);
  const order = size.map((_, i) => i).sort((i, j) => (size[i] ?? 0) - (size[j] ?? 0) || i - j);
  const kept = new Uint8Array(size.length);
  for (let r = 0; r < keep; r++) kept[order[r] ?? 0] = 1;
  /** @type {[number, number][]} */
  const rs = [];
  sc.units.forEach((u, i) => {
    const c = ix.unitCell[i] ?? 0;
    const add = (/** @type {Float64Array} */ v, /** @type {number} */ x) => (v[c] = (v[c] ?? 0) + x);
    add(rc.num, a[i] ?? NaN);
    add(rc.den, b[i] ?? NaN);
    if (kept[i]) {
      add(rc.numT, a[i] ?? NaN);
      add(rc.denT, b[i] ?? NaN);
    }
    const r = avgLog(u.scores[space], num) - avgLog(u.scores[space], den);
    if (Number.isFinite(r)) {
      add(rc.logSum, r);
      add(rc.logN, 1);
      rs.push([r, c]);
    }
  });
  rs.sort((x, y) => x[0] - y[0]);
  return { ...rc, sortedR: Float64Array.from(rs, (x) => x[0]), sortedCell: Int32Array.from(rs, (x) => x[1]) };
}

/** The aggregations of issue 10, point 2. */
export const AGGREGATIONS = /** @type {const} */ (['arithmetic', 'geometric', 'median', 'trimmed']);
/** @typedef {'arithmetic' | 'geometric' | 'median' | 'trimmed'} Aggregation */
export const AGGREGATION_LABELS = {
  arithmetic: 'log of the ratio of arithmetic means',
  geometric: 'mean per-unit log ratio (log of the ratio of geometric means)',
  median: 'median per-unit log ratio',
  trimmed: 'log of the ratio of means without the top 10% of units',
};

/**
 * The log ratio of N against D from one study's cells with cell weights `w` (cellWeights), by `agg`.
 * @param {RatioCells} rc
 * @param {Aggregation} agg
 * @param {Float64Array} w
 */
export function ratioValue(rc, agg, w) {
  const dot = (/** @type {Float64Array} */ v) => {
    let s = 0;
    for (let c = 0; c < w.length; c++) s += (w[c] ?? 0) * (v[c] ?? 0);
    return s;
  };
  if (agg === 'arithmetic') return Math.log(dot(rc.num) / dot(rc.den));
  if (agg === 'trimmed') return Math.log(dot(rc.numT) / dot(rc.denT));
  if (agg === 'geometric') return dot(rc.logSum) / dot(rc.logN);
  // weighted median: the first r at which the cumulative weight reaches half the total
  const total = dot(rc.logN);
  if (!(total > 0)) return NaN;
  let acc = 0;
  for (let i = 0; i < rc.sortedR.length; i++) {
    acc += w[rc.sortedCell[i] ?? 0] ?? 0;
    if (acc >= total / 2) {
      if (acc === total / 2) {
        // an exact half: the midpoint with the next r of positive weight
        for (let j = i + 1; j < rc.sortedR.length; j++)
          if ((w[rc.sortedCell[j] ?? 0] ?? 0) > 0) return ((rc.sortedR[i] ?? NaN) + (rc.sortedR[j] ?? NaN)) / 2;
      }
      return rc.sortedR[i] ?? NaN;
    }
  }
  return NaN;
}

/**
 * Per output, Σ over each cell's units of the score in `space` (outputs × cells), for weighted
 * means Σ_c w_c·S_fc / Σ_c w_c·count_c.
 * @param {ReturnType<typeof unitScores>} sc
 * @param {CellIndex} ix
 * @param {Space} space
 */
export function outputCells(sc, ix, space) {
  const k = sc.outputs.length;
  const out = Array.from({ length: k }, () => new Float64Array(ix.cells));
  sc.units.forEach((u, i) => {
    const c = ix.unitCell[i] ?? 0;
    for (let f = 0; f < k; f++) {
      const row = out[f];
      if (row) row[c] = (row[c] ?? 0) + (u.scores[space][f] ?? NaN);
    }
  });
  return out;
}

/**
 * Σ_c w_c·v_c / Σ_c w_c·count_c: a weighted mean over units.
 * @param {Float64Array} v
 * @param {CellIndex} ix
 * @param {Float64Array} w
 */
export function weightedMean(v, ix, w) {
  let a = 0;
  let b = 0;
  for (let c = 0; c < w.length; c++) {
    a += (w[c] ?? 0) * (v[c] ?? 0);
    b += (w[c] ?? 0) * (ix.count[c] ?? 0);
  }
  return a / b;
}

/**
 * Hierarchical bootstrap (robust-stats' hierarchicalBootstrap: seeds, then images within each
 * drawn seed) of a statistic of image multiplicities: `stat` gets, for each drawn seed entry (a
 * seed drawn twice appears twice), m[i] = how often that seed's image i was drawn.
 * @param {readonly { seed: string, images: readonly string[] }[]} seeds
 * @param {(entries: { seed: string, m: Float64Array }[]) => number} stat
 * @param {{ samples: number, seed?: number }} opts
 */
export function imageBootstrap(seeds, stat, opts) {
  const data = seeds.map((s) => ({ seed: s.seed, units: s.images.map((image) => ({ image })) }));
  const pos = new Map(seeds.map((s) => [s.seed, new Map(s.images.map((im, i) => [im, i]))]));
  return hierarchicalBootstrap(
    data,
    (sample) =>
      stat(
        sample.map((e) => {
          const at = pos.get(e.seed) ?? new Map();
          const m = new Float64Array(at.size);
          for (const u of e.units) {
            const i = at.get(u.image) ?? 0;
            m[i] = (m[i] ?? 0) + 1;
          }
          return { seed: e.seed, m };
        }),
      ),
    { samples: opts.samples, seed: opts.seed ?? 0 },
  );
}

/**
 * @typedef {object} Estimate  a statistic with its 95% hierarchical-bootstrap interval
 * @property {number} estimate
 * @property {[number, number]} ci95
 * @property {number} pValue   two-sided bootstrap p of 0
 * @property {number[]} perSeed  each seed's value alone (its full data)
 * @property {number} positiveSeeds  seeds with a positive value
 * @property {number} signP    exact two-sided sign-test p of the seeds' signs (zeros dropped)
 */

/**
 * Many statistics from one hierarchical image bootstrap (seeds, then images): `stat(entries)`
 * returns a record of named statistics of the drawn seed entries (each with its image
 * multiplicities m; a seed drawn twice appears twice). One set of resamples serves every
 * statistic — the draws of imageBootstrap, hence of robust-stats' hierarchicalBootstrap, whose
 * result for the first key is checked against the captured draws. Percentile intervals and
 * bootstrap p-values as in robust-stats; `perSeed` is each seed alone, as observed, with the sign
 * test of its signs.
 * @param {readonly { seed: string, images: readonly string[] }[]} seeds
 * @param {(entries: { seed: string, m: Float64Array }[]) => Record<string, number>} stat
 * @param {{ samples: number, seed?: number }} opts
 * @returns {Record<string, Estimate>}
 */
export function bootstrapEstimates(seeds, stat, opts) {
  /** @type {Record<string, number>[]} */
  const draws = [];
  /** @type {string[]} */
  let keys = [];
  const b = imageBootstrap(
    seeds,
    (entries) => {
      const out = stat(entries);
      keys = Object.keys(out);
      draws.push(out);
      return out[keys[0] ?? ''] ?? NaN;
    },
    opts,
  );
  const full = draws.pop() ?? {}; // hierarchicalBootstrap evaluates the full data last
  const values = seeds.map((s) => stat([{ seed: s.seed, m: new Float64Array(s.images.length).fill(1) }]));
  /** @type {Record<string, Estimate>} */
  const res = {};
  for (const k of keys) {
    const d = draws.map((x) => x[k] ?? NaN).filter((v) => Number.isFinite(v));
    d.sort((x, y) => x - y);
    const below = d.filter((v) => v <= 0).length;
    const above = d.filter((v) => v >= 0).length;
    const per = values.map((v) => v[k] ?? NaN);
    const nonzero = per.filter((v) => v !== 0 && Number.isFinite(v));
    const positiveSeeds = nonzero.filter((v) => v > 0).length;
    res[k] = {
      estimate: full[k] ?? NaN,
      ci95: [quantileSorted(d, 0.025), quantileSorted(d, 0.975)],
      pValue: d.length > 0 ? Math.min(1, (2 * (Math.min(below, above) + 1)) / (d.length + 1)) : NaN,
      perSeed: per,
      positiveSeeds,
      signP: signTest(positiveSeeds, nonzero.length),
    };
  }
  const first = res[keys[0] ?? ''];
  const same = (/** @type {number} */ x, /** @type {number} */ y) =>
    (Number.isNaN(x) && Number.isNaN(y)) || Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y));
  if (first && !(same(first.estimate, b.estimate) && same(first.ci95[0], b.interval[0]) && same(first.ci95[1], b.interval[1])))
    throw new Error(`bootstrapEstimates: the captured draws disagree with hierarchicalBootstrap (${first.estimate} vs ${b.estimate})`);
  return res;
}

/**
 * bootstrapEstimates of means over the drawn seed entries: `perSeed(seed, m)` gives one entry's
 * named values, each statistic is their mean over the entries.
 * @param {readonly { seed: string, images: readonly string[] }[]} seeds
 * @param {(seed: string, m: Float64Array) => Record<string, number>} perSeed
 * @param {{ samples: number, seed?: number }} opts
 * @returns {Record<string, Estimate>}
 */
export function seedMeanEstimates(seeds, perSeed, opts) {
  return bootstrapEstimates(
    seeds,
    (entries) => {
      const vals = entries.map((e) => perSeed(e.seed, e.m));
      /** @type {Record<string, number>} */
      const out = {};
      for (const k of Object.keys(vals[0] ?? {})) out[k] = mean(vals.map((v) => v[k] ?? NaN));
      return out;
    },
    opts,
  );
}

/** "0.41 [−0.54, 1.36]". @param {{ estimate: number, ci95: [number, number] }} e */
export const fmtEst = (e) => `${fmt(e.estimate)} ${fmtCi(e.ci95)}`;

/**
 * Where an interval lies: 'positive' (above 0), 'negative' or 'null'.
 * @param {readonly [number, number]} ci
 * @returns {'positive' | 'negative' | 'null'}
 */
export const side = (ci) => (ci[0] > 0 ? 'positive' : ci[1] < 0 ? 'negative' : 'null');

/**
 * Mean over the rows of a matrix, per column.
 * @param {readonly (readonly number[])[]} rows
 */
export function columnMeans(rows) {
  const k = rows[0]?.length ?? 0;
  return Array.from({ length: k }, (_, j) => mean(rows.map((r) => r[j] ?? NaN)));
}

/**
 * The loss's predicted probabilities of the first `n` test examples at a checkpoint (BatchNorm in
 * eval mode), in batches of 200, with their targets: `visit(i, p, t, o)` for each example i, whose
 * k outputs are p[o … o + k) and targets t[o … o + k).
 * @param {Run} run
 * @param {{ params: Vec, buffers: Vec }} ck
 * @param {number} n
 * @param {(i: number, p: ArrayLike<number>, t: ArrayLike<number>, o: number) => void} visit
 */
export function forEachTestPrediction(run, ck, n, visit) {
  const k = run.test.labelNames.length;
  const fwd = evalState(ck.buffers);
  for (let s = 0; s < n; s += 200) {
    const idx = Array.from({ length: Math.min(200, n - s) }, (_, i) => s + i);
    const b = batch(run.test, idx, run.config.dtype);
    const p = engine.concrete(run.loss.probabilities(run.model.apply(/** @type {any} */ (ck.params), b.x, fwd))).data;
    const t = b.t.data;
    for (let i = 0; i < idx.length; i++) visit(s + i, p, t, i * k);
  }
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
  forEachTestPrediction(run, ck, n, (_, p, t, o) => {
    let truth = 0;
    let pred = 0;
    for (let j = 1; j < k; j++) {
      if ((t[o + j] ?? 0) > (t[o + truth] ?? 0)) truth = j;
      if ((p[o + j] ?? 0) > (p[o + pred] ?? 0)) pred = j;
    }
    const row = m[truth];
    if (row) row[pred] += 1;
  });
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
