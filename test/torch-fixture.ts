import { sumSq } from '../src/bracket/vec.js';
import type { Tensor } from '../src/engine/tensor.js';

/** The pair record that the PyTorch oracle scripts (scripts/torch_peer.py, scripts/make-onnx-fixtures.py) write per example pair. */
export interface TorchPairBase {
  x: number;
  y: number;
  lossX: number;
  lossY: number;
  bracketNorm: number;
  tensors: Record<string, { bracketNorm: number; gradNormX: number; gradNormY: number }>;
  logitEffect: number[];
  /** Sampled entries (every stride-th) per tensor. */
  bracket: Record<string, number[]>;
  gradX: Record<string, number[]>;
}

/** |a − b| / |b|. */
export const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

/** Largest |ours − theirs| over the sampled entries (every `stride`-th), relative to the tensor's norm. */
export function sampledError(ours: Tensor, theirs: readonly number[], stride: number): number {
  const scale = Math.sqrt(sumSq(ours)) || 1;
  let worst = 0;
  theirs.forEach((v, k) => (worst = Math.max(worst, Math.abs(ours.data[k * stride]! - v) / scale)));
  return worst;
}
