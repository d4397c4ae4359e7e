// @ts-check
/**
 * Experiment D — optimizers. How much of a real optimizer's two-step order effect
 * D = θ_xy − θ_yx does the bracket term explain? Fashion-MNIST smoothconvnet (bce) trained with
 * the seed's Adam (lr 5e-3, betas (0.8, 0.999)), Adam with β1 = 0, SGD with momentum (lr 0.02,
 * μ 0.9) and plain SGD (lr 0.2); at the late checkpoints, for all pairs among the first test
 * examples, the optimizer-aware decomposition (optimizerSwap: D = state + bracket + history +
 * remainder, from the checkpoint's own optimizer state, at the run's learning rate, in float64).
 *
 * Reported per optimizer (median and range over pairs × checkpoints), in parameters and in the
 * probes' logits: share = ‖bracket‖/‖D‖, the cosine between the bracket term and D, and
 * explained = 1 − ‖D − bracket‖²/‖D‖² (the fraction of D's squared size the bracket term removes;
 * negative when it overshoots or points elsewhere); the same against the curvature part D − state;
 * the state part's share; how well the second-order decomposition closes (remainder/‖D‖); for
 * momentum also the share after the buffer drains.
 */
import { batch, engine, openRun, optimizerSwap } from '../dist/index.js';
import { evalState } from '../dist/nn/layers.js';
import { finalEval, fmt, mainIfDirect, mdTable, medianRange, study, writeFigure, writeResults } from './lib.mjs';

export const ID = 'd-optimizers';

const OPTIMIZERS = [
  { key: 'adam-seed', config: 'fashion-smoothconvnet-bce-adam', label: 'Adam lr 5e-3, β (0.8, 0.999) — the seed' },
  { key: 'adam-beta1-0', config: 'fashion-smoothconvnet-bce-adam-beta1-0', label: 'Adam lr 5e-3, β (0, 0.999)' },
  { key: 'momentum', config: 'fashion-smoothconvnet-bce-momentum', label: 'SGD + momentum lr 0.02, μ 0.9' },
  { key: 'sgd', config: 'fashion-smoothconvnet-bce-sgd', label: 'SGD lr 0.2' },
];

/**
 * @param {Record<string, import('../dist/engine/tensor.js').Tensor>} v
 * @returns {Record<string, import('../dist/engine/tensor.js').Tensor>}
 */
function to64(v) {
  /** @type {Record<string, import('../dist/engine/tensor.js').Tensor>} */
  const out = {};
  for (const [k, t] of Object.entries(v)) out[k] = t.dtype === 'float64' ? t : engine.concrete(engine.cast(t, 'float64'));
  return out;
}

/**
 * 1 − ‖a − b‖²/‖a‖² for flat arrays.
 * @param {ArrayLike<number>} a
 * @param {ArrayLike<number>} b
 */
function explained(a, b) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
    den += (a[i] ?? 0) ** 2;
  }
  return den > 0 ? 1 - num / den : NaN;
}

/** @param {Record<string, import('../dist/engine/tensor.js').Tensor>} v */
function flat(v) {
  return Object.values(v).flatMap((t) => Array.from(t.data));
}

/** @param {import('./lib.mjs').Context} ctx */
export async function run(ctx) {
  const t0 = performance.now();
  const nFirst = ctx.quick ? 2 : 6;
  const nProbes = ctx.quick ? 2 : 16;
  const nLate = ctx.quick ? 1 : 2;
  /** @type {string[]} */
  const commands = [];
  /** @type {Record<string, unknown>[]} */
  const pairs = [];
  /** @type {Record<string, unknown>[]} */
  const summaries = [];
  for (const o of OPTIMIZERS) {
    const h = await study(ctx, o.config);
    commands.push(h.command);
    const r = openRun(h.runDir);
    const steps = r.steps.slice(-nLate);
    const probes = batch(
      r.test,
      Array.from({ length: nProbes }, (_, i) => i),
      'float64',
    ).x;
    ctx.log(`  optimizer decomposition (${o.key}) at steps ${steps.join(', ')}, pairs among the first ${nFirst}`);
    for (const step of steps) {
      const ck = r.checkpoint(step);
      const params = to64(ck.params);
      const state = { step: ck.optimizer.step, buffers: to64(ck.optimizer.buffers) };
      for (let x = 0; x < nFirst; x++) {
        for (let y = x + 1; y < nFirst; y++) {
          const res = optimizerSwap({
            model: r.model,
            loss: r.loss,
            params,
            x: batch(r.test, [x], 'float64'),
            y: batch(r.test, [y], 'float64'),
            optimizer: r.config.optimizer,
            state,
            probes,
            forward: evalState(to64(ck.buffers)),
          });
          const part = (/** @type {string} */ name) => res.parts.find((p) => p.name === name);
          const b = part('bracket');
          const st = part('state');
          const D = flat(res.real.vector);
          const Bv = b ? flat(b.vector) : [];
          const S = st ? flat(st.vector) : [];
          const curv = D.map((d, i) => d - (S[i] ?? 0));
          const realLogits = (res.real.logits ?? []).flat();
          const bLogits = (b?.logits ?? []).flat();
          const stLogits = (st?.logits ?? []).flat();
          const curvLogits = realLogits.map((d, i) => d - (stLogits[i] ?? 0));
          pairs.push({
            optimizer: o.key,
            step,
            x,
            y,
            realNorm: res.real.norm,
            bracketNorm: b?.norm ?? NaN,
            stateShare: (st?.norm ?? NaN) / res.real.norm,
            share: res.share.share,
            cosine: res.share.cosine,
            explained: explained(D, Bv),
            logitShare: res.logitShare?.share ?? NaN,
            logitCosine: res.logitShare?.cosine ?? NaN,
            logitExplained: explained(realLogits, bLogits),
            curvatureShare: res.curvatureShare.share,
            curvatureCosine: res.curvatureShare.cosine,
            curvatureExplained: explained(curv, Bv),
            curvatureLogitExplained: explained(curvLogits, bLogits),
            remainderRelative: res.remainderRelative,
            drainedShare: res.drained?.share.share ?? null,
            drainedCosine: res.drained?.share.cosine ?? null,
            drainedLogitShare: res.drained?.logitShare?.share ?? null,
          });
        }
      }
    }
    const mine = /** @type {Record<string, number>[]} */ (pairs.filter((p) => p.optimizer === o.key));
    const stat = (/** @type {string} */ k) => medianRange(mine.map((p) => p[k] ?? NaN));
    const ev = finalEval(h.runDir);
    summaries.push({
      optimizer: o.key,
      label: o.label,
      config: r.config.optimizer,
      steps,
      pairs: mine.length,
      finalLoss: ev.loss,
      meanAccuracy: ev.accuracy.reduce((a, b) => a + b, 0) / ev.accuracy.length,
      ...Object.fromEntries(
        [
          'share',
          'cosine',
          'explained',
          'logitShare',
          'logitCosine',
          'logitExplained',
          'stateShare',
          'curvatureShare',
          'curvatureCosine',
          'curvatureExplained',
          'curvatureLogitExplained',
          'remainderRelative',
          'drainedShare',
          'drainedCosine',
          'drainedLogitShare',
        ].map((k) => [k, stat(k)]),
      ),
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  const S = /** @type {Record<string, any>[]} */ (summaries);
  const mr = (/** @type {{ median: number, min: number, max: number, n: number }} */ s) =>
    s.n > 0 ? `${fmt(s.median)} (${fmt(s.min)} … ${fmt(s.max)})` : '–';
  const md = [
    '# Experiment D — optimizers: how much of the real two-step order effect is the bracket?',
    '',
    `Fashion-MNIST smoothconvnet, bce, 500 steps, seed 0; decomposition at the last ${nLate} checkpoint(s), all pairs among the first ${nFirst} test images, ${nProbes} probes, float64, the run's learning rate and optimizer state.`,
    'Cells: median (min … max) over pairs × checkpoints. share = ‖bracket‖/‖D‖; explained = 1 − ‖D − bracket‖²/‖D‖²; "curvature" = against D − state (the part not due to the optimizer’s memory).',
    '',
    `Mode: ${ctx.quick ? 'quick (pipeline check only)' : 'full'}; this invocation took ${seconds.toFixed(0)} s (with the studies it could reuse; run-info.json keeps every invocation's timing).`,
    '',
    '## In parameters',
    '',
    mdTable(
      [
        'optimizer',
        'held-out loss',
        'state share',
        'bracket share',
        'cosine(bracket, D)',
        'explained',
        'curvature: share',
        'curvature: cosine',
        'curvature: explained',
        'remainder/‖D‖',
      ],
      S.map((s) => [
        s.label,
        fmt(s.finalLoss),
        mr(s.stateShare),
        mr(s.share),
        mr(s.cosine),
        mr(s.explained),
        mr(s.curvatureShare),
        mr(s.curvatureCosine),
        mr(s.curvatureExplained),
        mr(s.remainderRelative),
      ]),
    ),
    '',
    '## In the probes’ logits',
    '',
    mdTable(
      ['optimizer', 'bracket share', 'cosine', 'explained', 'curvature: explained'],
      S.map((s) => [s.label, mr(s.logitShare), mr(s.logitCosine), mr(s.logitExplained), mr(s.curvatureLogitExplained)]),
    ),
    '',
    ...S.filter((s) => s.drainedShare.n > 0).map(
      (s) =>
        `${s.label}: after the momentum buffer drains, bracket share ${mr(s.drainedShare)}, cosine ${mr(s.drainedCosine)}, in logits ${mr(s.drainedLogitShare)}.`,
    ),
  ];
  writeResults(ctx, ID, { experiment: ID, quick: ctx.quick, seconds, commands, summaries, pairs }, md.join('\n'));

  const labelOf = Object.fromEntries(OPTIMIZERS.map((o) => [o.key, o.label]));
  const long = /** @type {Record<string, number | string>[]} */ (pairs).flatMap((p) => [
    { optimizer: labelOf[String(p.optimizer)] ?? '', space: 'parameters', measure: 'share ‖bracket‖/‖D‖', value: p.share },
    { optimizer: labelOf[String(p.optimizer)] ?? '', space: 'logits', measure: 'share ‖bracket‖/‖D‖', value: p.logitShare },
    { optimizer: labelOf[String(p.optimizer)] ?? '', space: 'parameters', measure: 'cosine(bracket, D)', value: p.cosine },
    { optimizer: labelOf[String(p.optimizer)] ?? '', space: 'logits', measure: 'cosine(bracket, D)', value: p.logitCosine },
  ]);
  await writeFigure(ctx, 'd-shares', {
    title: {
      text: 'The bracket term against the real two-step order effect D = θ_xy − θ_yx',
      subtitle: 'one dot per pair × late checkpoint; tick: median',
    },
    data: { values: long.filter((d) => typeof d.value === 'number' && Number.isFinite(d.value)) },
    facet: { column: { field: 'measure', type: 'nominal', title: null } },
    resolve: { scale: { x: 'independent' } },
    spec: {
      width: 280,
      height: 200,
      layer: [
        {
          mark: { type: 'circle', size: 25, opacity: 0.6 },
          encoding: {
            y: { field: 'optimizer', type: 'nominal', title: null, sort: OPTIMIZERS.map((o) => o.label), axis: { labelLimit: 400 } },
            yOffset: { field: 'space', type: 'nominal' },
            x: { field: 'value', type: 'quantitative', title: null },
            color: { field: 'space', type: 'nominal', title: null },
          },
        },
        {
          mark: { type: 'tick', thickness: 2, size: 14 },
          encoding: {
            y: { field: 'optimizer', type: 'nominal', sort: OPTIMIZERS.map((o) => o.label) },
            yOffset: { field: 'space', type: 'nominal' },
            x: { aggregate: 'median', field: 'value', type: 'quantitative' },
            color: { field: 'space', type: 'nominal' },
          },
        },
      ],
    },
  });
  return { seconds };
}

await mainIfDirect(import.meta.url, run);
