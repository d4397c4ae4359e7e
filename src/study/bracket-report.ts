/** Brackets of example pairs at given weights, per tensor and per prediction, as a report: what `lie-bracket bracket` prints. */
import { statSync } from 'node:fs';
import { analyzePairs, firstKPairs, type FeatureScore, type PairAnalysis } from '../bracket/analysis.js';
import { vectorsForSaving } from '../bracket/pair-stats.js';
import { writeSafetensors } from '../data/safetensors.js';
import { UserError } from '../errors.js';
import { resolveSource, sourceHeader, type SourceHeader, type SourceOptions } from './source.js';

export interface BracketOptions extends SourceOptions {
  pairs?: [number, number][];
  first?: number;
  probe?: number;
  probes?: number;
  saveVectors?: string;
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

export function runBracket(f: BracketOptions, onPair: () => void = () => {}): BracketReport {
  const t0 = performance.now();
  if (f.saveVectors !== undefined && f.saveVectors.trim() === '') throw new UserError('--save-vectors needs a file name');
  if (f.first !== undefined && f.pairs !== undefined) throw new UserError('give either --pairs or --first K, not both');
  if (f.probe !== undefined && f.probes !== undefined)
    throw new UserError('give either --probe K (one probe) or --probes N (the first N test examples), not both');
  const src = resolveSource(f);
  const pairs = f.first !== undefined ? firstKPairs(f.first) : (f.pairs ?? [[0, 1]]);
  if (pairs.length === 0) throw new UserError('--first needs at least 2 examples to form a pair');
  const probeIndices =
    f.probe !== undefined ? [f.probe] : f.probes !== undefined ? Array.from({ length: Math.min(f.probes, src.probes.length) }, (_, i) => i) : [];
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
