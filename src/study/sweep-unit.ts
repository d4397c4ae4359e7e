/**
 * One work unit of a sweep — the bracket of one pair at one checkpoint — as a JSON Lines record.
 * Shared by the in-process path and the worker threads (src/study/sweep-worker.ts), so both
 * produce byte-identical lines.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { analyzePairs, type AnalysisInput } from '../bracket/analysis.js';
import { pairStatsSchema } from '../bracket/pair-stats.js';
import type { Vec } from '../bracket/vec.js';
import { writeSafetensors } from '../data/safetensors.js';
import type { DType } from '../engine/dtype.js';
import { Scratch } from '../engine/scratch.js';
import { cast } from '../engine/ops.js';
import { index, jsonNumber, parseJsonText } from '../file-schema.js';
import { concrete } from '../engine/transforms.js';
import { evalState, perExampleState } from '../nn/layers.js';
import { openRun, type Run } from './run.js';

/** What a unit's computation depends on besides (step, x, y). */
export interface UnitOptions {
  bn: 'eval' | 'train';
  dtype: DType;
  probeIndices: number[];
  saveVectors: boolean;
}

/**
 * One line of results.jsonl (docs/sweep-format.md): a pair's statistics at a checkpoint. The
 * writer below puts the keys in this order; every reader parses lines with this schema.
 */
export const unitRecordSchema = z.strictObject({
  step: index,
  ...pairStatsSchema.omit({ logitEffect: true }).shape,
  /** J_f(z)·B for each probe z of the sweep's probe batch: [P][K] ([] without probes). */
  probeEffects: z.array(z.array(jsonNumber)),
});
export type UnitRecord = z.infer<typeof unitRecordSchema>;

/** A results.jsonl line under its schema (`where`: the file and line, for the one-line error). */
export function parseUnitRecord(line: string, where: string): UnitRecord {
  return parseJsonText(unitRecordSchema, line, where);
}

/** Where a unit's bracket vector waits until its checkpoint's file is assembled. */
export function vectorPartPath(outDir: string, step: number, x: number, y: number): string {
  return join(outDir, 'vectors', 'parts', `step-${step}`, `${x}_${y}.safetensors`);
}

export function vectorFilePath(outDir: string, step: number): string {
  return join(outDir, 'vectors', `step-${step}.safetensors`);
}

/** The parameters in the model's order (a checkpoint file stores them sorted by name), cast to `dtype`. */
function modelOrder(v: Vec, names: readonly string[], dtype: DType): Vec {
  const out: Vec = {};
  for (const k of names) {
    const t = v[k]!;
    out[k] = t.dtype === dtype ? t : concrete(cast(t, dtype));
  }
  return out;
}

/** Computes units of one run with fixed options; keeps the last checkpoint loaded. */
export class UnitComputer {
  private step = -1;
  private input: AnalysisInput | undefined;
  /** Recycles each unit's intermediates for the next (src/engine/scratch.ts). */
  private readonly scratch = new Scratch();

  constructor(
    readonly run: Run,
    readonly opts: UnitOptions,
    readonly outDir: string,
  ) {}

  static open(runDir: string, opts: UnitOptions, outDir: string): UnitComputer {
    return new UnitComputer(openRun(runDir), opts, outDir);
  }

  private inputAt(step: number): AnalysisInput {
    if (this.input && this.step === step) return this.input;
    const ck = this.run.checkpoint(step);
    const buffers = ck.buffers;
    this.input = {
      model: this.run.model,
      loss: this.run.loss,
      dtype: this.opts.dtype,
      params: modelOrder(ck.params, Object.keys(this.run.model.paramShapes), this.opts.dtype),
      forward: () => (this.opts.bn === 'train' ? perExampleState(buffers) : evalState(buffers)),
      data: this.run.test,
      probes: this.run.test,
    };
    this.step = step;
    return this.input;
  }

  /** The unit's JSON line (without the newline); writes its vector part first when saving vectors. */
  compute(step: number, x: number, y: number): string {
    const a = analyzePairs(this.inputAt(step), [[x, y]], {
      probeIndices: this.opts.probeIndices,
      keepVectors: this.opts.saveVectors,
      scratch: this.scratch,
    });
    const p = a.pairs[0]!;
    const rec: UnitRecord = {
      step,
      x,
      y,
      lossX: p.lossX,
      lossY: p.lossY,
      gradNormX: p.gradNormX,
      gradNormY: p.gradNormY,
      bracketNorm: p.bracketNorm,
      gradCosine: p.gradCosine,
      tensors: p.tensors,
      probeEffects: p.probeEffects ?? [],
    };
    if (this.opts.saveVectors) {
      const b = a.vectors![0]!.bracket;
      const keyed: Vec = {};
      for (const [k, t] of Object.entries(b)) keyed[`${x}_${y}/${k}`] = t;
      writeSafetensors(vectorPartPath(this.outDir, step, x, y), keyed, { step: String(step), model: this.run.model.name });
    }
    return JSON.stringify(rec);
  }
}
