// @ts-check
/**
 * Experiment C — misspecification on real data. Fashion-MNIST's ten classes are mutually
 * exclusive; `bce` predicts them with ten independent sigmoids (misspecified), `ce` with one
 * softmax. Same model (smoothconvnet), optimizer and seeds. Which classes are most order-sensitive
 * under each, and is that the confusable classes being hard (sensitive under both losses, in step
 * with their confusion rate) or the sigmoids being misspecified (sensitive under bce only)?
 *
 * Issue 10's statistics (points 1–3 and 6):
 *  - four spaces per unit (late checkpoint × pair × probe): logit |J_f·B|, probability |Δp|,
 *    Fisher |Δp|/√(p(1−p)) and the bracket-free control p(1−p); a verdict only where logit,
 *    probability and Fisher agree (ce's plain softmax is shift-invariant, so its logit-space numbers
 *    depend on how the logits happen to be centred: reported, but weighed with that in mind);
 *  - each seed brackets images of its own (lib.imageSet: seed s takes the pairs among test examples
 *    32s…32s+7 and the probes 32s…32s+31; seed 0 is the shared default sweep), so the intervals —
 *    a hierarchical bootstrap over seeds, then images (a unit weighs m_x·m_y·m_z) — cover the choice
 *    of examples;
 *  - the upper-body excess log(T-shirt, Pullover, Coat, Shirt / the rest) in four aggregations, and
 *    its bce − ce difference (the misspecification hypothesis predicts > 0);
 *  - Spearman's ρ of the confusion rate against the order sensitivity over the 10 classes, and the
 *    partial ρ controlling for the classes' p(1−p) (the confidence confound), with percentile
 *    intervals from the same bootstrap (they stay within [−1, 1]; the classes are fixed, seeds and
 *    images are resampled) instead of t-intervals over three values;
 *  - the per-class bce/ce ratio in each space beside the ratio of the bracket norms ‖B‖, which
 *    carries the losses' different scales.
 * Confusion matrices: the final models on the 1,000 shipped test images.
 */
import { excludedEffect, partialSpearman } from '../dist/study/robust-stats.js';
import { recordClaim } from './claims.mjs';
import {
  AGGREGATIONS,
  AGGREGATION_LABELS,
  SPACES,
  SPACE_LABELS,
  bootstrapSamples,
  bootstrapEstimates,
  cellIndex,
  cellWeights,
  columnMeans,
  confusion,
  fmt,
  fmtEst,
  imageSet,
  lateSteps,
  mainIfDirect,
  mdTable,
  mean,
  outputCells,
  ratioCells,
  ratioValue,
  readSummary,
  readSweepParams,
  side,
  spearman,
  study,
  sweepSettings,
  unitScores,
  weightedMean,
  writeFigure,
  writeResults,
} from './lib.mjs';

export const ID = 'c-fashion-losses';

const LOSSES = /** @type {const} */ (['bce', 'ce']);
/** The confusable upper-body classes the seed study expected at the top. */
const UPPER = ['T-shirt/top', 'Pullover', 'Coat', 'Shirt'];
const SEEDS = 5;
/** @type {{ space: import('./lib.mjs').Space, agg: import('./lib.mjs').Aggregation }} */
const PRIMARY = { space: 'fisher', agg: 'geometric' };
/** @type {import('./lib.mjs').Space[]} */
const BRACKET_SPACES = ['logit', 'prob', 'fisher'];

/** {estimate, ci95} of an Estimate. @param {import('./lib.mjs').Estimate} e */
const pick = (e) => ({ estimate: e.estimate, ci95: e.ci95 });

/** @param {import('./lib.mjs').Context} ctx */
export async function run(ctx) {
  const t0 = performance.now();
  const samples = bootstrapSamples(ctx);
  const seeds = Array.from({ length: ctx.quick ? 2 : SEEDS }, (_, i) => i);
  /** @type {string[]} */
  const commands = [];
  /** @type {Record<string, unknown>[]} */
  const perRun = [];
  /** @type {string[]} */
  let labels = [];
  /** @type {Record<string, any>} */
  const res = {};
  for (const seed of seeds) {
    const images = imageSet(ctx, seed);
    for (const loss of LOSSES) {
      const h = await study(ctx, `fashion-smoothconvnet-${loss}-adam`, { seed }, images);
      commands.push(h.command);
      const p = readSweepParams(h.runDir);
      labels = p.outputs;
      ctx.log(`  measuring the four spaces and the confusion matrix (${loss}, seed ${seed})`);
      const steps = lateSteps(p.steps);
      const sc = unitScores(h.runDir, steps);
      const ix = cellIndex(sc);
      const last = p.steps[p.steps.length - 1] ?? 0;
      const cm = confusion(h.runDir, last);
      const confusionRate = cm.matrix.map((row, c) => {
        const n = row.reduce((a, b) => a + b, 0);
        return n > 0 ? 1 - (row[c] ?? 0) / n : NaN;
      });
      const accuracy = cm.matrix.reduce((a, row, c) => a + (row[c] ?? 0), 0) / cm.n;
      const summary = readSummary(h.runDir);
      /** @type {Record<string, number[]>} */
      const scores = {};
      for (const space of SPACES) scores[space] = columnMeans(sc.units.map((u) => u.scores[space]));
      const upper = labels.flatMap((l, i) => (UPPER.includes(l) ? [i] : []));
      const other = labels.flatMap((l, i) => (UPPER.includes(l) ? [] : [i]));
      /** @type {Record<string, import('./lib.mjs').RatioCells>} */
      const rcs = {};
      /** @type {Record<string, Float64Array[]>} */
      const oc = {};
      for (const space of SPACES) {
        rcs[space] = ratioCells(sc, ix, space, upper, other);
        oc[space] = outputCells(sc, ix, space);
      }
      const norm = new Float64Array(ix.cells);
      sc.units.forEach((u, i) => {
        const c = ix.unitCell[i] ?? 0;
        norm[c] = (norm[c] ?? 0) + u.bracketNorm;
      });
      res[`${loss}/${seed}`] = { sc, ix, rcs, oc, norm, confusionRate };
      perRun.push({
        loss,
        seed,
        runDir: h.runPath,
        images: images?.label ?? `test 0–${sweepSettings(ctx).first - 1} (pairs), 0–${sweepSettings(ctx).probes - 1} (probes)`,
        lateSteps: steps,
        scores,
        probScore: scores.prob,
        logitScore: scores.logit,
        bracketNorm: mean(sc.units.map((u) => u.bracketNorm)),
        confusion: cm.matrix,
        confusionRate,
        accuracy,
        spearman: Object.fromEntries(SPACES.map((s) => [s, spearman(confusionRate, scores[s] ?? [])])),
        ranking: summary.overall.features.map((f) => ({ feature: f.feature, rank: f.rank, meanAbsEffect: f.meanAbsEffect, ci90: f.ci90 })),
      });
    }
  }
  const K = labels.length;
  const seedList = seeds.map((s) => {
    const a = res[`bce/${s}`].ix.images;
    if (JSON.stringify(a) !== JSON.stringify(res[`ce/${s}`].ix.images)) throw new Error(`C: seed ${s}: bce and ce have different images`);
    return { seed: String(s), images: a };
  });
  ctx.log(`  C: hierarchical bootstrap, ${samples} resamples over ${seeds.length} seed(s) × images`);
  const est = bootstrapEstimates(
    seedList,
    (entries) => {
      /** @type {Record<string, number[]>} */
      const acc = {};
      const add = (/** @type {string} */ k, /** @type {number} */ v) => (acc[k] ??= []).push(v);
      /** per loss, space: the class means averaged over entries, for the correlations */
      /** @type {Record<string, number[][]>} */
      const classMeans = {};
      /** @type {Record<string, number[][]>} */
      const rates = {};
      for (const e of entries) {
        for (const loss of LOSSES) {
          const r = res[`${loss}/${e.seed}`];
          const w = cellWeights(r.ix, e.m);
          for (const space of SPACES) {
            for (const agg of AGGREGATIONS) add(`${loss}/${space}/${agg}`, ratioValue(r.rcs[space], agg, w));
            const cm = r.oc[space].map((/** @type {Float64Array} */ v) => weightedMean(v, r.ix, w));
            (classMeans[`${loss}/${space}`] ??= []).push(cm);
            cm.forEach((/** @type {number} */ v, /** @type {number} */ c) => add(`class/${c}/${loss}/${space}`, Math.log(v)));
          }
          add(`normLog/${loss}`, Math.log(weightedMean(r.norm, r.ix, w)));
          (rates[loss] ??= []).push(r.confusionRate);
        }
      }
      /** @type {Record<string, number>} */
      const out = {};
      const m = (/** @type {string} */ k) => mean(acc[k] ?? []);
      // the primary first
      out[`diff/${PRIMARY.space}/${PRIMARY.agg}`] = m(`bce/${PRIMARY.space}/${PRIMARY.agg}`) - m(`ce/${PRIMARY.space}/${PRIMARY.agg}`);
      for (const space of SPACES)
        for (const agg of AGGREGATIONS) {
          out[`bce/${space}/${agg}`] = m(`bce/${space}/${agg}`);
          out[`ce/${space}/${agg}`] = m(`ce/${space}/${agg}`);
          out[`diff/${space}/${agg}`] = m(`bce/${space}/${agg}`) - m(`ce/${space}/${agg}`);
        }
      out['normLog/bce'] = m('normLog/bce');
      out['normLog/ce'] = m('normLog/ce');
      out['normLogRatio'] = m('normLog/bce') - m('normLog/ce');
      for (let c = 0; c < K; c++)
        for (const space of SPACES) {
          const b = m(`class/${c}/bce/${space}`);
          const g = m(`class/${c}/ce/${space}`);
          out[`class/${c}/bce/${space}`] = b;
          out[`class/${c}/ce/${space}`] = g;
          out[`class/${c}/logRatio/${space}`] = b - g;
          out[`class/${c}/logRatioPerNorm/${space}`] = b - g - (out['normLogRatio'] ?? NaN);
        }
      for (const loss of LOSSES) {
        const rate = columnMeans(rates[loss] ?? []);
        const control = columnMeans(classMeans[`${loss}/control`] ?? []);
        for (const space of SPACES) {
          const sens = columnMeans(classMeans[`${loss}/${space}`] ?? []);
          out[`spearman/${loss}/${space}`] = spearman(rate, sens);
          if (space !== 'control') out[`partialSpearman/${loss}/${space}`] = partialSpearman(rate, sens, control);
        }
      }
      return out;
    },
    { samples },
  );
  const E = (/** @type {string} */ k) => {
    const e = est[k];
    if (!e) throw new Error(`C: no estimate ${k}`);
    return e;
  };

  // ---------------------------------------------------------------------------------------------
  // verdict and claim
  const prim = E(`diff/${PRIMARY.space}/${PRIMARY.agg}`);
  const sides = Object.fromEntries(BRACKET_SPACES.map((s) => [s, side(E(`diff/${s}/${PRIMARY.agg}`).ci95)]));
  const aggSides = AGGREGATIONS.map((a) => side(E(`diff/${PRIMARY.space}/${a}`).ci95));
  const flips = new Set(Object.values(sides)).size > 1;
  const verdict = flips
    ? 'inconclusive'
    : sides.fisher === 'positive'
      ? aggSides.every((v) => v === 'positive')
        ? 'reproduced'
        : 'partly'
      : sides.fisher === 'negative'
        ? 'refuted'
        : 'inconclusive';
  const flipText = (/** @type {Record<string, string>} */ sd) =>
    BRACKET_SPACES.map((s) => `${s} ${sd[s] === 'positive' ? '> 0' : sd[s] === 'negative' ? '< 0' : 'includes 0'}`).join(', ');
  const ranked = (/** @type {string} */ loss, /** @type {string} */ space) =>
    labels
      .map((l, c) => ({ l, v: E(`class/${c}/${loss}/${space}`).estimate }))
      .sort((a, b) => b.v - a.v)
      .map((x) => x.l);
  const ratios = (/** @type {string} */ space, /** @type {string} */ kind) =>
    labels.map((_, c) => Math.exp(E(`class/${c}/${kind}/${space}`).estimate));
  const range = (/** @type {number[]} */ v) => `${fmt(Math.min(...v), 2)}–${fmt(Math.max(...v), 2)}×`;
  const nullExcl = side(prim.ci95) === 'null' ? excludedEffect([-prim.ci95[1], -prim.ci95[0]], 'shrink').text : undefined;
  const notes = [
    `bce − ce of the upper-body excess (${AGGREGATION_LABELS[PRIMARY.agg]}), by space: ${BRACKET_SPACES.map((s) => `${s} ${fmtEst(E(`diff/${s}/${PRIMARY.agg}`))}`).join('; ')}; control p(1−p) ${fmtEst(E(`diff/control/${PRIMARY.agg}`))}.`,
    flips
      ? `The verdict flips between spaces (${flipText(sides)}): none is stated beyond "inconclusive".`
      : `The three bracket spaces agree (${flipText(sides)}).`,
    `Upper-body excess under bce: ${BRACKET_SPACES.map((s) => `${s} ${fmtEst(E(`bce/${s}/${PRIMARY.agg}`))}`).join('; ')}; under ce: ${BRACKET_SPACES.map((s) => `${s} ${fmtEst(E(`ce/${s}/${PRIMARY.agg}`))}`).join('; ')}.`,
    `Top 4 classes by space: ${SPACES.map((sp) => `${sp}: bce ${ranked('bce', sp).slice(0, 4).join(', ')} | ce ${ranked('ce', sp).slice(0, 4).join(', ')}`).join('; ')}.`,
    `Spearman(confusion rate, sensitivity), probability: bce ${fmtEst(E('spearman/bce/prob'))}, ce ${fmtEst(E('spearman/ce/prob'))}; partial, controlling for p(1−p): bce ${fmtEst(E('partialSpearman/bce/prob'))}, ce ${fmtEst(E('partialSpearman/ce/prob'))}; Spearman of the control itself: bce ${fmtEst(E('spearman/bce/control'))}, ce ${fmtEst(E('spearman/ce/control'))}.`,
    `Per-class bce/ce ratio of mean |Δp|: ${range(ratios('prob', 'logRatio'))}; ‖B‖ bce/ce ${fmt(Math.exp(E('normLogRatio').estimate), 3)} [${fmt(Math.exp(E('normLogRatio').ci95[0]), 3)}, ${fmt(Math.exp(E('normLogRatio').ci95[1]), 3)}]; the |Δp| ratio per unit ‖B‖: ${range(ratios('prob', 'logRatioPerNorm'))}.`,
    `Seeds with bce − ce > 0 (Fisher): ${prim.positiveSeeds}/${seeds.length}, sign test p = ${fmt(prim.signP, 2)}. Each seed brackets its own images (${seedList[0]?.images.length ?? 0} per seed).`,
  ];
  recordClaim(ctx, {
    id: 'C',
    question:
      'Fashion-MNIST, smoothconvnet: are the confusable upper-body classes (T-shirt/top, Pullover, Coat, Shirt) more order-sensitive relative to the other classes under misspecified independent sigmoids (bce) than under a softmax (ce) — misspecification, bce − ce > 0 — or about equally under both (difficulty)?',
    verdict,
    primary: {
      statistic: `bce − ce difference of the upper-body excess (${AGGREGATION_LABELS[PRIMARY.agg]}), mean over seeds`,
      space: PRIMARY.space,
      estimate: prim.estimate,
      ci95: prim.ci95,
    },
    robustness: [
      ...SPACES.filter((s) => s !== PRIMARY.space).map((s) => ({ variant: `bce − ce, ${SPACE_LABELS[s]}`, ...pick(E(`diff/${s}/${PRIMARY.agg}`)) })),
      ...AGGREGATIONS.filter((a) => a !== PRIMARY.agg).map((a) => ({
        variant: `bce − ce, Fisher, ${AGGREGATION_LABELS[a]}`,
        ...pick(E(`diff/${PRIMARY.space}/${a}`)),
      })),
      ...AGGREGATIONS.filter((a) => a !== PRIMARY.agg).map((a) => ({
        variant: `bce − ce, probability, ${AGGREGATION_LABELS[a]}`,
        ...pick(E(`diff/prob/${a}`)),
      })),
      ...LOSSES.flatMap((loss) =>
        SPACES.map((s) => ({ variant: `${loss} upper-body excess, ${SPACE_LABELS[s]}`, ...pick(E(`${loss}/${s}/${PRIMARY.agg}`)) })),
      ),
      ...LOSSES.flatMap((loss) =>
        SPACES.map((s) => ({ variant: `${loss}: Spearman(confusion rate, sensitivity), ${SPACE_LABELS[s]}`, ...pick(E(`spearman/${loss}/${s}`)) })),
      ),
      ...LOSSES.flatMap((loss) =>
        BRACKET_SPACES.map((s) => ({
          variant: `${loss}: partial Spearman(confusion rate, sensitivity | p(1−p)), ${SPACE_LABELS[/** @type {'logit'} */ (s)]}`,
          ...pick(E(`partialSpearman/${loss}/${s}`)),
        })),
      ),
      { variant: 'log(‖B‖ bce / ‖B‖ ce)', ...pick(E('normLogRatio')) },
    ],
    design: { seeds: seeds.length, images: seedList[0]?.images.length ?? 0 },
    ...(nullExcl ? { excludes: `${nullExcl} (the shrink of the upper-body excess from bce to ce, Fisher space)` } : {}),
    notes,
  });

  // ---------------------------------------------------------------------------------------------
  // tables
  const runs = /** @type {any[]} */ (perRun);
  const seconds = (performance.now() - t0) / 1000;
  const n = seeds.length;
  const signCell = (/** @type {import('./lib.mjs').Estimate} */ e) => `${e.positiveSeeds}/${n} (sign p ${fmt(e.signP, 2)})`;
  const md = [
    '# Experiment C — Fashion-MNIST: bce (10 sigmoids) vs ce (softmax)',
    '',
    `smoothconvnet, Adam (lr 5e-3, betas 0.8/0.999), seeds ${seeds.join(', ')}, each bracketing images of its own (seed s: pairs among test examples 32s…32s+7, probes 32s…32s+31; quick mode scales these down); the four spaces at the late checkpoints; confusion on the shipped test split (1,000 images) at the last checkpoint. Intervals: 95% hierarchical bootstrap, seeds then images (${samples} resamples).`,
    '',
    `Verdict (claims.json, C): **${verdict}**. ${notes.slice(0, 2).join(' ')}`,
    '',
    `Mode: ${ctx.quick ? 'quick (pipeline check only)' : 'full'}; this invocation took ${seconds.toFixed(0)} s (with the studies it could reuse; run-info.json keeps every invocation's timing).`,
    '',
    `## Upper-body excess log(${UPPER.join(', ')} / the rest), ${AGGREGATION_LABELS[PRIMARY.agg]}`,
    '',
    mdTable(
      ['space', 'bce', 'ce', 'bce − ce', 'seeds bce > ce', 'excluded (where the interval includes 0)'],
      SPACES.map((s) => {
        const k = `${s}/${PRIMARY.agg}`;
        const dd = E(`diff/${k}`);
        return [
          SPACE_LABELS[s],
          fmtEst(E(`bce/${k}`)),
          fmtEst(E(`ce/${k}`)),
          fmtEst(dd),
          signCell(dd),
          side(dd.ci95) === 'null' ? excludedEffect([-dd.ci95[1], -dd.ci95[0]], 'shrink').text : '–',
        ];
      }),
    ),
    '',
    'Every aggregation (issue 10, point 2): bce − ce of the upper-body excess.',
    '',
    mdTable(
      ['space', ...AGGREGATIONS.map((a) => AGGREGATION_LABELS[a])],
      SPACES.map((s) => [SPACE_LABELS[s], ...AGGREGATIONS.map((a) => fmtEst(E(`diff/${s}/${a}`)))]),
    ),
    '',
    '## Confusion rate against order sensitivity (Spearman over the 10 classes; partial: controlling for the classes’ p(1−p))',
    '',
    'Intervals: percentile intervals of the same bootstrap (seeds and images resampled, the 10 classes fixed); they cannot leave [−1, 1].',
    '',
    mdTable(
      ['space', 'bce: Spearman', 'bce: partial', 'ce: Spearman', 'ce: partial'],
      SPACES.map((s) => [
        SPACE_LABELS[s],
        fmtEst(E(`spearman/bce/${s}`)),
        s === 'control' ? '–' : fmtEst(E(`partialSpearman/bce/${s}`)),
        fmtEst(E(`spearman/ce/${s}`)),
        s === 'control' ? '–' : fmtEst(E(`partialSpearman/ce/${s}`)),
      ]),
    ),
    '',
    `## Per class: order sensitivity (means over seeds and units) and the bce/ce ratio`,
    '',
    `Mean ‖B‖: bce ${fmt(Math.exp(E('normLog/bce').estimate))}, ce ${fmt(Math.exp(E('normLog/ce').estimate))}; ratio bce/ce ${fmt(Math.exp(E('normLogRatio').estimate))} [${fmt(Math.exp(E('normLogRatio').ci95[0]))}, ${fmt(Math.exp(E('normLogRatio').ci95[1]))}]. "per ‖B‖": the ratio divided by the ‖B‖ ratio (the part of the difference that the bracket's size does not carry).`,
    '',
    mdTable(
      [
        'class',
        'bce |Δp| (rank)',
        'ce |Δp| (rank)',
        'confusion bce / ce',
        'bce/ce |Δp| [95% CI]',
        'bce/ce |Δp| per ‖B‖',
        'bce/ce logit',
        'bce/ce Fisher',
        'p(1−p) bce / ce',
      ],
      labels.map((l, c) => {
        const rank = (/** @type {string} */ loss) => String(1 + ranked(loss, 'prob').indexOf(l));
        const ex = (/** @type {string} */ k) => {
          const e = E(k);
          return `${fmt(Math.exp(e.estimate))} [${fmt(Math.exp(e.ci95[0]))}, ${fmt(Math.exp(e.ci95[1]))}]`;
        };
        const rate = (/** @type {string} */ loss) => fmt(mean(runs.filter((r) => r.loss === loss).map((r) => r.confusionRate[c])), 2);
        return [
          l,
          `${fmt(Math.exp(E(`class/${c}/bce/prob`).estimate))} (${rank('bce')})`,
          `${fmt(Math.exp(E(`class/${c}/ce/prob`).estimate))} (${rank('ce')})`,
          `${rate('bce')} / ${rate('ce')}`,
          ex(`class/${c}/logRatio/prob`),
          ex(`class/${c}/logRatioPerNorm/prob`),
          ex(`class/${c}/logRatio/logit`),
          ex(`class/${c}/logRatio/fisher`),
          `${fmt(Math.exp(E(`class/${c}/bce/control`).estimate), 2)} / ${fmt(Math.exp(E(`class/${c}/ce/control`).estimate), 2)}`,
        ];
      }),
    ),
    '',
    '## Per run',
    '',
    mdTable(
      ['loss', 'seed', 'images', 'test accuracy', 'mean ‖B‖', ...SPACES.map((s) => `Spearman ${s}`)],
      runs.map((r) => [r.loss, String(r.seed), r.images, fmt(r.accuracy), fmt(r.bracketNorm), ...SPACES.map((s) => fmt(r.spearman[s], 2))]),
    ),
    '',
    '## The sweep’s logit-space ranking (seed study’s statistic: mean |J_f·B| over pairs and probes, all checkpoints; 90% bootstrap interval over pairs)',
    '',
    ...runs.flatMap((r) => [
      `${r.loss}, seed ${r.seed}: ` +
        r.ranking
          .slice(0, 5)
          .map((/** @type {any} */ f) => `${f.rank}. ${f.feature} ${fmt(f.meanAbsEffect)} [${fmt(f.ci90[0])}, ${fmt(f.ci90[1])}]`)
          .join('; '),
      '',
    ]),
    '## Confusion matrices (rows: true class, columns: predicted; seed 0, last checkpoint)',
    '',
    ...LOSSES.flatMap((loss) => {
      const r = runs.find((x) => x.loss === loss && x.seed === seeds[0]);
      return r
        ? [
            `### ${loss}`,
            '',
            mdTable(
              ['true \\ predicted', ...labels],
              labels.map((l, i) => [l, ...(r.confusion[i] ?? []).map(String)]),
            ),
            '',
          ]
        : [];
    }),
  ];
  const byLoss = Object.fromEntries(
    LOSSES.map((loss) => [
      loss,
      {
        scores: Object.fromEntries(SPACES.map((s) => [s, labels.map((_, c) => Math.exp(E(`class/${c}/${loss}/${s}`).estimate))])),
        probScore: labels.map((_, c) => Math.exp(E(`class/${c}/${loss}/prob`).estimate)),
        confusionRate: columnMeans(runs.filter((r) => r.loss === loss).map((r) => r.confusionRate)),
        accuracy: mean(runs.filter((r) => r.loss === loss).map((r) => r.accuracy)),
        spearman: Object.fromEntries(SPACES.map((s) => [s, E(`spearman/${loss}/${s}`)])),
        partialSpearman: Object.fromEntries(BRACKET_SPACES.map((s) => [s, E(`partialSpearman/${loss}/${s}`)])),
        spearmanProbPooled: E(`spearman/${loss}/prob`).estimate,
        upperExcess: Object.fromEntries(SPACES.map((s) => [s, E(`${loss}/${s}/${PRIMARY.agg}`)])),
        top: ranked(loss, 'prob').slice(0, 4),
      },
    ]),
  );
  writeResults(
    ctx,
    ID,
    { experiment: ID, quick: ctx.quick, seconds, verdict, seeds, samples, labels, commands, byLoss, estimates: est, runs: perRun.map((r) => r) },
    md.join('\n'),
  );

  // figure 1: per-class sensitivity under each loss, in each space (dots: seeds)
  await writeFigure(ctx, 'c-sensitivity', {
    title: {
      text: 'Order sensitivity per class in four spaces (late checkpoints)',
      subtitle: 'one dot per seed (each with images of its own); bar: mean over seeds; rows: space, columns: loss',
    },
    data: {
      values: runs.flatMap((r) =>
        SPACES.flatMap((s) =>
          labels.map((l, i) => ({
            loss: r.loss,
            space: SPACE_LABELS[s],
            seed: r.seed,
            class: l,
            score: r.scores[s][i],
            upper: UPPER.includes(l) ? 'upper body' : 'other',
          })),
        ),
      ),
    },
    facet: {
      row: { field: 'space', type: 'nominal', title: null, sort: SPACES.map((s) => SPACE_LABELS[s]) },
      column: { field: 'loss', type: 'nominal', title: null },
    },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 260,
      height: 130,
      layer: [
        {
          mark: { type: 'bar', opacity: 0.5 },
          encoding: {
            x: { field: 'class', type: 'nominal', sort: labels, title: null },
            y: { aggregate: 'mean', field: 'score', type: 'quantitative', title: null, stack: null },
            color: { field: 'upper', type: 'nominal', title: null },
          },
        },
        {
          mark: { type: 'circle', size: 20, color: '#333' },
          encoding: { x: { field: 'class', type: 'nominal', sort: labels }, y: { field: 'score', type: 'quantitative' } },
        },
      ],
    },
  });
  // figure 2: confusion matrices (seed 0)
  const cmData = runs
    .filter((r) => r.seed === seeds[0])
    .flatMap((r) =>
      labels.flatMap((t, i) => {
        const row = r.confusion[i] ?? [];
        const nn = row.reduce((/** @type {number} */ a, /** @type {number} */ b) => a + b, 0);
        return labels.map((p, j) => ({ loss: r.loss, truth: t, predicted: p, count: row[j] ?? 0, rate: nn > 0 ? (row[j] ?? 0) / nn : 0 }));
      }),
    );
  await writeFigure(ctx, 'c-confusion', {
    title: {
      text: 'Test-set confusion (seed 0, last checkpoint)',
      subtitle: 'rows: true class, columns: predicted; numbers: counts; colour: share of the true class',
    },
    data: { values: cmData },
    facet: { column: { field: 'loss', type: 'nominal', title: null } },
    spec: {
      width: 240,
      height: 240,
      layer: [
        {
          mark: 'rect',
          encoding: {
            x: { field: 'predicted', type: 'nominal', sort: labels },
            y: { field: 'truth', type: 'nominal', sort: labels, title: 'true' },
            color: { field: 'rate', type: 'quantitative', scale: { type: 'sqrt', scheme: 'blues' }, title: 'share' },
          },
        },
        {
          mark: { type: 'text', fontSize: 8 },
          encoding: {
            x: { field: 'predicted', type: 'nominal', sort: labels },
            y: { field: 'truth', type: 'nominal', sort: labels },
            text: { field: 'count', type: 'quantitative' },
            color: { condition: { test: 'datum.rate > 0.5', value: 'white' }, value: '#333' },
          },
        },
      ],
    },
  });
  // figure 3: hard vs sensitive, in the probability and Fisher spaces and the control
  await writeFigure(ctx, 'c-hard-vs-sensitive', {
    title: {
      text: 'Confusion rate against order sensitivity, per class (means over seeds)',
      subtitle: `hard classes sensitive under both losses → difficulty; under bce only → misspecification. Spearman (prob): bce ${fmtEst(E('spearman/bce/prob'))}, ce ${fmtEst(E('spearman/ce/prob'))}`,
    },
    data: {
      values: LOSSES.flatMap((loss) =>
        ['prob', 'fisher', 'control'].flatMap((s) =>
          labels.map((l, i) => ({
            loss,
            space: SPACE_LABELS[/** @type {'prob'} */ (s)],
            class: l,
            rate: byLoss[loss]?.confusionRate[i],
            score: byLoss[loss]?.scores[s]?.[i],
          })),
        ),
      ),
    },
    facet: { row: { field: 'space', type: 'nominal', title: null }, column: { field: 'loss', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 260,
      height: 160,
      layer: [
        {
          mark: { type: 'circle', size: 50 },
          encoding: {
            x: { field: 'rate', type: 'quantitative', title: 'confusion rate (1 − recall)' },
            y: { field: 'score', type: 'quantitative', title: null, scale: { zero: false } },
          },
        },
        {
          mark: { type: 'text', dx: 6, align: 'left', fontSize: 9 },
          encoding: { x: { field: 'rate', type: 'quantitative' }, y: { field: 'score', type: 'quantitative' }, text: { field: 'class' } },
        },
      ],
    },
  });
  return { seconds, verdict };
}

await mainIfDirect(import.meta.url, run);
