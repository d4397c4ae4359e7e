// @ts-check
/**
 * Experiment B — misspecification, controlled. On the synthetic attributes (an exclusive `hair`
 * group black_hair/brown_hair plus four independent attributes of matched difficulty), train the
 * same model from the same seeds with `bce` (independent sigmoids: misspecified for the group) and
 * with `grouped` (a softmax over the group: correctly specified). The seed study's hypothesis
 * predicts that under bce the group is more order-sensitive than the independent attributes, and
 * that the excess shrinks under grouped.
 *
 * Order sensitivity of output f: mean over pairs, probes and late checkpoints (second half of
 * training) of |Δp_f|, the change of the predicted PROBABILITY of f along the bracket
 * (probabilityEffect) — comparable between the losses, unlike logits (a sigmoid's logit and a
 * group softmax's logit measured against its "none" option, pinned at 0, are different scales; the
 * group's logits are identifiable, not shift-invariant, because of that pinned option). Per seed and loss: excess = log(mean score of the hair outputs / mean score of
 * the four independent outputs). Reported: per loss the mean excess with a 95% t-interval over
 * seeds and the count of positive seeds; bce − grouped paired by seed; the logit-space excess and
 * bracket norms for reference; accuracy and AUC per attribute (is difficulty really matched?).
 *
 * Main model: `synconv` (two stride-2 SiLU convs and a linear read-out; it learns all six
 * attributes in 600 steps). Secondary, one seed: the narrow xresnet of experiment A, whose global
 * average pool learns the hair colours at once but the small fixed-position cues slowly.
 */
import {
  columnMeans,
  finalEval,
  fmt,
  fmtCi,
  lateSteps,
  mainIfDirect,
  mdTable,
  mean,
  probabilityScores,
  readSweepParams,
  study,
  tInterval,
  writeFigure,
  writeResults,
} from './lib.mjs';

export const ID = 'b-misspecification';

const HAIR = ['black_hair', 'brown_hair'];
const LOSSES = /** @type {const} */ (['bce', 'grouped']);

/**
 * Per-output scores of one study (late checkpoints, all pairs) and its excess.
 * @param {string} runDir
 */
function measure(runDir) {
  const p = readSweepParams(runDir);
  const steps = lateSteps(p.steps);
  /** @type {number[][]} */
  const prob = [];
  /** @type {number[][]} */
  const logit = [];
  /** @type {number[]} */
  const norms = [];
  for (const step of steps) {
    const s = probabilityScores(runDir, step);
    prob.push(...s.prob);
    logit.push(...s.logit);
    norms.push(...s.bracketNorm);
  }
  const outputs = p.outputs;
  const hair = outputs.map((o, i) => (HAIR.includes(o) ? i : -1)).filter((i) => i >= 0);
  const indep = outputs.map((o, i) => (HAIR.includes(o) ? -1 : i)).filter((i) => i >= 0);
  const excess = (/** @type {number[]} */ sc) => Math.log(mean(hair.map((i) => sc[i] ?? NaN)) / mean(indep.map((i) => sc[i] ?? NaN)));
  const probScore = columnMeans(prob);
  const logitScore = columnMeans(logit);
  const ev = finalEval(runDir);
  return {
    steps,
    units: prob.length,
    outputs,
    probScore,
    logitScore,
    excess: excess(probScore),
    logitExcess: excess(logitScore),
    bracketNorm: mean(norms),
    accuracy: ev.accuracy,
    auc: ev.auc,
  };
}

/** @param {import('./lib.mjs').Context} ctx */
export async function run(ctx) {
  const t0 = performance.now();
  const seeds = ctx.quick ? [0, 1] : [0, 1, 2, 3, 4];
  const designs = [
    { key: 'synconv', label: 'synconv', configs: { bce: 'synthetic-synconv-bce', grouped: 'synthetic-synconv-grouped' }, seeds },
    { key: 'xresnet', label: 'narrow xresnet (1 seed)', configs: { bce: 'synthetic-xresnet-bce', grouped: 'synthetic-xresnet-grouped' }, seeds: [0] },
  ];
  /** @type {Record<string, unknown>[]} */
  const perRun = [];
  /** @type {{ model: string, probability: Record<'bce' | 'grouped' | 'bceMinusGrouped', ReturnType<typeof tInterval>> }[]} */
  const summaries = [];
  /** @type {string[]} */
  const commands = [];
  /** @type {string[]} */
  let outputs = [];
  const md = [];
  for (const d of designs) {
    /** @type {Record<string, Record<number, ReturnType<typeof measure>>>} */
    const res = { bce: {}, grouped: {} };
    for (const seed of d.seeds) {
      for (const loss of LOSSES) {
        const h = await study(ctx, d.configs[loss], { seed });
        commands.push(h.command);
        ctx.log(`  measuring probability effects (${d.key}, ${loss}, seed ${seed})`);
        const m = measure(h.runDir);
        outputs = m.outputs;
        const r = res[loss];
        if (r) r[seed] = m;
        perRun.push({ model: d.key, loss, seed, runDir: h.runPath, ...m });
      }
    }
    const exc = (/** @type {'bce' | 'grouped'} */ loss, /** @type {'excess' | 'logitExcess'} */ key) =>
      d.seeds.map((s) => res[loss]?.[s]?.[key] ?? NaN);
    const diff = (/** @type {'excess' | 'logitExcess'} */ key) => d.seeds.map((s) => (res.bce?.[s]?.[key] ?? NaN) - (res.grouped?.[s]?.[key] ?? NaN));
    const summary = {
      model: d.key,
      seeds: d.seeds,
      probability: { bce: tInterval(exc('bce', 'excess')), grouped: tInterval(exc('grouped', 'excess')), bceMinusGrouped: tInterval(diff('excess')) },
      logit: {
        bce: tInterval(exc('bce', 'logitExcess')),
        grouped: tInterval(exc('grouped', 'logitExcess')),
        bceMinusGrouped: tInterval(diff('logitExcess')),
      },
      bracketNorm: {
        bce: tInterval(d.seeds.map((s) => res.bce?.[s]?.bracketNorm ?? NaN)),
        grouped: tInterval(d.seeds.map((s) => res.grouped?.[s]?.bracketNorm ?? NaN)),
      },
      // the hair group against each independent attribute alone: is one attribute driving the excess?
      perAttribute: outputs
        .filter((o) => !HAIR.includes(o))
        .map((attr) => {
          const j = outputs.indexOf(attr);
          const hairIdx = outputs.map((o, i) => (HAIR.includes(o) ? i : -1)).filter((i) => i >= 0);
          const lr = (/** @type {'bce' | 'grouped'} */ loss, /** @type {number} */ seed) => {
            const sc = res[loss]?.[seed]?.probScore ?? [];
            return Math.log(mean(hairIdx.map((i) => sc[i] ?? NaN)) / (sc[j] ?? NaN));
          };
          return {
            attribute: attr,
            bce: tInterval(d.seeds.map((s) => lr('bce', s))),
            grouped: tInterval(d.seeds.map((s) => lr('grouped', s))),
            bceMinusGrouped: tInterval(d.seeds.map((s) => lr('bce', s) - lr('grouped', s))),
          };
        }),
    };
    summaries.push(summary);

    const ci = (/** @type {ReturnType<typeof tInterval>} */ t) => (t.n >= 2 ? `${fmt(t.mean)} ${fmtCi(t.ci95)}` : fmt(t.mean));
    md.push(`## ${d.label}`, '');
    md.push(
      'Excess = log(mean |Δp| of black_hair, brown_hair / mean |Δp| of the four independent attributes); > 0: the exclusive group is more order-sensitive.',
      '',
      mdTable(
        [
          'space',
          'bce: mean excess [95% CI]',
          'bce: seeds > 0',
          'grouped: mean excess [95% CI]',
          'grouped: seeds > 0',
          'bce − grouped [95% CI] (paired)',
          'bce > grouped',
        ],
        [
          [
            'probability',
            ci(summary.probability.bce),
            `${summary.probability.bce.positive}/${d.seeds.length}`,
            ci(summary.probability.grouped),
            `${summary.probability.grouped.positive}/${d.seeds.length}`,
            ci(summary.probability.bceMinusGrouped),
            `${summary.probability.bceMinusGrouped.positive}/${d.seeds.length}`,
          ],
          [
            'logit (reference)',
            ci(summary.logit.bce),
            `${summary.logit.bce.positive}/${d.seeds.length}`,
            ci(summary.logit.grouped),
            `${summary.logit.grouped.positive}/${d.seeds.length}`,
            ci(summary.logit.bceMinusGrouped),
            `${summary.logit.bceMinusGrouped.positive}/${d.seeds.length}`,
          ],
        ],
      ),
      '',
      `Mean ‖B‖ (late checkpoints, all pairs): bce ${ci(summary.bracketNorm.bce)}, grouped ${ci(summary.bracketNorm.grouped)}.`,
      '',
      'The hair group against each independent attribute alone (probability space): log(mean |Δp| hair / |Δp| attribute).',
      '',
      mdTable(
        ['attribute', 'bce [95% CI]', 'grouped [95% CI]', 'bce − grouped [95% CI]', 'bce > grouped'],
        summary.perAttribute.map((a) => [
          a.attribute,
          ci(a.bce),
          ci(a.grouped),
          ci(a.bceMinusGrouped),
          `${a.bceMinusGrouped.positive}/${d.seeds.length}`,
        ]),
      ),
      '',
      'Per seed: probability-space scores (Δp columns: mean |Δp| per output), excess, and held-out AUC per attribute.',
      '',
      mdTable(
        ['loss', 'seed', ...outputs.map((o) => `Δp ${o}`), 'excess', 'logit excess', ...outputs.map((o) => `AUC ${o}`)],
        perRun
          .filter((r) => r.model === d.key)
          .map((r) => {
            const m = /** @type {ReturnType<typeof measure> & { loss: string, seed: number }} */ (/** @type {unknown} */ (r));
            return [m.loss, String(m.seed), ...m.probScore.map((v) => fmt(v)), fmt(m.excess), fmt(m.logitExcess), ...m.auc.map((v) => fmt(v))];
          }),
      ),
      '',
      mdTable(
        ['loss', 'seed', ...outputs.map((o) => `accuracy ${o}`)],
        perRun
          .filter((r) => r.model === d.key)
          .map((r) => {
            const m = /** @type {ReturnType<typeof measure> & { loss: string, seed: number }} */ (/** @type {unknown} */ (r));
            return [m.loss, String(m.seed), ...m.accuracy.map((v) => fmt(v))];
          }),
      ),
      '',
    );
  }
  const seconds = (performance.now() - t0) / 1000;
  const head = [
    '# Experiment B — misspecification, controlled (synthetic attributes)',
    '',
    'Same data, model and seeds; bce (independent sigmoids) vs grouped (softmax over the hair group with a "none" option, sigmoids for the rest).',
    'Order sensitivity per output: mean over pairs (all pairs among the first test examples), probes and late checkpoints (step ≥ half of training) of |Δp|, the jvp of the predicted probability along the bracket.',
    'Intervals: 95% t-intervals over seeds.',
    '',
    `Mode: ${ctx.quick ? 'quick (pipeline check only)' : 'full'}; this invocation took ${seconds.toFixed(0)} s (with the studies it could reuse; run-info.json keeps every invocation's timing).`,
    '',
  ];
  writeResults(ctx, ID, { experiment: ID, quick: ctx.quick, seconds, outputs, commands, summaries, runs: perRun }, [...head, ...md].join('\n'));

  // figure 1: excess per seed and loss, with mean and 95% interval
  const pts = perRun.map((r) => ({ model: r.model, loss: r.loss, seed: r.seed, excess: r.excess }));
  const bars = summaries.flatMap((s) =>
    LOSSES.map((loss) => {
      const t = s.probability[loss];
      return { model: s.model, loss, mean: t.mean, lo: t.n >= 2 ? t.ci95[0] : t.mean, hi: t.n >= 2 ? t.ci95[1] : t.mean };
    }),
  );
  await writeFigure(ctx, 'b-excess', {
    title: {
      text: 'Excess order sensitivity of the exclusive hair group (probability space)',
      subtitle: 'log(mean |Δp| hair / mean |Δp| independent); dots: seeds; bar: mean with 95% t-interval',
    },
    facet: { column: { field: 'model', type: 'nominal', title: null } },
    data: { values: [...pts.map((p) => ({ ...p, kind: 'seed' })), ...bars.map((b) => ({ ...b, kind: 'mean' }))] },
    spec: {
      width: 200,
      height: 240,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'mean'" }],
          mark: { type: 'rule', strokeWidth: 2 },
          encoding: {
            x: { field: 'loss', type: 'nominal', title: null, axis: { labelAngle: 0 } },
            y: { field: 'lo', type: 'quantitative', title: 'excess (natural log)' },
            y2: { field: 'hi' },
          },
        },
        {
          transform: [{ filter: "datum.kind === 'mean'" }],
          mark: { type: 'tick', thickness: 3, size: 30 },
          encoding: { x: { field: 'loss', type: 'nominal' }, y: { field: 'mean', type: 'quantitative' } },
        },
        {
          transform: [{ filter: "datum.kind === 'seed'" }],
          mark: { type: 'circle', size: 50, opacity: 0.7 },
          encoding: {
            x: { field: 'loss', type: 'nominal' },
            y: { field: 'excess', type: 'quantitative' },
            color: { field: 'loss', type: 'nominal', legend: null },
          },
        },
        {
          data: { values: [{ zero: 0 }] },
          mark: { type: 'rule', strokeDash: [4, 4], color: '#888' },
          encoding: { y: { field: 'zero', type: 'quantitative' } },
        },
      ],
    },
  });
  // figure 2: per-output scores, each seed a dot
  const feat = perRun.flatMap((r) => {
    const m = /** @type {ReturnType<typeof measure> & { loss: string, seed: number, model: string }} */ (/** @type {unknown} */ (r));
    return m.outputs.map((o, i) => ({
      model: m.model,
      loss: m.loss,
      seed: m.seed,
      output: o,
      kind: HAIR.includes(o) ? 'hair group' : 'independent',
      score: m.probScore[i],
    }));
  });
  await writeFigure(ctx, 'b-outputs', {
    title: {
      text: 'Order sensitivity per output: mean |Δp| along the bracket (late checkpoints)',
      subtitle: 'one dot per seed; rows: model, columns: loss',
    },
    data: { values: feat },
    facet: { row: { field: 'model', type: 'nominal', title: null }, column: { field: 'loss', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 220,
      height: 160,
      mark: { type: 'circle', size: 45, opacity: 0.75 },
      encoding: {
        x: { field: 'output', type: 'nominal', sort: outputs, title: null },
        y: { field: 'score', type: 'quantitative', title: 'mean |Δp|', scale: { type: 'log' } },
        color: { field: 'kind', type: 'nominal', title: null },
      },
    },
  });
  return { seconds };
}

await mainIfDirect(import.meta.url, run);
