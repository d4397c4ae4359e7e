/** `lie-bracket import`: a run directory from state_dict checkpoints trained elsewhere (PyTorch). */
import { Command, Option } from 'commander';
import type { DType } from '../engine/dtype.js';
import { MODELS } from '../nn/models.js';
import { importRun, type ImportResult } from '../study/import.js';
import { commandReporter } from './util.js';

interface ImportFlags {
  checkpoints: string;
  model: string;
  data: string;
  loss?: 'bce' | 'ce' | 'grouped';
  dtype?: DType;
  json?: boolean;
}

const UNKNOWN_TEXT: Record<string, string> = {
  optimizer: 'the optimizer and its hyper-parameters (learning rate included)',
  batchSize: 'the batch size',
  seed: 'the seed (initialisation and data order)',
  trainSize: 'the training subset',
};

function formatResult(r: ImportResult): string {
  return [
    `imported ${r.steps.length} checkpoint${r.steps.length === 1 ? '' : 's'} (steps ${r.steps.join(', ')}) of ${r.model} (${r.paramCount.toLocaleString('en-US')} parameters, ${r.dtype}) into ${r.runDir}`,
    `unknown, not guessed (run.json provenance.unknown): ${r.unknown.map((u) => UNKNOWN_TEXT[u] ?? u).join('; ')}`,
    'so --resume and verify --optimizer run refuse this run; sweep, stats, bracket/verify --run and report work on it:',
    `  lie-bracket sweep ${r.runDir} && lie-bracket stats ${r.runDir} && lie-bracket report ${r.runDir}`,
  ].join('\n');
}

export function importCommand(): Command {
  return new Command('import')
    .description('make a run directory from state_dict checkpoints trained elsewhere (e.g. in PyTorch), to sweep, stats and report it')
    .argument('<out>', 'the run directory to create (must not exist; written whole or not at all)')
    .requiredOption(
      '--checkpoints <dir|list>',
      'a directory of step-<n>.safetensors state_dicts, or FILE:STEP,FILE:STEP (e.g. a.safetensors:100,b.safetensors:200)',
    )
    .requiredOption(
      '--model <name|spec.json|model.onnx>',
      `the trained architecture: ${Object.keys(MODELS).join(', ')}, a JSON model spec file or an ONNX file`,
    )
    .requiredOption('--data <spec>', 'the data set: fashion-mnist (shipped subset), synthetic, celeba:<dir>, or a directory of IDX files / CelebA')
    .addOption(
      new Option('--loss <loss>', 'the loss it was trained with: bce (independent sigmoids), ce (softmax), grouped (default: bce)').choices([
        'bce',
        'ce',
        'grouped',
      ]),
    )
    .addOption(
      new Option('--dtype <dtype>', "the run's float type (default: float64 if the parameters are F64, else float32)").choices([
        'float32',
        'float64',
      ]),
    )
    .option('--json', 'print one JSON object instead of text')
    .addHelpText(
      'after',
      `
Each checkpoint is validated (tensor names and shapes against --model, finite values, BatchNorm
statistics) and written as a state_dict in the run's dtype. F16 and BF16 checkpoints load exactly.
What the files do not say is marked unknown in run.json (provenance), never guessed: the optimizer
and its hyper-parameters, the batch size, the seed and data order, the training subset. How to save
such checkpoints from a PyTorch training: docs/pytorch-runs.md.

Examples:
  lie-bracket import runs/gpu --checkpoints ckpts/ --model smoothconvnet --data fashion-mnist
  lie-bracket import runs/gpu2 --checkpoints a.safetensors:100,b.safetensors:200 --model spec.json --data synthetic --loss ce
  lie-bracket sweep runs/gpu && lie-bracket stats runs/gpu && lie-bracket report runs/gpu`,
    )
    .action((out: string, f: ImportFlags, c: Command) => {
      const progress = commandReporter(c);
      let bar: ReturnType<typeof progress.task> | undefined;
      let r: ImportResult;
      try {
        r = importRun({
          out,
          checkpoints: f.checkpoints,
          model: f.model,
          data: f.data,
          loss: f.loss,
          dtype: f.dtype,
          onCheckpoint: (done, total) => {
            bar ??= progress.task('import', total, { unit: 'checkpoints' });
            bar.update(done);
          },
        });
      } finally {
        progress.stop();
      }
      process.stdout.write(f.json ? `${JSON.stringify(r)}\n` : `${formatResult(r)}\n`);
    });
}
