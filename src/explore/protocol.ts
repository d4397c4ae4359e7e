/**
 * What the explorer's page, its Web Worker and the files that `lie-bracket explore` ships agree on:
 * the manifest (explorer.json) and the worker's messages. Types only: imported by the Node side
 * (src/explore/bundle.ts) and by the worker (src/explore/worker.ts).
 */
import type { OutputGroup } from '../nn/losses.js';
import type { TensorStats } from '../bracket/pair-stats.js';

/** The model, as the worker rebuilds it: a preset name or a JSON spec (as src/nn/spec.ts reads it). */
export type ModelDescriptor = { readonly preset: string } | { readonly spec: unknown; readonly name: string };

/** One tensor of a checkpoint file: its place in the file (float32 elements), its shape. */
export interface TensorEntry {
  readonly name: string;
  readonly shape: readonly number[];
  /** Offset in float32 elements. */
  readonly offset: number;
  readonly length: number;
}

/** explorer.json: everything the page and the worker need besides the binary files. */
export interface Manifest {
  readonly format: 'lie-bracket-explorer/1';
  readonly run: string;
  readonly model: ModelDescriptor;
  readonly modelName: string;
  readonly paramCount: number;
  readonly loss: { readonly name: string; readonly groups: readonly OutputGroup[]; readonly numOutputs: number };
  readonly data: string;
  readonly labelNames: readonly string[];
  readonly labelKind: 'class' | 'binary';
  /** Whether every gallery example has exactly one label set (the page then predicts the arg-max). */
  readonly oneOfK: boolean;
  readonly inputShape: readonly [number, number, number];
  /** Checkpoint steps, ascending; checkpoint s is the file `ckpt/<s>.bin`. */
  readonly steps: readonly number[];
  /** The parameters, in the checkpoint file's order, and the BatchNorm buffers. */
  readonly params: readonly TensorEntry[];
  readonly buffers: readonly TensorEntry[];
  /** Gallery: test examples 0…count−1; their pixels in examples.bin (float32, count × C·H·W). */
  readonly examples: {
    readonly count: number;
    /** The targets, count × K (0/1). */
    readonly targets: readonly (readonly number[])[];
    /** PNG data URIs of the thumbnails. */
    readonly thumbs: readonly string[];
  };
  /** The default probe batch (the first 32 test examples, or fewer). */
  readonly probes: readonly number[];
}

export interface BracketRequest {
  readonly type: 'bracket';
  readonly id: number;
  readonly x: number;
  readonly y: number;
  readonly step: number;
  readonly probes: readonly number[];
}

export interface PredictRequest {
  readonly type: 'predict';
  readonly step: number;
}

export type ToWorker = { readonly type: 'init'; readonly base: string } | BracketRequest | PredictRequest;

/** A pair's bracket at a checkpoint, what the page shows. */
export interface BracketResultMessage {
  readonly x: number;
  readonly y: number;
  readonly step: number;
  readonly probes: readonly number[];
  readonly lossX: number;
  readonly lossY: number;
  readonly gradNormX: number;
  readonly gradNormY: number;
  readonly gradCosine: number;
  readonly bracketNorm: number;
  readonly tensors: Readonly<Record<string, TensorStats>>;
  /** J_f(z)·B: outputs × probes. */
  readonly logitEffect: number[][];
  /** Milliseconds of the computation (the bracket and the logit effect; the checkpoint's load not included). */
  readonly ms: number;
  /** The kernels the worker's engine runs: 'relaxed-simd', 'simd' or 'none' (plain JS). */
  readonly kernels: string;
}

export type FromWorker =
  | { readonly type: 'ready'; readonly kernels: string }
  | { readonly type: 'progress'; readonly id: number; readonly stage: string; readonly fraction: number }
  | { readonly type: 'result'; readonly id: number; readonly result: BracketResultMessage }
  | { readonly type: 'predictions'; readonly step: number; readonly logits: number[][] }
  | { readonly type: 'error'; readonly id: number | null; readonly message: string };
