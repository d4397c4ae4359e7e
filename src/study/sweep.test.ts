/**
 * Sweeps: an interrupted-and-resumed sweep, and a sharded-and-merged one, end byte-identical to one
 * uninterrupted sweep (results, vectors, summary); merge rejects missing and duplicated units.
 * The worker-thread path is checked against the compiled package when dist/ is up to date.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { statsCommand } from '../cli/stats.js';
import { mergeCommand, sweepCommand } from '../cli/sweep.js';
import { openDataset } from '../data/registry.js';
import { resolveModel } from './resolve.js';
import { runStudy } from './study.js';
import { mergeShards, runSweep, type SweepOptions } from './sweep.js';
import { lossFor, parseTrainConfig, train } from './train.js';

const tmp = mkdtempSync(join(tmpdir(), 'lb-sweep-'));
const runDir = join(tmp, 'run');
const whole = join(tmp, 'whole');

/** Every file of a sweep directory (recursively), as base64, by relative path. */
function files(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? `${prefix}/${f}` : f;
    if (statSync(join(dir, rel)).isDirectory()) Object.assign(out, files(dir, rel));
    else out[rel] = readFileSync(join(dir, rel)).toString('base64');
  }
  return out;
}

const base = (out: string): SweepOptions => ({ runDir, out, first: 4, probes: 6, saveVectors: true, workers: 1 });

beforeAll(async () => {
  const config = parseTrainConfig(
    { model: 'mlp', loss: 'bce', steps: 4, batchSize: 16, trainSize: 200, evalSize: 20, checkpointSteps: [0, 2, 4] },
    'test',
  );
  const trainSet = openDataset(config.data, 'train', { loss: config.loss });
  const testSet = openDataset(config.data, 'test', { loss: config.loss });
  train({ config, train: trainSet, test: testSet, model: resolveModel(config.model, trainSet), loss: lossFor(config, trainSet) }, runDir);
  const r = await runSweep(base(whole));
  expect(r).toMatchObject({ units: 18, resumed: 0, computed: 18, complete: true, workers: 1 });
});

describe('sweep', () => {
  test('a run that is not complete is refused unless --steps names the checkpoints to sweep', async () => {
    const partial = join(tmp, 'partial-run');
    cpSync(runDir, partial, { recursive: true });
    const runJson = join(partial, 'run.json');
    writeFileSync(runJson, JSON.stringify({ ...JSON.parse(readFileSync(runJson, 'utf8')), status: 'running' }));
    await expect(runSweep({ ...base(join(tmp, 'partial-sweep')), runDir: partial })).rejects.toThrow(
      /the run is running, not complete \(checkpoints so far: 0, 2, 4\).*give --steps/,
    );
    const r = await runSweep({ ...base(join(tmp, 'partial-sweep')), runDir: partial, steps: [0, 2] });
    expect(r).toMatchObject({ units: 12, complete: true });
  });

  test('layout: sweep.json, results.jsonl in unit order, vectors per checkpoint, summary.json', () => {
    const params = JSON.parse(readFileSync(join(whole, 'sweep.json'), 'utf8'));
    expect(params).toMatchObject({
      format: 'lie-bracket sweep v1',
      model: 'mlp',
      steps: [0, 2, 4],
      probeIndices: [0, 1, 2, 3, 4, 5],
      units: 18,
      shard: null,
    });
    expect(params.options).toEqual({ bn: 'eval', dtype: 'float32', saveVectors: true });
    expect(params.pairs).toEqual([
      [0, 1],
      [0, 2],
      [0, 3],
      [1, 2],
      [1, 3],
      [2, 3],
    ]);
    expect(Object.keys(params.checkpoints)).toEqual(['0', '2', '4']);
    const lines = readFileSync(join(whole, 'results.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => `${l.step}:${l.x},${l.y}`)).toEqual(
      params.steps.flatMap((s: number) => params.pairs.map(([x, y]: number[]) => `${s}:${x},${y}`)),
    );
    const l = lines[7];
    expect(Object.keys(l)).toEqual([
      'step',
      'x',
      'y',
      'lossX',
      'lossY',
      'gradNormX',
      'gradNormY',
      'bracketNorm',
      'gradCosine',
      'tensors',
      'probeEffects',
    ]);
    expect(Object.keys(l.tensors)).toEqual(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    expect(Object.keys(l.tensors['fc1.weight'])).toEqual(['bracketNorm', 'bracketRms', 'gradNormX', 'gradNormY', 'gradRmsX', 'gradRmsY']);
    expect(l.tensors['fc1.weight'].gradRmsX).toBeCloseTo(l.tensors['fc1.weight'].gradNormX / Math.sqrt(128 * 784), 12);
    expect(l.probeEffects).toHaveLength(6);
    expect(l.probeEffects[0]).toHaveLength(10);
    expect(Object.keys(files(whole)).sort()).toEqual([
      'results.jsonl',
      'summary.json',
      'sweep.json',
      'vectors/step-0.safetensors',
      'vectors/step-2.safetensors',
      'vectors/step-4.safetensors',
    ]);
    const summary = JSON.parse(readFileSync(join(whole, 'summary.json'), 'utf8'));
    expect(summary.checkpoints).toHaveLength(3);
    expect(summary.overall.features).toHaveLength(10);
    expect(summary.overall.gradientFit.n).toBe(18 * 4);
  });

  test('a killed sweep (and a half-written last line) resumes to byte-identical outputs', async () => {
    const out = join(tmp, 'killed');
    await expect(
      runSweep({
        ...base(out),
        onUnit: (done) => {
          if (done === 7) throw new Error('simulated kill');
        },
      }),
    ).rejects.toThrow(/simulated kill/);
    const partial = readFileSync(join(out, 'results.jsonl'), 'utf8');
    expect(partial.trimEnd().split('\n')).toHaveLength(7);
    appendFileSync(join(out, 'results.jsonl'), '{"step":2,"x":1,"y":'); // the kill cut a write short
    expect(existsSync(join(out, 'vectors', 'parts'))).toBe(true);
    let starts: [number, number] | undefined;
    const r = await runSweep({ ...base(out), onStart: (done, total) => (starts = [done, total]) });
    expect(starts).toEqual([7, 18]);
    expect(r).toMatchObject({ resumed: 7, computed: 11, complete: true });
    expect(files(out)).toEqual(files(whole));
    // running a complete sweep again computes nothing and changes nothing
    const again = await runSweep(base(out));
    expect(again).toMatchObject({ resumed: 18, computed: 0, complete: true });
    expect(files(out)).toEqual(files(whole));
  });

  test('two shards (in two directories) and merge give the uninterrupted results', async () => {
    const s0 = join(tmp, 'shard0');
    const s1 = join(tmp, 'shard1');
    const r0 = await runSweep({ ...base(s0), shard: { index: 0, count: 2 } });
    // shard 1 is itself interrupted once and resumed
    await expect(
      runSweep({
        ...base(s1),
        shard: { index: 1, count: 2 },
        onUnit: (d) => {
          if (d === 3) throw new Error('kill');
        },
      }),
    ).rejects.toThrow('kill');
    const r1 = await runSweep({ ...base(s1), shard: { index: 1, count: 2 } });
    expect([r0.units, r1.units, r1.resumed]).toEqual([9, 9, 3]);
    expect(existsSync(join(s0, 'results.shard-0-of-2.jsonl'))).toBe(true);
    expect(existsSync(join(s0, 'summary.json'))).toBe(false);
    const merged = join(tmp, 'merged');
    const m = mergeShards([s0, s1], { out: merged });
    expect(m.units).toBe(18);
    expect(files(merged)).toEqual(files(whole));
    // more shards than units: a shard may own none
    const empty = await runSweep({ ...base(join(tmp, 'empty')), shard: { index: 20, count: 25 } });
    expect(empty).toMatchObject({ units: 0, computed: 0, complete: true });
    expect(readFileSync(join(tmp, 'empty', 'results.shard-20-of-25.jsonl'), 'utf8')).toBe('');
  });

  test('merge rejects a missing or a duplicated unit, and shards of different sweeps', async () => {
    const s0 = join(tmp, 'm-shard0');
    const s1 = join(tmp, 'm-shard1');
    await runSweep({ ...base(s0), saveVectors: false, shard: { index: 0, count: 2 } });
    await runSweep({ ...base(s1), saveVectors: false, shard: { index: 1, count: 2 } });
    expect(() => mergeShards([s0], { out: join(tmp, 'm-none') })).toThrow(/unit step 0 pair 0,2 is missing \(shard 1\/2\) and 8 more units/);
    // a shard that lost its last line
    const f1 = join(s1, 'results.shard-1-of-2.jsonl');
    const lines = readFileSync(f1, 'utf8').trimEnd().split('\n');
    const short = join(tmp, 'm-short');
    cpSync(s1, short, { recursive: true });
    writeFileSync(join(short, 'results.shard-1-of-2.jsonl'), `${lines.slice(0, -1).join('\n')}\n${lines.at(-1)!.slice(0, 10)}`);
    expect(() => mergeShards([s0, short], { out: join(tmp, 'm-x') })).toThrow(/unit step 4 pair 2,3 is missing \(shard 1\/2\); complete the shards/);
    // a unit twice: in one file, and the same shard given from two directories
    const dup = join(tmp, 'm-dup');
    cpSync(s1, dup, { recursive: true });
    appendFileSync(join(dup, 'results.shard-1-of-2.jsonl'), `${lines[2]}\n`);
    expect(() => mergeShards([s0, dup], { out: join(tmp, 'm-x') })).toThrow(/unit step 0 pair 2,3 appears twice \(.*jsonl:3 and .*jsonl:10\)/);
    const copy = join(tmp, 'm-copy');
    cpSync(s1, copy, { recursive: true });
    expect(() => mergeShards([s0, s1, copy], { out: join(tmp, 'm-x') })).toThrow(/appears twice/);
    // different sweep parameters
    const other = join(tmp, 'm-other');
    await runSweep({ ...base(other), saveVectors: false, probes: 3, steps: [4], shard: { index: 1, count: 2 } });
    expect(() => mergeShards([s0, other], { out: join(tmp, 'm-x') })).toThrow(/come from different sweeps \(steps: \[0,2,4\] vs \[4\]\)/);
    expect(() => mergeShards([join(tmp, 'whole')])).toThrow(/no shard results/);
    expect(mergeShards([s0, s1], { out: join(tmp, 'm-ok') }).units).toBe(18);
  });

  test('errors: other parameters in the output directory, bad steps, pairs and indices', async () => {
    await expect(runSweep({ ...base(whole), probes: 5 })).rejects.toThrow(/holds a sweep with other parameters \(probeIndices/);
    const out = join(tmp, 'err');
    await expect(runSweep({ ...base(out), steps: [3] })).rejects.toThrow(/no checkpoint at step 3; available: 0, 2, 4/);
    await expect(
      runSweep({
        ...base(out),
        first: undefined,
        pairs: [
          [0, 1],
          [0, 1],
        ],
      }),
    ).rejects.toThrow(/given twice/);
    await expect(runSweep({ ...base(out), first: undefined, pairs: [[2, 2]] })).rejects.toThrow(/zero bracket/);
    await expect(runSweep({ ...base(out), first: undefined, pairs: [[0, 100000]] })).rejects.toThrow(/index 100000 is out of range/);
    await expect(runSweep({ ...base(out), pairs: [[0, 1]] })).rejects.toThrow(/either --first K or --pairs/);
    await expect(runSweep({ ...base(join(tmp, 'nothing')), runDir: join(tmp, 'nothing') })).rejects.toThrow(/not a run directory/);
  });

  test('explicit probe indices (and pairs): the probe effects of those test examples, in the order given', async () => {
    const out = join(tmp, 'probe-indices');
    const r = await runSweep({ ...base(out), probes: undefined, probeIndices: [5, 2], first: undefined, pairs: [[1, 3]], steps: [4] });
    expect(r.complete).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8'))).toMatchObject({ pairs: [[1, 3]], probeIndices: [5, 2], units: 1 });
    const [mine] = readFileSync(join(out, 'results.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    const ref = readFileSync(join(whole, 'results.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((l) => l.step === 4 && l.x === 1 && l.y === 3);
    expect(mine.probeEffects).toEqual([ref.probeEffects[5], ref.probeEffects[2]]);
    expect(mine.bracketNorm).toBe(ref.bracketNorm);
    const e = join(tmp, 'probe-indices-err');
    await expect(runSweep({ ...base(e), probeIndices: [0] })).rejects.toThrow(/either a probe count \(--probes N\) or probe indices/);
    await expect(runSweep({ ...base(e), probes: undefined, probeIndices: [1, 1] })).rejects.toThrow(/probe index 1 is given twice/);
    await expect(runSweep({ ...base(e), probes: undefined, probeIndices: [100000] })).rejects.toThrow(/probe index 100000 is out of range/);
    await expect(runSweep({ ...base(e), probes: undefined, probeIndices: [0.5] })).rejects.toThrow(/probe index 0.5 is out of range/);
  });

  test('runStudy passes explicit pairs and probe indices on to its sweep', async () => {
    const copy = join(tmp, 'study-run');
    cpSync(runDir, copy, { recursive: true });
    const config = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')).config;
    const r = await runStudy(parseTrainConfig(config, 'test'), copy, { pairs: [[1, 3]], probeIndices: [5, 2], saveVectors: true, workers: 1 });
    expect(r.train).toBe('reused');
    expect(JSON.parse(readFileSync(join(copy, 'sweep', 'sweep.json'), 'utf8'))).toMatchObject({ pairs: [[1, 3]], probeIndices: [5, 2] });
    expect(r.summary?.checkpoints).toHaveLength(3);
  });

  test('a lock keeps two sweeps out of one directory; a dead holder’s lock is taken over', async () => {
    const out = join(tmp, 'locked');
    const small: SweepOptions = { ...base(out), steps: [4], first: undefined, pairs: [[0, 1]] };
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, '.results.jsonl.lock'), String(process.pid));
    await expect(runSweep(small)).rejects.toThrow(/another sweep \(pid \d+\) is writing here/);
    writeFileSync(join(out, '.results.jsonl.lock'), String(spawnSync(process.execPath, ['-e', '0']).pid)); // exited
    expect((await runSweep(small)).complete).toBe(true);
    expect(existsSync(join(out, '.results.jsonl.lock'))).toBe(false);
  });

  test('under vitest (TypeScript sources) more workers fall back to this thread, with the same results', async () => {
    const out = join(tmp, 'fallback');
    const r = await runSweep({ ...base(out), steps: [2], workers: 2 });
    expect(r.workers).toBe(1);
    expect(r.workerNote).toMatch(/compiled package/);
    const mine = readFileSync(join(out, 'results.jsonl'), 'utf8');
    const ref = readFileSync(join(whole, 'results.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{"step":2,'));
    expect(mine).toBe(ref.map((l) => `${l}\n`).join(''));
  });
});

describe('commands (sweep, merge, stats)', () => {
  async function cli(cmd: Command, args: string[]): Promise<string> {
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
    try {
      await cmd.exitOverride().parseAsync(args, { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    return out;
  }

  test('sweep --shard, merge and stats from their commands; one-line errors', async () => {
    const out = join(tmp, 'cli');
    const common = [runDir, '--steps', '2,4', '--first', '3', '--probes', '4', '--workers', '1', '--out', out];
    const s0 = JSON.parse(await cli(sweepCommand(), [...common, '--shard', '0/2', '--json']));
    expect(s0).toMatchObject({ units: 3, computed: 3, complete: true });
    expect(await cli(sweepCommand(), [...common, '--shard', '1/2'])).toMatch(/shard 1\/2 complete; join the shards with lie-bracket merge/);
    expect(await cli(mergeCommand(), [out])).toMatch(/merged 2 shard file\(s\), 6 units[\s\S]*order sensitivity per output/);
    const text = await cli(statsCommand(), [out, '--bootstrap', '100']);
    expect(text).toMatch(/slope/);
    expect(text).toMatch(/written: .*summary\.json/);
    const json = JSON.parse(await cli(statsCommand(), [out, '--json', '--bootstrap', '100']));
    expect(json.overall.features).toHaveLength(10);
    const cmp = JSON.parse(await cli(statsCommand(), [out, whole, '--json', '--bootstrap', '100', '--out', join(tmp, 'cmp.json')]));
    expect(cmp.paired).toBe(false);
    expect(cmp.checkpoints.map((c: { step: number }) => c.step)).toEqual([2, 4]);
    await expect(cli(sweepCommand(), [runDir, '--first', '3', '--pairs', '0,1'])).rejects.toThrow(/either --first K or --pairs/);
    await expect(cli(sweepCommand(), [runDir, '--shard', '2/2'])).rejects.toThrow(/--shard must be i\/n/);
    await expect(cli(sweepCommand(), [runDir, '--steps', '1,x'])).rejects.toThrow(/--steps must be a list/);
    expect(sweepCommand().helpInformation()).toMatch(/--shard <i\/n>[\s\S]*--workers <w>/);
  });
});

/** dist/ built from the current sources (npm run build), so the worker threads run this code. */
function distFresh(): boolean {
  const dist = resolve('dist/study');
  const pairs = ['sweep', 'sweep-worker', 'sweep-unit', 'sweep-stats'].map((n) => [join(dist, `${n}.js`), resolve(`src/study/${n}.ts`)] as const);
  return pairs.every(([js, ts]) => existsSync(js) && statSync(js).mtimeMs >= statSync(ts).mtimeMs);
}

describe.skipIf(!distFresh())('sweep on worker threads (compiled package in dist/)', () => {
  test('2 workers, interrupted and resumed, give the results of the in-process sweep', async () => {
    const mod = (await import(/* @vite-ignore */ resolve('dist/study/sweep.js'))) as typeof import('./sweep.js');
    const out = join(tmp, 'pool');
    await expect(
      mod.runSweep({
        ...base(out),
        workers: 2,
        onUnit: (d) => {
          if (d === 5) throw new Error('kill');
        },
      }),
    ).rejects.toThrow('kill');
    const r = await mod.runSweep({ ...base(out), workers: 2 });
    expect(r.workers).toBe(2);
    expect(r.complete).toBe(true);
    expect(files(out)).toEqual(files(whole));
  });
});
