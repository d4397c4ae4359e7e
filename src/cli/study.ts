/** `lie-bracket study`: train → sweep → statistics → report in one resumable command. */
import { Command } from 'commander';
import { UserError } from '../errors.js';
import { writeReport } from '../report/report.js';
import { runStudy, STUDY_VERIFY_EPS, type StudyResult } from '../study/study.js';
import { TrainingInterrupted } from '../study/train.js';
import { addTrainOptions, configFromFlags, differenceLabel, exitInterrupted, shellQuote, whileSigintStops, type TrainFlags } from './train.js';
import { parseEpsList } from './verify.js';
import { commandReporter, parseIntArg, sci, table, type ProgressTask } from './util.js';

interface StudyFlags extends TrainFlags {
  first: number;
  probes: number;
  allPairs: number;
  verify: boolean;
  /** The swap step sizes of the verify stage. */
  eps?: number[];
  saveVectors?: boolean;
  workers?: number;
  json?: boolean;
  skipTrain?: boolean;
}

export function formatStudy(r: StudyResult): string {
  const out: string[] = [];
  out.push(`study done in ${r.seconds.toFixed(1)} s: ${r.runDir}`);
  const o = r.summary?.overall;
  if (o?.gradientFit) {
    out.push(
      `bracket RMS vs gradient RMS across tensors (log-log, per-pair intercepts): slope ${o.gradientFit.slope.toFixed(2)}, R² ${o.gradientFit.r2.toFixed(3)}, residual sd ${o.gradientFit.residualSd.toFixed(2)}`,
    );
  }
  if (o?.tensorModel)
    out.push(`pair factor × tensor factor model explains ${(100 * o.tensorModel.r2).toFixed(1)}% of the variance of log bracket RMS`);
  if (o?.features && o.features.length > 0) {
    out.push('');
    out.push('most order-sensitive outputs (mean |J_f·B| over pairs and probes, all checkpoints):');
    out.push(
      table(
        ['output', 'mean |J_f·B|', '90% interval'],
        [...o.features]
          .sort((a, b) => a.rank - b.rank)
          .slice(0, 5)
          .map((f) => [f.feature, sci(f.meanAbsEffect), `${sci(f.ci90[0], 2)} … ${sci(f.ci90[1], 2)}`]),
      ),
    );
  }
  out.push('');
  if (r.report) out.push(`report: ${r.report}`);
  return out.join('\n');
}

export function studyCommand(): Command {
  return addTrainOptions(
    new Command('study').description('the whole experiment: train → sweep brackets over checkpoints → statistics → interactive report (resumable)'),
  )
    .option('--first <k>', 'bracket all pairs among the first K test examples', parseIntArg('--first', 2), 6)
    .option('--probes <n>', 'probe batch: the first N test examples', parseIntArg('--probes', 1), 32)
    .option(
      '--all-pairs <n>',
      'also the N×N logit-effect matrices of the first N test examples at the last checkpoint (0: skip)',
      parseIntArg('--all-pairs'),
      0,
    )
    .option('--verify', 'also verify the bracket against real swapped SGD steps (pair 0,1, last checkpoint)', false)
    .option(
      '--eps <list>',
      `step sizes ε of --verify, comma-separated (default: ${STUDY_VERIFY_EPS.join(',')}); Adam's ε is --adam-eps`,
      parseEpsList,
    )
    .option('--save-vectors', 'also save the sweep’s bracket vectors (sweep/vectors/step-<n>.safetensors)')
    .option('--workers <n>', 'worker threads for the sweep (default: the number of cores)', parseIntArg('--workers', 1))
    .option(
      '--skip-train',
      'analyse the complete run in --out as it is (one of ours, or one brought in with lie-bracket import): no training, and no training flags',
    )
    .option('--json', 'print a JSON summary instead of text')
    .addHelpText(
      'after',
      `
Examples:
  lie-bracket study --data fashion-mnist --model smoothconvnet --loss bce --steps 300 --out runs/demo
  lie-bracket study --data synthetic --model xresnet --loss grouped --all-pairs 32 --verify --out runs/synthetic-grouped
Running the same command again reuses every finished stage.`,
    )
    .action(async (f: StudyFlags, c: Command) => {
      if (f.eps !== undefined && !f.verify)
        throw new UserError(`--eps sets the step sizes of the verify stage: add --verify (Adam's ε is --adam-eps)`);
      if (f.skipTrain) {
        if (f.out === undefined) throw new UserError('--skip-train needs --out RUN: the run to analyse');
        // the run's own configuration is used: a training flag given here would be silently ignored
        const trainFlags = addTrainOptions(new Command()).options.map((opt) => opt.attributeName());
        const given = trainFlags.filter((k) => k !== 'out' && ['cli', 'env'].includes(c.getOptionValueSource(k) ?? ''));
        if (given.length > 0) {
          const flag = c.options.find((opt) => opt.attributeName() === given[0])?.long ?? given[0];
          throw new UserError(`${flag}: with --skip-train the run's own configuration is used; drop ${flag}`);
        }
      }
      const { config, runDir } = configFromFlags({ ...f, resume: undefined, out: f.out ?? f.resume });
      const progress = commandReporter(c);
      let bar: ProgressTask | undefined;
      const rerun = () => {
        const raw = (c.parent as unknown as { rawArgs?: string[] } | null)?.rawArgs;
        return raw && raw.length > 2
          ? `lie-bracket ${raw.slice(2).map(shellQuote).join(' ')}`
          : `lie-bracket study --out ${shellQuote(runDir)} (with the same flags)`;
      };
      const r = await runStudy(config, runDir, {
        skipTrain: f.skipTrain === true,
        report: writeReport,
        verifyEps: f.eps,
        interruptible: whileSigintStops,
        differenceLabel: differenceLabel(f),
        first: f.first,
        probes: f.probes,
        allPairs: f.allPairs,
        verify: f.verify,
        saveVectors: f.saveVectors === true,
        workers: f.workers,
        onStage: (stage, detail) => {
          bar = undefined;
          progress.stage(stage, detail); // stops the previous stage's bar
        },
        onStep: (step, loss) => {
          bar ??= progress.task('train', config.steps, { unit: 'steps', start: step - 1 });
          bar.update(step, `loss ${loss.toFixed(4)}`);
        },
        onUnit: (done, total) => {
          bar ??= progress.task('sweep', total, { unit: 'brackets', start: done - 1 });
          bar.update(done);
        },
      })
        .catch((e: unknown) => {
          if (e instanceof TrainingInterrupted) return e;
          throw e;
        })
        .finally(() => progress.stop());
      if (r instanceof TrainingInterrupted) return exitInterrupted(r, rerun());
      process.stdout.write(f.json ? `${JSON.stringify({ ...r, sweep: { ...r.sweep } })}\n` : `${formatStudy(r)}\n`);
    });
}
