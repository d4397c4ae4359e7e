/**
 * Issue 11, point 6: docs/scaling.md and its examples (docs/scaling/: a Kubernetes Indexed Job, a
 * Slurm job array, and the merge job of each). The example's own command lines, taken from the
 * Slurm scripts, run here in process with 3 shards over one run directory, then merge and report:
 * the merged files equal an unsharded sweep byte for byte, a retried shard (completed, or killed
 * mid-write with its lock left behind) changes nothing, and merge names a missing shard. The
 * Kubernetes manifests carry the same command lines; they and the scripts are checked for syntax
 * only (no cluster here), and the doc shows every example file verbatim.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format } from 'prettier';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { captureOutput, expectOneLineError } from './capture-output.js';
import { main } from '../src/cli/main.js';

const io = captureOutput();
const run = (...args: string[]) => main(['node', 'lie-bracket', ...args]);

const EXAMPLES = 'docs/scaling';
const example = (name: string) => readFileSync(join(EXAMPLES, name), 'utf8');

/**
 * The command lines of an example: its `rm -f …` and `lie-bracket …` lines, in order (comments and
 * variable assignments are the scheduler's part).
 */
function commandLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(rm -f|lie-bracket) /.test(l));
}

/**
 * A command line as the shell splits it: words separated by blanks, "…" quoting, $NAME and ${NAME}
 * expanded from `env`. Anything else a shell would interpret (other quotes, escapes, $(…), globs,
 * unknown variables) is refused, so that what runs here is what the script runs.
 */
function words(line: string, env: Record<string, string>): string[] {
  if (/['\\`*?;&|<>]|\$\(/.test(line)) throw new Error(`not a plain command line: ${line}`);
  const expand = (s: string) =>
    s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => {
      const name = (a ?? b)!;
      const value = env[name];
      if (value === undefined) throw new Error(`${line}: $${name} is not set`);
      return value;
    });
  const out: string[] = [];
  for (const m of line.matchAll(/(?:"[^"]*"|[^\s"]+)+/g)) out.push(expand(m[0].replace(/"/g, '')));
  return out;
}

/** Run an example's command lines as its job would, with these variables; every command must succeed. */
async function sh(lines: string[], env: Record<string, string>): Promise<void> {
  for (const line of lines) {
    const [cmd, ...args] = words(line, env);
    if (cmd === 'rm') {
      expect(args).toHaveLength(2);
      rmSync(args[1]!, { force: true });
    } else {
      const code = await run(...args);
      expect(code, `${line}\n${io.err}`).toBe(0);
    }
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every file under a directory (recursively), by relative path, as its SHA-256. */
function files(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? `${prefix}/${f}` : f;
    if (statSync(join(dir, rel)).isDirectory()) Object.assign(out, files(dir, rel));
    else out[rel] = sha256(readFileSync(join(dir, rel)));
  }
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'lb-scaling-'));
const runDir = join(tmp, 'run'); // the shared run directory (the PersistentVolumeClaim, the shared file system)
const sweepDir = join(runDir, 'sweep');
const unsharded = join(tmp, 'unsharded');
const N = 3;
const shardEnv = (index: number) => ({ RUN: runDir, INDEX: String(index), N: String(N), W: '1' });
const sweepLines = commandLines(example('sweep-array.sbatch'));
const mergeLines = commandLines(example('merge.sbatch'));
const read = (f: string) => readFileSync(f, 'utf8');

beforeAll(async () => {
  // tests capture their output from beforeEach on; the setup's goes nowhere
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    expect(await run('train', '--model', 'mlp', '--steps', '3', '--train-size', '64', '--eval-size', '16', '--out', runDir, '--quiet')).toBe(0);
    // the reference: the same sweep in one go, into another directory
    expect(await run('sweep', runDir, '--workers', '1', '--out', unsharded, '--quiet')).toBe(0);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
});

/** The state after the test of the three shards (for a test run on its own, with -t). */
async function shardedAndMerged(): Promise<void> {
  if (existsSync(join(runDir, 'report.html'))) return;
  for (let i = 0; i < N; i++) await sh(sweepLines, shardEnv(i));
  await sh(mergeLines, { RUN: runDir });
}

describe('the example, run locally with 3 shards (W = 1, in process)', () => {
  test('the Kubernetes manifests and the Slurm scripts run the same command lines', () => {
    expect(sweepLines).toEqual([
      'rm -f "$RUN/sweep/.results.shard-$INDEX-of-$N.jsonl.lock"',
      'lie-bracket sweep "$RUN" --shard "$INDEX/$N" --workers "$W"',
    ]);
    expect(mergeLines).toEqual(['lie-bracket merge "$RUN/sweep"', 'lie-bracket report "$RUN"']);
    expect(commandLines(example('sweep-indexed-job.yaml'))).toEqual(sweepLines);
    expect(commandLines(example('merge-job.yaml'))).toEqual(mergeLines);
  });

  test('three shards, merged: results.jsonl, summary.json and sweep.json equal the unsharded sweep byte for byte', async () => {
    for (const i of [2, 0, 1]) await sh(sweepLines, shardEnv(i)); // any order: the scheduler's
    const ref = read(join(unsharded, 'results.jsonl')).split('\n').slice(0, -1);
    expect(ref).toHaveLength(60); // 4 checkpoints × 15 pairs
    for (let i = 0; i < N; i++) {
      // shard i: its own file, the units u with u mod 3 = i, in unit order
      const mine = ref.filter((_l, u) => u % N === i);
      expect(read(join(sweepDir, `results.shard-${i}-of-${N}.jsonl`))).toBe(`${mine.join('\n')}\n`);
      expect(JSON.parse(read(join(sweepDir, `sweep.shard-${i}-of-${N}.json`))).shard).toEqual({ index: i, count: N });
    }
    expect(existsSync(join(sweepDir, 'results.jsonl'))).toBe(false);
    expect(existsSync(join(sweepDir, 'summary.json'))).toBe(false);
    expect(readdirSync(sweepDir).filter((f) => f.endsWith('.lock'))).toEqual([]);

    io.out = '';
    await sh(mergeLines, { RUN: runDir });
    expect(io.out).toMatch(/merged 3 shard file\(s\), 60 units/);
    for (const f of ['results.jsonl', 'summary.json', 'sweep.json']) expect(read(join(sweepDir, f)), f).toBe(read(join(unsharded, f)));
    expect(existsSync(join(runDir, 'report.html'))).toBe(true);
  });

  test('a retried shard resumes: run again when complete it changes nothing; killed mid-write, it completes its file', async () => {
    await shardedAndMerged();
    // everything but report.html, which records when it was written
    const state = () => {
      const all = files(runDir);
      delete all['report.html'];
      return all;
    };
    const before = state();
    io.out = '';
    await sh(sweepLines, shardEnv(1));
    expect(io.out).toMatch(/20 unit\(s\), 20 already done, 0 computed/);
    expect(state()).toEqual(before);

    // shard 0 killed hard after 4 units, in the middle of its 5th line: the lock stays behind with
    // the pid of its process, which the retried process has (a container's main process, restarted)
    const f0 = join(sweepDir, `results.shard-0-of-${N}.jsonl`);
    const lock0 = join(sweepDir, `.results.shard-0-of-${N}.jsonl.lock`);
    const complete = read(f0);
    const lines = complete.split('\n');
    writeFileSync(f0, `${lines.slice(0, 4).join('\n')}\n${lines[4]!.slice(0, 40)}`);
    writeFileSync(lock0, String(process.pid));
    // without the script's rm the retry would be refused, as if that sweep were still writing
    io.out = io.err = '';
    expectOneLineError(io, await run(...words(sweepLines[1]!, shardEnv(0)).slice(1)), /another sweep \(pid \d+\) is writing here/);
    expect(existsSync(lock0)).toBe(true);
    io.err = '';
    await sh(sweepLines, shardEnv(0)); // the rm, then the sweep
    expect(io.out).toMatch(/20 unit\(s\), 4 already done, 16 computed/);
    expect(read(f0)).toBe(complete);
    await sh(mergeLines, { RUN: runDir });
    expect(state()).toEqual(before);
  });

  test('merge checks coverage: without shard 1 it names the first missing unit and its shard', async () => {
    await shardedAndMerged();
    const partial = join(tmp, 'partial');
    mkdirSync(partial);
    for (const i of [0, 2]) {
      for (const f of [`results.shard-${i}-of-${N}.jsonl`, `sweep.shard-${i}-of-${N}.json`]) copyFileSync(join(sweepDir, f), join(partial, f));
    }
    io.out = io.err = '';
    expectOneLineError(
      io,
      await run(...words(mergeLines[0]!, { RUN: runDir }).slice(1, -1), partial),
      /unit step 0 pair 0,2 is missing \(shard 1\/3\) and 19 more units; complete the shards with lie-bracket sweep .* --shard i\/3/,
    );
    expect(existsSync(join(partial, 'results.jsonl'))).toBe(false);
  });
});

describe('the examples themselves (no cluster here: syntax and consistency only)', () => {
  test.skipIf(spawnSync('bash', ['--version']).status !== 0)('the Slurm scripts parse (bash -n)', () => {
    for (const f of ['sweep-array.sbatch', 'merge.sbatch']) {
      const r = spawnSync('bash', ['-n', join(EXAMPLES, f)], { encoding: 'utf8' });
      expect(r.status, `${f}: ${r.stderr}`).toBe(0);
    }
  });

  test('the Slurm array covers the shards 0…N−1, with W = the CPUs of a task; merge.sbatch says how it depends on the array', () => {
    const s = example('sweep-array.sbatch');
    const n = Number(/^N=(\d+)$/m.exec(s)?.[1]);
    expect(s).toMatch(new RegExp(`^#SBATCH --array=0-${n - 1}$`, 'm'));
    expect(s).toMatch(/^INDEX=\$\{SLURM_ARRAY_TASK_ID\}$/m);
    expect(s).toMatch(/^#SBATCH --cpus-per-task=\d+$/m);
    expect(s).toMatch(/^W=\$\{SLURM_CPUS_PER_TASK:-1\}$/m);
    expect(example('merge.sbatch')).toMatch(/sbatch --dependency=afterok:\$jid docs\/scaling\/merge\.sbatch/);
  });

  test('the manifests are well-formed YAML (Prettier’s parser), formatted; the Indexed Job’s N and W match its completions and CPUs', async () => {
    for (const f of readdirSync(EXAMPLES).filter((n) => n.endsWith('.yaml'))) {
      const text = example(f);
      expect(await format(text, { parser: 'yaml', printWidth: 150, singleQuote: true }), f).toBe(text);
    }
    await expect(format('a: [b\n', { parser: 'yaml' })).rejects.toThrow(); // the check can fail
    const job = example('sweep-indexed-job.yaml');
    expect(job).toMatch(/^ {2}completionMode: Indexed$/m);
    expect(job).toMatch(/^ {14}INDEX=\$JOB_COMPLETION_INDEX$/m);
    const completions = Number(/^ {2}completions: (\d+)$/m.exec(job)?.[1]);
    expect(Number(/^ {2}parallelism: (\d+)$/m.exec(job)?.[1])).toBeLessThanOrEqual(completions);
    expect(job).toMatch(new RegExp(`- name: N\\n {14}value: '${completions}'\\n`));
    const w = /- name: W\n {14}value: '(\d+)'\n/.exec(job)?.[1];
    expect(job).toMatch(new RegExp(`requests:\\n {14}cpu: '${w}'`));
    for (const f of ['sweep-indexed-job.yaml', 'merge-job.yaml']) expect(example(f)).toMatch(/claimName: lie-bracket-runs/);
    expect(example('runs-pvc.yaml')).toMatch(/name: lie-bracket-runs\n[\s\S]*accessModes: \[ReadWriteMany\]/);
  });

  test('docs/scaling.md shows every example file verbatim, each once', () => {
    const doc = readFileSync('docs/scaling.md', 'utf8');
    const shown = [...doc.matchAll(/^```\S* file=(\S+)\n([\s\S]*?)^```$/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(shown.map(([f]) => f).sort()).toEqual(
      readdirSync(EXAMPLES)
        .map((f) => `${EXAMPLES}/${f}`)
        .sort(),
    );
    for (const [f, text] of shown) expect(text, f).toBe(readFileSync(f, 'utf8'));
  });
});
