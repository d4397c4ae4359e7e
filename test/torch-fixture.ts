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
