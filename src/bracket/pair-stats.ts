/** Per-pair, per-tensor summaries of a bracket — the numbers the CLI prints and writes as JSON, and a sweep line's (src/study/sweep-unit.ts). */
import { z } from 'zod';
import { index, jsonNumber } from '../file-schema.js';
import { norm, sumSq, type Vec } from './vec.js';
import type { BracketResult } from './bracket.js';

/** A parameter tensor's share of a pair's bracket and gradients (the `tensors` of a results.jsonl line). */
export const tensorStatsSchema = z.strictObject({
  bracketNorm: jsonNumber,
  /** ‖B‖ / √(number of elements). */
  bracketRms: jsonNumber,
  gradNormX: jsonNumber,
  gradNormY: jsonNumber,
  /** ‖g_x‖ / √(number of elements) for this tensor. */
  gradRmsX: jsonNumber,
  gradRmsY: jsonNumber,
});
export type TensorStats = z.infer<typeof tensorStatsSchema>;

/** A pair's statistics (`lie-bracket bracket --json`'s pairs; a sweep line adds its step and probe effects). */
export const pairStatsSchema = z.strictObject({
  x: index,
  y: index,
  lossX: jsonNumber,
  lossY: jsonNumber,
  gradNormX: jsonNumber,
  gradNormY: jsonNumber,
  bracketNorm: jsonNumber,
  /** cos(g_x, g_y). */
  gradCosine: jsonNumber,
  tensors: z.record(z.string(), tensorStatsSchema),
  /** J_f(probe)·B, one number per output (when a probe is given). */
  logitEffect: z.array(jsonNumber).optional(),
});
export type PairStats = z.infer<typeof pairStatsSchema>;

export function pairStats(x: number, y: number, r: BracketResult, logitEffect?: readonly number[]): PairStats {
  const tensors: Record<string, TensorStats> = {};
  let dotXY = 0;
  for (const [name, b] of Object.entries(r.bracket)) {
    const gx = r.gradX[name]!;
    const gy = r.gradY[name]!;
    const bn = Math.sqrt(sumSq(b));
    const rootSize = Math.sqrt(Math.max(1, b.size));
    const gnx = Math.sqrt(sumSq(gx));
    const gny = Math.sqrt(sumSq(gy));
    tensors[name] = {
      bracketNorm: bn,
      bracketRms: bn / rootSize,
      gradNormX: gnx,
      gradNormY: gny,
      gradRmsX: gnx / rootSize,
      gradRmsY: gny / rootSize,
    };
    for (let i = 0; i < gx.data.length; i++) dotXY += gx.data[i]! * gy.data[i]!;
  }
  const gnx = norm(r.gradX);
  const gny = norm(r.gradY);
  const out: PairStats = {
    x,
    y,
    lossX: r.lossX,
    lossY: r.lossY,
    gradNormX: gnx,
    gradNormY: gny,
    bracketNorm: norm(r.bracket),
    gradCosine: gnx > 0 && gny > 0 ? Math.max(-1, Math.min(1, dotXY / (gnx * gny))) : 0, // rounding can leave |cos| a little above 1
    tensors,
  };
  if (logitEffect) out.logitEffect = [...logitEffect];
  return out;
}

/** Bracket vectors of several pairs in one tree, keyed `<x>_<y>/<param name>`. */
export function vectorsForSaving(results: readonly { x: number; y: number; bracket: Vec }[]): Vec {
  const out: Vec = {};
  for (const r of results) for (const [k, t] of Object.entries(r.bracket)) out[`${r.x}_${r.y}/${k}`] = t;
  return out;
}
