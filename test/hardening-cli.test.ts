/**
 * Issue 13, usability: progress in logs (one reporter for every long command, --quiet), every
 * default shown once in --help, --json everywhere, and `bracket --save-vectors` saying what it wrote.
 */
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { captureOutput } from './capture-output.js';
import { main, program } from '../src/cli/main.js';
import { formatDuration, reporter } from '../src/cli/util.js';
import { trainConfigSchema } from '../src/study/train.js';

const io = captureOutput();
const run = (...args: string[]) => main(['node', 'lie-bracket', ...args]);
const tmp = mkdtempSync(join(tmpdir(), 'lb-hardening-cli-'));

/** A stream that records what is written; a terminal or not. */
function fakeStream(isTTY: boolean) {
  const s = { text: '', isTTY, columns: 100, write: (x: string) => ((s.text += x), true) };
  return s;
}
/** A clock that the test moves. */
function fakeClock() {
  const c = { t: 0, now: () => c.t };
  return c;
}
const lines = (s: string) => s.split('\n').filter((l) => l.length > 0);

describe('the progress reporter (src/cli/util.ts)', () => {
  test('not a terminal: a line at the start, about every 10% and at the end, with done/total, elapsed time and ETA', () => {
    const out = fakeStream(false);
    const clock = fakeClock();
    const rep = reporter({ stream: out, now: clock.now });
    const task = rep.task('train', 300, { unit: 'steps' });
    for (let step = 1; step <= 300; step++) {
      clock.t = step * 100; // 0.1 s per step
      task.update(step, `loss ${(1 / step).toFixed(4)}`);
    }
    rep.stop();
    const l = lines(out.text);
    expect(l).toHaveLength(11);
    for (const x of l) expect(x).toMatch(/^train: \d+\/300 steps \(\d+%\), [\d.]+ s elapsed, ETA [\d.]+ s, loss [\d.]+$/);
    expect(l[0]).toBe('train: 1/300 steps (0%), 0.1 s elapsed, ETA 29.9 s, loss 1.0000');
    expect(l).toContain('train: 120/300 steps (40%), 12.0 s elapsed, ETA 18.0 s, loss 0.0083');
    expect(l[10]).toBe('train: 300/300 steps (100%), 30.0 s elapsed, ETA 0.0 s, loss 0.0033');
    // eslint-disable-next-line no-control-regex -- looking for terminal escape codes is the point
    expect(out.text).not.toMatch(/\x1b/); // no terminal control codes in a log
  });

  test('a resumed task counts from where it starts; a task stopped early ends with its last count', () => {
    const out = fakeStream(false);
    const clock = fakeClock();
    const rep = reporter({ stream: out, now: clock.now });
    const task = rep.task('sweep', 40, { unit: 'units', start: 20 });
    for (let d = 21; d <= 23; d++) {
      clock.t = (d - 20) * 1000;
      task.update(d);
    }
    rep.stop();
    expect(lines(out.text)).toEqual(['sweep: 21/40 units (52%), 1.0 s elapsed, ETA 19.0 s', 'sweep: 23/40 units (57%), 3.0 s elapsed, ETA 17.0 s']);
  });

  test('stage lines; --quiet prints nothing at all', () => {
    const out = fakeStream(false);
    const rep = reporter({ stream: out, now: fakeClock().now });
    rep.stage('train', 'resuming');
    expect(out.text).toBe('[train] resuming\n');
    const quiet = fakeStream(false);
    const q = reporter({ stream: quiet, now: fakeClock().now, quiet: true });
    q.stage('sweep');
    const t = q.task('train', 300, { unit: 'steps' });
    for (let s = 1; s <= 300; s++) t.update(s, 'loss 1');
    q.stop();
    const tty = fakeStream(true);
    const qt = reporter({ stream: tty, quiet: true });
    qt.task('train', 300).update(5);
    qt.stop();
    expect(quiet.text + tty.text).toBe('');
  });

  test('on a terminal: the cli-progress bar, as before', () => {
    const start = vi.spyOn(cliProgress.SingleBar.prototype, 'start');
    const out = fakeStream(true);
    const rep = reporter({ stream: out });
    const task = rep.task('train', 300, { unit: 'steps' });
    for (let s = 1; s <= 300; s++) task.update(s, 'loss 0.5');
    rep.stop();
    expect(start).toHaveBeenCalledTimes(1);
    expect(out.text).toMatch(/train \[[█░]+\] 300\/300 steps \| loss 0\.5/);
    expect(out.text).toContain('\x1b[?25l'); // a terminal bar: the cursor hidden while it runs
    expect(out.text).not.toMatch(/elapsed, ETA/);
  });

  test('durations', () => {
    expect(formatDuration(12.34)).toBe('12.3 s');
    expect(formatDuration(245)).toBe('4 min 05 s');
    expect(formatDuration(7380)).toBe('2 h 03 min');
    expect(formatDuration(NaN)).toBe('–');
  });
});

describe('progress of the commands when stderr is not a terminal', () => {
  let saved: PropertyDescriptor | undefined;
  beforeEach(() => {
    saved = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true, writable: true });
  });
  afterEach(() => {
    if (saved) Object.defineProperty(process.stderr, 'isTTY', saved);
    else delete (process.stderr as { isTTY?: boolean }).isTTY;
  });
  const runDir = join(tmp, 'run');

  test('train: about 11 lines with elapsed time, ETA and loss; stdout stays one JSON object', async () => {
    expect(await run('train', '--model', 'mlp', '--steps', '20', '--train-size', '64', '--eval-size', '16', '--out', runDir, '--json')).toBe(0);
    const l = lines(io.err);
    expect(l).toHaveLength(11);
    for (const x of l) expect(x).toMatch(/^train: \d+\/20 steps \(\d+%\), [\d.]+ s elapsed, ETA ([\d.]+ s|[\d]+ min \d+ s), loss \d\.\d{4}$/);
    expect(l[10]).toMatch(/^train: 20\/20 steps \(100%\)/);
    expect(lines(io.out)).toHaveLength(1);
    expect(JSON.parse(io.out).steps).toBe(20);
  });

  test.each([
    ['bracket', 'pairs'],
    ['verify', 'pairs'],
  ])('%s --first 3: a line per pair (3 pairs) without --quiet, nothing with it, before or after the command name', async (cmd, unit) => {
    expect(await run(cmd, '--model', 'mlp', '--first', '3', '--json')).toBe(0);
    const l = lines(io.err);
    expect(l).toHaveLength(3);
    expect(l[0]).toMatch(new RegExp(`^${cmd}: 1/3 ${unit} \\(33%\\), [\\d.]+ s elapsed, ETA `));
    expect(l[2]).toMatch(new RegExp(`^${cmd}: 3/3 ${unit} \\(100%\\)`));
    expect(JSON.parse(io.out).pairs).toHaveLength(3);
    io.err = '';
    io.out = '';
    expect(await run(cmd, '--model', 'mlp', '--first', '3', '--quiet')).toBe(0);
    expect(await run('--quiet', cmd, '--model', 'mlp', '--first', '3')).toBe(0);
    expect(io.err).toBe('');
    expect(io.out).toMatch(/pair 0,1/);
  });

  test('study: stage lines and the train and sweep progress; --quiet silences all of it', async () => {
    const studyArgs = (out: string) => [
      'study',
      ...'--model mlp --steps 4 --train-size 64 --eval-size 16 --first 3 --probes 1 --workers 1'.split(' '),
      '--out',
      out,
    ];
    const args = studyArgs(join(tmp, 'study'));
    expect(await run(...args)).toBe(0);
    const l = lines(io.err);
    expect(l.filter((x) => x.startsWith('['))).toEqual(['[train]', '[sweep]', '[report]']);
    expect(l.some((x) => /^train: 4\/4 steps \(100%\), [\d.]+ s elapsed, ETA 0\.0 s, loss /.test(x))).toBe(true);
    expect(l.some((x) => /^sweep: \d+\/\d+ brackets \(100%\), [\d.]+ s elapsed, ETA 0\.0 s$/.test(x))).toBe(true);
    io.err = '';
    expect(await run(...studyArgs(join(tmp, 'study-quiet')), '--quiet')).toBe(0);
    expect(io.err).toBe('');
    expect(io.out).toMatch(/study done/);
  });

  test('sweep of a run: unit progress with ETA', async () => {
    expect(
      await run('train', '--model', 'mlp', '--steps', '2', '--train-size', '64', '--eval-size', '16', '--out', join(tmp, 'small'), '--quiet'),
    ).toBe(0);
    expect(await run('sweep', join(tmp, 'small'), '--first', '3', '--probes', '1', '--workers', '1', '--json')).toBe(0);
    const l = lines(io.err);
    expect(l.length).toBeGreaterThanOrEqual(2);
    for (const x of l) expect(x).toMatch(/^sweep: \d+\/9 units \(\d+%\), [\d.]+ s elapsed, ETA /);
    expect(l[l.length - 1]).toMatch(/^sweep: 9\/9 units \(100%\)/);
  });

  test('report --json: one JSON object on stdout', async () => {
    expect(existsSync(join(runDir, 'run.json'))).toBe(true);
    expect(await run('report', runDir, '--json')).toBe(0);
    const out = lines(io.out);
    expect(out).toHaveLength(1);
    const r = JSON.parse(out[0]!);
    expect(r).toMatchObject({ out: join(runDir, 'report.html'), exported: [], pngUnavailable: null });
    expect(Array.isArray(r.figures) && Array.isArray(r.notes)).toBe(true);
  });
});

describe('bracket --save-vectors says what it wrote', () => {
  test('a line in the table output', async () => {
    const f = join(tmp, 'b.safetensors');
    expect(await run('bracket', '--model', 'mlp', '--pairs', '0,1;2,3', '--save-vectors', f, '--quiet')).toBe(0);
    const size = statSync(f).size;
    expect(io.out).toContain(`bracket vectors: ${f} (8 tensors, 2 pairs, ${(size / 1e6).toFixed(1)} MB)`);
  });
  test('a field in --json', async () => {
    const f = join(tmp, 'c.safetensors');
    expect(await run('bracket', '--model', 'mlp', '--pairs', '0,1', '--save-vectors', f, '--json')).toBe(0);
    expect(JSON.parse(io.out).savedVectors).toEqual({ file: f, tensors: 4, pairs: 1, bytes: statSync(f).size });
    io.out = '';
    expect(await run('bracket', '--model', 'mlp', '--pairs', '0,1', '--json')).toBe(0);
    expect(JSON.parse(io.out)).not.toHaveProperty('savedVectors');
  });
});

describe('--help and --json of every command', () => {
  const commands = (): Command[] => {
    const p = program();
    return [p, ...p.commands];
  };

  test('every option shows its default at most once', () => {
    const twice: string[] = [];
    for (const c of commands()) {
      const help = c.createHelp();
      for (const o of c.options) {
        const d = help.optionDescription(o);
        if ((d.match(/\bdefault\b/gi) ?? []).length > 1) twice.push(`${c.name()} ${o.long}: ${d}`);
      }
      // the same in the printed help, where commander wraps the lines
      const text = c.helpInformation().replace(/\s+/g, ' ');
      const m = /\(default:? ([^)]*)\) \(default:? \1\)/.exec(text);
      if (m) twice.push(`${c.name()}: ${m[0]}`);
    }
    expect(twice).toEqual([]);
  });

  test.each(['train', 'study'])('%s: the defaults that the config schema applies are shown, with the schema’s values', (name) => {
    const d = trainConfigSchema.parse({});
    const c = program().commands.find((x) => x.name() === name)!;
    const text = c.helpInformation().replace(/\s+/g, ' ');
    const expected: Record<string, unknown> = {
      '--model': d.model,
      '--data': d.data,
      '--loss': d.loss,
      '--optimizer': d.optimizer.name,
      '--lr': d.optimizer.lr,
      '--steps': d.steps,
      '--batch-size': d.batchSize,
      '--seed': d.seed,
      '--dtype': d.dtype,
      '--eval-size': d.evalSize,
    };
    const help = c.createHelp();
    for (const [flag, v] of Object.entries(expected)) {
      const o = c.options.find((x) => x.long === flag)!;
      expect(help.optionDescription(o), flag).toContain(`(default: ${String(v)})`);
    }
    expect(text).toContain('(default: smoothconvnet)');
  });

  test('bracket/verify: the defaults applied without --run are shown', () => {
    for (const name of ['bracket', 'verify']) {
      const c = program().commands.find((x) => x.name() === name)!;
      const help = c.createHelp();
      const desc = (flag: string) => help.optionDescription(c.options.find((x) => x.long === flag)!);
      expect(desc('--model')).toContain('(default: mlp)');
      expect(desc('--data')).toContain('(default: fashion-mnist)');
      expect(desc('--bn')).toMatch(/default: "eval"/);
    }
    const v = program().commands.find((x) => x.name() === 'verify')!;
    expect(v.createHelp().optionDescription(v.options.find((x) => x.long === '--eps')!)).toContain('(default: 1e-2,1e-3,1e-4)');
  });

  test('every command has --json, and the program a global --quiet shown in each command’s help', () => {
    const p = program();
    for (const c of p.commands) {
      expect(
        c.options.map((o) => o.long),
        c.name(),
      ).toContain('--json');
      expect(c.helpInformation(), c.name()).toMatch(/--quiet/);
    }
    expect(p.options.map((o) => o.long)).toContain('--quiet');
  });
});
