/** `lie-bracket stats`: summary statistics of a sweep (summary.json), or the comparison of two sweeps' rankings. */
import { join } from 'node:path';
import { Command } from 'commander';
import { writeFileAtomic } from '../data/atomic.js';
import { compareSweeps, readSweep, summarizeSweep, type Comparison, type RankComparison, type Summary } from '../study/sweep-stats.js';
import { UserError } from '../errors.js';
import { parseIntArg, sci, table } from './util.js';

interface StatsFlags {
  bootstrap: number;
  seed: number;
  out?: string;
  json?: boolean;
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '–');
const ci = (c: readonly [number, number], fmt: (v: number) => string = (v) => sci(v, 2)) => `[${fmt(c[0])}, ${fmt(c[1])}]`;

export function formatSummary(s: Summary, dir: string, maxFeatures = 20): string {
  const out: string[] = [];
  const sw = s.sweep;
  out.push(
    `sweep summary: ${sw.model}, ${sw.steps.length} checkpoint(s) × ${sw.pairs} pair(s) (${sw.unitsPresent} of ${sw.units} units${sw.complete ? '' : ', INCOMPLETE'}), ${sw.probes} probe(s) — ${dir}`,
  );
  out.push('');
  out.push('bracket vs gradient across parameter tensors: log RMS(B_t) = α_pair + slope·log ĝ_t + e, ĝ_t = √(RMS(g_x,t)·RMS(g_y,t));');
  out.push('pair × tensor model: log RMS(B)_{pt} = μ + a_p + c_t + e (variance explained: both factors, pair only, tensor only)');
  const row = (label: string, pairs: number, g: Summary['overall']['gradientFit'], t: Summary['overall']['tensorModel']) => [
    label,
    String(pairs),
    f3(g.slope),
    f3(g.slopeStderr),
    f3(g.r2),
    f3(g.withinR2),
    f3(g.residualSd),
    f3(t.r2),
    f3(t.r2Rows),
    f3(t.r2Cols),
  ];
  out.push(
    table(
      ['step', 'pairs', 'slope', '± s.e.', 'R²', 'within R²', 'resid sd', 'p×t R²', 'pair only', 'tensor only'],
      [
        ...s.checkpoints.map((c) => row(String(c.step), c.pairs, c.gradientFit, c.tensorModel)),
        row('overall', s.overall.units, s.overall.gradientFit, s.overall.tensorModel),
      ],
    ),
  );
  if (s.overall.factorByStep.length > 1) {
    out.push('');
    out.push('the pair factor e^α over training (overall fit): mean and spread of α per checkpoint');
    out.push(
      table(
        ['step', 'mean α', 'sd α'],
        s.overall.factorByStep.map((f) => [String(f.step), f3(f.mean), f3(f.sd)]),
      ),
    );
  }
  const feats = s.overall.features;
  if (feats.length > 0) {
    out.push('');
    out.push(
      `order sensitivity per output, overall (each pair averaged over checkpoints; ${Math.round(s.bootstrap.level * 100)}% bootstrap interval over ${s.overall.pairs} pairs):`,
    );
    out.push(
      table(
        ['rank', 'output', 'mean |J_f·B|', '± s.e.', `${Math.round(s.bootstrap.level * 100)}% interval`, 'normalised', 'interval', 'rank (norm.)'],
        feats
          .slice(0, maxFeatures)
          .map((f) => [
            String(f.rank),
            f.feature,
            sci(f.meanAbsEffect),
            sci(f.stderr, 1),
            ci(f.ci90),
            sci(f.normalized),
            ci(f.normalizedCi90),
            String(f.rankNormalized),
          ]),
      ),
    );
    if (feats.length > maxFeatures) out.push(`(${feats.length - maxFeatures} more outputs: see summary.json)`);
  } else {
    out.push('');
    out.push('(no probe effects: the sweep ran with --probes 0)');
  }
  return out.join('\n');
}

function formatRankComparison(r: RankComparison, maxFeatures: number): string[] {
  const out: string[] = [];
  out.push(
    `Spearman ρ of the scores: ${f3(r.spearman)} ${ci(r.spearmanCi90, f3)}; normalised: ${f3(r.spearmanNormalized)} ${ci(r.spearmanNormalizedCi90, f3)}`,
  );
  out.push(
    table(
      ['output', 'rank A', 'rank B', 'A', 'B', 'B/A', 'interval', 'B/A norm.', 'interval'],
      r.features
        .slice(0, maxFeatures)
        .map((f) => [
          f.feature,
          String(f.rankA),
          String(f.rankB),
          sci(f.a, 2),
          sci(f.b, 2),
          f3(f.ratio),
          ci(f.ratioCi90, f3),
          f3(f.normalizedRatio),
          ci(f.normalizedRatioCi90, f3),
        ]),
    ),
  );
  if (r.features.length > maxFeatures) out.push(`(${r.features.length - maxFeatures} more outputs: use --json)`);
  return out;
}

export function formatComparison(c: Comparison, maxFeatures = 20): string {
  const out: string[] = [];
  out.push(`comparison of order-sensitivity rankings: A = ${c.a.dir} (${c.a.model}), B = ${c.b.dir} (${c.b.model})`);
  out.push(
    `${Math.round(c.bootstrap.level * 100)}% bootstrap intervals over pairs (${c.paired ? 'paired: both sweeps used the same pairs' : 'independent resamples'}, ${c.bootstrap.samples} samples, seed ${c.bootstrap.seed})`,
  );
  out.push('');
  out.push(`overall (each pair averaged over checkpoints; ${c.overall.pairsA} and ${c.overall.pairsB} pairs):`);
  out.push(...formatRankComparison(c.overall, maxFeatures));
  if (c.checkpoints.length > 0) {
    out.push('');
    out.push('per common checkpoint: Spearman ρ (raw, normalised)');
    out.push(
      table(
        ['step', 'ρ', 'interval', 'ρ norm.', 'interval'],
        c.checkpoints.map((k) => [
          String(k.step),
          f3(k.spearman),
          ci(k.spearmanCi90, f3),
          f3(k.spearmanNormalized),
          ci(k.spearmanNormalizedCi90, f3),
        ]),
      ),
    );
  }
  return out.join('\n');
}

export function runStats(
  dirs: readonly string[],
  f: StatsFlags,
): { kind: 'summary'; dir: string; file: string; summary: Summary } | { kind: 'comparison'; file: string; comparison: Comparison } {
  const boot = { samples: f.bootstrap, seed: f.seed, level: 0.9 };
  if (dirs.length === 1) {
    const d = readSweep(dirs[0]!);
    const summary = summarizeSweep(d, boot);
    const file = f.out ?? join(d.dir, 'summary.json');
    writeFileAtomic(file, `${JSON.stringify(summary, null, 2)}\n`);
    return { kind: 'summary', dir: d.dir, file, summary };
  }
  const a = readSweep(dirs[0]!);
  const b = readSweep(dirs[1]!);
  const comparison = compareSweeps(a, b, boot);
  const file = f.out ?? join(a.dir, 'comparison.json');
  writeFileAtomic(file, `${JSON.stringify(comparison, null, 2)}\n`);
  return { kind: 'comparison', file, comparison };
}

export function statsCommand(): Command {
  return new Command('stats')
    .description(
      'statistics of a sweep: bracket vs gradient fit per tensor, pair × tensor model, ranking of outputs by order sensitivity; with two sweeps, the comparison of their rankings',
    )
    .argument('<sweep>', 'a sweep directory (or a run directory with sweep/)')
    .argument('[other]', 'a second sweep to compare rankings with (e.g. the same pairs under another loss)')
    .option('--bootstrap <n>', 'bootstrap resamples over pairs', parseIntArg('--bootstrap', 10), 2000)
    .option('--seed <n>', 'seed of the bootstrap', parseIntArg('--seed'), 0)
    .option('--out <file>', 'where to write (default: <sweep>/summary.json, or <sweep>/comparison.json with two sweeps)')
    .option('--json', 'print the JSON instead of tables')
    .addHelpText(
      'after',
      `
Examples:
  lie-bracket stats runs/demo/sweep
  lie-bracket stats runs/demo --bootstrap 10000 --json
  lie-bracket stats runs/bce/sweep runs/grouped/sweep     # compare two runs' rankings`,
    )
    .action((sweep: string, other: string | undefined, f: StatsFlags) => {
      if (other !== undefined && other === sweep) throw new UserError('give two different sweeps to compare');
      const r = runStats(other !== undefined ? [sweep, other] : [sweep], f);
      const obj = r.kind === 'summary' ? r.summary : r.comparison;
      if (f.json) process.stdout.write(`${JSON.stringify(obj)}\n`);
      else process.stdout.write(`${r.kind === 'summary' ? formatSummary(r.summary, r.dir) : formatComparison(r.comparison)}\n\nwritten: ${r.file}\n`);
    });
}
