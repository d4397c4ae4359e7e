/**
 * The experiments' pipeline (experiments/*.mjs) in its --quick mode, into a temporary directory:
 * every results table exists, parses, has the expected rows and columns with finite numbers, and
 * every figure is a PNG. Not the scientific outcome (quick mode trains for 4 steps).
 *
 * The scripts run on the built package (dist/); it is rebuilt first when missing or older than src/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const out = mkdtempSync(join(tmpdir(), 'lb-experiments-'));
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestSource(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.as.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

let stderr = '';
let status: number | null = null;

beforeAll(() => {
  const built = join(ROOT, 'dist', 'index.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource(join(ROOT, 'src'))) {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], {
      cwd: ROOT,
      stdio: 'pipe',
    });
  }
  const r = spawnSync(process.execPath, [join(ROOT, 'experiments', 'run.mjs'), '--quick', '--out', out], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 280_000,
  });
  stderr = r.stderr;
  status = r.status;
}, 400_000);

const table = (id: string) => JSON.parse(readFileSync(join(out, 'results', `${id}.json`), 'utf8'));
const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const allFinite = (xs: readonly unknown[]) => xs.length > 0 && xs.every(finite);

describe('experiments --quick', () => {
  test('the runner exits 0, reports progress on stderr and its timing', () => {
    expect(status, stderr.slice(-2000)).toBe(0);
    for (const id of ['a-magnitude', 'b-misspecification', 'c-fashion-losses', 'd-optimizers']) expect(stderr).toContain(`=== ${id} done`);
    const { history } = table('run-info');
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ quick: true, experiments: ['a', 'b', 'c', 'd'], studiesReused: 0 });
    expect(history[0].studiesTrained).toBeGreaterThan(10);
    expect(finite(history[0].totalSeconds)).toBe(true);
  });

  test('every table has a Markdown twin; the run directories live under --out', () => {
    for (const id of ['a-magnitude', 'b-misspecification', 'c-fashion-losses', 'd-optimizers']) {
      const md = readFileSync(join(out, 'results', `${id}.md`), 'utf8');
      expect(md).toMatch(/^# Experiment [A-D]/);
      expect(md).toContain('| --- |');
      expect(md).toContain('quick');
      expect(table(id)).toMatchObject({ experiment: id, quick: true });
    }
    expect(readdirSync(join(out, 'runs')).length).toBeGreaterThan(0);
  });

  test('A: per-checkpoint and pooled fits with finite slope, R² and tensor-model share', () => {
    const a = table('a-magnitude');
    expect(a.pooled).toHaveLength(2);
    expect(a.checkpoints).toHaveLength(2 * 3);
    for (const r of [...a.checkpoints, ...a.pooled]) {
      expect(allFinite([r.slope, r.r2, r.withinR2, r.tensorModelR2, r.pairFactorR2, r.tensorFactorR2])).toBe(true);
      expect(r.r2).toBeLessThanOrEqual(1);
    }
    expect(a.commands[0]).toMatch(/^lie-bracket study --config experiments\/configs\/.+\.json .*--save-vectors --out /);
  });

  test('B: excess per seed and loss, intervals over seeds, the paired difference, AUC per attribute', () => {
    const b = table('b-misspecification');
    expect(b.outputs).toEqual(['black_hair', 'brown_hair', 'glasses', 'mole', 'bg_patch', 'stripe']);
    expect(b.runs).toHaveLength(2 * 2 + 2);
    for (const r of b.runs) {
      expect(['bce', 'grouped']).toContain(r.loss);
      expect(r.probScore).toHaveLength(6);
      expect(r.logitScore).toHaveLength(6);
      expect(allFinite([...r.probScore, ...r.logitScore, r.excess, r.logitExcess, r.bracketNorm, ...r.auc, ...r.accuracy])).toBe(true);
    }
    const syn = b.summaries.find((s: { model: string }) => s.model === 'synconv');
    for (const k of ['bce', 'grouped', 'bceMinusGrouped']) {
      expect(syn.probability[k].n).toBe(2);
      expect(allFinite([syn.probability[k].mean, ...syn.probability[k].ci95])).toBe(true);
    }
  });

  test('C: per-class sensitivity and confusion under bce and ce', () => {
    const c = table('c-fashion-losses');
    expect(c.labels).toHaveLength(10);
    expect(c.runs).toHaveLength(2);
    for (const r of c.runs) {
      expect(r.probScore).toHaveLength(10);
      expect(allFinite(r.probScore)).toBe(true);
      expect(r.confusion).toHaveLength(10);
      expect(r.confusion.flat().reduce((s: number, v: number) => s + v, 0)).toBe(1000);
      expect(r.confusionRate).toHaveLength(10);
      expect(r.ranking).toHaveLength(10);
    }
    for (const loss of ['bce', 'ce']) expect(finite(c.byLoss[loss].spearmanProbPooled)).toBe(true);
  });

  test('D: shares of the bracket term per optimizer, in parameters and logits', () => {
    const d = table('d-optimizers');
    expect(d.summaries.map((s: { optimizer: string }) => s.optimizer)).toEqual(['adam-seed', 'adam-beta1-0', 'momentum', 'sgd']);
    expect(d.pairs).toHaveLength(4);
    for (const p of d.pairs) expect(allFinite([p.share, p.cosine, p.logitShare, p.logitCosine, p.curvatureShare, p.remainderRelative])).toBe(true);
    for (const s of d.summaries) expect(finite(s.share.median)).toBe(true);
    expect(d.pairs.find((p: { optimizer: string }) => p.optimizer === 'momentum').drainedShare).toBeGreaterThan(0);
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
