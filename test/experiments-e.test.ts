/**
 * Experiment E (experiments/e-dose-response.mjs) in its --quick mode, into a temporary directory:
 * the runner registers it as `e`, its table, figure and claim are written, claims.json validates
 * and holds claim E with the design's levels, and the table has one row per (q, loss). Not the
 * scientific outcome (quick mode trains for 4 steps).
 *
 * The script runs on the built package (dist/); it is rebuilt first when missing or older than src/.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { claimsFileSchema } from '../experiments/claims.mjs';
import { runExperiments } from './experiments-run.js';

const out = mkdtempSync(join(tmpdir(), 'lb-experiments-e-'));
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const LEVELS = [0, 0.1, 0.2, 0.3];

let stderr = '';
let status: number | null = null;

beforeAll(() => {
  ({ status, stderr } = runExperiments(['e', '--quick', '--out', out], 240_000));
}, 300_000);

const table = (id: string) => JSON.parse(readFileSync(join(out, 'results', `${id}.json`), 'utf8'));
const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const interval = (ci: unknown) => Array.isArray(ci) && ci.length === 2 && finite(ci[0]) && finite(ci[1]) && ci[0] <= ci[1];

describe('experiment E --quick', () => {
  test('the runner runs e alone, exits 0 and records its timing', () => {
    expect(status, stderr.slice(-2000)).toBe(0);
    expect(stderr).toContain('=== e-dose-response done');
    const { history } = table('run-info');
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ quick: true, experiments: ['e'], studiesReused: 0, studiesTrained: 2 * LEVELS.length * 2 });
  });

  test('table, Markdown twin, figure and Vega-Lite spec exist', () => {
    const e = table('e-dose-response');
    expect(e).toMatchObject({ experiment: 'e-dose-response', quick: true, levels: LEVELS, seeds: [0, 1] });
    const md = readFileSync(join(out, 'results', 'e-dose-response.md'), 'utf8');
    expect(md).toMatch(/^# Experiment E/);
    expect(md).toContain('| --- |');
    expect(md).toContain('quick');
    const png = readFileSync(join(out, 'img', 'e-dose-response.png'));
    expect(png.subarray(0, 8).equals(PNG)).toBe(true);
    expect(png.length).toBeGreaterThan(2000);
    expect(JSON.parse(readFileSync(join(out, 'vega', 'e-dose-response.vl.json'), 'utf8')).$schema).toMatch(/vega-lite/);
  });

  test('one row per (q, loss): the excess in four spaces with intervals, the group fit', () => {
    const e = table('e-dose-response');
    expect(e.table.map((r: { q: number; loss: string }) => `${r.q}/${r.loss}`)).toEqual(LEVELS.flatMap((q) => [`${q}/bce`, `${q}/grouped`]));
    for (const r of e.table) {
      expect(r.seeds).toBe(2);
      for (const space of ['fisher', 'prob', 'logit', 'control']) {
        expect(finite(r.excess[space].estimate), `${r.q} ${r.loss} ${space}`).toBe(true);
        expect(interval(r.excess[space].ci95), `${r.q} ${r.loss} ${space}`).toBe(true);
      }
      for (const k of ['nll', 'ece', 'accuracy3', 'colourAccuracy']) expect(finite(r[k].mean), k).toBe(true);
      expect(r.nll.mean).toBeGreaterThan(0);
      expect(r.ece.mean).toBeGreaterThanOrEqual(0);
      expect(r.ece.mean).toBeLessThanOrEqual(1);
      // the entropy floor: 0 at q = 0, (fraction with hair) × H(q) above
      expect(r.floor === 0).toBe(r.q === 0);
      if (r.loss === 'grouped') expect(r.bothMass).toBe(0);
      else expect(r.bothMass).toBeGreaterThan(0);
    }
    expect(e.perLevel).toHaveLength(LEVELS.length);
    for (const l of e.perLevel) {
      expect(interval(l.diff.fisher.ci95)).toBe(true);
      for (const p of [l.bootstrapP, l.bootstrapPHolm, l.signTest.p, l.signTest.pHolm]) {
        expect(p).toBeGreaterThan(0);
        expect(p).toBeLessThanOrEqual(1);
      }
      expect(l.bootstrapPHolm).toBeGreaterThanOrEqual(l.bootstrapP);
    }
    expect(finite(e.primary.estimate)).toBe(true);
    expect(interval(e.primary.ci95)).toBe(true);
    expect(e.runs).toHaveLength(2 * LEVELS.length * 2);
  });

  test('claims.json validates and holds claim E with the design levels', () => {
    const { claims } = claimsFileSchema.parse(JSON.parse(readFileSync(join(out, 'results', 'claims.json'), 'utf8')));
    const c = claims.find((x) => x.id === 'E');
    expect(c).toBeDefined();
    expect(c?.design).toEqual({ seeds: 2, images: expect.any(Number), levels: LEVELS });
    expect(c?.primary.space).toBe('fisher');
    expect(c?.primary.estimate).toBe(table('e-dose-response').primary.estimate);
    expect(c?.robustness.map((r) => r.variant).join('\n')).toMatch(/logit[\s\S]*control[\s\S]*median[\s\S]*top 10%/);
    expect(c?.notes?.some((n) => n.includes('quick mode'))).toBe(true);
  });
});
