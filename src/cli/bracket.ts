/** `lie-bracket bracket`: brackets of chosen example pairs at given weights, as a table or JSON. */
import { Command, Option } from 'commander';
import { bracket, logitEffect, modelLoss } from '../bracket/bracket.js';
import { pairStats, vectorsForSaving, type PairStats } from '../bracket/stats.js';
import type { Vec } from '../bracket/vec.js';
import { batchOf } from '../data/examples.js';
import { DEFAULT_DATA_DIR, FASHION_CLASSES, loadFashion } from '../data/fashion.js';
import { writeSafetensors } from '../data/safetensors.js';
import { loadModelWeights } from '../data/weights.js';
import type { DType } from '../engine/dtype.js';
import { count } from '../bracket/vec.js';
import { getLoss, type LossName } from '../nn/losses.js';
import { getModel, initModel, MODELS } from '../nn/models.js';
import { UserError } from '../errors.js';
import { parseIntArg, parsePairs, progress, sci, table } from './util.js';

export interface BracketOptions {
  model: string;
  weights?: string;
  seed: number;
  data?: string;
  split: 'train' | 'test';
  pairs: [number, number][];
  loss: LossName;
  dtype: DType;
  probe?: number;
  saveVectors?: string;
  json?: boolean;
}

export interface BracketReport {
  model: string;
  loss: LossName;
  dtype: DType;
  paramCount: number;
  weights: string;
  data: string;
  split: 'train' | 'test';
  probe?: { index: number; label: number };
  outputs: readonly string[];
  pairs: PairStats[];
  seconds: number;
}

export function runBracket(opts: BracketOptions, onPair: () => void = () => {}): BracketReport {
  const t0 = performance.now();
  const model = getModel(opts.model);
  const loss = getLoss(opts.loss);
  const params = opts.weights ? loadModelWeights(model, opts.weights, opts.dtype) : initModel(model, opts.seed, opts.dtype);
  const dir = opts.data ?? DEFAULT_DATA_DIR;
  const data = loadFashion(dir, opts.split);
  const lossFn = modelLoss(model, loss);
  const ex = (i: number) => batchOf(data, [i], opts.dtype);
  const probe = opts.probe === undefined ? undefined : ex(opts.probe);
  for (const [x, y] of opts.pairs) {
    ex(x);
    ex(y); // validate every index before the long work starts
  }
  const saved: { x: number; y: number; bracket: Vec }[] = [];
  const pairs = opts.pairs.map(([x, y]) => {
    const r = bracket(lossFn, params, ex(x), ex(y));
    const effect = probe ? Array.from(logitEffect(model, params, probe.x, r.bracket).data) : undefined;
    if (opts.saveVectors) saved.push({ x, y, bracket: r.bracket });
    onPair();
    return pairStats(x, y, r, effect);
  });
  if (opts.saveVectors) writeSafetensors(opts.saveVectors, vectorsForSaving(saved), { model: model.name, loss: loss.name });
  const report: BracketReport = {
    model: model.name,
    loss: loss.name,
    dtype: opts.dtype,
    paramCount: count(params),
    weights: opts.weights ?? `seed ${opts.seed}`,
    data: dir,
    split: opts.split,
    outputs: [...FASHION_CLASSES],
    pairs,
    seconds: (performance.now() - t0) / 1000,
  };
  if (probe && opts.probe !== undefined) report.probe = { index: opts.probe, label: probe.labels[0]! };
  return report;
}

export function formatReport(r: BracketReport): string {
  const out: string[] = [];
  out.push(`lie-bracket: ${r.model} (${r.paramCount.toLocaleString('en-US')} parameters), loss ${r.loss}, ${r.dtype}, weights: ${r.weights}`);
  out.push(`B = H_y g_x − H_x g_y for ${r.pairs.length} pair(s) of the ${r.split} split (${r.seconds.toFixed(2)} s)`);
  out.push('');
  out.push(
    table(
      ['pair (x,y)', 'loss x', 'loss y', '‖g_x‖', '‖g_y‖', 'cos(g_x,g_y)', '‖B‖'],
      r.pairs.map((p) => [`${p.x},${p.y}`, p.lossX.toFixed(4), p.lossY.toFixed(4), sci(p.gradNormX), sci(p.gradNormY), p.gradCosine.toFixed(3), sci(p.bracketNorm)]),
    ),
  );
  for (const p of r.pairs) {
    out.push('');
    out.push(`pair ${p.x},${p.y}: per parameter tensor`);
    out.push(
      table(
        ['tensor', '‖B‖', 'RMS(B)', '‖g_x‖', '‖g_y‖'],
        Object.entries(p.tensors).map(([k, t]) => [k, sci(t.bracketNorm), sci(t.bracketRms), sci(t.gradNormX), sci(t.gradNormY)]),
      ),
    );
  }
  if (r.probe) {
    const label = r.outputs[r.probe.label] ?? String(r.probe.label);
    out.push('');
    out.push(`change of the logits of probe example ${r.probe.index} (${label}) along B, J_f·B; the two orders' logits differ by ε² times this:`);
    out.push(
      table(
        ['output', ...r.pairs.map((p) => `pair ${p.x},${p.y}`)],
        r.outputs.map((name, i) => [name, ...r.pairs.map((p) => sci(p.logitEffect?.[i] ?? NaN))]),
      ),
    );
  }
  return out.join('\n');
}

export function bracketCommand(): Command {
  return new Command('bracket')
    .description('compute the bracket B = H_y g_x − H_x g_y of example pairs at given weights, per parameter tensor')
    .addOption(new Option('--model <name>', 'reference model').choices(Object.keys(MODELS)).default('mlp'))
    .option('--weights <file>', 'weights as safetensors, with PyTorch parameter names (default: a fresh seeded init)')
    .option('--seed <n>', 'seed of the fresh init when no --weights are given', parseIntArg('--seed'), 0)
    .option('--data <dir>', `directory of MNIST-format IDX files (default: the shipped Fashion-MNIST subset)`)
    .addOption(new Option('--split <split>', 'which split the indices refer to').choices(['test', 'train']).default('test'))
    .option('--pairs <pairs>', 'example pairs as indices into the split, e.g. "0,1;2,3"', parsePairs, [[0, 1]] as [number, number][])
    .addOption(new Option('--loss <loss>', 'per-example loss: bce (independent sigmoids on one-hot targets) or ce (softmax)').choices(['bce', 'ce']).default('bce'))
    .addOption(new Option('--dtype <dtype>', 'float type of the computation').choices(['float64', 'float32']).default('float64'))
    .option('--probe <k>', 'an example index whose logits’ change along B (J_f·B) is reported', parseIntArg('--probe'))
    .option('--save-vectors <file>', 'write the full bracket vectors as safetensors, keys <x>_<y>/<param name>')
    .option('--json', 'print one JSON object instead of tables')
    .action((opts: BracketOptions) => {
      if (opts.saveVectors !== undefined && opts.saveVectors.trim() === '') throw new UserError('--save-vectors needs a file name');
      const bar = progress(opts.pairs.length, 'brackets', !opts.json);
      const report = runBracket(opts, () => bar.tick());
      bar.stop();
      process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : `${formatReport(report)}\n`);
    });
}
