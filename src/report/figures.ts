/**
 * The report's figures as Vega-Lite specs with their data inline. Interaction uses Vega-Lite
 * parameters bound to range and select inputs only, so a figure works offline with nothing but
 * vegaEmbed. File-provided strings (labels, names) travel as data or parameter values — never
 * spliced into Vega expressions — and Vega sets them as text, never as markup.
 */
import type { AllPairsSet, RunFiles } from './load.js';
import { factorModelR2, groupedFit, rankFeaturesAtLastStep, tensorPoints, type FeatureStepScore, type GroupedFit } from './figure-data.js';
import type { ThumbCache } from './thumbs.js';

export type Spec = Record<string, unknown>;

export interface Figure {
  /** Used for the element id and the exported file names: [a-z0-9-]+. */
  id: string;
  title: string;
  /** What the figure shows (trusted HTML written here; any data inside is escaped by the caller). */
  explain: string;
  /** null when the inputs are missing; `note` says why. */
  spec: Spec | null;
  /** A warning about the figure (missing input, truncation), plain text. */
  note?: string;
  /** A remark about how the figure's data was computed, plain text. */
  info?: string;
}

export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Tooltip images (two thumbnails side by side) are embedded for all-pairs matrices up to this size. */
export const MAX_TOOLTIP_N = 24;
/** All-pairs matrices larger than this show their first MAX_ALLPAIRS_N examples. */
export const MAX_ALLPAIRS_N = 64;

const r4 = (v: number): number => (Number.isFinite(v) ? Number(v.toPrecision(4)) : v);
const fmt = (v: number, d = 3): string => (Number.isFinite(v) ? (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toFixed(d) : v.toExponential(2)) : '–');

const BASE_CONFIG = {
  font: 'Helvetica Neue, Helvetica, Arial, sans-serif',
  view: { stroke: null },
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 600,
    titleColor: '#333',
    labelColor: '#444',
    domainColor: '#888',
    tickColor: '#888',
    gridColor: '#eee',
  },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 600, labelLimit: 220 },
  title: { fontSize: 14, fontWeight: 600, anchor: 'start', subtitleFontSize: 12, subtitleColor: '#555', offset: 10 },
  header: { labelFontSize: 12, titleFontSize: 12 },
};

function top(spec: Spec): Spec {
  return { $schema: VEGA_LITE_SCHEMA, config: BASE_CONFIG, background: 'white', padding: 8, ...spec };
}

/** A range input over checkpoint indices 0…n−1 (the figure's title gives the training step). */
function slider(name: string, n: number, label: string): Spec {
  return { name, value: Math.max(0, n - 1), bind: { input: 'range', min: 0, max: Math.max(0, n - 1), step: 1, name: label } };
}

/** A select input over 0…n−1 with the given labels (data, shown as text by Vega). */
function selector(name: string, labels: readonly string[], label: string, value = 0): Spec {
  return { name, value, bind: { input: 'select', options: labels.map((_, i) => i), labels: [...labels], name: label } };
}

export interface FigureContext {
  files: RunFiles;
  pairThumbs: ThumbCache;
  probeThumbs: ThumbCache;
}

export function exampleName(i: number, thumbs: ThumbCache): string {
  const t = thumbs.get(i);
  return t ? `#${i} ${t.label}` : `#${i}`;
}

export function sweepSteps(files: RunFiles): number[] {
  return [...new Set(files.results.map((r) => r.step))].sort((a, b) => a - b);
}

const missingSweep = 'No sweep results in this run (sweep/results.jsonl). Run lie-bracket sweep on the run directory, then regenerate the report.';

/** 1. Pair × pair heatmap of the bracket's size, with a checkpoint slider. */
export function pairHeatmap(ctx: FigureContext): Figure {
  const { files } = ctx;
  const explain =
    'Each cell is one pair of training examples (x, y): the size of their bracket B = [v<sub>x</sub>, v<sub>y</sub>], which is how far apart the two orders "step on x, then y" and "y, then x" end, divided by ε². ' +
    "The matrix is symmetric because B(y, x) = −B(x, y). Choose the measure: ‖B‖ (Euclidean norm over all parameters), its RMS per parameter, or ‖B‖/(‖g<sub>x</sub>‖‖g<sub>y</sub>‖), which removes the gradients' scale. Colour is logarithmic.";
  const base: Figure = { id: 'pairs', title: 'Which pairs are order-sensitive', explain, spec: null };
  const steps = sweepSteps(files);
  const rows: Spec[] = [];
  const runModel = files.run?.model;
  const paramCount =
    typeof files.sweepMeta?.paramCount === 'number'
      ? files.sweepMeta.paramCount
      : runModel && typeof runModel === 'object' && !Array.isArray(runModel) && typeof runModel.paramCount === 'number'
        ? runModel.paramCount
        : null;
  for (const r of files.results) {
    if (r.bracketNorm === null) continue;
    let count = paramCount;
    if (count === null) {
      // the parameter count from the per-tensor table: size = (‖B_t‖ / RMS(B_t))²
      let c = 0;
      for (const t of Object.values(r.tensors))
        if (t.bracketNorm !== null && t.bracketRms !== null && t.bracketRms > 0) c += Math.round((t.bracketNorm / t.bracketRms) ** 2);
      count = c > 0 ? c : null;
    }
    const rms = count ? r.bracketNorm / Math.sqrt(count) : null;
    const rel = r.gradNormX !== null && r.gradNormY !== null && r.gradNormX * r.gradNormY > 0 ? r.bracketNorm / (r.gradNormX * r.gradNormY) : null;
    const s = steps.indexOf(r.step);
    const common = {
      s,
      norm: r4(r.bracketNorm),
      rms: rms === null ? null : r4(rms),
      rel: rel === null ? null : r4(rel),
      cos: r.gradCosine === null ? null : r4(r.gradCosine),
    };
    const ax = exampleName(r.x, ctx.pairThumbs);
    const ay = exampleName(r.y, ctx.pairThumbs);
    rows.push({ ...common, a: r.x, b: r.y, al: ax, bl: ay }, { ...common, a: r.y, b: r.x, al: ay, bl: ax });
  }
  if (rows.length === 0) return { ...base, note: files.results.length ? 'The sweep results have no bracket norms.' : missingSweep };
  const n = new Set(rows.map((r) => r.a)).size;
  const cell = Math.max(22, Math.min(60, Math.floor(460 / n)));
  const haveRms = rows.some((r) => r.rms !== null);
  const measures = haveRms ? ['rms', 'norm', 'rel'] : ['norm', 'rel'];
  const measureLabels = haveRms ? ['RMS of B per parameter', '‖B‖', '‖B‖ / (‖g_x‖ ‖g_y‖)'] : ['‖B‖', '‖B‖ / (‖g_x‖ ‖g_y‖)'];
  const spec = top({
    params: [
      slider('ck', steps.length, 'checkpoint # '),
      { name: 'steps', value: steps },
      { name: 'measure', value: measures[0], bind: { input: 'select', options: measures, labels: measureLabels, name: 'measure ' } },
    ],
    title: { text: { expr: "'Bracket size per pair — step ' + steps[ck]" } },
    data: { values: rows },
    transform: [{ filter: 'datum.s == ck' }, { calculate: 'datum[measure]', as: 'value' }, { filter: 'isValid(datum.value) && datum.value > 0' }],
    width: { step: cell },
    height: { step: cell },
    mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
    encoding: {
      x: { field: 'bl', type: 'ordinal', sort: { field: 'b' }, title: 'example y', axis: { labelAngle: -35, labelLimit: 140 } },
      y: { field: 'al', type: 'ordinal', sort: { field: 'a' }, title: 'example x', axis: { labelLimit: 140 } },
      color: {
        field: 'value',
        type: 'quantitative',
        scale: { type: 'log', scheme: 'viridis' },
        title: 'bracket size',
        legend: { format: '.1e', gradientLength: Math.max(120, Math.min(300, cell * n)) },
      },
      tooltip: [
        { field: 'al', title: 'x' },
        { field: 'bl', title: 'y' },
        { field: 'norm', title: '‖B‖', format: '.3e' },
        { field: 'rms', title: 'RMS(B)', format: '.3e' },
        { field: 'rel', title: '‖B‖/(‖g_x‖‖g_y‖)', format: '.3e' },
        { field: 'cos', title: 'cos(g_x, g_y)', format: '.3f' },
      ],
    },
  });
  return { ...base, spec };
}

export interface FitSummary {
  /** Per checkpoint: one intercept per pair. */
  perStep: { step: number; fit: GroupedFit | null; factorR2: number | null }[];
  /** All checkpoints: one intercept per (step, pair) unit. */
  overall: GroupedFit | null;
}

const pairKey = (p: { x: number; y: number }) => `${p.x},${p.y}`;

export function fitSummary(files: RunFiles): FitSummary {
  const pts = tensorPoints(files.results);
  const steps = sweepSteps(files);
  const perStep = steps.map((step) => {
    const p = pts.filter((q) => q.step === step);
    return { step, fit: groupedFit(p, pairKey), factorR2: factorModelR2(p) };
  });
  return { perStep, overall: groupedFit(pts, (p) => `${p.step}|${pairKey(p)}`) };
}

/** 2. Per tensor: bracket RMS against gradient RMS, log-log, coloured by pair, with the fit. */
export function fitFigure(ctx: FigureContext, fits: FitSummary): Figure {
  const { files } = ctx;
  const explain =
    "Each point is one parameter tensor of one pair: its bracket RMS against the two gradients' RMS on that tensor (the geometric mean √(RMS g<sub>x</sub> · RMS g<sub>y</sub>)), on log-log axes. " +
    'Points of a pair share a colour; the shape marks the tensor. The lines are the fit ln RMS(B) = α<sub>pair</sub> + slope · ln(gradient RMS): one common slope, one intercept (a factor e<sup>α</sup>) per pair — the seed study\'s "the bracket tracks the gradient, tensor by tensor, times a pair- and time-dependent factor". ' +
    'The subtitle gives the slope, the R² with the intercepts, the R² within pairs (what the slope alone explains) and the residual spread; the factor-model R² says how much of the pair × tensor table a pair factor × tensor factor explains. The right panel follows these numbers over training.';
  const base: Figure = { id: 'fit', title: 'Bracket size against gradient size, per parameter tensor', explain, spec: null };
  const steps = sweepSteps(files);
  const pts = tensorPoints(files.results);
  if (pts.length === 0)
    return {
      ...base,
      note: files.results.length ? 'The sweep results have no per-tensor statistics (tensors: {bracketRms, gradRms…}).' : missingSweep,
    };
  const pairName = (x: number, y: number) => `${exampleName(x, ctx.pairThumbs)} × ${exampleName(y, ctx.pairThumbs)}`;
  const pairOrder = files.pairs.map(([x, y]) => pairName(x, y));
  const points = pts.map((p) => ({ s: steps.indexOf(p.step), pair: pairName(p.x, p.y), tensor: p.tensor, g: r4(p.gradRms), b: r4(p.bracketRms) }));
  const lines: Spec[] = [];
  const fitText: string[] = [];
  const statRows: Spec[] = [];
  fits.perStep.forEach(({ step, fit, factorR2 }, s) => {
    if (fit) {
      for (const [key, { alpha, xMin, xMax }] of fit.intercepts) {
        const [x, y] = key.split(',').map(Number) as [number, number];
        const at = (lx: number) => r4(Math.exp(alpha + fit.slope * lx));
        lines.push({ s, pair: pairName(x, y), x1: r4(Math.exp(xMin)), x2: r4(Math.exp(xMax)), y1: at(xMin), y2: at(xMax) });
      }
      statRows.push(
        { step, stat: 'slope', value: r4(fit.slope) },
        { step, stat: 'R² (with pair factors)', value: r4(fit.r2) },
        { step, stat: 'R² within pairs', value: r4(fit.withinR2) },
      );
    }
    if (factorR2 !== null) statRows.push({ step, stat: 'factor-model R²', value: r4(factorR2) });
    fitText.push(
      (fit
        ? `slope ${fmt(fit.slope, 2)} ± ${fmt(fit.slopeStderr, 2)} · R² ${fmt(fit.r2, 3)} · within pairs ${fmt(fit.withinR2, 3)} · residual sd ${fmt(fit.residualSd, 2)} (ln) · n = ${fit.n}`
        : 'too few points for a fit') + (factorR2 !== null ? ` · pair × tensor factor model R² ${fmt(factorR2, 3)}` : ''),
    );
  });
  const statNames = ['slope', 'R² (with pair factors)', 'R² within pairs', 'factor-model R²'];
  const colour = {
    field: 'pair',
    type: 'nominal',
    scale: { domain: pairOrder, scheme: 'tableau20' },
    title: 'pair (x × y)',
    legend: { symbolLimit: 40 },
  };
  const scatter: Spec = {
    title: { text: { expr: "'Per-tensor bracket RMS against gradient RMS — step ' + steps[ck]" }, subtitle: { expr: 'fitText[ck]' } },
    width: 460,
    height: 360,
    layer: [
      {
        data: { values: lines },
        transform: [{ filter: 'datum.s == ck' }],
        mark: { type: 'rule', strokeWidth: 1.5, opacity: 0.8 },
        encoding: {
          x: { field: 'x1', type: 'quantitative', scale: { type: 'log', nice: false } },
          y: { field: 'y1', type: 'quantitative', scale: { type: 'log', nice: false } },
          x2: { field: 'x2' },
          y2: { field: 'y2' },
          color: colour,
        },
      },
      {
        data: { values: points },
        transform: [{ filter: 'datum.s == ck' }],
        mark: { type: 'point', filled: true, size: 70, opacity: 0.9, stroke: 'white', strokeWidth: 0.5 },
        encoding: {
          x: { field: 'g', type: 'quantitative', scale: { type: 'log', nice: false }, title: 'gradient RMS √(RMS g_x · RMS g_y)', axis: LOG_AXIS },
          y: { field: 'b', type: 'quantitative', scale: { type: 'log', nice: false }, title: 'bracket RMS', axis: LOG_AXIS },
          color: colour,
          shape: { field: 'tensor', type: 'nominal', title: 'tensor' },
          tooltip: [
            { field: 'pair', title: 'pair' },
            { field: 'tensor', title: 'tensor' },
            { field: 'g', title: 'gradient RMS', format: '.3e' },
            { field: 'b', title: 'bracket RMS', format: '.3e' },
          ],
        },
      },
    ],
  };
  const over: Spec = {
    title: { text: 'The fit over training' },
    width: 260,
    height: 360,
    layer: [
      {
        data: { values: statRows },
        mark: { type: 'line', point: true },
        encoding: {
          x: stepX(steps),
          y: { field: 'value', type: 'quantitative', title: 'value', scale: { zero: false } },
          color: {
            field: 'stat',
            type: 'nominal',
            title: null,
            scale: { domain: statNames, range: ['#4c78a8', '#f58518', '#e45756', '#54a24b'] },
            legend: { orient: 'bottom', direction: 'vertical' },
          },
          tooltip: [{ field: 'stat' }, { field: 'step' }, { field: 'value', format: '.3f' }],
        },
      },
      {
        data: { values: statRows },
        transform: [{ filter: 'datum.step == steps[ck]' }],
        mark: { type: 'rule', color: '#999', strokeDash: [3, 3] },
        encoding: { x: { field: 'step', type: 'quantitative' } },
      },
    ],
  };
  const spec = top({
    params: [slider('ck', steps.length, 'checkpoint # '), { name: 'steps', value: steps }, { name: 'fitText', value: fitText }],
    hconcat: [scatter, over],
    resolve: { scale: { color: 'independent', shape: 'independent' }, legend: { color: 'independent', shape: 'independent' } },
  });
  return { ...base, spec };
}

function stepScale(steps: readonly number[]): Spec {
  const max = Math.max(0, ...steps);
  return max > 20 ? { type: 'symlog', constant: 1, nice: false } : { nice: false };
}

/** An x encoding of training steps: symlog when they span decades, integer ticks. */
function stepX(steps: readonly number[]): Spec {
  return {
    field: 'step',
    type: 'quantitative',
    title: 'training step',
    scale: stepScale(steps),
    axis: { tickMinStep: 1, format: 'd', labelOverlap: 'greedy' },
  };
}

/** Axis settings for a log scale: powers-of-ten style labels that do not collide. */
const LOG_AXIS = { format: '.0e', labelOverlap: 'greedy', labelSeparation: 4, tickCount: 6 };

/**
 * Label positions for values on a log axis, moved apart so that neighbours are at least `gap`
 * decades apart (a forward pass from the bottom, then the whole set re-centred on the data).
 */
export function spreadLogLabels(values: readonly number[], gap: number): number[] {
  const order = values.map((v, i) => [Math.log10(v), i] as [number, number]).sort((a, b) => a[0] - b[0]);
  const placed = order.map(([l]) => l);
  for (let i = 1; i < placed.length; i++) placed[i] = Math.max(placed[i]!, placed[i - 1]! + gap);
  const shift = (order.reduce((a, [l]) => a + l, 0) - placed.reduce((a, b) => a + b, 0)) / Math.max(1, placed.length);
  const out = new Array<number>(values.length);
  order.forEach(([, i], n) => (out[i] = 10 ** (placed[n]! + Math.min(0, shift))));
  return out;
}

/** Largest |v| per index tuple, at least a tiny positive number (a symmetric colour domain). */
function absMax(values: Iterable<number | null>): number {
  let m = 0;
  for (const v of values) if (v !== null && Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m > 0 ? r4(m * 1.0001) : 1e-30;
}

/** 3. The logit-effect heatmap: output features × probe examples, for a chosen pair and checkpoint. */
export function logitFigure(ctx: FigureContext): Figure {
  const { files } = ctx;
  const explain =
    "The seed study's central graph. For the chosen pair (x, y) and checkpoint, each cell is J<sub>f</sub>(z)·B: how much the logit of an output feature (row) on a probe example z (column) changes along the bracket — " +
    'the difference, at order ε², between the model\'s predictions after "x then y" and after "y then x". Red: the logit ends higher when x comes first; blue: lower. ' +
    'The colour scale is symmetric around 0 and rescaled for each pair and checkpoint (the legend gives the values). The two bracketed images are at the left, the probes above their columns.';
  const base: Figure = { id: 'logits', title: 'How the order of two examples moves each prediction', explain, spec: null };
  const steps = sweepSteps(files);
  const withFx = files.results.filter((r) => r.probeEffects && r.probeEffects.length > 0);
  if (withFx.length === 0)
    return {
      ...base,
      note: files.results.length ? 'The sweep has no probe effects (probeEffects), so there is no logit-effect heatmap.' : missingSweep,
    };
  const pairs = files.pairs.filter(([x, y]) => withFx.some((r) => r.x === x && r.y === y));
  const nProbes = Math.max(...withFx.map((r) => r.probeEffects!.length));
  const k = files.labels.length;
  const probeIdx = files.probeIndices && files.probeIndices.length >= nProbes ? files.probeIndices : null;
  const probeNames = Array.from({ length: nProbes }, (_, z) => (probeIdx ? exampleName(probeIdx[z]!, ctx.probeThumbs) : `probe ${z}`));
  const pairNames = pairs.map(([x, y]) => `${exampleName(x, ctx.pairThumbs)} × ${exampleName(y, ctx.pairThumbs)}`);
  const values: { s: number; p: number; z: number; f: number; v: number }[] = [];
  const amax: number[][] = steps.map(() => pairs.map(() => 1e-30));
  for (const r of withFx) {
    const s = steps.indexOf(r.step);
    const p = pairs.findIndex(([x, y]) => x === r.x && y === r.y);
    if (s < 0 || p < 0) continue;
    amax[s]![p] = absMax(r.probeEffects!.flat());
    r.probeEffects!.forEach((eff, z) =>
      eff.forEach((v, f) => {
        if (v !== null && f < k) values.push({ s, p, z, f, v: r4(v) });
      }),
    );
  }
  const cell = Math.max(14, Math.min(30, Math.floor(860 / nProbes)));
  const thumb = Math.max(12, cell - 2);
  const probeThumbRows = probeIdx
    ? probeIdx
        .slice(0, nProbes)
        .map((i, z) => ({ z, uri: ctx.probeThumbs.get(i)?.uri ?? null }))
        .filter((t) => t.uri !== null)
    : [];
  const probeTips: Spec[] = [];
  probeIdx?.slice(0, nProbes).forEach((i, z) => {
    const uri = ctx.probeThumbs.bigUri(i);
    if (uri) probeTips.push({ z, image: uri });
  });
  const pairImageRows: Spec[] = [];
  pairs.forEach(([x, y], p) => {
    for (const [side, i] of [
      ['x', x],
      ['y', y],
    ] as const) {
      const t = ctx.pairThumbs.get(i);
      pairImageRows.push({ p, side, uri: t?.uri ?? null, text: `${side} = ${exampleName(i, ctx.pairThumbs)}` });
    }
  });
  const heat: Spec = {
    width: { step: cell },
    height: { step: Math.max(cell, 18) },
    data: { values },
    transform: [
      { filter: 'datum.s == ck && datum.p == pair' },
      { calculate: 'featNames[datum.f]', as: 'feature' },
      { calculate: 'probeNames[datum.z]', as: 'probe' },
      ...(probeTips.length ? [{ lookup: 'z', from: { data: { values: probeTips }, key: 'z', fields: ['image'] } }] : []),
    ],
    mark: { type: 'rect', stroke: 'white', strokeWidth: 0.5 },
    encoding: {
      x: {
        field: 'z',
        type: 'ordinal',
        title: 'probe example z',
        axis: { labelExpr: 'probeNames[datum.value]', labelAngle: -50, labelLimit: 160, labelFontSize: 10 },
      },
      y: { field: 'f', type: 'ordinal', title: 'output feature', axis: { labelExpr: 'featNames[datum.value]', labelLimit: 160 } },
      color: {
        field: 'v',
        type: 'quantitative',
        title: 'J_f(z)·B',
        scale: {
          scheme: 'redblue',
          reverse: true,
          domainMin: { expr: '-amax[ck][pair]' },
          domainMax: { expr: 'amax[ck][pair]' },
          domainMid: 0,
          clamp: true,
        },
        legend: { format: '.1e', gradientLength: 180 },
      },
      tooltip: [
        ...(probeTips.length ? [{ field: 'image', title: 'image' }] : []),
        { field: 'feature', title: 'output' },
        { field: 'probe', title: 'probe z' },
        { field: 'v', title: 'J_f(z)·B', format: '.3e' },
      ],
    },
  };
  const probeRow: Spec | null =
    probeThumbRows.length > 0
      ? {
          width: { step: cell },
          height: thumb + 4,
          data: { values: probeThumbRows },
          mark: { type: 'image', width: thumb, height: thumb, aria: false },
          encoding: { x: { field: 'z', type: 'ordinal', axis: null }, url: { field: 'uri', type: 'nominal' } },
        }
      : null;
  const pairView: Spec = {
    width: 150,
    height: Math.max(150, Math.min(260, 18 * k)),
    data: { values: pairImageRows.filter((r) => r.uri !== null) },
    transform: [{ filter: 'datum.p == pair' }],
    layer: [
      {
        mark: { type: 'image', width: 64, height: 64, aria: false },
        encoding: {
          y: { field: 'side', type: 'ordinal', axis: null, scale: { padding: 0.2 } },
          x: { value: 75 },
          url: { field: 'uri', type: 'nominal' },
        },
      },
      {
        mark: { type: 'text', fontSize: 11, dy: 42, limit: 150 },
        encoding: { y: { field: 'side', type: 'ordinal', axis: null }, x: { value: 75 }, text: { field: 'text', type: 'nominal' } },
      },
    ],
  };
  const right: Spec = probeRow ? { vconcat: [probeRow, heat], spacing: 2, resolve: { scale: { x: 'shared' } } } : heat;
  const spec = top({
    params: [
      slider('ck', steps.length, 'checkpoint # '),
      selector('pair', pairNames, 'pair (x × y) '),
      { name: 'steps', value: steps },
      { name: 'featNames', value: files.labels },
      { name: 'probeNames', value: probeNames },
      { name: 'pairNames', value: pairNames },
      { name: 'amax', value: amax },
    ],
    title: {
      text: { expr: "'Logit change J_f(z)·B — step ' + steps[ck]" },
      subtitle: { expr: "'pair ' + pairNames[pair] + '   ·   largest |effect| ' + format(amax[ck][pair], '.3e')" },
    },
    hconcat: pairImageRows.some((r) => r.uri !== null) ? [pairView, right] : [right],
    spacing: 16,
  });
  return { ...base, spec };
}

/** 4. Per-feature non-commutativity over training. */
export function featureFigure(ctx: FigureContext, scores: readonly FeatureStepScore[], topN = 5): Figure {
  const { files } = ctx;
  const explain =
    'For each output feature, its non-commutativity score at each checkpoint: the mean over pairs of the mean over probes of |J<sub>f</sub>(z)·B| — how much that prediction depends on the order of two examples. ' +
    `The ${topN} features with the highest score at the last checkpoint are coloured and labelled at the right; the rest are grey. "Normalised" divides each pair's score by ‖g<sub>x</sub>‖‖g<sub>y</sub>‖, removing the overall gradient scale so that checkpoints compare.`;
  const base: Figure = { id: 'features', title: 'Which predictions are order-sensitive, over training', explain, spec: null };
  if (scores.length === 0)
    return { ...base, note: files.results.length ? 'The sweep has no probe effects, so features cannot be scored.' : missingSweep };
  const ranked = rankFeaturesAtLastStep(scores);
  const topSet = ranked.slice(0, topN).map((s) => files.labels[s.feature] ?? `output ${s.feature}`);
  const lastStep = Math.max(...scores.map((s) => s.step));
  const steps = [...new Set(scores.map((s) => s.step))].sort((a, b) => a - b);
  const rows = scores.map((s) => {
    const name = files.labels[s.feature] ?? `output ${s.feature}`;
    const t = topSet.indexOf(name);
    return {
      step: s.step,
      name,
      group: t >= 0 ? name : 'other features',
      top: t,
      last: s.step === lastStep,
      mean: r4(s.mean),
      normalized: s.normalized === null ? null : r4(s.normalized),
      se: Number.isFinite(s.stderr) ? r4(s.stderr) : null,
    };
  });
  // labels of the top features at the last step, moved apart on the log axis (one set per measure)
  const height = 340;
  for (const m of ['mean', 'normalized'] as const) {
    const all = rows.map((r) => r[m]).filter((v): v is number => v !== null && v > 0);
    const lastTop = rows.filter((r) => r.last && r.top >= 0 && r[m] !== null && r[m] > 0);
    if (all.length === 0 || lastTop.length === 0) continue;
    // the axis spans about the data's decades, rounded out to powers of ten (Vega's nice log domain)
    const decades = Math.max(1, Math.ceil(Math.log10(Math.max(...all))) - Math.floor(Math.log10(Math.min(...all))));
    const ys = spreadLogLabels(
      lastTop.map((r) => r[m]!),
      (decades * 16) / height,
    );
    lastTop.forEach((r, i) => ((r as Record<string, unknown>)[m === 'mean' ? 'labelMean' : 'labelNormalized'] = r4(ys[i]!)));
  }
  const palette = ['#e45756', '#4c78a8', '#f58518', '#54a24b', '#b279a2', '#9d755d', '#72b7b2', '#eeca3b'];
  const hasNorm = rows.some((r) => r.normalized !== null);
  const spec = top({
    params: hasNorm
      ? [
          {
            name: 'measure',
            value: 'mean',
            bind: { input: 'select', options: ['mean', 'normalized'], labels: ['mean |J_f(z)·B|', 'normalised by ‖g_x‖‖g_y‖'], name: 'score ' },
          },
        ]
      : [{ name: 'measure', value: 'mean' }],
    title: { text: 'Per-feature non-commutativity over training', subtitle: `top at step ${lastStep}: ${topSet.join(', ')}` },
    data: { values: rows },
    transform: [{ calculate: 'datum[measure]', as: 'value' }, { filter: 'isValid(datum.value) && datum.value > 0' }],
    width: 620,
    height,
    encoding: {
      x: stepX(steps),
      y: { field: 'value', type: 'quantitative', scale: { type: 'log' }, title: 'non-commutativity score', axis: LOG_AXIS },
      color: {
        field: 'group',
        type: 'nominal',
        scale: { domain: [...topSet, 'other features'], range: [...palette.slice(0, topSet.length), '#c8c8c8'] },
        title: 'feature',
        legend: null,
      },
      detail: { field: 'name', type: 'nominal' },
    },
    layer: [
      { transform: [{ filter: 'datum.top < 0' }], mark: { type: 'line', strokeWidth: 1.2, interpolate: 'monotone' } },
      { transform: [{ filter: 'datum.top >= 0' }], mark: { type: 'line', strokeWidth: 2.5, interpolate: 'monotone' } },
      {
        mark: { type: 'point', filled: true, size: 28 },
        encoding: {
          tooltip: [
            { field: 'name', title: 'feature' },
            { field: 'step', title: 'step' },
            { field: 'mean', title: 'mean |J_f(z)·B|', format: '.3e' },
            { field: 'se', title: '± s.e. over pairs', format: '.2e' },
            { field: 'normalized', title: 'normalised', format: '.3e' },
          ],
        },
      },
      {
        transform: [
          { filter: 'datum.top >= 0 && datum.last' },
          { calculate: "measure == 'mean' ? datum.labelMean : datum.labelNormalized", as: 'labelY' },
          { filter: 'isValid(datum.labelY)' },
        ],
        mark: { type: 'text', align: 'left', baseline: 'middle', dx: 8, fontSize: 12, fontWeight: 600 },
        encoding: { y: { field: 'labelY', type: 'quantitative' }, text: { field: 'name', type: 'nominal' } },
      },
    ],
  });
  return { ...base, spec };
}

/** 5. Training curves: loss and per-output accuracy (or AUC). */
export function trainingFigure(ctx: FigureContext): Figure {
  const { files } = ctx;
  const explain =
    'Left: the training loss (mean over the steps since the previous evaluation) and the loss on held-out test examples. Right: for each output, the fraction of held-out examples where p > 0.5 agrees with the label (or its ROC AUC), and for one-of-K labels the accuracy of the most probable class (black, dashed). ' +
    'Checkpoints are where the brackets above were computed.';
  const base: Figure = { id: 'training', title: 'Training curves', explain, spec: null };
  if (files.metrics.length === 0) return { ...base, note: 'No metrics.jsonl in this run.' };
  const steps = files.metrics.map((m) => m.step);
  const lossRows: Spec[] = [];
  const accRows: Spec[] = [];
  for (const m of files.metrics) {
    if (m.trainLoss !== null) lossRows.push({ step: m.step, series: 'training (mean since last eval)', value: r4(m.trainLoss) });
    if (m.evalLoss !== null) lossRows.push({ step: m.step, series: 'held-out', value: r4(m.evalLoss) });
    m.accuracy.forEach((a, j) => {
      const auc = m.auc[j] ?? null;
      if (a !== null || auc !== null)
        accRows.push({
          step: m.step,
          output: files.labels[j] ?? `output ${j}`,
          accuracy: a === null ? null : r4(a),
          auc: auc === null ? null : r4(auc),
        });
    });
    if (m.classAccuracy !== null) accRows.push({ step: m.step, output: 'class (argmax)', accuracy: r4(m.classAccuracy), auc: null, cls: true });
  }
  const x = stepX(steps);
  const lossView: Spec = {
    title: { text: 'Loss' },
    width: 380,
    height: 260,
    data: { values: lossRows },
    mark: { type: 'line', point: true },
    encoding: {
      x,
      y: { field: 'value', type: 'quantitative', title: 'loss', scale: { zero: false } },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        scale: { domain: ['training (mean since last eval)', 'held-out'], range: ['#4c78a8', '#e45756'] },
        legend: { orient: 'bottom', direction: 'vertical' },
      },
      tooltip: [{ field: 'series' }, { field: 'step' }, { field: 'value', title: 'loss', format: '.4f' }],
    },
  };
  const outputs = files.labels.slice(0, Math.max(0, ...files.metrics.map((m) => m.accuracy.length)));
  const accView: Spec = {
    title: { text: { expr: "metric == 'accuracy' ? 'Held-out accuracy per output' : 'Held-out ROC AUC per output'" } },
    width: 420,
    height: 260,
    data: { values: accRows },
    transform: [{ calculate: 'datum[metric]', as: 'value' }, { filter: 'isValid(datum.value)' }],
    encoding: {
      x,
      y: { field: 'value', type: 'quantitative', title: { expr: 'metric' }, scale: { zero: false } },
      tooltip: [{ field: 'output' }, { field: 'step' }, { field: 'value', format: '.3f' }],
    },
    layer: [
      {
        transform: [{ filter: '!datum.cls' }],
        mark: { type: 'line', point: { size: 18 }, strokeWidth: 1.5 },
        encoding: {
          color: {
            field: 'output',
            type: 'nominal',
            title: 'output',
            scale: { domain: outputs, scheme: outputs.length <= 10 ? 'tableau10' : 'tableau20' },
            legend: { columns: outputs.length > 12 ? 2 : 1 },
          },
        },
      },
      {
        transform: [{ filter: 'datum.cls' }],
        mark: { type: 'line', color: '#111', strokeDash: [5, 3], strokeWidth: 2, point: { color: '#111', size: 22 } },
      },
    ],
  };
  const spec = top({
    params: [
      {
        name: 'metric',
        value: 'accuracy',
        bind: { input: 'select', options: ['accuracy', 'auc'], labels: ['accuracy (p > 0.5)', 'ROC AUC'], name: 'per-output metric ' },
      },
    ],
    hconcat: lossRows.length > 0 && accRows.length > 0 ? [lossView, accView] : lossRows.length > 0 ? [lossView] : [accView],
    resolve: { scale: { color: 'independent' } },
  });
  return { ...base, spec };
}

/** 6. The swap verification: relative error of (θ_xy − θ_yx)/ε² against B, over ε. */
export function verifyFigure(ctx: FigureContext): Figure {
  const v = ctx.files.verify;
  const explain =
    'The bracket is a prediction: after the two real SGD orders with step ε, (θ<sub>xy</sub> − θ<sub>yx</sub>)/ε² → B as ε → 0. The points are the measured relative error ‖(θ<sub>xy</sub> − θ<sub>yx</sub>)/ε² − B‖/‖B‖ for each ε; ' +
    'on a smooth net it falls like ε (the dashed reference has slope 1, through the smallest ε). Red points mark ε where some ReLU or max-pool unit changed state between the stepped points — there the ε² law need not hold.';
  const base: Figure = { id: 'verify', title: 'Does the bracket predict the real swap?', explain, spec: null };
  if (!v)
    return {
      ...base,
      note: 'No verify.json in this run. To add this figure: lie-bracket verify --run RUN_DIR --step N --pairs "0,1" --json > RUN_DIR/verify.json, then lie-bracket report RUN_DIR.',
    };
  const rows = v.eps.map((eps, i) => ({
    eps,
    err: v.relErrors[i] ?? null,
    kinks: v.kinks?.[i] ?? null,
    order: i > 0 ? (v.orders[i - 1] ?? null) : null,
    kinked: (v.kinks?.[i] ?? 0) > 0,
  }));
  const valid = rows.filter((r) => r.err !== null && r.err > 0);
  if (valid.length === 0) return { ...base, note: 'verify.json has no positive relative errors to plot.' };
  // the slope-1 reference through the smallest ε (the asymptotic regime)
  const anchor = valid.reduce((a, r) => (r.eps < a.eps ? r : a));
  const epsMin = Math.min(...valid.map((r) => r.eps));
  const epsMax = Math.max(...valid.map((r) => r.eps));
  const ref = [
    { eps: epsMin, ref: anchor.err! * (epsMin / anchor.eps) },
    { eps: epsMax, ref: anchor.err! * (epsMax / anchor.eps) },
  ];
  const lastOrder = [...v.orders].reverse().find((o) => o !== null) ?? null;
  const anyKinks = rows.some((r) => r.kinked);
  const sub = [
    v.model ? `model ${v.model}` : '',
    v.pair ? `pair (${v.pair[0]}, ${v.pair[1]})` : '',
    v.frozen ? 'activation pattern frozen' : '',
    lastOrder !== null ? `observed order at the smallest ε: ${fmt(lastOrder, 2)}` : '',
  ]
    .filter((x) => x !== '')
    .join(' · ');
  const spec = top({
    title: { text: 'Relative error of the bracket against real swapped SGD steps', ...(sub ? { subtitle: sub } : {}) },
    width: 440,
    height: 300,
    layer: [
      {
        data: { values: ref },
        mark: { type: 'line', strokeDash: [5, 4], color: '#888' },
        encoding: {
          x: { field: 'eps', type: 'quantitative', scale: { type: 'log' }, title: 'step size ε', axis: LOG_AXIS },
          y: { field: 'ref', type: 'quantitative', scale: { type: 'log' }, title: 'relative error ‖(θxy − θyx)/ε² − B‖ / ‖B‖', axis: LOG_AXIS },
        },
      },
      {
        data: { values: valid },
        layer: [
          {
            mark: { type: 'line', color: '#4c78a8' },
            encoding: {
              x: { field: 'eps', type: 'quantitative', scale: { type: 'log' } },
              y: { field: 'err', type: 'quantitative', scale: { type: 'log' } },
            },
          },
          {
            mark: { type: 'point', filled: true, size: 90 },
            encoding: {
              x: { field: 'eps', type: 'quantitative', scale: { type: 'log' } },
              y: { field: 'err', type: 'quantitative', scale: { type: 'log' } },
              color: {
                field: 'kinked',
                type: 'nominal',
                scale: { domain: [false, true], range: ['#4c78a8', '#e45756'] },
                legend: anyKinks ? { title: 'units changed state', labelExpr: "datum.value ? 'yes' : 'no'" } : null,
              },
              tooltip: [
                { field: 'eps', title: 'ε', format: '.1e' },
                { field: 'err', title: 'relative error', format: '.3e' },
                { field: 'order', title: 'observed order', format: '.2f' },
                { field: 'kinks', title: 'units changed state' },
              ],
            },
          },
        ],
      },
    ],
  });
  return { ...base, spec };
}

/** 7. The all-pairs logit-effect matrix, with the two images on hover. */
export function allPairsFigure(ctx: FigureContext): Figure {
  const { files } = ctx;
  const explain =
    "For N examples at once (the sweep needs only O(N) Hessian-vector products for it when that is cheaper than N² brackets), cell (i, j) is the change of one output's logit on the probe example along the bracket B(i, j): positive (red) when training on example i first and j second raises it. " +
    'The matrix is antisymmetric (B(j, i) = −B(i, j)). Hover a cell to see the two examples. Choose the output and the checkpoint below.';
  const base: Figure = { id: 'allpairs', title: 'All pairs at once: the logit-effect matrix', explain, spec: null };
  if (files.allPairs.length === 0)
    return { ...base, note: 'No sweep/allpairs.jsonl in this run (the sweep computes it when asked for the all-pairs matrix).' };
  // one set per (step, probe): the last line wins
  const byKey = new Map<string, AllPairsSet>();
  for (const a of files.allPairs) byKey.set(`${a.step}|${a.probe}`, a);
  const sets = [...byKey.values()];
  const steps = [...new Set(sets.map((a) => a.step))].sort((a, b) => a - b);
  const probes = [...new Set(sets.map((a) => a.probe))].sort((a, b) => (a ?? -1) - (b ?? -1));
  const outputs = sets.find((a) => a.outputs)?.outputs ?? files.labels;
  const k = Math.max(...sets.map((a) => a.matrices.length));
  const outNames = Array.from({ length: k }, (_, j) => outputs[j] ?? `output ${j}`);
  // examples: the first set's indices (capped); other sets are drawn on the positions of the same indices
  const allIdx = [...new Set(sets.flatMap((a) => a.indices))];
  const truncated = allIdx.length > MAX_ALLPAIRS_N;
  const idx = allIdx.slice(0, MAX_ALLPAIRS_N);
  const pos = new Map(idx.map((i, n) => [i, n]));
  const names = idx.map((i) => exampleName(i, ctx.pairThumbs));
  const values: Spec[] = [];
  const amax: number[][][] = steps.map(() => probes.map(() => outNames.map(() => 1e-30)));
  for (const a of sets) {
    const s = steps.indexOf(a.step);
    const q = probes.indexOf(a.probe);
    a.matrices.forEach((m, kk) => {
      const vals: number[] = [];
      m.forEach((row, ri) => {
        const i = pos.get(a.indices[ri]!);
        if (i === undefined) return;
        row.forEach((v, ci) => {
          const j = pos.get(a.indices[ci]!);
          if (j === undefined || v === null || i === j) return;
          vals.push(v);
          values.push({ s, q, k: kk, i, j, v: r4(v) });
        });
      });
      amax[s]![q]![kk] = absMax(vals);
    });
  }
  const withImages = idx.length <= MAX_TOOLTIP_N && ctx.pairThumbs.get(idx[0] ?? -1) !== null;
  const images: Spec[] = [];
  if (withImages) {
    for (let i = 0; i < idx.length; i++) {
      for (let j = 0; j < idx.length; j++) {
        if (i === j) continue;
        const uri = ctx.pairThumbs.pairUri(idx[i]!, idx[j]!);
        if (uri) images.push({ key: i * idx.length + j, image: uri });
      }
    }
  }
  const probeNames = probes.map((p) => (p === null ? 'probe' : exampleName(p, ctx.probeThumbs)));
  const cell = Math.max(8, Math.min(48, Math.floor(560 / idx.length)));
  const params: Spec[] = [
    slider('ck', steps.length, 'checkpoint # '),
    selector('out', outNames, 'output '),
    { name: 'steps', value: steps },
    { name: 'outNames', value: outNames },
    { name: 'names', value: names },
    { name: 'probeNames', value: probeNames },
    { name: 'amax', value: amax },
    probes.length > 1 ? selector('probe', probeNames, 'probe ') : { name: 'probe', value: 0 },
  ];
  const transform: Spec[] = [
    { filter: 'datum.s == ck && datum.k == out && datum.q == probe' },
    { calculate: 'names[datum.i]', as: 'row' },
    { calculate: 'names[datum.j]', as: 'column' },
  ];
  if (withImages)
    transform.push(
      { calculate: `datum.i * ${idx.length} + datum.j`, as: 'key' },
      { lookup: 'key', from: { data: { values: images }, key: 'key', fields: ['image'] } },
    );
  const tooltip: Spec[] = [
    ...(withImages ? [{ field: 'image', title: 'image' }] : []),
    { field: 'row', title: 'first (i, left)' },
    { field: 'column', title: 'second (j, right)' },
    { field: 'v', title: 'logit change', format: '.3e' },
  ];
  const labelAxis = (expr: string) => ({ labelExpr: expr, labelLimit: 120, labelFontSize: idx.length > 32 ? 8 : 10, labelOverlap: false });
  const spec = top({
    params,
    title: {
      text: { expr: "'All-pairs logit change of ' + outNames[out] + ' — step ' + steps[ck]" },
      subtitle: { expr: "'on probe ' + probeNames[probe] + '   ·   largest |effect| ' + format(amax[ck][probe][out], '.3e')" },
    },
    data: { values },
    transform,
    width: { step: cell },
    height: { step: cell },
    mark: { type: 'rect' },
    encoding: {
      x: { field: 'j', type: 'ordinal', title: 'second example j', axis: { ...labelAxis('names[datum.value]'), labelAngle: -50 } },
      y: { field: 'i', type: 'ordinal', title: 'first example i', axis: labelAxis('names[datum.value]') },
      color: {
        field: 'v',
        type: 'quantitative',
        title: 'logit change',
        scale: {
          scheme: 'redblue',
          reverse: true,
          domainMin: { expr: '-amax[ck][probe][out]' },
          domainMax: { expr: 'amax[ck][probe][out]' },
          domainMid: 0,
          clamp: true,
        },
        legend: { format: '.1e', gradientLength: 180 },
      },
      tooltip,
    },
  });
  const notes: string[] = [];
  if (truncated) notes.push(`The matrix has ${allIdx.length} examples; the first ${MAX_ALLPAIRS_N} are shown.`);
  if (!withImages && idx.length > MAX_TOOLTIP_N)
    notes.push(`Hover images are embedded for up to ${MAX_TOOLTIP_N} examples; this matrix has ${idx.length}.`);
  const methods = [...new Set(sets.map((a) => a.method).filter((m): m is string => m !== null))];
  return {
    ...base,
    spec,
    ...(notes.length ? { note: notes.join(' ') } : {}),
    ...(methods.length ? { info: `Computed by the ${methods.join(' / ')} method.` } : {}),
  };
}
