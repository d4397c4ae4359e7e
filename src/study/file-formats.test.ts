/** Every reader of a file lie-bracket writes parses it with the format's one schema: a file that fails it is a one-line error naming the file and the field. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { UserError } from '../errors.js';
import { readAllPairsFile } from './allpairs-file.js';
import { readSummary, readSweep } from './sweep-stats.js';
import { readParams, type SweepParams } from './sweep.js';
import { readRunFile } from './train.js';
import { readVerifyFile } from './verify-file.js';

const tmp = mkdtempSync(join(tmpdir(), 'lb-formats-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function userError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    const m = (e as Error).message;
    expect(m).not.toContain('\n');
    return m;
  }
  throw new Error('no error');
}

const params: SweepParams = {
  format: 'lie-bracket sweep v1',
  runDir: '/run',
  model: 'm',
  paramCount: 3,
  tensors: ['w'],
  outputs: ['a', 'b'],
  steps: [0],
  pairs: [[0, 1]],
  probeIndices: [0],
  options: { bn: 'eval', dtype: 'float64', saveVectors: false },
  checkpoints: { '0': '0123456789abcdef' },
  units: 1,
  shard: null,
};
const tensor = { bracketNorm: 1, bracketRms: 0.5, gradNormX: 1, gradNormY: 2, gradRmsX: 0.5, gradRmsY: 1 };
const line = {
  step: 0,
  x: 0,
  y: 1,
  lossX: 1,
  lossY: 1,
  gradNormX: 1,
  gradNormY: 2,
  bracketNorm: 1,
  gradCosine: 0,
  tensors: { w: tensor },
  probeEffects: [[1, null]],
};

function sweepDir(name: string, p: unknown, lines: readonly unknown[]): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'sweep.json'), JSON.stringify(p));
  writeFileSync(join(dir, 'results.jsonl'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  return dir;
}

describe('file formats', () => {
  test('a sweep that matches its schemas reads; a NaN written as null reads back as NaN', () => {
    const d = readSweep(sweepDir('good', params, [line]));
    expect(d.records).toHaveLength(1);
    expect(d.records[0]!.probeEffects[0]![1]).toBeNaN();
  });

  test('results.jsonl: a line off its schema names the file, the line and the field', () => {
    const dir = sweepDir('bad-line', params, [line, { ...line, y: 2, tensors: { w: { ...tensor, bracketRms: 'big' } } }]);
    expect(userError(() => readSweep(dir))).toMatch(/results\.jsonl:2: tensors\.w\.bracketRms: .*number/);
    const missing = sweepDir('missing-field', params, [{ ...line, lossX: undefined }]);
    expect(userError(() => readSweep(missing))).toMatch(/results\.jsonl:1: lossX: /);
  });

  test('sweep.json: a field off its schema is named', () => {
    const dir = sweepDir('bad-params', { ...params, options: { ...params.options, bn: 'batch' } }, [line]);
    expect(userError(() => readParams(join(dir, 'sweep.json')))).toMatch(/sweep\.json: options\.bn: /);
    expect(userError(() => readSweep(dir))).toMatch(/sweep\.json: options\.bn: /);
    const extra = sweepDir('extra-key', { ...params, colour: 1 }, [line]);
    expect(userError(() => readParams(join(extra, 'sweep.json')))).toMatch(/sweep\.json: unknown key colour/);
  });

  test('summary.json, run.json, verify.json and allpairs.jsonl: a field off the schema is named', () => {
    const f = join(tmp, 'summary.json');
    writeFileSync(f, JSON.stringify({ format: 'lie-bracket sweep summary v1', sweep: {} }));
    expect(userError(() => readSummary(f))).toMatch(/summary\.json: sweep\.runDir: /);
    const run = join(tmp, 'run');
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'run.json'), JSON.stringify({ format: 'lie-bracket run v1', status: 'done' }));
    expect(userError(() => readRunFile(run))).toMatch(/run\.json: status: /);
    writeFileSync(join(run, 'verify.json'), JSON.stringify({ eps: [0.1] }));
    expect(userError(() => readVerifyFile(join(run, 'verify.json')))).toMatch(/verify\.json: model: /);
    writeFileSync(
      join(run, 'allpairs.jsonl'),
      `${JSON.stringify({ step: 0, method: 'direct', outputs: [], probe: 0, indices: [0, 1], seconds: 1, matrices: [[[0, 'x']]] })}\n`,
    );
    expect(userError(() => readAllPairsFile(join(run, 'allpairs.jsonl')))).toMatch(/allpairs\.jsonl:1: matrices\[0\]\[0\]\[1\]: /);
  });
});
