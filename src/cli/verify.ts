/**
 * `lie-bracket verify`: the bracket against real swapped SGD steps, per ε — the relative error of
 * (θ_xy − θ_yx)/ε² against B, its observed order of convergence, and the ReLU/max-pool units that
 * switch state along the steps (where the ε² law cannot hold); optionally with the activation
 * pattern frozen, and the decomposition of a real optimizer's two-step order effect.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { runVerify, type VerifyOptions, type VerifyReport } from '../study/verify-report.js';
import { addSourceOptions, headerLine } from './source.js';
import { parseIntArg, parsePairs, sci, table, withPairProgress } from './util.js';

export interface VerifyFlags extends VerifyOptions {
  json?: boolean;
}

export function parseEpsList(v: string): number[] {
  const parts = v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (parts.length === 0) throw new InvalidArgumentError('--eps: give at least one step size, e.g. "1e-2,1e-3,1e-4"');
  return parts.map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`--eps: step sizes must be finite numbers > 0, got "${s}"`);
    return n;
  });
}

const fmtEps = (e: number) => (Number.isInteger(Math.log10(e)) ? `1e${Math.log10(e)}` : e.toExponential(1));

export function formatVerify(r: VerifyReport): string {
  const out: string[] = [];
  out.push(`${headerLine('lie-bracket verify', r)}${r.frozen ? ', activation pattern frozen at θ' : ''}`);
  out.push(
    `real swapped SGD steps θ_xy, θ_yx against the bracket B: error = ‖(θ_xy − θ_yx)/ε² − B‖/‖B‖; order = log(error ratio)/log(ε ratio), 1 for the ε² law`,
  );
  for (const p of r.pairs) {
    out.push('');
    const units =
      p.kinkUnits > 0 ? `${p.kinkUnits.toLocaleString('en-US')} ReLU/max-pool units in the two forward passes` : 'no ReLU/max-pool units (smooth)';
    out.push(`pair ${p.x},${p.y}: ‖B‖ = ${sci(p.bracketNorm)}, ${units}`);
    if (p.checks.length === 0) {
      out.push(`  → ${p.verdict}`);
      continue;
    }
    const kinked = p.kinkUnits > 0;
    const header = [
      'ε',
      'error',
      'order',
      'rounding floor',
      ...(kinked ? ['switched at θ_x', 'θ_xy', 'θ_y', 'θ_yx', 'where gradients are taken'] : []),
    ];
    out.push(
      table(
        header,
        p.checks.map((c) => [
          fmtEps(c.eps),
          sci(c.relError),
          c.order === null ? '—' : c.order.toFixed(2),
          sci(c.roundoffFloor, 1),
          ...(kinked ? [...c.kinks.map((k) => String(k.total)), String(c.switchedAtGradients)] : []),
        ]),
      ),
    );
    for (const c of p.checks) if (c.note) out.push(`  ε = ${fmtEps(c.eps)}: ${c.note}`);
    out.push(`  → ${p.verdict}`);
    if (p.optimizer) {
      const o = p.optimizer;
      const logits = o.realLogitNorm !== undefined;
      out.push('');
      out.push(
        `  ${o.optimizer} (lr ${o.lr}, from step ${o.step}): two real steps each way, θ_xy − θ_yx split into parts${logits ? ' (and their effect on the probes’ logits)' : ''}`,
      );
      const frac = (v: number) => (o.realNorm > 0 ? (v / o.realNorm).toFixed(3) : '—');
      out.push(
        table(
          ['  part', '‖·‖', '‖·‖/‖real‖', ...(logits ? ['‖J_f·‖'] : [])],
          [
            ['  real difference', sci(o.realNorm), '1', ...(logits ? [sci(o.realLogitNorm!)] : [])],
            ...Object.entries(o.parts).map(([name, q]) => [`  ${name}`, sci(q.norm), frac(q.norm), ...(logits ? [sci(q.logitNorm ?? NaN)] : [])]),
          ],
        ),
      );
      for (const [name, q] of Object.entries(o.parts)) out.push(`  ${name}: ${q.description}`);
      out.push(
        `  the bracket explains ${(100 * o.share.share).toFixed(1)}% of ‖θ_xy − θ_yx‖ (cosine ${o.share.cosine.toFixed(3)})` +
          (o.logitShare ? `, ${(100 * o.logitShare.share).toFixed(1)}% in logits (cosine ${o.logitShare.cosine.toFixed(3)})` : '') +
          `; of the curvature part (real − state): ${(100 * o.curvatureShare.share).toFixed(1)}% (cosine ${o.curvatureShare.cosine.toFixed(3)})`,
      );
      if (o.remainderRelative > 0.1) {
        out.push(
          `  note: the second-order decomposition does not close at lr ${o.lr} (remainder ${(100 * o.remainderRelative).toFixed(0)}% of the real difference): the step is too large for the expansion, or units switch (see the table above at ε = ${o.lr})`,
        );
      }
      if (o.drained) {
        out.push(
          `  after the momentum buffer drains: ‖D∞‖ = ${sci(o.drained.norm)}, the bracket explains ${(100 * o.drained.share.share).toFixed(1)}% (cosine ${o.drained.share.cosine.toFixed(3)})`,
        );
      }
    }
  }
  return out.join('\n');
}

export function verifyCommand(): Command {
  const cmd = new Command('verify').description(
    'check the bracket against real swapped SGD steps: error and order of convergence per ε, and ReLU/max-pool units that switch',
  );
  addSourceOptions(cmd)
    .option('--pairs <pairs>', 'example pairs as indices into the split, e.g. "0,1;2,3" (default: "0,1")', parsePairs)
    .option('--first <k>', 'all pairs among the first K examples', parseIntArg('--first', 2))
    .addOption(new Option('--eps <list>', 'step sizes ε, comma-separated').argParser(parseEpsList).default([1e-2, 1e-3, 1e-4], '1e-2,1e-3,1e-4'))
    .option('--frozen', 'freeze the activation pattern at θ (ReLU masks and max-pool selections), which makes a ReLU net smooth')
    .option(
      '--optimizer <run|json>',
      'also split a real optimizer’s two-step order effect into state, bracket and other parts: "run" (the run’s optimizer and its state at --step) or a config like \'{"name":"momentum","lr":0.01}\' (fresh state)',
    )
    .option('--probes <n>', 'with --optimizer: the first N test examples as probes for the logit effects (default: 8)', parseIntArg('--probes', 0))
    .option('--json', 'print one JSON object instead of tables (save it as RUN/verify.json for the run report)')
    .addHelpText(
      'after',
      `
Examples:
  lie-bracket verify --model smoothconvnet --pairs "0,1" --eps 1e-2,1e-3,1e-4
  lie-bracket verify --model convnet --eps 1e-2,1e-3,1e-4            # ReLU/max-pool: units switch, the law fails
  lie-bracket verify --model convnet --eps 1e-2,1e-3,1e-4 --frozen   # same net, pattern frozen: error falls like ε
  lie-bracket verify --run runs/demo --step 100 --first 3 --json > runs/demo/verify.json
  lie-bracket verify --run runs/demo --optimizer run --probes 16     # how much of Adam's order effect is the bracket
  lie-bracket verify --model mlp --optimizer '{"name":"momentum","lr":0.01,"momentum":0.9}'`,
    )
    .action((f: VerifyFlags, c: Command) => {
      const report = withPairProgress(c, 'verify', f, (tick) => runVerify(f, tick));
      process.stdout.write(f.json ? `${JSON.stringify(report)}\n` : `${formatVerify(report)}\n`);
    });
  return cmd;
}
