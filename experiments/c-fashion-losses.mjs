// @ts-check
/**
 * Experiment C — misspecification on real data. Fashion-MNIST's ten classes are mutually
 * exclusive; `bce` predicts them with ten independent sigmoids (misspecified), `ce` with one
 * softmax. Same model (smoothconvnet), optimizer and seeds. Which classes are most order-sensitive
 * under each, and is that the confusable classes being hard (they would be sensitive under both
 * losses, in step with their confusion rate) or the sigmoids being misspecified (sensitive under
 * bce only)?
 *
 * Per class: order sensitivity in probability space (mean over pairs, probes and late checkpoints
 * of |Δp_c| along the bracket), the sweep's logit-space ranking with bootstrap intervals (over
 * pairs, all checkpoints: the seed study's statistic), and the test-set confusion matrix of the
 * final model with each class's confusion rate (1 − recall). Spearman correlation between a
 * class's confusion rate and its order sensitivity, per loss.
 */
import {
  columnMeans,
  confusion,
  fmt,
  lateSteps,
  mainIfDirect,
  mdTable,
  mean,
  probabilityScores,
  readSummary,
  readSweepParams,
  spearman,
  study,
  tInterval,
  writeFigure,
  writeResults,
} from './lib.mjs';

export const ID = 'c-fashion-losses';

const LOSSES = /** @type {const} */ (['bce', 'ce']);
/** The confusable upper-body classes the seed study expected at the top. */
const UPPER = ['T-shirt/top', 'Pullover', 'Coat', 'Shirt'];

/** @param {import('./lib.mjs').Context} ctx */
export async function run(ctx) {
  const t0 = performance.now();
  const seeds = ctx.quick ? [0] : [0, 1, 2];
  /** @type {string[]} */
  const commands = [];
  /** @type {Record<string, unknown>[]} */
  const perRun = [];
  /** @type {string[]} */
  let labels = [];
  for (const seed of seeds) {
    for (const loss of LOSSES) {
      const h = await study(ctx, `fashion-smoothconvnet-${loss}-adam`, { seed });
      commands.push(h.command);
      const p = readSweepParams(h.runDir);
      labels = p.outputs;
      ctx.log(`  measuring probability effects and the confusion matrix (${loss}, seed ${seed})`);
      /** @type {number[][]} */
      const prob = [];
      /** @type {number[][]} */
      const logit = [];
      for (const step of lateSteps(p.steps)) {
        const s = probabilityScores(h.runDir, step);
        prob.push(...s.prob);
        logit.push(...s.logit);
      }
      const last = p.steps[p.steps.length - 1] ?? 0;
      const cm = confusion(h.runDir, last);
      const confusionRate = cm.matrix.map((row, c) => {
        const n = row.reduce((a, b) => a + b, 0);
        return n > 0 ? 1 - (row[c] ?? 0) / n : NaN;
      });
      const accuracy = cm.matrix.reduce((a, row, c) => a + (row[c] ?? 0), 0) / cm.n;
      const summary = readSummary(h.runDir);
      const probScore = columnMeans(prob);
      perRun.push({
        loss,
        seed,
        runDir: h.runPath,
        lateSteps: lateSteps(p.steps),
        probScore,
        logitScore: columnMeans(logit),
        confusion: cm.matrix,
        confusionRate,
        accuracy,
        spearmanProb: spearman(confusionRate, probScore),
        spearmanLogit: spearman(
          confusionRate,
          labels.map((l) => summary.overall.features.find((f) => f.feature === l)?.meanAbsEffect ?? NaN),
        ),
        ranking: summary.overall.features.map((f) => ({ feature: f.feature, rank: f.rank, meanAbsEffect: f.meanAbsEffect, ci90: f.ci90 })),
      });
    }
  }
  /** @typedef {{ loss: string, seed: number, probScore: number[], logitScore: number[], confusion: number[][], confusionRate: number[], accuracy: number, spearmanProb: number, spearmanLogit: number, ranking: { feature: string, rank: number, meanAbsEffect: number, ci90: [number, number] }[] }} RunResult */
  const runs = /** @type {RunResult[]} */ (/** @type {unknown} */ (perRun));
  const byLoss = Object.fromEntries(
    LOSSES.map((loss) => {
      const rs = runs.filter((r) => r.loss === loss);
      const prob = columnMeans(rs.map((r) => r.probScore));
      const rate = columnMeans(rs.map((r) => r.confusionRate));
      const upper = labels.map((l, i) => (UPPER.includes(l) ? i : -1)).filter((i) => i >= 0);
      const other = labels.map((l, i) => (UPPER.includes(l) ? -1 : i)).filter((i) => i >= 0);
      const upperExcess = rs.map((r) => Math.log(mean(upper.map((i) => r.probScore[i] ?? NaN)) / mean(other.map((i) => r.probScore[i] ?? NaN))));
      return [
        loss,
        {
          probScore: prob,
          confusionRate: rate,
          accuracy: tInterval(rs.map((r) => r.accuracy)),
          spearmanProb: tInterval(rs.map((r) => r.spearmanProb)),
          spearmanLogit: tInterval(rs.map((r) => r.spearmanLogit)),
          spearmanProbPooled: spearman(rate, prob),
          upperExcess: tInterval(upperExcess),
          top: labels
            .map((l, i) => ({ l, v: prob[i] ?? NaN }))
            .sort((a, b) => b.v - a.v)
            .slice(0, 4)
            .map((x) => x.l),
        },
      ];
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const ci = (/** @type {ReturnType<typeof tInterval>} */ t) => (t.n >= 2 ? `${fmt(t.mean)} [${fmt(t.ci95[0])}, ${fmt(t.ci95[1])}]` : fmt(t.mean));
  const md = [
    '# Experiment C — Fashion-MNIST: bce (10 sigmoids) vs ce (softmax)',
    '',
    `smoothconvnet, Adam (lr 5e-3, betas 0.8/0.999), seeds ${seeds.join(', ')}; probability-space order sensitivity at the late checkpoints; confusion on the shipped test split (1,000 images) at the last checkpoint.`,
    '',
    `Mode: ${ctx.quick ? 'quick (pipeline check only)' : 'full'}; this invocation took ${seconds.toFixed(0)} s (with the studies it could reuse; run-info.json keeps every invocation's timing).`,
    '',
    '## Per class (means over seeds)',
    '',
    mdTable(
      ['class', 'bce: mean abs Δp', 'bce: rank', 'bce: confusion rate', 'ce: mean abs Δp', 'ce: rank', 'ce: confusion rate', 'bce/ce Δp ratio'],
      labels.map((l, i) => {
        const rank = (/** @type {string} */ loss) => {
          const v = byLoss[loss]?.probScore ?? [];
          return String(1 + v.filter((x) => x > (v[i] ?? NaN)).length);
        };
        return [
          l,
          fmt(byLoss.bce?.probScore[i]),
          rank('bce'),
          fmt(byLoss.bce?.confusionRate[i]),
          fmt(byLoss.ce?.probScore[i]),
          rank('ce'),
          fmt(byLoss.ce?.confusionRate[i]),
          fmt((byLoss.bce?.probScore[i] ?? NaN) / (byLoss.ce?.probScore[i] ?? NaN)),
        ];
      }),
    ),
    '',
    '## Summary per loss',
    '',
    mdTable(
      [
        'loss',
        'test accuracy',
        'top 4 by mean abs Δp',
        'Spearman(confusion rate, Δp) per seed',
        'pooled over seeds',
        'Spearman(confusion rate, logit score)',
        'upper-body excess log(Δp upper / Δp other)',
      ],
      LOSSES.map((loss) => {
        const b = byLoss[loss];
        return b
          ? [loss, ci(b.accuracy), b.top.join(', '), ci(b.spearmanProb), fmt(b.spearmanProbPooled), ci(b.spearmanLogit), ci(b.upperExcess)]
          : [loss];
      }),
    ),
    '',
    '## The sweep’s logit-space ranking (seed study’s statistic: mean |J_f·B| over pairs and probes, all checkpoints; 90% bootstrap interval over pairs)',
    '',
    ...runs.flatMap((r) => [
      `${r.loss}, seed ${r.seed}: ` +
        r.ranking
          .slice(0, 5)
          .map((f) => `${f.rank}. ${f.feature} ${fmt(f.meanAbsEffect)} [${fmt(f.ci90[0])}, ${fmt(f.ci90[1])}]`)
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
  writeResults(ctx, ID, { experiment: ID, quick: ctx.quick, seconds, seeds, labels, commands, byLoss, runs: perRun }, md.join('\n'));

  // figure 1: per-class sensitivity under each loss (dots: seeds)
  await writeFigure(ctx, 'c-sensitivity', {
    title: {
      text: 'Order sensitivity per class: mean |Δp| along the bracket (late checkpoints)',
      subtitle: 'one dot per seed; bar: mean over seeds',
    },
    data: {
      values: runs.flatMap((r) =>
        labels.map((l, i) => ({ loss: r.loss, seed: r.seed, class: l, score: r.probScore[i], upper: UPPER.includes(l) ? 'upper body' : 'other' })),
      ),
    },
    facet: { column: { field: 'loss', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 260,
      height: 200,
      layer: [
        {
          mark: { type: 'bar', opacity: 0.5 },
          encoding: {
            x: { field: 'class', type: 'nominal', sort: labels, title: null },
            y: { aggregate: 'mean', field: 'score', type: 'quantitative', title: 'mean |Δp|', stack: null },
            color: { field: 'upper', type: 'nominal', title: null },
          },
        },
        {
          mark: { type: 'circle', size: 30, color: '#333' },
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
        const n = row.reduce((a, b) => a + b, 0);
        return labels.map((p, j) => ({ loss: r.loss, truth: t, predicted: p, count: row[j] ?? 0, rate: n > 0 ? (row[j] ?? 0) / n : 0 }));
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
  // figure 3: hard vs sensitive
  await writeFigure(ctx, 'c-hard-vs-sensitive', {
    title: {
      text: 'Confusion rate against order sensitivity, per class (means over seeds)',
      subtitle: 'hard classes sensitive under both losses → difficulty; under bce only → misspecification',
    },
    data: {
      values: LOSSES.flatMap((loss) =>
        labels.map((l, i) => ({ loss, class: l, rate: byLoss[loss]?.confusionRate[i], score: byLoss[loss]?.probScore[i] })),
      ),
    },
    facet: { column: { field: 'loss', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 260,
      height: 220,
      layer: [
        {
          mark: { type: 'circle', size: 60 },
          encoding: {
            x: { field: 'rate', type: 'quantitative', title: 'confusion rate (1 − recall)' },
            y: { field: 'score', type: 'quantitative', title: 'mean |Δp|', scale: { zero: false } },
          },
        },
        {
          mark: { type: 'text', dx: 6, align: 'left', fontSize: 10 },
          encoding: { x: { field: 'rate', type: 'quantitative' }, y: { field: 'score', type: 'quantitative' }, text: { field: 'class' } },
        },
      ],
    },
  });
  return { seconds };
}

await mainIfDirect(import.meta.url, run);
