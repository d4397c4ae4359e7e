/**
 * report.html: one self-contained file that opens from disk with no network — Vega, Vega-Lite
 * and vega-embed inlined from their npm packages, the figures' data embedded as JSON, images as
 * PNG data URIs, and a Content-Security-Policy that forbids fetching anything. Every string that
 * comes from a file or the user is HTML-escaped, and embedded JSON has `<` written as \u003c.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../data/atomic.js';
import { VERSION } from '../version.js';
import { packageRootFrom } from '../paths.js';
import {
  allPairsFigure,
  featureFigure,
  fitFigure,
  fitSummary,
  logitFigure,
  pairHeatmap,
  trainingFigure,
  verifyFigure,
  exampleName,
  sweepSteps,
  type Figure,
  type FigureContext,
  type FitSummary,
} from './figures.js';
import { escapeHtml, jsonForScript } from './html.js';
import { isObj, loadRun, type Json, type JsonObject, type RunFiles } from './load.js';
import { featureScoresByStep, rankFeaturesAtLastStep, type FeatureStepScore } from './figure-data.js';
import { ThumbCache } from './thumbs.js';

export { escapeHtml, jsonForScript };

export interface ReportOptions {
  /** Page title (default: "lie-bracket report — <run directory name>"). */
  title?: string;
  /** Time stamp written in the page (default: now). */
  now?: Date;
  /** How many features the header and the feature figure name (default 5). */
  topFeatures?: number;
}

interface Library {
  name: string;
  version: string;
  code: string;
}

const LIBRARIES = [
  ['vega', 'build/vega.min.js'],
  ['vega-lite', 'build/vega-lite.min.js'],
  ['vega-embed', 'build/vega-embed.min.js'],
] as const;

let libCache: Library[] | undefined;

/** The package root of an installed package (its exports may hide package.json and build/). */
function packageRoot(name: string): string {
  const root = packageRootFrom(dirname(createRequire(import.meta.url).resolve(name)), name);
  if (root === undefined) throw new Error(`cannot find the package root of ${name}`);
  return root;
}

/** The UMD builds of Vega, Vega-Lite and vega-embed, read from node_modules once. */
export function libraries(): Library[] {
  if (!libCache) {
    libCache = LIBRARIES.map(([name, file]) => {
      const root = packageRoot(name);
      const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
      const code = readFileSync(join(root, file), 'utf8')
        .replace(/\n?\/\/# sourceMappingURL=\S*\s*$/, '') // no source-map lookups from a file page
        .replace(/<\/(script)/gi, '<\\/$1'); // cannot end the inline <script> element
      return { name, version, code };
    });
  }
  return libCache;
}

/** Flatten a JSON value into (path, text) rows for a key–value table. */
function flatten(v: Json | undefined, prefix = '', depth = 0, out: [string, string][] = [], max = 200): [string, string][] {
  if (out.length >= max) return out;
  if (v === undefined) return out;
  if (v === null || typeof v !== 'object') out.push([prefix || '(value)', v === null ? 'null' : String(v)]);
  else if (Array.isArray(v)) {
    if (v.every((x) => x === null || typeof x !== 'object'))
      out.push([prefix, v.length > 40 ? `${v.slice(0, 40).join(', ')}, … (${v.length} values)` : v.join(', ')]);
    else if (depth >= 4) out.push([prefix, `[${v.length} entries]`]);
    else v.forEach((x, i) => flatten(x, `${prefix}[${i}]`, depth + 1, out, max));
  } else if (depth >= 4) out.push([prefix, '{…}']);
  else for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, depth + 1, out, max);
  return out;
}

function kvTable(rows: readonly [string, string][], cls = 'kv'): string {
  if (rows.length === 0) return '<p class="note">(nothing recorded)</p>';
  return `<table class="${cls}"><tbody>${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</tbody></table>`;
}

/** The default port of `lie-bracket explore` (src/cli/explore.ts), which the report names. */
export const EXPLORER_PORT = 8731;

const fmt = (v: number | null | undefined, d = 3): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toFixed(d) : v.toExponential(2);
const sci = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toExponential(2));

function get(o: Json | undefined, ...path: string[]): Json | undefined {
  let cur: Json | undefined = o;
  for (const p of path) cur = isObj(cur) ? cur[p] : undefined;
  return cur;
}

/** The parts of the sweep's summary.json (docs/sweep-format.md) the report shows, read defensively. */
export interface SweepSummaryView {
  fits: {
    step: string;
    slope: number | null;
    slopeStderr: number | null;
    r2: number | null;
    withinR2: number | null;
    residualSd: number | null;
    n: number | null;
    tensorR2: number | null;
  }[];
  /** Overall ranking (each pair averaged over checkpoints). */
  features: {
    feature: string;
    rank: number | null;
    score: number;
    ci: [number, number] | null;
    normalized: number | null;
    rankNormalized: number | null;
  }[];
  level: number | null;
}

export function readSweepSummary(s: Json | null): SweepSummaryView | null {
  if (!isObj(s)) return null;
  const n = (v: Json | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const fitRow = (step: string, o: Json | undefined) => {
    const g = get(o, 'gradientFit');
    const t = get(o, 'tensorModel');
    if (!isObj(g) && !isObj(t)) return null;
    return {
      step,
      slope: n(get(g, 'slope')),
      slopeStderr: n(get(g, 'slopeStderr')),
      r2: n(get(g, 'r2')),
      withinR2: n(get(g, 'withinR2')),
      residualSd: n(get(g, 'residualSd')),
      n: n(get(g, 'n')),
      tensorR2: n(get(t, 'r2')),
    };
  };
  const fits: SweepSummaryView['fits'] = [];
  const cks = s.checkpoints;
  if (Array.isArray(cks))
    for (const c of cks) {
      const step = get(c, 'step');
      const r = typeof step === 'number' ? fitRow(String(step), c) : null;
      if (r) fits.push(r);
    }
  const all = fitRow('all', s.overall);
  if (all) fits.push(all);
  const features: SweepSummaryView['features'] = [];
  const fs = get(s.overall, 'features');
  if (Array.isArray(fs))
    for (const f of fs) {
      const name = get(f, 'feature');
      const score = n(get(f, 'meanAbsEffect'));
      if (typeof name !== 'string' || score === null) continue;
      const ci = get(f, 'ci90');
      features.push({
        feature: name,
        rank: n(get(f, 'rank')),
        score,
        ci: Array.isArray(ci) && ci.length === 2 && n(ci[0]) !== null && n(ci[1]) !== null ? [ci[0] as number, ci[1] as number] : null,
        normalized: n(get(f, 'normalized')),
        rankNormalized: n(get(f, 'rankNormalized')),
      });
    }
  features.sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity) || b.score - a.score);
  return { fits, features, level: n(get(s.bootstrap, 'level')) };
}

interface Summary {
  cards: [string, string][];
  top: { name: string; score: number; lo: number; hi: number }[];
  /** What the top list ranks by, in words (HTML). */
  topWhat: string;
}

function describeLoss(loss: string | undefined): string {
  if (loss === 'bce') return 'bce — an independent sigmoid per output';
  if (loss === 'ce') return 'ce — softmax cross-entropy';
  if (loss === 'grouped') return 'grouped — a softmax per exclusive group';
  return loss ?? '–';
}

function headerSummary(files: RunFiles, ranked: readonly FeatureStepScore[], topN: number, sweepSummary: SweepSummaryView | null): Summary {
  const run = files.run;
  const cfg = files.config;
  const model = get(run ?? undefined, 'model');
  const nameOfModel = get(model, 'name');
  const modelName = typeof nameOfModel === 'string' ? nameOfModel : typeof cfg?.model === 'string' ? cfg.model : cfg?.model ? 'custom spec' : '–';
  const paramCount = get(model, 'paramCount');
  const dataSpec = typeof cfg?.data === 'string' ? cfg.data : '–';
  const trainLen = get(run ?? undefined, 'train', 'length');
  const testLen = get(run ?? undefined, 'test', 'length');
  const opt = cfg && isObj(cfg.optimizer) ? cfg.optimizer : null;
  const last = files.metrics[files.metrics.length - 1];
  const cards: [string, string][] = [
    ['model', `${modelName}${typeof paramCount === 'number' ? ` · ${paramCount.toLocaleString('en-US')} parameters` : ''}`],
    [
      'data',
      `${dataSpec}${typeof trainLen === 'number' ? ` · ${trainLen.toLocaleString('en-US')} train` : ''}${typeof testLen === 'number' ? ` / ${testLen.toLocaleString('en-US')} test` : ''}`,
    ],
    ['loss', describeLoss(typeof cfg?.loss === 'string' ? cfg.loss : undefined)],
    ['optimizer', opt ? `${jsonText(opt.name)}, lr ${jsonText(opt.lr)}${typeof cfg?.batchSize === 'number' ? `, batch ${cfg.batchSize}` : ''}` : '–'],
    ['steps', `${typeof cfg?.steps === 'number' ? cfg.steps : last ? last.step : '–'}${typeof run?.status === 'string' ? ` (${run.status})` : ''}`],
  ];
  if (last) {
    cards.push([
      'held-out at the end',
      `loss ${fmt(last.evalLoss, 4)}${last.classAccuracy !== null ? ` · class accuracy ${(100 * last.classAccuracy).toFixed(1)}%` : ''}`,
    ]);
  }
  const steps = sweepSteps(files);
  if (files.results.length > 0) {
    cards.push([
      'sweep',
      `${files.pairs.length} pairs × ${steps.length} checkpoints${files.probeIndices ? ` · ${files.probeIndices.length} probes` : ''}`,
    ]);
  }
  if (sweepSummary && sweepSummary.features.length > 0) {
    const level = Math.round(100 * (sweepSummary.level ?? 0.9));
    return {
      cards,
      top: sweepSummary.features.slice(0, topN).map((f) => ({ name: f.feature, score: f.score, lo: f.ci?.[0] ?? NaN, hi: f.ci?.[1] ?? NaN })),
      topWhat: `mean |J<sub>f</sub>(z)·B| over probes and pairs, each pair averaged over the checkpoints, with ${level}% bootstrap intervals over pairs; from sweep/summary.json`,
    };
  }
  const top = ranked.slice(0, topN).map((s) => {
    const half = Number.isFinite(s.stderr) ? 1.96 * s.stderr : NaN;
    return { name: files.labels[s.feature] ?? `output ${s.feature}`, score: s.mean, lo: s.mean - half, hi: s.mean + half };
  });
  return {
    cards,
    top,
    topWhat: ranked.length ? `mean |J<sub>f</sub>(z)·B| over pairs and probes at step ${ranked[0]!.step}, with 95% intervals over pairs` : '',
  };
}

function figureSection(f: Figure, n: number): string {
  const body = f.spec ? `<div class="fig" id="fig-${f.id}" data-figure="${f.id}"></div>` : '';
  return `<section id="${f.id}">
<h2><span class="num">${n}</span> ${escapeHtml(f.title)}</h2>
<p class="explain">${f.explain}</p>
${f.note ? `<p class="note">${escapeHtml(f.note)}</p>` : ''}
${body}
${f.info ? `<p class="info">${escapeHtml(f.info)}</p>` : ''}
</section>`;
}

function thumbsSection(files: RunFiles, pairThumbs: ThumbCache, probeThumbs: ThumbCache): string {
  const exIdx = [...new Set(files.pairs.flat())];
  const grid = (idx: readonly number[], cache: ThumbCache) =>
    `<div class="thumbs">${idx
      .map((i) => {
        const t = cache.get(i);
        return t
          ? `<figure><img src="${escapeHtml(t.uri)}" alt="${escapeHtml(`example ${i}: ${t.label}`)}" width="56" height="56"><figcaption>#${i}<br>${escapeHtml(t.label)}</figcaption></figure>`
          : `<figure class="missing"><div class="noimg">?</div><figcaption>#${i}</figcaption></figure>`;
      })
      .join('')}</div>`;
  const parts: string[] = [];
  if (exIdx.length > 0) parts.push(`<h3>Bracketed examples (${escapeHtml(files.pairSplit)} split)</h3>${grid(exIdx, pairThumbs)}`);
  if (files.probeIndices && files.probeIndices.length > 0)
    parts.push(`<h3>Probe examples (${escapeHtml(files.probeSplit)} split)</h3>${grid(files.probeIndices, probeThumbs)}`);
  const missing =
    !files.pairData && (exIdx.length > 0 || (files.probeIndices?.length ?? 0) > 0)
      ? '<p class="note">The data set could not be opened, so the images are not shown.</p>'
      : '';
  return `<section id="examples">
<h2>The examples</h2>
<p class="explain">The training examples whose order is swapped (each pair above is two of these), and the probe examples on which the change of every prediction is measured.</p>
${missing}${parts.length ? parts.join('\n') : '<p class="note">No sweep in this run, so no examples were chosen.</p>'}
</section>`;
}

function statsSection(files: RunFiles, ranked: readonly FeatureStepScore[], fits: FitSummary): string {
  const parts: string[] = [];
  if (ranked.length > 0) {
    const step = ranked[0]!.step;
    parts.push(`<h3>Output features ranked by non-commutativity at the last checkpoint, step ${step} (from results.jsonl)</h3>
<table class="data"><thead><tr><th>rank</th><th>feature</th><th>mean |J<sub>f</sub>(z)·B|</th><th>95% interval over pairs</th><th>normalised by ‖g<sub>x</sub>‖‖g<sub>y</sub>‖</th><th>pairs</th></tr></thead><tbody>${ranked
      .map((s, r) => {
        const half = 1.96 * s.stderr;
        return `<tr><td>${r + 1}</td><td>${escapeHtml(files.labels[s.feature] ?? `output ${s.feature}`)}</td><td>${sci(s.mean)}</td><td>${Number.isFinite(half) ? `${sci(s.mean - half)} … ${sci(s.mean + half)}` : '–'}</td><td>${sci(s.normalized)}</td><td>${s.pairs}</td></tr>`;
      })
      .join('')}</tbody></table>`);
  }
  const ss = readSweepSummary(files.summary);
  if (ss && ss.fits.length > 0) {
    parts.push(`<h3>Bracket RMS against gradient RMS: ln RMS(B<sub>t</sub>) = α<sub>pair</sub> + slope · ln ĝ<sub>t</sub>, and the pair × tensor model (sweep/summary.json)</h3>
<table class="data"><thead><tr><th>step</th><th>slope ± s.e.</th><th>R²</th><th>R² within pairs</th><th>residual sd (ln)</th><th>points</th><th>pair × tensor model R²</th></tr></thead><tbody>${ss.fits
      .map(
        (f) =>
          `<tr${f.step === 'all' ? ' class="total"' : ''}><td>${escapeHtml(f.step)}</td><td>${fmt(f.slope)} ± ${fmt(f.slopeStderr)}</td><td>${fmt(f.r2)}</td><td>${fmt(f.withinR2)}</td><td>${fmt(f.residualSd)}</td><td>${f.n ?? '–'}</td><td>${fmt(f.tensorR2)}</td></tr>`,
      )
      .join('')}</tbody></table>`);
  } else if (fits.perStep.some((p) => p.fit)) {
    const row = (step: string, f: (typeof fits.perStep)[number]['fit'], factor: number | null, cls = '') =>
      `<tr${cls ? ` class="${cls}"` : ''}><td>${step}</td><td>${fmt(f?.slope)} ± ${fmt(f?.slopeStderr, 3)}</td><td>${fmt(f?.r2)}</td><td>${fmt(f?.withinR2)}</td><td>${fmt(f?.residualSd)}</td><td>${f?.n ?? 0}</td><td>${f?.groups ?? 0}</td><td>${fmt(factor)}</td></tr>`;
    parts.push(`<h3>Bracket RMS against gradient RMS: ln RMS(B<sub>t</sub>) = α<sub>pair</sub> + slope · ln ĝ<sub>t</sub> and the pair × tensor model (computed from results.jsonl; the run has no summary.json)</h3>
<table class="data"><thead><tr><th>step</th><th>slope ± s.e.</th><th>R² (with pair factors)</th><th>R² within pairs</th><th>residual sd (ln)</th><th>points</th><th>groups</th><th>pair × tensor model R²</th></tr></thead><tbody>${fits.perStep
      .map((p) => row(String(p.step), p.fit, p.factorR2))
      .join('')}${fits.overall ? row('all (a factor per step and pair)', fits.overall, null, 'total') : ''}</tbody></table>`);
  }
  if (ss && ss.features.length > 0) {
    const level = Math.round(100 * (ss.level ?? 0.9));
    parts.push(`<h3>The sweep's summary.json: features ranked over all checkpoints</h3>
<table class="data"><thead><tr><th>rank</th><th>feature</th><th>mean |J<sub>f</sub>(z)·B|</th><th>${level}% bootstrap interval</th><th>normalised</th><th>rank normalised</th></tr></thead><tbody>${ss.features
      .map(
        (f, i) =>
          `<tr><td>${f.rank ?? i + 1}</td><td>${escapeHtml(f.feature)}</td><td>${sci(f.score)}</td><td>${f.ci ? `${sci(f.ci[0])} … ${sci(f.ci[1])}` : '–'}</td><td>${sci(f.normalized)}</td><td>${f.rankNormalized ?? '–'}</td></tr>`,
      )
      .join('')}</tbody></table>`);
  }
  if (files.verify) {
    const v = files.verify;
    parts.push(
      `<h3>Swap verification</h3><table class="data"><thead><tr><th>ε</th><th>relative error</th><th>observed order</th><th>units that changed state</th></tr></thead><tbody>${v.eps
        .map(
          (e, i) =>
            `<tr><td>${sci(e)}</td><td>${sci(v.relErrors[i])}</td><td>${i > 0 ? fmt(v.orders[i - 1] ?? null, 2) : ''}</td><td>${v.kinks ? escapeHtml(v.kinks[i] ?? '–') : '–'}</td></tr>`,
        )
        .join('')}</tbody></table>`,
    );
  }
  if (files.summary !== null) {
    const rows = flatten(files.summary);
    parts.push(
      `<details><summary>sweep/summary.json (${rows.length}${rows.length >= 200 ? '+' : ''} values)</summary>${kvTable(rows, 'kv small')}</details>`,
    );
  }
  return `<section id="statistics">
<h2>Statistics</h2>
<p class="explain">The numbers behind the figures, computed from sweep/results.jsonl with the definitions of the sweep's summary (intervals: mean ± 1.96 standard errors over pairs), and the sweep's own summary.json when present (its bootstrap intervals; its overall ranking averages each pair over the checkpoints).</p>
${parts.length ? parts.join('\n') : '<p class="note">No sweep statistics in this run.</p>'}
</section>`;
}

/** A JSON value as text for the page: strings as they are, '?' when absent, anything else as JSON. */
function jsonText(v: Json | undefined): string {
  return typeof v === 'string' ? v : v === undefined ? '?' : JSON.stringify(v);
}

function configSection(files: RunFiles, libs: readonly Library[], now: Date): string {
  const versions: [string, string][] = [['lie-bracket (report)', VERSION], ...libs.map((l) => [l.name, l.version] as [string, string])];
  const runVersions = get(files.run ?? undefined, 'versions');
  if (isObj(runVersions)) for (const [k, v] of Object.entries(runVersions)) versions.push([`${k} (training run)`, jsonText(v)]);
  versions.push(['report generated', now.toISOString()]);
  const sweepRows: [string, string][] = files.sweepMeta
    ? flatten(Object.fromEntries(Object.entries(files.sweepMeta).filter(([k]) => k !== 'pairs' && k !== 'probeIndices')))
    : [];
  const sourceFiles = Object.entries(files.present).map(([k, v]) => [k, v ? 'present' : 'absent'] as [string, string]);
  return `<section id="config">
<h2>Configuration and versions</h2>
<div class="cols">
<div><h3>Training configuration (run.json)</h3>${files.config ? kvTable(flatten(files.config)) : '<p class="note">No run.json configuration.</p>'}</div>
<div><h3>Versions</h3>${kvTable(versions)}
<h3>Sweep (sweep/sweep.json)</h3>${files.sweepMeta ? kvTable(sweepRows) : '<p class="note">No sweep.json.</p>'}
<h3>Inputs found</h3>${kvTable(sourceFiles)}</div>
</div>
${files.notes.length ? `<h3>Notes from reading the run</h3><ul class="notes">${files.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}
</section>`;
}

const CSS = `
:root { --fg: #1f2328; --muted: #57606a; --line: #d8dee4; --bg: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
header.top { background: #fff; border-bottom: 1px solid var(--line); padding: 22px 32px 18px; }
header.top h1 { margin: 0 0 2px; font-size: 24px; }
header.top .path { color: var(--muted); font-size: 13px; word-break: break-all; }
header.top .lede { margin: 10px 0 14px; max-width: 980px; color: #333; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 7px 12px; min-width: 150px; }
.card .k { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.card .v { font-size: 14px; font-weight: 600; }
.topfeat { margin-top: 14px; }
.topfeat ol { margin: 4px 0 0; padding-left: 22px; }
.topfeat li { margin: 1px 0; }
.topfeat .iv { color: var(--muted); font-size: 13px; }
nav.toc { position: sticky; top: 0; z-index: 5; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 32px; font-size: 13px; display: flex; flex-wrap: wrap; gap: 2px 16px; }
nav.toc a { color: var(--accent); text-decoration: none; white-space: nowrap; }
main { padding: 18px 32px 40px; max-width: 1320px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 22px 20px; margin: 0 0 18px; }
section h2 { margin: 0 0 6px; font-size: 19px; }
section h2 .num { display: inline-block; min-width: 26px; height: 26px; line-height: 26px; text-align: center; border-radius: 13px; background: var(--accent); color: #fff; font-size: 14px; margin-right: 6px; }
section h3 { font-size: 15px; margin: 16px 0 6px; }
p.explain { margin: 0 0 10px; max-width: 1000px; color: #333; }
p.info { margin: 6px 0 0; font-size: 13px; color: var(--muted); }
p.note { margin: 6px 0 10px; padding: 7px 12px; background: #fff8c5; border: 1px solid #e9d98a; border-radius: 6px; font-size: 14px; max-width: 1000px; }
.fig { overflow-x: auto; }
.fig .vega-bindings { margin: 8px 0 0; display: flex; flex-wrap: wrap; gap: 6px 22px; font-size: 13px; }
.fig .vega-bind-name { font-weight: 600; color: var(--muted); margin-right: 4px; }
.fig input[type=range] { width: 220px; vertical-align: middle; }
.fig select { font-size: 13px; max-width: 360px; }
.thumbs { display: flex; flex-wrap: wrap; gap: 8px; }
.thumbs figure { margin: 0; width: 76px; text-align: center; font-size: 11px; color: var(--muted); line-height: 1.25; }
.thumbs img, .thumbs .noimg { width: 56px; height: 56px; image-rendering: pixelated; border: 1px solid var(--line); background: #000; display: block; margin: 0 auto 2px; }
.thumbs .noimg { background: var(--bg); line-height: 56px; font-size: 20px; }
table { border-collapse: collapse; font-size: 13px; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: right; }
table.data th:nth-child(2), table.data td:nth-child(2) { text-align: left; }
table.data thead th { background: var(--bg); }
table.data tr.total td { font-weight: 600; }
table.kv th { text-align: left; font-weight: 600; color: var(--muted); padding: 2px 14px 2px 0; vertical-align: top; white-space: nowrap; }
table.kv td { padding: 2px 0; word-break: break-word; }
table.kv.small { font-size: 12px; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 8px 32px; }
ul.notes { font-size: 13px; color: var(--muted); }
footer { color: var(--muted); font-size: 12px; padding: 0 32px 30px; }
#vg-tooltip-element img { image-rendering: pixelated; display: block; margin: 2px auto 4px; }
`;

export interface BuiltReport {
  html: string;
  figures: Figure[];
  files: RunFiles;
}

/** Everything the report shows, with the figures' Vega-Lite specs (also used for PNG/SVG export). */
export function collectReport(runDir: string, opts: ReportOptions = {}): BuiltReport {
  const files = loadRun(runDir);
  const pairThumbs = new ThumbCache(files.pairData);
  const probeThumbs = files.probeData === files.pairData ? pairThumbs : new ThumbCache(files.probeData);
  const ctx: FigureContext = { files, pairThumbs, probeThumbs };
  const topN = opts.topFeatures ?? 5;
  const scores = featureScoresByStep(files.results, files.labels.length);
  const ranked = rankFeaturesAtLastStep(scores);
  const fits = fitSummary(files);
  const figures = [
    logitFigure(ctx),
    featureFigure(ctx, scores, topN),
    pairHeatmap(ctx),
    fitFigure(ctx, fits),
    trainingFigure(ctx),
    verifyFigure(ctx),
    allPairsFigure(ctx),
  ];
  const html = renderHtml(runDir, files, figures, ranked, fits, pairThumbs, probeThumbs, opts);
  return { html, figures, files };
}

function renderHtml(
  runDir: string,
  files: RunFiles,
  figures: readonly Figure[],
  ranked: readonly FeatureStepScore[],
  fits: FitSummary,
  pairThumbs: ThumbCache,
  probeThumbs: ThumbCache,
  opts: ReportOptions,
): string {
  const libs = libraries();
  const now = opts.now ?? new Date();
  const name = basename(resolve(runDir));
  const title = opts.title ?? `lie-bracket report — ${name}`;
  const topN = opts.topFeatures ?? 5;
  const sweepSummary = readSweepSummary(files.summary);
  const s = headerSummary(files, ranked, topN, sweepSummary);
  const specs: Record<string, unknown> = {};
  for (const f of figures) if (f.spec) specs[f.id] = f.spec;
  const topHtml = s.top.length
    ? `<div class="topfeat"><strong>Most order-sensitive predictions</strong> (${s.topWhat}):<ol>${s.top
        .map(
          (t) =>
            `<li><strong>${escapeHtml(t.name)}</strong> ${sci(t.score)} <span class="iv">${Number.isFinite(t.lo) ? `[${sci(t.lo)}, ${sci(t.hi)}]` : ''}</span></li>`,
        )
        .join('')}</ol></div>`
    : '';
  const fitLine = fits.overall
    ? `<p class="lede">Bracket against gradient, tensor by tensor: ln RMS(B) ≈ ${fmt(fits.overall.slope, 2)} · ln(gradient RMS) + a factor per pair and checkpoint (R² ${fmt(fits.overall.r2)}, within pairs ${fmt(fits.overall.withinR2)}; ${fits.overall.n} points).</p>`
    : '';
  const toc = [
    ...figures.map((f, i) => `<a href="#${f.id}">${i + 1}. ${escapeHtml(f.title)}</a>`),
    '<a href="#examples">examples</a>',
    '<a href="#statistics">statistics</a>',
    '<a href="#config">configuration</a>',
  ].join('');
  const pairExample = files.pairs[0]
    ? `e.g. ${escapeHtml(exampleName(files.pairs[0][0], pairThumbs))} and ${escapeHtml(exampleName(files.pairs[0][1], pairThumbs))}`
    : '';
  const embedJs = `
(function () {
  var figures = ${jsonForScript(specs)};
  var ids = Object.keys(figures);
  var done = ids.map(function (id) {
    var el = document.getElementById('fig-' + id);
    return vegaEmbed(el, figures[id], { actions: false, renderer: 'svg', mode: 'vega-lite' }).catch(function (e) {
      el.textContent = 'This figure could not be drawn: ' + (e && e.message ? e.message : e);
      console.error(e);
    });
  });
  Promise.all(done).then(function () { document.body.setAttribute('data-rendered', String(ids.length)); });
})();`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'">
<meta name="generator" content="lie-bracket ${escapeHtml(VERSION)}">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header class="top">
<h1>${escapeHtml(title)}</h1>
<div class="path">run directory: <code>${escapeHtml(runDir)}</code> · generated ${escapeHtml(now.toISOString().replace('T', ' ').slice(0, 16))} UTC</div>
<p class="lede">How much does it matter in which order the network sees two training examples? For pairs of examples (x, y) — ${pairExample || 'chosen by the sweep'} — the training-example Lie bracket B = [v<sub>x</sub>, v<sub>y</sub>] = H<sub>y</sub>g<sub>x</sub> − H<sub>x</sub>g<sub>y</sub> is the leading-order difference between the parameters after SGD steps on x then y and on y then x (θ<sub>xy</sub> − θ<sub>yx</sub> = ε²B + O(ε³)); J<sub>f</sub>(z)·B is how much that moves each prediction on a probe input z.</p>
<div class="cards">${s.cards.map(([k, v]) => `<div class="card"><div class="k">${escapeHtml(k)}</div><div class="v">${escapeHtml(v)}</div></div>`).join('')}</div>
${topHtml}
${fitLine}
</header>
<nav class="toc">${toc}</nav>
<main>
${figures.map((f, i) => figureSection(f, i + 1)).join('\n')}
${thumbsSection(files, pairThumbs, probeThumbs)}
${statsSection(files, ranked, fits)}
${configSection(files, libs, now)}
</main>
<p class="explorer">Bracket any two examples of this run live, in the browser: <code>lie-bracket explore ${escapeHtml(runDir)}</code>, then open <code>http://127.0.0.1:${EXPLORER_PORT}/</code> (or <code>--static DIR</code> for a static site); the address is text, not a link, since this file fetches nothing.</p>
<footer>Made by lie-bracket ${escapeHtml(VERSION)} with ${libs.map((l) => `${escapeHtml(l.name)} ${escapeHtml(l.version)}`).join(', ')} (inlined; this file needs no network). Regenerate with <code>lie-bracket report ${escapeHtml(runDir)}</code>.</footer>
${libs.map((l) => `<script>/* ${escapeHtml(l.name)} ${escapeHtml(l.version)} */\n${l.code}\n</script>`).join('\n')}
<script>${embedJs}
</script>
</body>
</html>
`;
}

/** The report of a run directory as one self-contained HTML document. */
export function buildReport(runDir: string, opts: ReportOptions = {}): string {
  return collectReport(runDir, opts).html;
}

/** Write the report (atomically) to `out`, by default `<runDir>/report.html`; returns the path. */
export function writeReport(runDir: string, out: string = join(runDir, 'report.html'), opts: ReportOptions = {}): string {
  writeFileAtomic(out, buildReport(runDir, opts));
  return out;
}

export type { Figure, JsonObject };
