/** `lie-bracket study`: train → sweep → statistics → report in one resumable command. */
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { runStudy, type StudyResult } from '../study/study.js';
import { addTrainOptions, configFromFlags, type TrainFlags } from './train.js';
import { parseIntArg, sci, table } from './util.js';

interface StudyFlags extends TrainFlags {
  first: number;
  probes: number;
  allPairs: number;
  verify: boolean;
  saveVectors?: boolean;
  workers?: number;
  json?: boolean;
}

export function formatStudy(r: StudyResult): string {
  const out: string[] = [];
  out.push(`study done in ${r.seconds.toFixed(1)} s: ${r.runDir}`);
  const o = r.summary?.overall;
  if (o?.gradientFit) {
    out.push(`bracket RMS vs gradient RMS across tensors (log-log, per-pair intercepts): slope ${o.gradientFit.slope.toFixed(2)}, R² ${o.gradientFit.r2.toFixed(3)}, residual sd ${o.gradientFit.residualSd.toFixed(2)}`);
  }
  if (o?.tensorModel) out.push(`pair factor × tensor factor model explains ${(100 * o.tensorModel.r2).toFixed(1)}% of the variance of log bracket RMS`);
  if (o?.features && o.features.length > 0) {
    out.push('');
    out.push('most order-sensitive outputs (mean |J_f·B| over pairs and probes, all checkpoints):');
    out.push(table(['output', 'mean |J_f·B|', '90% interval'], [...o.features].sort((a, b) => a.rank - b.rank).slice(0, 5).map((f) => [f.feature, sci(f.meanAbsEffect), `${sci(f.ci90[0], 2)} … ${sci(f.ci90[1], 2)}`])));
  }
  out.push('');
  out.push(`report: ${r.report}`);
  return out.join('\n');
}

export function studyCommand(): Command {
  return addTrainOptions(new Command('study').description('the whole experiment: train → sweep brackets over checkpoints → statistics → interactive report (resumable)'))
    .option('--first <k>', 'bracket all pairs among the first K test examples (default 6)', parseIntArg('--first', 2), 6)
    .option('--probes <n>', 'probe batch: the first N test examples (default 32)', parseIntArg('--probes', 1), 32)
    .option('--all-pairs <n>', 'also the N×N logit-effect matrices of the first N test examples at the last checkpoint (0: skip)', parseIntArg('--all-pairs'), 0)
    .option('--verify', 'also verify the bracket against real swapped SGD steps (pair 0,1, last checkpoint)', false)
    .option('--save-vectors', 'also save the sweep’s bracket vectors (sweep/vectors/step-<n>.safetensors)')
    .option('--workers <n>', 'worker threads for the sweep (default: the number of cores)', parseIntArg('--workers', 1))
    .option('--json', 'print a JSON summary instead of text')
    .addHelpText(
      'after',
      `
Examples:
  lie-bracket study --data fashion-mnist --model smoothconvnet --loss bce --steps 300 --out runs/demo
  lie-bracket study --data synthetic --model xresnet --loss grouped --all-pairs 32 --verify --out runs/synthetic-grouped
Running the same command again reuses every finished stage.`,
    )
    .action(async (f: StudyFlags) => {
      const { config, runDir } = configFromFlags({ ...f, resume: undefined, out: f.out ?? f.resume });
      const tty = !f.json && process.stderr.isTTY;
      let bar: cliProgress.SingleBar | undefined;
      const log = (s: string) => {
        if (!f.json) process.stderr.write(`${s}\n`);
      };
      const newBar = (fmt: string, total: number, start: number) => {
        bar?.stop();
        if (!tty) return;
        bar = new cliProgress.SingleBar({ format: fmt, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
        bar.start(total, start);
      };
      const r = await runStudy(config, runDir, {
        first: f.first,
        probes: f.probes,
        allPairs: f.allPairs,
        verify: f.verify,
        saveVectors: f.saveVectors === true,
        workers: f.workers,
        onStage: (stage, detail) => {
          bar?.stop();
          bar = undefined;
          log(`[${stage}]${detail ? ` ${detail}` : ''}`);
        },
        onStep: (step, loss) => {
          if (!bar && tty) newBar('train [{bar}] {value}/{total} | loss {loss} | eta {eta_formatted}', config.steps, step - 1);
          bar?.update(step, { loss: loss.toFixed(4) });
        },
        onUnit: (done, total) => {
          if (!bar && tty) newBar('sweep [{bar}] {value}/{total} brackets | eta {eta_formatted}', total, done - 1);
          bar?.update(done);
        },
      });
      bar?.stop();
      process.stdout.write(f.json ? `${JSON.stringify({ ...r, sweep: { ...r.sweep } })}\n` : `${formatStudy(r)}\n`);
    });
}
