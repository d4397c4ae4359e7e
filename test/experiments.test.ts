/**
 * The experiments' pipeline (experiments/*.mjs) in its --quick mode, into a temporary directory:
 * every results table exists, parses, has the expected rows and columns with finite numbers, and
 * every figure is a PNG. Not the scientific outcome (quick mode trains for 4 steps).
 *
 * The scripts run on the built package (dist/); it is rebuilt first when missing or older than src/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { claimsFileSchema } from '../experiments/claims.mjs';
import { ROOT, runExperiments } from './experiments-run.js';

const out = mkdtempSync(join(tmpdir(), 'lb-experiments-'));
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The default run list: the keys of run.mjs's EXPERIMENTS (`const EXPERIMENTS = { a, b, … };`), in order. */
function experimentKeys(): string[] {
  const m = /const EXPERIMENTS = \{([^}]*)\}/.exec(readFileSync(join(ROOT, 'experiments', 'run.mjs'), 'utf8'));
  if (!m?.[1]) throw new Error('experiments/run.mjs: no `const EXPERIMENTS = { … }`');
  return m[1]
    .split(',')
    .map((k) => k.trim().split(':')[0]!.trim())
    .filter((k) => k !== '');
}
const KEYS = experimentKeys();

let stderr = '';
let status: number | null = null;

beforeAll(() => {
  ({ status, stderr } = runExperiments(['--quick', '--out', out], 280_000));
}, 400_000);

const table = (id: string) => JSON.parse(readFileSync(join(out, 'results', `${id}.json`), 'utf8'));
const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const allFinite = (xs: readonly unknown[]) => xs.length > 0 && xs.every(finite);

describe('experiments --quick', () => {
  test('the runner exits 0, reports progress on stderr and its timing', () => {
    expect(status, stderr.slice(-2000)).toBe(0);
    expect(KEYS.slice(0, 4)).toEqual(['a', 'b', 'c', 'd']);
    const { history } = table('run-info');
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ quick: true, experiments: KEYS, studiesReused: 0 });
    const ids = Object.keys(history[0].seconds);
    expect(ids).toHaveLength(KEYS.length);
    for (const id of ids) expect(stderr).toContain(`=== ${id} done`);
    expect(history[0].studiesTrained).toBeGreaterThan(10);
    expect(finite(history[0].totalSeconds)).toBe(true);
  });

  test('every table has a Markdown twin; the run directories live under --out', () => {
    for (const id of Object.keys(table('run-info').history[0].seconds)) {
      const md = readFileSync(join(out, 'results', `${id}.md`), 'utf8');
      expect(md).toMatch(/^# Experiment [A-Z]/);
      expect(md).toContain('| --- |');
      expect(md).toContain('quick');
      expect(table(id)).toMatchObject({ experiment: id, quick: true });
    }
    expect(readdirSync(join(out, 'runs')).length).toBeGreaterThan(0);
  });

  const estimate = (e: { estimate: number; ci95: [number, number] }) => {
    expect(finite(e.estimate), JSON.stringify(e)).toBe(true);
    expect(allFinite(e.ci95), JSON.stringify(e)).toBe(true);
    expect(e.ci95[0]).toBeLessThanOrEqual(e.ci95[1]);
  };

  test('A: per-checkpoint and pooled fits, their two placebos, the pair + tensor + slope fit, bootstrap intervals', () => {
    const a = table('a-magnitude');
    expect(a.pooled).toHaveLength(2);
    expect(a.checkpoints).toHaveLength(2 * 3);
    expect(a.designs).toMatchObject({ 'fashion-smoothconvnet': { tensors: 6, seeds: 2 }, 'synthetic-xresnet': { tensors: 23, seeds: 1 } });
    const keys = [
      'slope',
      'r2',
      'withinR2',
      'r2TensorMean',
      'withinR2TensorMean',
      'r2OtherPair',
      'withinR2OtherPair',
      'r2PairTensor',
      'r2PairTensorSlope',
      'partialR2',
    ];
    for (const r of [...a.checkpoints, ...a.pooled]) {
      expect(allFinite(keys.map((k) => r[k])), JSON.stringify(r)).toBe(true);
      expect(r.r2).toBeLessThanOrEqual(1);
      expect(r.partialR2).toBeGreaterThanOrEqual(0);
    }
    for (const r of a.checkpoints) expect(allFinite(r.slopeCi95)).toBe(true);
    for (const p of a.pooled) {
      for (const k of [...keys, 'gainWithinTensorMean', 'gainWithinOtherPair']) estimate(p.estimates[k]);
      expect(allFinite([p.slopeStderr, p.slopeStderrClustered])).toBe(true);
    }
    expect(a.commands[0]).toMatch(/^lie-bracket study --config experiments\/configs\/.+\.json .*--save-vectors --out /);
    expect(a.commands.some((c: string) => c.includes('sweep images test'))).toBe(true);
  });

  test('B: four spaces, four aggregations, paired bootstrap intervals over seeds and images, Holm over attributes', () => {
    const b = table('b-misspecification');
    expect(b.outputs).toEqual(['black_hair', 'brown_hair', 'glasses', 'mole', 'bg_patch', 'stripe']);
    expect(b.runs).toHaveLength(2 * 2 + 2);
    for (const r of b.runs) {
      expect(['bce', 'grouped']).toContain(r.loss);
      for (const s of ['logit', 'prob', 'fisher', 'control']) {
        expect(r.scores[s]).toHaveLength(6);
        expect(allFinite([...r.scores[s], r.excess[s]])).toBe(true);
      }
      expect(allFinite([r.bracketNorm, ...r.auc, ...r.accuracy])).toBe(true);
    }
    const syn = b.summaries.find((s: { model: string }) => s.model === 'synconv');
    expect(syn.seeds).toEqual([0, 1]);
    for (const t of ['bce', 'grouped', 'diff'])
      for (const s of ['logit', 'prob', 'fisher', 'control'])
        for (const agg of ['arithmetic', 'geometric', 'median', 'trimmed']) {
          const e = syn.estimates[`${t}/${s}/${agg}`];
          estimate(e);
          expect(e.perSeed).toHaveLength(2);
          expect(e.pValue).toBeGreaterThan(0);
          expect(e.pValue).toBeLessThanOrEqual(1);
          expect([0.5, 1]).toContain(e.signP); // 2 seeds: both of one sign 0.5, split 1
        }
    for (const a of syn.attributes) {
      const k = `attr/${a}/diff/fisher/geometric`;
      estimate(syn.estimates[k]);
      expect(syn.holm[k]).toBeGreaterThanOrEqual(syn.estimates[k].pValue);
    }
    // bce and grouped of one seed share the data seed, hence the images: the runs differ only in the loss
    const seed1 = b.runs.filter((r: { model: string; seed: number }) => r.model === 'synconv' && r.seed === 1);
    expect(seed1.map((r: { loss: string }) => r.loss).sort()).toEqual(['bce', 'grouped']);
  });

  test('C: four spaces per class and loss, bounded Spearman intervals with the p(1−p) control, ‖B‖ per loss', () => {
    const c = table('c-fashion-losses');
    expect(c.labels).toHaveLength(10);
    expect(c.seeds).toEqual([0, 1]);
    expect(c.runs).toHaveLength(4);
    for (const r of c.runs) {
      for (const s of ['logit', 'prob', 'fisher', 'control']) expect(allFinite(r.scores[s])).toBe(true);
      expect(r.probScore).toHaveLength(10);
      expect(r.confusion).toHaveLength(10);
      expect(r.confusion.flat().reduce((s: number, v: number) => s + v, 0)).toBe(1000);
      expect(r.confusionRate).toHaveLength(10);
      expect(r.ranking).toHaveLength(10);
    }
    // seeds bracket images of their own
    expect(c.runs.find((r: { seed: number }) => r.seed === 1).images).toMatch(/^test 4–6 \(pairs\), 4–7 \(probes\)$/);
    for (const loss of ['bce', 'ce']) {
      expect(finite(c.byLoss[loss].spearmanProbPooled)).toBe(true);
      for (const s of ['logit', 'prob', 'fisher', 'control']) {
        const e = c.byLoss[loss].spearman[s];
        estimate(e);
        expect(e.ci95[0]).toBeGreaterThanOrEqual(-1);
        expect(e.ci95[1]).toBeLessThanOrEqual(1);
      }
      for (const s of ['logit', 'prob', 'fisher']) estimate(c.byLoss[loss].partialSpearman[s]);
    }
    for (const k of ['diff/fisher/geometric', 'normLogRatio', 'normLog/bce', 'normLog/ce', 'class/0/logRatioPerNorm/prob']) estimate(c.estimates[k]);
  });

  test('claims.json: entries A, B and C validate against the schema, each with a robustness list and its design', () => {
    const { claims } = claimsFileSchema.parse(table('claims'));
    for (const id of ['A', 'B', 'C']) {
      const c = claims.find((x) => x.id === id);
      expect(c, id).toBeDefined();
      expect(c!.robustness.length).toBeGreaterThan(5);
      expect(c!.design.seeds).toBe(2);
      expect(c!.design.images).toBeGreaterThan(0);
      expect(c!.notes?.length).toBeGreaterThan(0);
    }
    const b = claims.find((x) => x.id === 'B')!;
    expect(b.primary.space).toBe('fisher');
    expect(b.robustness.map((r) => r.variant)).toEqual(expect.arrayContaining(['bce − grouped, logit |J_f·B|', 'bce − grouped, probability |Δp|']));
  });

  test('D: one summary per optimizer, three swap steps, the drain and gain checks, the identities of SGD and momentum, claim D', () => {
    const d = table('d-optimizers');
    type Est = { estimate: number | null };
    type Summary = { optimizer: string; lasting: { label: string; state: Est; driftExplained: Est }[]; exponents: { bracket: Est } };
    const summaries = d.summaries as Summary[];
    expect(summaries.map((s) => s.optimizer)).toEqual(['adam-seed', 'adam-beta1-0', 'momentum', 'sgd']);
    for (const s of summaries) expect(s.lasting.map((l) => l.label)).toEqual(['lr/32', 'lr/8', 'lr']);
    // the closed-form drain against real zero-gradient steps, Adam's total gain against a finite difference
    for (const v of Object.values(d.drainChecks as Record<string, number>)) expect(v).toBeLessThan(1e-8);
    for (const v of Object.values(d.gainChecks as Record<string, number>)) expect(v).toBeLessThan(1e-4);
    const by = (o: string) => summaries.find((s) => s.optimizer === o)!;
    // no second moment: momentum's and SGD's frozen-gradient swap leaves nothing once drained
    for (const o of ['momentum', 'sgd']) for (const l of by(o).lasting) expect(l.state.estimate!).toBeLessThan(1e-9);
    for (const l of by('sgd').lasting) expect(l.driftExplained.estimate).toBe(0);
    // SGD's bracket term is exactly ε²[v_x, v_y]: its size scales with exponent 2
    expect(Math.abs(by('sgd').exponents.bracket.estimate! - 2)).toBeLessThan(0.05);
    const c = claimsFileSchema.parse(table('claims')).claims.find((x) => x.id === 'D')!;
    expect(c.design.levels).toEqual(['lr/32', 'lr/8', 'lr']);
    expect(c.robustness.length).toBeGreaterThan(0);
  });

  test('figures: PNG files and their Vega-Lite specs', () => {
    for (const id of [
      'a-fit-by-checkpoint',
      'a-scatter',
      'b-excess',
      'b-outputs',
      'c-sensitivity',
      'c-confusion',
      'c-hard-vs-sensitive',
      'd-shares',
      'd-lasting',
    ]) {
      const png = readFileSync(join(out, 'img', `${id}.png`));
      expect(png.subarray(0, 8).equals(PNG), id).toBe(true);
      expect(png.length).toBeGreaterThan(2000);
      const spec = JSON.parse(readFileSync(join(out, 'vega', `${id}.vl.json`), 'utf8'));
      expect(spec.$schema).toMatch(/vega-lite/);
    }
  });

  test('bad arguments: a one-line error and exit 1, nothing run', () => {
    for (const args of [['--bogus'], ['zz'], ['--workers', '0']]) {
      const r = spawnSync(process.execPath, [join(ROOT, 'experiments', 'run.mjs'), ...args, '--out', join(out, 'bad')], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^experiments: error: /);
      expect(existsSync(join(out, 'bad')), args.join(' ')).toBe(false);
    }
  });
});
