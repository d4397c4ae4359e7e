/** `lie-bracket bracket`: brackets of example pairs at given weights, per tensor and per prediction. */
import { Command } from 'commander';
import { runBracket, type BracketOptions, type BracketReport } from '../study/bracket-report.js';
import { addSourceOptions, headerLine } from './source.js';
import { formatBytes, parseIntArg, parsePairs, sci, table, withPairProgress } from './util.js';

export interface BracketFlags extends BracketOptions {
  json?: boolean;
}

export function formatReport(r: BracketReport): string {
  const out: string[] = [];
  out.push(headerLine('lie-bracket', r));
  out.push(`B = H_y g_x − H_x g_y for ${r.pairs.length} pair(s) of the ${r.split} split of ${r.data} (${r.seconds.toFixed(2)} s)`);
  out.push('');
  out.push(
    table(
      ['pair (x,y)', 'loss x', 'loss y', '‖g_x‖', '‖g_y‖', 'cos(g_x,g_y)', '‖B‖'],
      r.pairs.map((p) => [
        `${p.x},${p.y}`,
        p.lossX.toFixed(4),
        p.lossY.toFixed(4),
        sci(p.gradNormX),
        sci(p.gradNormY),
        p.gradCosine.toFixed(3),
        sci(p.bracketNorm),
      ]),
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
    out.push(
      table(
        ['output', ...shown.map((p) => `pair ${p.x},${p.y}`)],
        r.outputs.map((name, i) => [name, ...shown.map((p) => sci(p.logitEffect?.[i] ?? NaN))]),
      ),
    );
  }
  if (r.features.length > 0) {
    out.push('');
    out.push(
      `order sensitivity per output over ${r.pairs.length} pair(s) and ${r.probeIndices?.length ?? 1} probe(s): mean |J_f·B| (± standard error over pairs), and normalised by ‖g_x‖‖g_y‖`,
    );
    out.push(
      table(
        ['output', 'mean |J_f·B|', '± s.e.', 'normalised'],
        r.features.map((f) => [f.feature, sci(f.meanAbsEffect), Number.isFinite(f.stderr) ? sci(f.stderr, 1) : '— (1 pair)', sci(f.normalized)]),
      ),
    );
  }
  if (r.savedVectors) {
    const v = r.savedVectors;
    out.push('');
    out.push(`bracket vectors: ${v.file} (${v.tensors} tensors, ${v.pairs} pair${v.pairs === 1 ? '' : 's'}, ${formatBytes(v.bytes)})`);
  }
  return out.join('\n');
}

export function bracketCommand(): Command {
  const cmd = new Command('bracket').description(
    'compute the bracket B = H_y g_x − H_x g_y of example pairs: per parameter tensor and per prediction',
  );
  addSourceOptions(cmd)
    .option('--pairs <pairs>', 'example pairs as indices into the split, e.g. "0,1;2,3" (default: "0,1")', parsePairs)
    .option('--first <k>', 'all pairs among the first K examples (the seed study used 6)', parseIntArg('--first', 2))
    .option('--probe <k>', 'a test example whose logits’ change along B (J_f·B) is reported', parseIntArg('--probe'))
    .option(
      '--probes <n>',
      'a probe batch: the first N test examples; ranks outputs by order sensitivity (default: no probes)',
      parseIntArg('--probes', 1),
    )
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
