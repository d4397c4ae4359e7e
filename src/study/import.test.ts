/**
 * `lie-bracket import`: a run trained in PyTorch (test/fixtures/pytorch-run, made by
 * scripts/make-pytorch-run-fixture.py) becomes a run directory whose sweep equals the sweep of the
 * same checkpoints in a run of the tool's own format; what is unknown is marked so and refused.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { captureOutput, expectOneLineError } from '../../test/capture-output.js';
import { userError } from '../../test/expect-user-error.js';
import { main } from '../cli/main.js';
import { openDataset } from '../data/registry.js';
import { readSafetensors, serializeSafetensors } from '../data/safetensors.js';
import { Tensor } from '../engine/tensor.js';
import { UserError } from '../errors.js';
import { checkpointFiles, importRun } from './import.js';
import { resolveModel } from './resolve.js';
import { runSweep } from './sweep.js';
import { resolveSource } from './source.js';
import { IMPORTED_UNKNOWN, listCheckpoints, lossFor, parseTrainConfig, readRunFile, train } from './train.js';

const FIXTURE = 'test/fixtures/pytorch-run';
const STEPS = [0, 5, 20];
const tmp = mkdtempSync(join(tmpdir(), 'lb-import-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const io = captureOutput();
const cli = (...args: string[]) => main(['node', 'lie-bracket', '--quiet', ...args]);
const base = { model: 'smoothconvnet', data: 'fashion-mnist' } as const;

/** results.jsonl as records, without anything that may vary between runs of the same computation. */
function results(dir: string): unknown[] {
  return readFileSync(join(dir, 'sweep', 'results.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l, (k, v: unknown) => (k === 'seconds' ? undefined : v)) as unknown);
}

/** A copy of the fixture directory with one checkpoint's tensors changed by `edit`. */
function editedFixture(name: string, edit: (t: Record<string, Tensor>) => void): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  for (const f of readdirSync(FIXTURE)) copyFileSync(join(FIXTURE, f), join(dir, f));
  const { tensors } = readSafetensors(join(FIXTURE, 'step-5.safetensors'), { allowNonFinite: true });
  edit(tensors);
  writeFileSync(join(dir, 'step-5.safetensors'), serializeSafetensors(tensors));
  return dir;
}

describe('import a PyTorch run', () => {
  test('the fixture imports; its sweep equals the sweep of the same checkpoints in a run of our own format', async () => {
    const out = join(tmp, 'imported');
    const r = importRun({ out, checkpoints: FIXTURE, ...base, loss: 'bce' });
    expect(r).toMatchObject({ runDir: out, model: 'smoothconvnet', dtype: 'float32', steps: STEPS, unknown: [...IMPORTED_UNKNOWN] });
    expect(listCheckpoints(out)).toEqual(STEPS);
    expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(['step-0.safetensors', 'step-20.safetensors', 'step-5.safetensors']); // no .optim
    const run = readRunFile(out);
    expect(run.status).toBe('complete');
    expect(run.checkpoints).toEqual(STEPS);
    expect(run.provenance).toEqual({
      source: 'imported',
      from: expect.stringContaining('pytorch-run'),
      unknown: ['optimizer', 'batchSize', 'seed', 'trainSize'],
    });
    // unknown settings are absent from the file, not guessed
    const raw = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { config: Record<string, unknown> };
    expect(Object.keys(raw.config).sort()).toEqual(['checkpointSteps', 'data', 'dtype', 'loss', 'model', 'steps']);
    // the same tensors as PyTorch saved them
    for (const s of STEPS) {
      const a = readSafetensors(join(FIXTURE, `step-${s}.safetensors`)).tensors;
      const b = readSafetensors(join(out, 'checkpoints', `step-${s}.safetensors`)).tensors;
      expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
      for (const k of Object.keys(a)) expect(b[k]!.data).toEqual(a[k]!.data);
    }

    // our own run with the same steps, its state_dicts replaced by the fixture's
    const own = join(tmp, 'own');
    const config = parseTrainConfig({ ...base, loss: 'bce', steps: 20, checkpointSteps: STEPS, batchSize: 4, trainSize: 32, evalSize: 8 }, 'test');
    const trainSet = openDataset(config.data, 'train', { loss: config.loss });
    const testSet = openDataset(config.data, 'test', { loss: config.loss });
    train({ config, train: trainSet, test: testSet, model: resolveModel(config.model, trainSet), loss: lossFor(config, trainSet) }, own);
    for (const s of STEPS) copyFileSync(join(FIXTURE, `step-${s}.safetensors`), join(own, 'checkpoints', `step-${s}.safetensors`));

    const sweep = { first: 3, probes: 2, workers: 1 };
    await runSweep({ runDir: out, ...sweep });
    await runSweep({ runDir: own, ...sweep });
    const ours = results(own);
    expect(ours).toHaveLength(STEPS.length * 3);
    expect(results(out)).toEqual(ours);

    // an analysis with --run works; what needs the unknown optimizer fails naming it
    const src = resolveSource({ run: out, step: 5, seed: 0, split: 'test', bn: 'eval' });
    expect(src.weights).toBe(`${out} step 5`);
    expect(userError(() => src.optimizer)).toMatch(
      /--optimizer run\) needs the run's optimizer, unknown for .*imported: it was imported from .*pytorch-run/,
    );
  });

  test('CLI: --json, a FILE:STEP list, resuming refused naming the unknown settings, an existing OUT refused', async () => {
    const out = join(tmp, 'cli');
    const list = `${FIXTURE}/step-0.safetensors:0,${FIXTURE}/step-20.safetensors:200`;
    expect(
      await cli('import', out, '--checkpoints', list, '--model', 'smoothconvnet', '--data', 'fashion-mnist', '--dtype', 'float64', '--json'),
    ).toBe(0);
    const r = JSON.parse(io.out) as { steps: number[]; dtype: string };
    expect(r).toMatchObject({ steps: [0, 200], dtype: 'float64' });
    expect(readSafetensors(join(out, 'checkpoints', 'step-200.safetensors')).dtypes['fc.weight']).toBe('F64');
    io.out = '';
    expectOneLineError(
      io,
      await cli('train', '--resume', out),
      /resuming training needs the run's optimizer, batchSize, seed, trainSize, unknown for .*cli: it was imported from/,
    );
    io.err = '';
    expectOneLineError(
      io,
      await cli('import', out, '--checkpoints', FIXTURE, '--model', 'smoothconvnet', '--data', 'fashion-mnist'),
      /cli already exists; choose another output directory/,
    );
    io.err = '';
    expect(await cli('import', join(tmp, 'cli-text'), '--checkpoints', FIXTURE, '--model', 'smoothconvnet', '--data', 'fashion-mnist')).toBe(0);
    expect(io.out).toMatch(/^imported 3 checkpoints \(steps 0, 5, 20\) of smoothconvnet \(20,490 parameters, float32\)/);
    expect(io.out).toContain('unknown, not guessed');
  });

  test('study --skip-train analyses an imported run; a training flag with it, or a missing run, is an error', async () => {
    const out = join(tmp, 'skip');
    expect(await cli('import', out, '--checkpoints', FIXTURE, '--model', 'smoothconvnet', '--data', 'fashion-mnist')).toBe(0);
    io.out = '';
    expectOneLineError(
      io,
      await cli('study', '--skip-train', '--out', out, '--lr', '0.1'),
      /--lr: with --skip-train the run's own configuration is used/,
    );
    io.err = '';
    expectOneLineError(io, await cli('study', '--skip-train', '--out', join(tmp, 'none')), /--skip-train: .*none holds no run/);
    io.err = '';
    expect(await cli('study', '--skip-train', '--out', out, '--first', '3', '--probes', '2', '--workers', '1', '--json')).toBe(0);
    const r = JSON.parse(io.out) as { train: string; report: string };
    expect(r.train).toBe('reused');
    expect(existsSync(r.report)).toBe(true);
    io.out = '';
  });

  test('bad input: one-line errors naming the problem, and no OUT left behind', async () => {
    const bad = async (name: string, checkpoints: string, pattern: RegExp, model = 'smoothconvnet') => {
      io.err = '';
      const out = join(tmp, `bad-${name}`);
      expectOneLineError(io, await cli('import', out, '--checkpoints', checkpoints, '--model', model, '--data', 'fashion-mnist'), pattern);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(tmp).filter((f) => f.includes(`bad-${name}`))).toEqual([]); // no temporary directory either
    };
    await bad('missing', join(tmp, 'nope'), /nope: not found/);
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'model.pt'), '');
    await bad('empty', empty, /empty: no step-<n>\.safetensors files in this directory/);
    await bad('names', FIXTURE, /step-0\.safetensors: fc1\.weight is missing, model mlp expects shape \[128,784\]/, 'mlp');
    const renamed = editedFixture('renamed', (t) => {
      t['classifier.weight'] = t['fc.weight']!;
      delete t['fc.weight'];
    });
    await bad('renamed', renamed, /step-5\.safetensors: fc\.weight is missing, model smoothconvnet expects shape \[10,1568\] \(and 1 more problem\)/);
    const nan = editedFixture('nan', (t) => (t['conv2.bias']!.data[3] = NaN));
    await bad('nan', nan, /step-5\.safetensors: tensor "conv2\.bias" has a non-finite value \(NaN\) at index \[3\]/);
    const frac = join(tmp, 'frac');
    mkdirSync(frac);
    copyFileSync(join(FIXTURE, 'step-5.safetensors'), join(frac, 'step-1.5.safetensors'));
    await bad('frac', frac, /step-1\.5\.safetensors: the step "1\.5" is not a non-negative integer/);
    await bad('fraclist', `${FIXTURE}/step-5.safetensors:2.5`, /the step "2\.5" is not a non-negative integer/);
    await bad(
      'nostep',
      `${FIXTURE}/step-5.safetensors,${join(tmp, 'x.safetensors')}`,
      /x\.safetensors: give its training step, as .*x\.safetensors:STEP/,
    );
    await bad('twice', `${FIXTURE}/step-5.safetensors:5,${FIXTURE}/step-0.safetensors:5`, /step 5 is given twice/);
  });

  test('library: checkpointFiles skips this tool’s .optim files and sorts by step', () => {
    const dir = join(tmp, 'ours');
    mkdirSync(dir);
    for (const s of [10, 2]) {
      copyFileSync(join(FIXTURE, 'step-5.safetensors'), join(dir, `step-${s}.safetensors`));
      writeFileSync(join(dir, `step-${s}.optim.safetensors`), '');
    }
    expect(checkpointFiles(dir).map((c) => c.step)).toEqual([2, 10]);
    expect(() => checkpointFiles('')).toThrow(UserError);
  });
});
