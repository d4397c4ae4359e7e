// @ts-check
/**
 * Experiment A — the magnitude law. Does the bracket's size track the gradient's size tensor by
 * tensor, times a factor that depends on the pair and the checkpoint (the seed study's claim (a))?
 *
 * Cells: (checkpoint, pair, parameter tensor) of a sweep, b = ln RMS(B_t), g = ln ĝ_t (ĝ_t: the
 * geometric mean of the two examples' gradient RMS on tensor t). At every checkpoint and pooled over
 * checkpoints (pairs are then (checkpoint, pair) units):
 *  - the seed's fit b = α_pair + slope·g (robust-stats' pairSlopeFit) with R² (intercepts counted)
 *    and R² within pairs (the slope alone);
 *  - its two placebos (issue 10, point 4): g replaced by the tensor-mean gradient profile of the
 *    checkpoint (the same for every pair), and by another pair's gradients (a derangement of the
 *    pairs within the checkpoint) — if the law were about the pair's own gradient, both would fit
 *    clearly worse;
 *  - the pair + tensor + slope fit b = μ + a_pair + c_t + β·g (pairTensorSlopeFit): what the pair's
 *    own gradient adds beyond the pair and tensor effects (partial R²);
 *  - intervals from a hierarchical bootstrap, seeds then images (a pair's cells weigh m_x·m_y, the
 *    multiplicities of its two images), never treating cells as independent; beside the naive
 *    standard error of the slope, the cluster-robust (CR1) one with pairs as clusters (clusteredSlopeSE).
 * Models: Fashion-MNIST smoothconvnet (6 parameter tensors; the seeds of experiment C, each with
 * pair images of its own) and the synthetic attributes with a narrow xresnet (23 tensors; 1 seed).
 */
import { clusteredSlopeSE, derangedCells, pairSlopeFit, pairTensorSlopeFit, tensorMeanCells } from '../dist/study/robust-stats.js';
import { readSweep } from '../dist/study/sweep-stats.js';
import { recordClaim } from './claims.mjs';
import { bootstrapEstimates, fmt, fmtEst, imageSet, mainIfDirect, mdTable, side, study, writeFigure, writeResults } from './lib.mjs';

export const ID = 'a-magnitude';

/** @param {number} v */
const round4 = (v) => Math.round(v * 1e4) / 1e4;
/** {estimate, ci95} of an Estimate. @param {import('./lib.mjs').Estimate} e */
const pick = (e) => ({ estimate: e.estimate, ci95: e.ci95 });

const MODELS = [
  { key: 'fashion-smoothconvnet', config: 'fashion-smoothconvnet-bce-adam', label: 'Fashion-MNIST, smoothconvnet', seeds: 5, ownImages: true },
  { key: 'synthetic-xresnet', config: 'synthetic-xresnet-bce', label: 'synthetic, narrow xresnet', seeds: 1, ownImages: false },
];

/**
 * @typedef {object} Cell  one (checkpoint, pair, tensor) with the real and the two placebo gradients
 * @property {number} step
 * @property {number} pair   index into the seed's pairs
 * @property {string} tensor
 * @property {number} b
 * @property {number} g
 * @property {number} gMean  the tensor-mean profile at the checkpoint
 * @property {number} gOther another pair's g (derangement within the checkpoint)
 */

/**
 * The cells of one sweep, with the placebos built on the data as observed.
 * @param {string} runDir
 * @param {number} seed  of the derangement
 */
function cellsOf(runDir, seed) {
  const sw = readSweep(runDir);
  const pairs = sw.params.pairs.map(([x, y]) => `${x},${y}`);
  /** @type {Cell[]} */
  const cells = [];
  for (const step of sw.params.steps) {
    const raw = sw.records
      .filter((r) => r.step === step)
      .flatMap((r) =>
        sw.params.tensors.map((t) => {
          const v = r.tensors[t];
          const g = v ? Math.sqrt(v.gradRmsX * v.gradRmsY) : NaN;
          const b = v?.bracketRms ?? NaN;
          return { pair: `${r.x},${r.y}`, tensor: t, b: b > 0 ? Math.log(b) : NaN, g: g > 0 ? Math.log(g) : NaN };
        }),
      );
    const tm = tensorMeanCells(raw);
    const der = derangedCells(raw, seed * 1000 + step).cells;
    raw.forEach((c, i) =>
      cells.push({ step, pair: pairs.indexOf(c.pair), tensor: c.tensor, b: c.b, g: c.g, gMean: tm[i]?.g ?? NaN, gOther: der[i]?.g ?? NaN }),
    );
  }
  return { cells, pairs: sw.params.pairs, tensors: sw.params.tensors, steps: sw.params.steps, records: sw.records };
}

/**
 * Every fit of a set of cells (pairs labelled by `pairLabel`), as named numbers.
 * @param {{ pair: string, tensor: string, b: number, g: number, gMean: number, gOther: number }[]} cells
 */
function fits(cells) {
  const real = pairSlopeFit(cells);
  const tm = pairSlopeFit(cells.map((c) => ({ ...c, g: c.gMean })));
  const other = pairSlopeFit(cells.map((c) => ({ ...c, g: c.gOther })));
  const pt = pairTensorSlopeFit(cells);
  return {
    slope: real.slope,
    r2: real.r2,
    withinR2: real.withinR2,
    r2TensorMean: tm.r2,
    withinR2TensorMean: tm.withinR2,
    r2OtherPair: other.r2,
    withinR2OtherPair: other.withinR2,
    gainWithinTensorMean: real.withinR2 - tm.withinR2,
    gainWithinOtherPair: real.withinR2 - other.withinR2,
    slopeTensorMean: tm.slope,
    slopeOtherPair: other.slope,
    r2PairTensor: pt.r2FixedEffects,
    r2PairTensorSlope: pt.r2,
    slopePairTensor: pt.slope,
    partialR2: pt.partialR2,
  };
}

/** @param {import('./lib.mjs').Context} ctx */
export async function run(ctx) {
  const t0 = performance.now();
  const samples = ctx.quick ? 100 : 1000;
  /** @type {Record<string, unknown>[]} */
  const rows = [];
  /** @type {Record<string, unknown>[]} */
  const pooled = [];
  /** @type {Record<string, unknown>[]} */
  const points = [];
  /** @type {string[]} */
  const commands = [];
  const md = [];
  /** @type {Record<string, Record<string, import('./lib.mjs').Estimate>>} */
  const pooledEst = {};
  /** @type {Record<string, { seeds: number, images: number, tensors: number }>} */
  const designs = {};
  for (const m of MODELS) {
    const nSeeds = ctx.quick ? Math.min(2, m.seeds) : m.seeds;
    /** @type {Map<string, ReturnType<typeof cellsOf>>} */
    const data = new Map();
    for (let seed = 0; seed < nSeeds; seed++) {
      const h = await study(ctx, m.config, { seed }, m.ownImages ? imageSet(ctx, seed) : undefined);
      commands.push(h.command);
      const d = cellsOf(h.runDir, seed);
      data.set(String(seed), d);
      if (seed === 0) {
        for (const r of d.records)
          for (const t of d.tensors) {
            const v = r.tensors[t];
            if (!v) continue;
            const g = Math.sqrt(v.gradRmsX * v.gradRmsY);
            if (v.bracketRms > 0 && g > 0)
              points.push({ model: m.label, step: r.step, tensor: t, logGrad: round4(Math.log10(g)), logBracket: round4(Math.log10(v.bracketRms)) });
          }
      }
    }
    const first = data.get('0');
    if (!first) throw new Error('A: no seed 0');
    const tensors = first.tensors.length;
    // the seeds' pair images: a pair's cells weigh m_x·m_y
    const seedList = [...data.entries()].map(([seed, d]) => ({ seed, images: [...new Set(d.pairs.flat().map(String))] }));
    const imagePos = new Map(seedList.map((s) => [s.seed, new Map(s.images.map((im, i) => [im, i]))]));
    designs[m.key] = { seeds: nSeeds, images: seedList[0]?.images.length ?? 0, tensors };
    /**
     * The cells of the drawn seed entries (each pair replicated m_x·m_y times under labels of its own), at `step` or pooled.
     * @param {{ seed: string, m: Float64Array }[]} entries
     * @param {number | null} step
     */
    const drawn = (entries, step) => {
      /** @type {{ pair: string, tensor: string, b: number, g: number, gMean: number, gOther: number }[]} */
      const out = [];
      entries.forEach((e, k) => {
        const d = data.get(e.seed);
        const pos = imagePos.get(e.seed);
        if (!d || !pos) return;
        const w = d.pairs.map(([x, y]) => (e.m[pos.get(String(x)) ?? 0] ?? 0) * (e.m[pos.get(String(y)) ?? 0] ?? 0));
        for (const c of d.cells) {
          if (step !== null && c.step !== step) continue;
          const copies = w[c.pair] ?? 0;
          for (let j = 0; j < copies; j++)
            out.push({ pair: `${k}/${c.step}/${c.pair}#${j}`, tensor: c.tensor, b: c.b, g: c.g, gMean: c.gMean, gOther: c.gOther });
        }
      });
      return out;
    };
    ctx.log(`  A (${m.key}): fits and their placebos, hierarchical bootstrap (${samples} resamples, ${nSeeds} seed(s) × pair images)`);
    // per checkpoint
    for (const step of first.steps) {
      const est = bootstrapEstimates(seedList, (entries) => fits(drawn(entries, step)), { samples: Math.max(50, Math.round(samples / 4)) });
      const full = fits(
        drawn(
          seedList.map((s) => ({ seed: s.seed, m: new Float64Array(s.images.length).fill(1) })),
          step,
        ),
      );
      rows.push({
        model: m.label,
        step,
        pairs: first.pairs.length,
        seeds: nSeeds,
        tensors,
        ...full,
        slopeCi95: est.slope?.ci95,
        withinR2Ci95: est.withinR2?.ci95,
        gainWithinTensorMeanCi95: est.gainWithinTensorMean?.ci95,
        partialR2Ci95: est.partialR2?.ci95,
        tensorModelR2: full.r2PairTensor,
      });
    }
    // pooled over checkpoints
    const est = bootstrapEstimates(seedList, (entries) => fits(drawn(entries, null)), { samples });
    pooledEst[m.key] = est;
    const ones = seedList.map((s) => ({ seed: s.seed, m: new Float64Array(s.images.length).fill(1) }));
    const allCells = drawn(ones, null);
    // naive vs cluster-robust (pairs as clusters) standard error of the within-pair slope
    /** @type {Map<string, { b: number, g: number, n: number }>} */
    const pm = new Map();
    for (const c of allCells) {
      if (!Number.isFinite(c.b) || !Number.isFinite(c.g)) continue;
      const s = pm.get(c.pair) ?? { b: 0, g: 0, n: 0 };
      pm.set(c.pair, { b: s.b + c.b, g: s.g + c.g, n: s.n + 1 });
    }
    const fin = allCells.filter((c) => Number.isFinite(c.b) && Number.isFinite(c.g));
    const dm = (/** @type {typeof fin[number]} */ c, /** @type {'b' | 'g'} */ k) => {
      const s = pm.get(c.pair) ?? { b: 0, g: 0, n: 1 };
      return c[k] - s[k] / s.n;
    };
    // clusters: the pair (x, y) of a seed, across checkpoints
    const cl = clusteredSlopeSE(
      fin.map((c) => dm(c, 'g')),
      fin.map((c) => dm(c, 'b')),
      fin.map((c) => c.pair.replace(/\/\d+\/(\d+)#0$/, '/$1')),
    );
    const realFit = pairSlopeFit(allCells);
    pooled.push({
      model: m.label,
      units: realFit.groups,
      seeds: nSeeds,
      tensors,
      ...fits(allCells),
      slopeStderr: realFit.slopeStderr,
      slopeStderrClustered: cl.clusteredStderr,
      clusters: cl.clusters,
      estimates: est,
      tensorModelR2: fits(allCells).r2PairTensor,
    });
    const E = (/** @type {string} */ k) => est[k] ?? { estimate: NaN, ci95: /** @type {[number, number]} */ ([NaN, NaN]) };
    md.push(
      `### ${m.label} — ${tensors} parameter tensors, ${first.pairs.length} pairs per checkpoint, ${nSeeds} seed(s)${m.ownImages ? ' (each with pair images of its own)' : ''}`,
      '',
      ...commands.slice(-nSeeds).map((c) => `Run: \`${c}\``),
      '',
      'Per checkpoint (seeds pooled): the seed’s fit (slope with pair intercepts), its two placebos, and the pair + tensor + slope fit. Slope interval: hierarchical bootstrap (seeds, then images).',
      '',
      mdTable(
        [
          'checkpoint',
          'slope [95% CI]',
          'R²',
          'R² within pairs',
          'placebo tensor-mean: R² / within',
          'placebo other pair: R² / within',
          'pair + tensor R²',
          '+ slope R²',
          'partial R² of own gradient',
        ],
        rows
          .filter((r) => r.model === m.label)
          .map((r) => {
            const x = /** @type {any} */ (r);
            return [
              String(x.step),
              `${fmt(x.slope)} [${fmt(x.slopeCi95?.[0])}, ${fmt(x.slopeCi95?.[1])}]`,
              fmt(x.r2),
              fmt(x.withinR2),
              `${fmt(x.r2TensorMean)} / ${fmt(x.withinR2TensorMean)}`,
              `${fmt(x.r2OtherPair)} / ${fmt(x.withinR2OtherPair)}`,
              fmt(x.r2PairTensor),
              fmt(x.r2PairTensorSlope),
              `${fmt(x.partialR2)} [${fmt(x.partialR2Ci95?.[0])}, ${fmt(x.partialR2Ci95?.[1])}]`,
            ];
          }),
      ),
      '',
      `Pooled over checkpoints (${realFit.groups} (checkpoint, pair) units × ${tensors} tensors; 95% hierarchical-bootstrap intervals, ${samples} resamples):`,
      '',
      mdTable(
        ['statistic', 'real gradients', 'placebo: tensor-mean profile', 'placebo: another pair’s gradients'],
        [
          ['slope', fmtEst(E('slope')), fmtEst(E('slopeTensorMean')), fmtEst(E('slopeOtherPair'))],
          ['R² (slope + pair intercepts)', fmtEst(E('r2')), fmtEst(E('r2TensorMean')), fmtEst(E('r2OtherPair'))],
          ['R² within pairs', fmtEst(E('withinR2')), fmtEst(E('withinR2TensorMean')), fmtEst(E('withinR2OtherPair'))],
          ['real − placebo, R² within pairs', '–', fmtEst(E('gainWithinTensorMean')), fmtEst(E('gainWithinOtherPair'))],
        ],
      ),
      '',
      `Pair + tensor + slope fit: pair + tensor effects alone R² ${fmtEst(E('r2PairTensor'))}; with the slope ${fmtEst(E('r2PairTensorSlope'))}; slope ${fmtEst(E('slopePairTensor'))}; what the pair's own gradient adds (partial R²) ${fmtEst(E('partialR2'))}.`,
      '',
      `Standard error of the pooled slope: naive ${fmt(realFit.slopeStderr, 2)} (cells independent), cluster-robust CR1 ${fmt(cl.clusteredStderr, 2)} (${cl.clusters} pair clusters), bootstrap (seeds, images) ${fmt((E('slope').ci95[1] - E('slope').ci95[0]) / (2 * 1.96), 2)} (interval width / 3.92).`,
      '',
    );
  }

  // ---------------------------------------------------------------------------------------------
  // the claim
  const S = (/** @type {string} */ model, /** @type {string} */ k) => {
    const e = pooledEst[model]?.[k];
    if (!e) throw new Error(`A: no estimate ${model}/${k}`);
    return e;
  };
  const models = MODELS.map((m) => m.key);
  const slopeOk = models.every((k) => side(S(k, 'slope').ci95) === 'positive');
  const beatsBoth = (/** @type {string} */ k) =>
    side(S(k, 'gainWithinTensorMean').ci95) === 'positive' && side(S(k, 'gainWithinOtherPair').ci95) === 'positive';
  const adds = (/** @type {string} */ k) => S(k, 'partialR2').ci95[0] >= 0.25;
  const verdict = !slopeOk ? 'refuted' : models.every((k) => beatsBoth(k) && adds(k)) ? 'reproduced' : 'partly';
  const main = 'fashion-smoothconvnet';
  const prim = S(main, 'slope');
  const notes = [
    'Verdict rule (fixed in the script): reproduced if in both models the pooled slope is > 0, the real gradients beat both placebos in R² within pairs (intervals above 0), and the pair’s own gradient explains at least a quarter of what the pair and tensor effects leave (partial R² interval ≥ 0.25); refuted if the slope is not positive; otherwise partly.',
    ...MODELS.map((m) => {
      const k = m.key;
      return `${m.label} (${designs[k]?.tensors} tensors, ${designs[k]?.seeds} seed(s)): slope ${fmtEst(S(k, 'slope'))}; R² ${fmtEst(S(k, 'r2'))} vs placebos ${fmtEst(S(k, 'r2TensorMean'))} (tensor-mean profile) and ${fmtEst(S(k, 'r2OtherPair'))} (another pair); within pairs ${fmtEst(S(k, 'withinR2'))} vs ${fmtEst(S(k, 'withinR2TensorMean'))} and ${fmtEst(S(k, 'withinR2OtherPair'))}; pair + tensor R² ${fmtEst(S(k, 'r2PairTensor'))}, partial R² of the own gradient ${fmtEst(S(k, 'partialR2'))}.`;
    }),
  ];
  recordClaim(ctx, {
    id: 'A',
    question:
      'Magnitude law: is ln RMS(B_t) ≈ α_pair + slope · ln ĝ_t across parameter tensors t, with a slope near 1 and high R² — and does the pair’s own gradient carry it, beyond the tensor profile and the pair factor (placebos)?',
    verdict,
    primary: {
      statistic:
        'slope of ln bracket RMS on ln gradient RMS with one intercept per (checkpoint, pair), pooled over checkpoints and seeds (smoothconvnet)',
      space: 'ln RMS per parameter tensor',
      estimate: prim.estimate,
      ci95: prim.ci95,
    },
    robustness: MODELS.flatMap((m) => {
      const k = m.key;
      const rowsFor = [
        ['slope', 'slope'],
        ['R² (slope + pair intercepts)', 'r2'],
        ['R², placebo: tensor-mean gradient profile', 'r2TensorMean'],
        ['R², placebo: another pair’s gradients', 'r2OtherPair'],
        ['R² within pairs', 'withinR2'],
        ['R² within pairs, placebo: tensor-mean profile', 'withinR2TensorMean'],
        ['R² within pairs, placebo: another pair', 'withinR2OtherPair'],
        ['R² within pairs, real − tensor-mean placebo', 'gainWithinTensorMean'],
        ['R² within pairs, real − other-pair placebo', 'gainWithinOtherPair'],
        ['pair + tensor effects R²', 'r2PairTensor'],
        ['pair + tensor + slope: slope', 'slopePairTensor'],
        ['pair + tensor + slope: partial R² of the own gradient', 'partialR2'],
      ];
      return rowsFor
        .filter(([, key]) => !(k === main && key === 'slope'))
        .map(([label, key]) => ({ variant: `${m.label}: ${label}`, ...pick(S(k, key ?? '')) }));
    }),
    design: { seeds: designs[main]?.seeds ?? 1, images: designs[main]?.images ?? 0 },
    notes,
  });

  const seconds = (performance.now() - t0) / 1000;
  const header = [
    '# Experiment A — magnitude law',
    '',
    'Cells: (checkpoint, pair, parameter tensor); b = ln RMS(B_t), g = ln ĝ_t (ĝ_t = √(RMS g_x,t · RMS g_y,t)).',
    'Seed’s fit: b = α_pair + slope·g (R² counts the intercepts, "within pairs" only the slope). Placebos: g replaced by the tensor-mean profile of the checkpoint, or by another pair’s g (a derangement within the checkpoint).',
    'Pair + tensor + slope: b = μ + a_pair + c_t + β·g; partial R²: the share of what pair and tensor effects leave that the pair’s own gradient explains.',
    'Pooled: one intercept per (checkpoint, pair) unit. Intervals: hierarchical bootstrap over seeds, then pair images (a pair weighs m_x·m_y), never over cells.',
    '',
    `Verdict (claims.json, A): **${verdict}**.`,
    '',
    `Mode: ${ctx.quick ? 'quick (pipeline check only)' : 'full'}; this invocation took ${seconds.toFixed(0)} s (with the studies it could reuse; run-info.json keeps every invocation's timing).`,
    '',
  ];
  writeResults(
    ctx,
    ID,
    { experiment: ID, quick: ctx.quick, seconds, verdict, commands, designs, checkpoints: rows, pooled },
    [...header, ...md].join('\n'),
  );

  const long = rows.flatMap((r) => {
    const x = /** @type {any} */ (r);
    return [
      { model: x.model, step: x.step, measure: 'slope', fit: 'real', value: x.slope, lo: x.slopeCi95?.[0] ?? null, hi: x.slopeCi95?.[1] ?? null },
      {
        model: x.model,
        step: x.step,
        measure: 'R² within pairs',
        fit: 'real',
        value: x.withinR2,
        lo: x.withinR2Ci95?.[0] ?? null,
        hi: x.withinR2Ci95?.[1] ?? null,
      },
      {
        model: x.model,
        step: x.step,
        measure: 'R² within pairs',
        fit: 'placebo: tensor-mean profile',
        value: x.withinR2TensorMean,
        lo: null,
        hi: null,
      },
      { model: x.model, step: x.step, measure: 'R² within pairs', fit: 'placebo: another pair', value: x.withinR2OtherPair, lo: null, hi: null },
      {
        model: x.model,
        step: x.step,
        measure: 'partial R² of own gradient',
        fit: 'real',
        value: x.partialR2,
        lo: x.partialR2Ci95?.[0] ?? null,
        hi: x.partialR2Ci95?.[1] ?? null,
      },
    ];
  });
  const finite = (/** @type {unknown} */ v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  await writeFigure(ctx, 'a-fit-by-checkpoint', {
    title: {
      text: 'Bracket RMS vs gradient RMS across tensors, per checkpoint, with placebos',
      subtitle: 'real fit (95% bootstrap intervals over seeds and images) and the two placebo fits; x: training step',
    },
    data: { values: long.map((d) => ({ ...d, value: finite(d.value), lo: finite(d.lo), hi: finite(d.hi) })) },
    facet: {
      row: { field: 'model', type: 'nominal', title: null },
      column: { field: 'measure', type: 'nominal', title: null, sort: ['slope', 'R² within pairs', 'partial R² of own gradient'] },
    },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 200,
      height: 160,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'step', type: 'ordinal', title: 'step', axis: { labelAngle: 0 } },
            y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
            color: { field: 'fit', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 400 } },
          },
        },
        {
          mark: 'rule',
          encoding: {
            x: { field: 'step', type: 'ordinal' },
            y: { field: 'lo', type: 'quantitative' },
            y2: { field: 'hi' },
            color: { field: 'fit', type: 'nominal' },
          },
        },
      ],
    },
  });
  await writeFigure(ctx, 'a-scatter', {
    title: {
      text: 'log₁₀ bracket RMS against log₁₀ gradient RMS, one point per (checkpoint, pair, tensor), seed 0',
      subtitle: 'colour: checkpoint step',
    },
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
  return { seconds, verdict };
}

await mainIfDirect(import.meta.url, run);
