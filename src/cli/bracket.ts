/** `lie-bracket bracket`: brackets of example pairs at given weights, per tensor and per prediction. */
import { statSync } from 'node:fs';
import { Command } from 'commander';
import { analyzePairs, firstKPairs, type FeatureScore, type PairAnalysis } from '../bracket/analysis.js';
import { vectorsForSaving } from '../bracket/stats.js';
import { writeSafetensors } from '../data/safetensors.js';
import { UserError } from '../errors.js';
import { addSourceOptions, headerLine, resolveSource, sourceHeader, type SourceFlags, type SourceHeader } from './source.js';
import { formatBytes, parseIntArg, parsePairs, sci, table, withPairProgress } from './util.js';

export interface BracketFlags extends SourceFlags {
  pairs?: [number, number][];
  first?: number;
  probe?: number;
  probes?: number;
  saveVectors?: string;
  json?: boolean;
}

export interface BracketReport extends SourceHeader {
  outputs: readonly string[];
  /** Single probe (--probe): its index and label; each pair then has `logitEffect`. */
  probe?: { index: number; labels: number[] };
  /** Probe batch (--probes): indices into the test split; each pair then has `probeEffects`. */
  probeIndices?: number[];
  pairs: (PairAnalysis & { logitEffect?: number[] })[];
  features: FeatureScore[];
  seconds: number;
  /** With --save-vectors: the file written, its number of tensors and pairs, and its size. */
  savedVectors?: { file: string; tensors: number; pairs: number; bytes: number };
}

export function runBracket(f: BracketFlags, onPair: () => void = () => {}): BracketReport {
  const t0 = performance.now();
  if (f.saveVectors !== undefined && f.saveVectors.trim() === '') throw new UserError('--save-vectors needs a file name');
  if (f.first !== undefined && f.pairs !== undefined) throw new UserError('give either --pairs or --first K, not both');
  if (f.probe !== undefined && f.probes !== undefined) throw new UserError('give either --probe K (one probe) or --probes N (the first N test examples), not both');
  const src = resolveSource(f);
  const pairs = f.first !== undefined ? firstKPairs(f.first) : (f.pairs ?? [[0, 1]]);
  if (pairs.length === 0) throw new UserError('--first needs at least 2 examples to form a pair');
  const probeIndices = f.probe !== undefined ? [f.probe] : f.probes !== undefined ? Array.from({ length: Math.min(f.probes, src.probes.length) }, (_, i) => i) : [];
  const a = analyzePairs(src, pairs, { probeIndices, keepVectors: f.saveVectors !== undefined, onPair });
  let savedVectors: BracketReport['savedVectors'];
  if (f.saveVectors && a.vectors) {
    const tensors = vectorsForSaving(a.vectors);
    writeSafetensors(f.saveVectors, tensors, { model: src.model.name, loss: src.loss.name, weights: src.weights });
    savedVectors = { file: f.saveVectors, tensors: Object.keys(tensors).length, pairs: a.vectors.length, bytes: statSync(f.saveVectors).size };
  }
  const report: BracketReport = {
    ...sourceHeader(src, f),
    outputs: src.data.labelNames,
    pairs: a.pairs,
    features: a.features,
    seconds: (performance.now() - t0) / 1000,
  };
  if (f.probe !== undefined) {
    const t = src.probes.get(f.probe).y;
    report.probe = { index: f.probe, labels: Array.from(t.keys()).filter((k) => t[k]! > 0.5) };
    for (const p of report.pairs) {
      p.logitEffect = p.probeEffects![0]!;
      delete p.probeEffects;
    }
  } else if (probeIndices.length > 0) report.probeIndices = probeIndices;
  if (savedVectors) report.savedVectors = savedVectors;
  return report;
}

export function formatReport(r: BracketReport): string {
  const out: string[] = [];
  out.push(headerLine('lie-bracket', r));
  out.push(`B = H_y g_x − H_x g_y for ${r.pairs.length} pair(s) of the ${r.split} split of ${r.data} (${r.seconds.toFixed(2)} s)`);
  out.push('');
  out.push(
    table(
      ['pair (x,y)', 'loss x', 'loss y', '‖g_x‖', '‖g_y‖', 'cos(g_x,g_y)', '‖B‖'],
      r.pairs.map((p) => [`${p.x},${p.y}`, p.lossX.toFixed(4), p.lossY.toFixed(4), sci(p.gradNormX), sci(p.gradNormY), p.gradCosine.toFixed(3), sci(p.bracketNorm)]),
    ),
  );
  for (const p of r.pairs.slice(0, 8)) {
    out.push('');
    out.push(`pair ${p.x},${p.y}: per parameter tensor`);
    out.push(
      table(
        ['tensor', '‖B‖', 'RMS(B)', '‖g_x‖', '‖g_y‖'],
        Object.entries(p.tensors).map(([k, t]) => [k, sci(t.bracketNorm), sci(t.bracketRms), sci(t.gradNormX), sci(t.gradNormY)]),
      ),
    );
  }
  if (r.pairs.length > 8) out.push(`\n(${r.pairs.length - 8} more pairs: use --json for all)`);
  if (r.probe) {
    const label = r.probe.labels.map((k) => r.outputs[k]).join(', ') || 'no positive label';
    out.push('');
    out.push(`change of the logits of probe example ${r.probe.index} (${label}) along B, J_f·B; the two orders' logits differ by ε² times this:`);
    const shown = r.pairs.slice(0, 6);
    out.push(table(['output', ...shown.map((p) => `pair ${p.x},${p.y}`)], r.outputs.map((name, i) => [name, ...shown.map((p) => sci(p.logitEffect?.[i] ?? NaN))])));
  }
  if (r.features.length > 0) {
    out.push('');
    out.push(`order sensitivity per output over ${r.pairs.length} pair(s) and ${r.probeIndices?.length ?? 1} probe(s): mean |J_f·B| (± standard error over pairs), and normalised by ‖g_x‖‖g_y‖`);
    out.push(table(['output', 'mean |J_f·B|', '± s.e.', 'normalised'], r.features.map((f) => [f.feature, sci(f.meanAbsEffect), sci(f.stderr, 1), sci(f.normalized)])));
  }
  if (r.savedVectors) {
    const v = r.savedVectors;
    out.push('');
    out.push(`bracket vectors: ${v.file} (${v.tensors} tensors, ${v.pairs} pair${v.pairs === 1 ? '' : 's'}, ${formatBytes(v.bytes)})`);
  }
  return out.join('\n');
}

export function bracketCommand(): Command {
  const cmd = new Command('bracket').description('compute the bracket B = H_y g_x − H_x g_y of example pairs: per parameter tensor and per prediction');
  addSourceOptions(cmd)
    .option('--pairs <pairs>', 'example pairs as indices into the split, e.g. "0,1;2,3" (default: "0,1")', parsePairs)
    .option('--first <k>', 'all pairs among the first K examples (the seed study used 6)', parseIntArg('--first', 2))
    .option('--probe <k>', 'a test example whose logits’ change along B (J_f·B) is reported', parseIntArg('--probe'))
    .option('--probes <n>', 'a probe batch: the first N test examples; ranks outputs by order sensitivity (default: no probes)', parseIntArg('--probes', 1))
    .option('--save-vectors <file>', 'write the full bracket vectors as safetensors, keys <x>_<y>/<param name> (and say what was written)')
    .option('--json', 'print one JSON object instead of tables (progress stays on stderr)')
    .addHelpText(
      'after',
      `
Examples:
  lie-bracket bracket --model convnet --pairs "0,1;2,3" --probe 6
  lie-bracket bracket --run runs/demo --step 100 --first 6 --probes 32 --json
  lie-bracket bracket --model mlp --weights my.safetensors --loss ce --dtype float32 --save-vectors b.safetensors`,
    )
    .action((f: BracketFlags, c: Command) => {
      const report = withPairProgress(c, 'bracket', f, (tick) => runBracket(f, tick));
      process.stdout.write(f.json ? `${JSON.stringify(report)}\n` : `${formatReport(report)}\n`);
    });
  return cmd;
}
