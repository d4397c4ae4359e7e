/**
 * Issue 13, training: unknown config keys at any depth (4), --eps vs --adam-eps (5), --resume with
 * contradicting flags (6), divergence keeps the last good checkpoint (7), one training per run
 * directory (8), and a clean stop at a step boundary (11).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { captureOutput } from './capture-output.js';
import { main } from '../src/cli/main.js';
import { openDataset } from '../src/data/registry.js';
import { readSafetensors } from '../src/data/safetensors.js';
import { UserError } from '../src/errors.js';
import { parseOptimizerConfig } from '../src/nn/optim.js';
import { resolveModel } from '../src/study/resolve.js';
import { configDifferences, lossFor, parseTrainConfig, train, TrainingInterrupted, TRAIN_LOCK, type RunContext } from '../src/study/train.js';
import { closestKey, zodUserError } from '../src/zod-message.js';
import { z } from 'zod';

const io = captureOutput();
const tmp = mkdtempSync(join(tmpdir(), 'lb-hardening-train-'));
const run = (...args: string[]) => main(['node', 'lie-bracket', ...args]);
const TINY = ['--model', 'mlp', '--steps', '3', '--train-size', '64', '--eval-size', '32'];
const readRun = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as Record<string, any>;
const errLines = () =>
  io.err
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('lie-bracket: error:'));
const userErrorOf = (f: () => unknown): UserError => {
  try {
    f();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error('no error');
};

function context(raw: Record<string, unknown>): RunContext {
  const config = parseTrainConfig(raw, 'test');
  const trainSet = openDataset(config.data, 'train', { loss: config.loss });
  const testSet = openDataset(config.data, 'test', { loss: config.loss });
  return { config, train: trainSet, test: testSet, model: resolveModel(config.model, trainSet), loss: lossFor(config, trainSet) };
}

describe('(4) config files: unknown keys at any depth are errors with the closest valid key', () => {
  test('optimizer.learning_rate in a --config file: exit 2, one line, "did you mean optimizer.lr?", nothing written', async () => {
    const cfg = join(tmp, 'typo.json');
    writeFileSync(cfg, JSON.stringify({ model: 'mlp', steps: 3, trainSize: 64, evalSize: 32, optimizer: { name: 'adam', learning_rate: 0.5 } }));
    const out = join(tmp, 'typo-run');
    expect(await run('train', '--config', cfg, '--out', out)).toBe(2);
    expect(errLines()).toHaveLength(1);
    expect(io.err).toMatch(/typo\.json: unknown key optimizer\.learning_rate; did you mean optimizer\.lr\? \(valid keys at optimizer: name, lr, /);
    expect(existsSync(join(out, 'run.json'))).toBe(false);
  });

  test('groups entries are strict too; several problems in one line', () => {
    const msg = userErrorOf(() =>
      parseTrainConfig({ groups: [{ name: 'g', members: ['a'], allow_none: true }], stpes: 3, batch_size: 8 }, 'c.json'),
    ).message;
    expect(msg).toMatch(/^c\.json: /);
    expect(msg).toMatch(/unknown key groups\[0\]\.allow_none; did you mean groups\[0\]\.allowNone\?/);
    expect(msg).toMatch(/unknown key stpes; did you mean steps\?/);
    expect(msg).toMatch(/unknown key batch_size; did you mean batchSize\?/);
    expect(msg).not.toMatch(/\n/);
  });

  test("the optimizer's own rules apply inside a train config", () => {
    expect(userErrorOf(() => parseTrainConfig({ optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 } }, 'c.json')).message).toMatch(
      /optimizer\.momentum: momentum applies only to momentum, not to sgd/,
    );
    expect(userErrorOf(() => parseTrainConfig({ optimizer: { name: 'adam', lr: -1 } }, 'c.json')).message).toMatch(
      /optimizer\.lr: lr must be a finite number > 0 \(got -1\)/,
    );
  });

  test('verify --optimizer {json}: the closest key', async () => {
    expect(await run('verify', '--model', 'mlp', '--pairs', '0,1', '--optimizer', '{"name":"adam","lr":0.1,"learningRate":3}')).toBe(2);
    expect(errLines()).toHaveLength(1);
    expect(io.err).toMatch(/--optimizer: unknown key learningRate; did you mean lr\?/);
    expect(userErrorOf(() => parseOptimizerConfig({ name: 'adam', lr: 1, weight_decay: 0.1 })).message).toMatch(/did you mean weightDecay\?/);
  });

  test('strict nesting refuses learning_rate but the shipped experiment configs still parse', () => {
    expect(() => parseTrainConfig({ optimizer: { name: 'adam', learning_rate: 0.5 } }, 'c.json')).toThrow(/unknown key optimizer\.learning_rate/);
    const dir = 'experiments/configs';
    const names = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(names.length).toBeGreaterThan(0);
    for (const f of names) expect(() => parseTrainConfig(JSON.parse(readFileSync(join(dir, f), 'utf8')), f)).not.toThrow();
  });

  test('zodUserError: the path of the key, a suggestion only when one is plausible', () => {
    const schema = z.strictObject({ outer: z.array(z.strictObject({ kernelSize: z.number().optional() })).optional() });
    const r = schema.safeParse({ outer: [{ kernel_size: 3 }], zzz: 1 });
    expect(r.success).toBe(false);
    const msg = zodUserError(r.error!, 'spec.json', schema).message;
    expect(msg).toMatch(
      /^spec\.json: unknown key outer\[0\]\.kernel_size; did you mean outer\[0\]\.kernelSize\? \(valid keys at outer\[0\]: kernelSize\); unknown key zzz \(valid keys: outer\)$/,
    );
    expect(closestKey('learning_rate', ['name', 'lr', 'momentum'])).toBe('lr');
    expect(closestKey('momentun', ['name', 'lr', 'momentum'])).toBe('momentum');
    expect(closestKey('banana', ['name', 'lr', 'momentum'])).toBeUndefined();
  });
});

describe("(5) --eps is verify's step sizes; Adam's ε is --adam-eps", () => {
  test('train --eps is an error naming --adam-eps; --adam-eps sets the optimizer eps', async () => {
    const out = join(tmp, 'eps-run');
    expect(await run('train', ...TINY, '--eps', '1e-3', '--out', out)).toBe(2);
    expect(errLines()).toEqual(["lie-bracket: error: --eps is the swap step size of verify; Adam's ε is --adam-eps"]);
    expect(existsSync(out)).toBe(false);
    expect(await run('train', ...TINY, '--adam-eps', '1e-6', '--out', out, '--json')).toBe(0);
    expect(readRun(out).config.optimizer.eps).toBe(1e-6);
  });

  test('study --eps without --verify is an error; with --verify it sets the verify stage ε, not Adam ε', async () => {
    const out = join(tmp, 'eps-study');
    expect(await run('study', ...TINY, '--eps', '1e-3', '--out', out)).toBe(2);
    expect(io.err).toMatch(/--eps sets the step sizes of the verify stage: add --verify/);
    expect(existsSync(out)).toBe(false);
    expect(
      await run('study', ...TINY, '--first', '2', '--probes', '2', '--workers', '1', '--verify', '--eps', '1e-2,1e-3', '--out', out, '--json'),
    ).toBe(0);
    expect(readRun(out).config.optimizer.eps).toBeUndefined();
    expect(JSON.parse(readFileSync(join(out, 'verify.json'), 'utf8')).eps).toEqual([1e-2, 1e-3]);
  }, 60_000);
});

describe('(6) --resume with contradicting flags', () => {
  const dir = join(tmp, 'resume-run');
  test('every difference from run.json is listed; flags equal to the run are fine', async () => {
    expect(await run('train', ...TINY, '--out', dir, '--json')).toBe(0);
    const before = readFileSync(join(dir, 'run.json'), 'utf8');
    expect(await run('train', '--resume', dir, '--steps', '400', '--lr', '0.5', '--model', 'convnet')).toBe(2);
    expect(errLines()).toHaveLength(1);
    expect(io.err).toContain("--model convnet differs from the run's mlp");
    expect(io.err).toContain("--steps 400 differs from the run's 3");
    expect(io.err).toContain("--lr 0.5 differs from the run's 0.001");
    expect(io.err).toMatch(/a run cannot be extended/);
    expect(readFileSync(join(dir, 'run.json'), 'utf8')).toBe(before);
    io.err = '';
    expect(await run('train', '--resume', dir, '--lr', '0.001', '--model', 'mlp', '--steps', '3', '--json')).toBe(0);
  });

  test('a --config file given with --resume is compared too, and --out must be the run directory', async () => {
    const cfg = join(tmp, 'resume-cfg.json');
    writeFileSync(cfg, JSON.stringify({ optimizer: { name: 'adam', lr: 0.01 } }));
    expect(await run('train', '--resume', dir, '--config', cfg)).toBe(2);
    expect(io.err).toMatch(/optimizer\.lr \(in .*resume-cfg\.json\) 0\.01 differs from the run's 0\.001/);
    expect(await run('train', '--resume', dir, '--out', join(tmp, 'elsewhere'))).toBe(2);
    expect(io.err).toMatch(/--out .*elsewhere differs from the run directory/);
  });

  test('study names what differs from the run in its directory', async () => {
    expect(await run('study', ...TINY, '--lr', '0.5', '--out', dir)).toBe(2);
    expect(io.err).toMatch(/holds a run with a different configuration: --lr 0\.5 differs from the run's 0\.001/);
  });

  test('configDifferences: default Adam betas count as given', () => {
    const a = parseTrainConfig({ optimizer: { name: 'adam', lr: 1e-3 } }, 'a');
    const b = parseTrainConfig({ optimizer: { name: 'adam', lr: 1e-3, betas: [0.9, 0.999] } }, 'b');
    expect(configDifferences(a, b)).toEqual([]);
    expect(configDifferences(a, parseTrainConfig({ optimizer: { name: 'adam', lr: 1e-3, betas: [0.8, 0.999] } }, 'c')).map((d) => d.flag)).toEqual([
      '--beta1',
    ]);
  });
});

describe('(7) a diverging training fails cleanly and keeps its last good checkpoint', () => {
  // sgd lr 1e6 makes the mlp's loss grow only linearly in lr (ReLUs die, BCE stays finite): lr 1e37 overflows float32 within two steps
  test('sgd lr 1e37 on the mlp: one-line error, run.json failed with step and reason, only finite checkpoints, resume refused', async () => {
    const out = join(tmp, 'diverge');
    const args = [
      '--model',
      'mlp',
      '--optimizer',
      'sgd',
      '--lr',
      '1e37',
      '--steps',
      '20',
      '--checkpoint-every',
      '1',
      '--train-size',
      '64',
      '--eval-size',
      '32',
      '--out',
      out,
    ];
    expect(await run('train', ...args)).toBe(2);
    expect(errLines()).toHaveLength(1);
    expect(io.err).toMatch(
      /training diverged at step \d+: .*lower the learning rate; the run is marked failed, its checkpoints up to step \d+ are kept/,
    );
    const r = readRun(out);
    expect(r.status).toBe('failed');
    expect(r.failure).toMatchObject({ step: expect.any(Number), reason: expect.any(String) });
    const steps = readdirSync(join(out, 'checkpoints')).map((f) => Number(/step-(\d+)/.exec(f)![1]));
    expect(Math.max(...steps)).toBe(r.failure.lastCheckpoint);
    expect(r.failure.lastCheckpoint).toBeLessThanOrEqual(r.failure.step);
    for (const s of steps) {
      for (const t of Object.values(readSafetensors(join(out, 'checkpoints', `step-${s}.safetensors`)).tensors)) {
        expect(t.toArray().every(Number.isFinite)).toBe(true);
      }
    }
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).step as number);
    expect(Math.max(...metrics)).toBeLessThanOrEqual(r.failure.lastCheckpoint);
    expect(existsSync(join(out, TRAIN_LOCK))).toBe(false);
    io.err = '';
    expect(await run('train', '--resume', out)).toBe(2);
    expect(io.err).toMatch(/failed at step \d+ .*start a new run \(another --out\) with a lower --lr/);
  });
});

describe('(8) one training per run directory', () => {
  test('a live holder (this process) blocks a second training: one line naming the pid and the lock file', async () => {
    const out = join(tmp, 'locked');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, TRAIN_LOCK), String(process.pid));
    expect(await run('train', ...TINY, '--out', out)).toBe(2);
    expect(errLines()).toEqual([
      `lie-bracket: error: ${out}: another training (pid ${process.pid}) is writing here; wait for it, or delete ${TRAIN_LOCK} if it is gone`,
    ]);
    expect(existsSync(join(out, 'checkpoints'))).toBe(false);
  });

  test('another live process holds it: refused; when that process is gone its lock is taken over and released at the end', async () => {
    const out = join(tmp, 'locked-child');
    mkdirSync(out, { recursive: true });
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      writeFileSync(join(out, TRAIN_LOCK), String(child.pid));
      expect(await run('train', ...TINY, '--out', out)).toBe(2);
      expect(io.err).toContain(`another training (pid ${child.pid}) is writing here`);
    } finally {
      child.kill();
    }
    await new Promise((resolve) => child.once('exit', resolve));
    io.err = '';
    expect(await run('train', ...TINY, '--out', out, '--json')).toBe(0);
    expect(readRun(out).status).toBe('complete');
    expect(existsSync(join(out, TRAIN_LOCK))).toBe(false);
  });

  test('two trainings into one --out at the same time: one of them is refused, the directory holds one run', async () => {
    const out = join(tmp, 'race');
    const codes = await Promise.all([run('train', ...TINY, '--out', out, '--json'), run('train', ...TINY, '--seed', '1', '--out', out, '--json')]);
    expect([...codes].sort()).toEqual([0, 2]);
    expect(io.err).toContain(`another training (pid ${process.pid}) is writing here`);
    expect(existsSync(join(out, TRAIN_LOCK))).toBe(false);
  });
});

describe('(11) stop at a step boundary', () => {
  test('library: an aborted signal stops between steps; run.json says interrupted; resume ends identical to an uninterrupted run', () => {
    const raw = { model: 'mlp', steps: 6, trainSize: 64, evalSize: 32, batchSize: 16, checkpointSteps: [0, 1, 4, 6], evalEvery: 2 };
    const whole = join(tmp, 'whole');
    train(context(raw), whole);
    const dir = join(tmp, 'stopped');
    const signal = { aborted: false };
    let err: unknown;
    try {
      train(context(raw), dir, { signal, onStep: (s) => void (s === 3 && (signal.aborted = true)) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrainingInterrupted);
    expect(err).toMatchObject({ step: 3, lastCheckpoint: 1 });
    const r = readRun(dir);
    expect(r.status).toBe('interrupted');
    expect(r.interrupted).toEqual({ step: 3, lastCheckpoint: 1 });
    expect(readdirSync(join(dir, 'checkpoints')).sort()).toEqual([
      'step-0.optim.safetensors',
      'step-0.safetensors',
      'step-1.optim.safetensors',
      'step-1.safetensors',
    ]);
    const metricSteps = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).step as number);
    expect(metricSteps).toEqual([0, 1]);
    expect(existsSync(join(dir, TRAIN_LOCK))).toBe(false);
    train(context(raw), dir, { resume: true });
    expect(readRun(dir).status).toBe('complete');
    for (const s of [4, 6]) {
      const a = readFileSync(join(whole, 'checkpoints', `step-${s}.safetensors`));
      const b = readFileSync(join(dir, 'checkpoints', `step-${s}.safetensors`));
      expect(b.equals(a)).toBe(true);
    }
  });

  test('CLI: SIGINT during train prints "interrupted at step N; resume with …" and exits 130', async () => {
    const out = join(tmp, 'sigint');
    const baseline = process.listenerCount('SIGINT');
    let sent = false;
    const timer = setInterval(() => {
      if (!sent && process.listenerCount('SIGINT') > baseline) {
        sent = true;
        process.emit('SIGINT');
      }
    }, 1);
    try {
      const code = await run(
        'train',
        '--model',
        'mlp',
        '--steps',
        '2000',
        '--train-size',
        '64',
        '--eval-size',
        '32',
        '--checkpoint-every',
        '1000',
        '--out',
        out,
      );
      expect(sent).toBe(true);
      expect(code).toBe(130);
    } finally {
      clearInterval(timer);
    }
    const m = /interrupted at step (\d+); resume with lie-bracket train --resume (\S+)/.exec(io.err);
    expect(m).not.toBeNull();
    expect(m![2]).toBe(out);
    const r = readRun(out);
    expect(r.status).toBe('interrupted');
    expect(r.interrupted.step).toBe(Number(m![1]));
    expect(process.listenerCount('SIGINT')).toBe(baseline);
    expect(existsSync(join(out, TRAIN_LOCK))).toBe(false);
  });
});
