// @ts-check
/**
 * Experiment A — the magnitude law. Does the bracket's size track the gradient's size tensor by
 * tensor, times a factor that depends on the pair and the checkpoint (the seed study's claim (a))?
 *
 * For each model, at every checkpoint and pooled over checkpoints, from the sweep's summary:
 *  - the per-tensor fit log RMS(B_t) = α_pair + slope · log ĝ_t (ĝ_t: geometric mean of the two
 *    examples' gradient RMS on tensor t), with its R² and the R² within pairs;
 *  - the two-way model log RMS(B)_{pair,t} = μ + a_pair + c_t: the share of variance explained by
 *    pair factor × tensor factor (and by each factor alone).
 * Models: Fashion-MNIST smoothconvnet and the synthetic attributes with a narrow xresnet.
 */
import { readSweep } from '../dist/study/sweep-stats.js';
import { fmt, mainIfDirect, mdTable, readSummary, study, writeFigure, writeResults } from './lib.mjs';

export const ID = 'a-magnitude';

/** @param {unknown} v */
const finite = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
/** @param {number} v */
const round4 = (v) => Math.round(v * 1e4) / 1e4;

const MODELS = [
  { key: 'fashion-smoothconvnet', config: 'fashion-smoothconvnet-bce-adam', label: 'Fashion-MNIST, smoothconvnet' },
  { key: 'synthetic-xresnet', config: 'synthetic-xresnet-bce', label: 'synthetic, narrow xresnet' },
];

/** @param {import('./lib.mjs').Context} ctx */
export async function run(ctx) {
  const t0 = performance.now();
  /** @type {Record<string, unknown>[]} */
  const rows = [];
  /** @type {Record<string, unknown>[]} */
  const pooled = [];
  /** @type {Record<string, unknown>[]} */
  const points = [];
  /** @type {string[]} */
  const commands = [];
  const md = [];
  for (const m of MODELS) {
    const h = await study(ctx, m.config);
    commands.push(h.command);
    const s = readSummary(h.runDir);
    for (const c of s.checkpoints) {
      rows.push({
        model: m.label,
        step: c.step,
        pairs: c.pairs,
        slope: c.gradientFit.slope,
        slopeStderr: c.gradientFit.slopeStderr,
        r2: c.gradientFit.r2,
        withinR2: c.gradientFit.withinR2,
        residualSd: c.gradientFit.residualSd,
        tensorModelR2: c.tensorModel.r2,
        pairFactorR2: c.tensorModel.r2Rows,
        tensorFactorR2: c.tensorModel.r2Cols,
      });
    }
    const o = s.overall;
    pooled.push({
      model: m.label,
      units: o.units,
      slope: o.gradientFit.slope,
      slopeStderr: o.gradientFit.slopeStderr,
      r2: o.gradientFit.r2,
      withinR2: o.gradientFit.withinR2,
      residualSd: o.gradientFit.residualSd,
      tensorModelR2: o.tensorModel.r2,
      pairFactorR2: o.tensorModel.r2Rows,
      tensorFactorR2: o.tensorModel.r2Cols,
      factorByStep: o.factorByStep,
      runDir: h.runPath,
    });
    // scatter points: every (checkpoint, pair, tensor) of the sweep
    const sw = readSweep(h.runDir);
    for (const r of sw.records) {
      for (const t of sw.params.tensors) {
        const v = r.tensors[t];
        if (!v) continue;
        const g = Math.sqrt(v.gradRmsX * v.gradRmsY);
        if (v.bracketRms > 0 && g > 0)
          points.push({ model: m.label, step: r.step, tensor: t, logGrad: round4(Math.log10(g)), logBracket: round4(Math.log10(v.bracketRms)) });
      }
    }
    md.push(`### ${m.label}`, '', `Run: \`${h.command}\``, '');
    md.push(
      mdTable(
        ['checkpoint', 'pairs', 'slope ± se', 'R²', 'R² within pairs', 'pair × tensor R²', 'pair alone', 'tensor alone'],
        [
          ...rows
            .filter((r) => r.model === m.label)
            .map((r) => [
              String(r.step),
              String(r.pairs),
              `${fmt(/** @type {number} */ (r.slope))} ± ${fmt(/** @type {number} */ (r.slopeStderr), 2)}`,
              fmt(/** @type {number} */ (r.r2)),
              fmt(/** @type {number} */ (r.withinR2)),
              fmt(/** @type {number} */ (r.tensorModelR2)),
              fmt(/** @type {number} */ (r.pairFactorR2)),
              fmt(/** @type {number} */ (r.tensorFactorR2)),
            ]),
          [
            '**pooled**',
            `${o.units} units`,
            `${fmt(o.gradientFit.slope)} ± ${fmt(o.gradientFit.slopeStderr, 2)}`,
            fmt(o.gradientFit.r2),
            fmt(o.gradientFit.withinR2),
            fmt(o.tensorModel.r2),
            fmt(o.tensorModel.r2Rows),
            fmt(o.tensorModel.r2Cols),
          ],
        ],
      ),
      '',
    );
  }
  const seconds = (performance.now() - t0) / 1000;
  const header = [
    '# Experiment A — magnitude law',
    '',
    'Per checkpoint: log RMS(B_t) = α_pair + slope · log ĝ_t over parameter tensors t (ĝ_t = √(RMS g_x,t · RMS g_y,t)), one intercept per pair;',
    'R² counts the intercepts, "within pairs" only the slope. Pair × tensor: log RMS(B) = μ + a_pair + c_t, share of variance explained.',
    'Pooled: one intercept per (checkpoint, pair) unit; the two-way model with (checkpoint, pair) rows.',
    '',
    `Mode: ${ctx.quick ? 'quick (pipeline check only)' : 'full'}; this invocation took ${seconds.toFixed(0)} s (with the studies it could reuse; run-info.json keeps every invocation's timing).`,
    '',
  ];
  writeResults(ctx, ID, { experiment: ID, quick: ctx.quick, seconds, commands, checkpoints: rows, pooled }, [...header, ...md].join('\n'));

  const long = rows.flatMap((r) => [
    {
      model: r.model,
      step: r.step,
      measure: 'slope',
      value: r.slope,
      lo: Number(r.slope) - 2 * Number(r.slopeStderr),
      hi: Number(r.slope) + 2 * Number(r.slopeStderr),
    },
    { model: r.model, step: r.step, measure: 'R² (slope + pair intercepts)', value: r.r2, lo: r.r2, hi: r.r2 },
    { model: r.model, step: r.step, measure: 'R² pair × tensor model', value: r.tensorModelR2, lo: r.tensorModelR2, hi: r.tensorModelR2 },
  ]);
  await writeFigure(ctx, 'a-fit-by-checkpoint', {
    title: { text: 'Bracket RMS vs gradient RMS across tensors, per checkpoint', subtitle: 'slope (±2 se) and variance explained; x: training step' },
    data: { values: long.map((d) => ({ ...d, value: finite(d.value), lo: finite(d.lo), hi: finite(d.hi) })) },
    facet: { column: { field: 'measure', type: 'nominal', title: null, sort: ['slope'] } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 230,
      height: 200,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'step', type: 'ordinal', title: 'step', axis: { labelAngle: 0 } },
            y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
            color: { field: 'model', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 400 } },
          },
        },
        {
          mark: 'rule',
          encoding: {
            x: { field: 'step', type: 'ordinal' },
            y: { field: 'lo', type: 'quantitative' },
            y2: { field: 'hi' },
            color: { field: 'model', type: 'nominal' },
          },
        },
      ],
    },
  });
  await writeFigure(ctx, 'a-scatter', {
    title: { text: 'log₁₀ bracket RMS against log₁₀ gradient RMS, one point per (checkpoint, pair, tensor)', subtitle: 'colour: checkpoint step' },
    data: { values: points },
    facet: { column: { field: 'model', type: 'nominal', title: null } },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 300,
      height: 260,
      mark: { type: 'circle', size: 10, opacity: 0.5 },
      encoding: {
        x: { field: 'logGrad', type: 'quantitative', title: 'log₁₀ ĝ_t', scale: { zero: false } },
        y: { field: 'logBracket', type: 'quantitative', title: 'log₁₀ RMS(B_t)', scale: { zero: false } },
        color: { field: 'step', type: 'ordinal', title: 'step', scale: { scheme: 'viridis' } },
      },
    },
  });
  return { seconds };
}

await mainIfDirect(import.meta.url, run);
