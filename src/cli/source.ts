/**
 * The flags shared by the analysis commands (bracket, verify, …): where the model, its weights and
 * the data come from — a run directory and checkpoint (--run, --step), or a model with weights or
 * a seeded init (--model, --weights, --seed) on a data set (--data) — and how to compute (--loss,
 * --dtype, --bn). They are resolved by study/source.ts.
 */
import { Command, Option } from 'commander';
import { MODELS } from '../nn/models.js';
import { SOURCE_DEFAULTS, type SourceHeader } from '../study/source.js';
import { parseIntArg } from './util.js';

export function addSourceOptions(cmd: Command): Command {
  const d = SOURCE_DEFAULTS;
  return cmd
    .option('--run <dir>', 'a training run directory: model, loss and data come from it')
    .option('--step <n>', 'checkpoint step of --run (default: the last)', parseIntArg('--step'))
    .option(
      '--model <name|spec.json|model.onnx>',
      `model without --run: ${Object.keys(MODELS).join(', ')}, a JSON spec or an ONNX file (default: ${d.model})`,
    )
    .option('--weights <file>', 'weights as safetensors with PyTorch names (default: a fresh seeded init)')
    .option(
      '--fresh-bn-stats',
      'with --weights: use fresh BatchNorm running statistics (mean 0, variance 1) instead of the file’s, which may then be absent',
    )
    .option('--seed <n>', 'seed of the fresh init when neither --run nor --weights is given', parseIntArg('--seed'), 0)
    .option('--data <spec>', `data without --run: fashion-mnist (shipped subset), synthetic, celeba:<dir>, or a directory (default: ${d.data})`)
    .addOption(new Option('--split <split>', 'split the example indices refer to').choices(['test', 'train']).default('test'))
    .addOption(new Option('--loss <loss>', `per-example loss (default: the run’s, else ${d.loss})`).choices(['bce', 'ce', 'grouped']))
    .addOption(new Option('--dtype <dtype>', `float type (default: the run’s, else ${d.dtype})`).choices(['float64', 'float32']))
    .addOption(
      new Option('--bn <mode>', 'BatchNorm during brackets: eval (running statistics) or train (each example normalised by its own statistics)')
        .choices(['eval', 'train'])
        .default('eval'),
    );
}

/** The first line of a report: model, size, loss, dtype, weights, BatchNorm mode. */
export function headerLine(command: string, h: SourceHeader): string {
  return `${command}: ${h.model} (${h.paramCount.toLocaleString('en-US')} parameters), loss ${h.loss}, ${h.dtype}, weights: ${h.weights}, BatchNorm ${h.bn}`;
}
