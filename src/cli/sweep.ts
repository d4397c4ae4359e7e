/** `lie-bracket sweep` (checkpoints × pairs of a run, resumable, shardable, on worker threads) and `lie-bracket merge`. */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { DType } from '../engine/dtype.js';
import { UserError } from '../errors.js';
import type { Summary } from '../study/sweep-stats.js';
import { defaultWorkers, mergeShards, parseShard, runSweep, type Shard, type SweepResult } from '../study/sweep.js';
import { formatSummary } from './stats.js';
import { commandReporter, parseIntArg, parsePairs, type ProgressTask } from './util.js';

interface SweepFlags {
  steps?: number[];
  first?: number;
  pairs?: [number, number][];
  probes: number;
  bn: 'eval' | 'train';
  dtype?: DType;
  saveVectors?: boolean;
  out?: string;
  shard?: Shard;
  workers?: number;
  json?: boolean;
}

function parseSteps(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  if (parts.some((s) => !/^\d+$/.test(s))) throw new InvalidArgumentError(`--steps must be a list of checkpoint steps like "0,10,100", got "${v}"`);
  return parts.map(Number);
}

function parseShardArg(v: string): Shard {
  try {
    return parseShard(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

const readSummary = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Summary;

export function formatSweepResult(r: SweepResult): string {
  const out: string[] = [];
  const speed = r.computed > 0 ? `: ${r.unitsPerSecond.toFixed(2)} units/s with ${r.workers} worker${r.workers > 1 ? 's' : ''}` : '';
  out.push(
    `sweep → ${r.out}: ${r.units} unit(s)${r.resumed > 0 ? `, ${r.resumed} already done` : ''}, ${r.computed} computed in ${r.seconds.toFixed(1)} s${speed}`,
  );
  if (r.workerNote) out.push(`note: ${r.workerNote}`);
  out.push(`results: ${r.resultsFile}${r.complete ? '' : ' (incomplete)'}`);
  if (r.vectorFiles.length > 0) out.push(`vectors: ${r.vectorFiles.length} file(s) in ${r.out}/vectors`);
  return out.join('\n');
}

export function sweepCommand(): Command {
  return new Command('sweep')
    .description(
      'brackets of example pairs at every checkpoint of a run, with per-tensor statistics and probe effects; resumable, shardable, on worker threads',
    )
    .argument('<run-dir>', 'a training run directory (lie-bracket train --out)')
    .option('--steps <list>', 'checkpoint steps, e.g. "0,10,100" (default: all)', parseSteps)
    .option('--first <k>', 'all pairs among the first K test examples, as the seed study (default: 6)', parseIntArg('--first', 2))
    .option('--pairs <pairs>', 'example pairs instead, as test-split indices, e.g. "0,1;2,3"', parsePairs)
    .option('--probes <n>', 'probe batch: the first N test examples (0: none)', parseIntArg('--probes', 0), 32)
    .addOption(
      new Option('--bn <mode>', 'BatchNorm during brackets: eval (running statistics) or train (per-example statistics)')
        .choices(['eval', 'train'])
        .default('eval'),
    )
    .addOption(new Option('--dtype <dtype>', 'float type (default: the run’s)').choices(['float64', 'float32']))
    .option('--save-vectors', 'also write each checkpoint’s bracket vectors: vectors/step-<n>.safetensors, keys <x>_<y>/<param>')
    .option('--out <dir>', 'output directory (default: <run-dir>/sweep)')
    .option('--shard <i/n>', 'compute only units u with u mod n = i (join the shards with lie-bracket merge)', parseShardArg)
    .option('--workers <w>', `worker threads (default: the number of cores, here ${defaultWorkers()})`, parseIntArg('--workers', 1))
    .option('--json', 'print one JSON object at the end instead of text (progress stays on stderr)')
    .addHelpText(
      'after',
      `
Output (see docs/sweep-format.md): <out>/sweep.json (parameters), <out>/results.jsonl (one line
per (step, pair) unit, in unit order once complete), <out>/summary.json (lie-bracket stats).
A killed sweep continues where it stopped when run again with the same flags.

Examples:
  lie-bracket sweep runs/demo
  lie-bracket sweep runs/demo --steps 0,100,300 --pairs "0,1;2,3" --probes 64 --save-vectors
  lie-bracket sweep runs/demo --shard 0/4 --workers 1      # one of 4 scheduler jobs
  lie-bracket merge runs/demo/sweep                         # then join the shards`,
    )
    .action(async (runDir: string, f: SweepFlags, c: Command) => {
      if (f.first !== undefined && f.pairs !== undefined) throw new UserError('give either --first K or --pairs, not both');
      const progress = commandReporter(c);
      let bar: ProgressTask | undefined;
      let r: SweepResult;
      try {
        r = await runSweep({
          runDir,
          steps: f.steps,
          first: f.first,
          pairs: f.pairs,
          probes: f.probes,
          bn: f.bn,
          dtype: f.dtype,
          saveVectors: f.saveVectors ?? false,
          out: f.out,
          shard: f.shard,
          workers: f.workers,
          onStart: (done, total) => (bar = progress.task('sweep', total, { unit: 'units', start: done })),
          onUnit: (done) => bar?.update(done),
        });
      } finally {
        progress.stop();
      }
      if (f.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      process.stdout.write(`${formatSweepResult(r)}\n`);
      if (r.summaryFile) process.stdout.write(`\n${formatSummary(readSummary(r.summaryFile), r.out)}\n\nsummary: ${r.summaryFile}\n`);
      else if (r.complete && f.shard)
        process.stdout.write(`shard ${f.shard.index}/${f.shard.count} complete; join the shards with lie-bracket merge ${r.out}\n`);
    });
}

export function mergeCommand(): Command {
  return new Command('merge')
    .description('join the shards of a sweep (results.shard-<i>-of-<n>.jsonl) into results.jsonl, checking that they cover every unit exactly once')
    .argument('<inputs...>', 'sweep directories holding shard results, or shard result files')
    .option('--out <dir>', 'output directory (default: the first input directory)')
    .option('--json', 'print one JSON object instead of text')
    .addHelpText(
      'after',
      `
Examples:
  lie-bracket merge runs/demo/sweep
  lie-bracket merge node1/sweep node2/sweep --out runs/demo/sweep`,
    )
    .action((inputs: string[], f: { out?: string; json?: boolean }) => {
      const r = mergeShards(inputs, { out: f.out });
      if (f.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      process.stdout.write(`merged ${r.shards.length} shard file(s), ${r.units} units → ${r.resultsFile}\n`);
      if (r.summaryFile) process.stdout.write(`\n${formatSummary(readSummary(r.summaryFile), r.out)}\n\nsummary: ${r.summaryFile}\n`);
    });
}
