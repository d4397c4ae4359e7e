/**
 * sweep/allpairs.jsonl: the all-pairs logit-effect matrices at a checkpoint (the study's
 * `--all-pairs N`), one JSON line per computation: J_f(probe)·B(x_i, x_j) for every output k.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../data/atomic.js';
import { index, jsonNumber, parseJsonText } from '../file-schema.js';

export const allPairsLineSchema = z.strictObject({
  step: index,
  /** How the matrices were computed (src/bracket/projected.ts). */
  method: z.string(),
  outputs: z.array(z.string()),
  /** Test-split index of the probe image. */
  probe: index,
  /** Test-split indices of the N examples (rows and columns). */
  indices: z.array(index),
  seconds: jsonNumber,
  /** [K][N][N]. */
  matrices: z.array(z.array(z.array(jsonNumber))),
});
export type AllPairsLine = z.infer<typeof allPairsLineSchema>;

export function writeAllPairsFile(path: string, line: AllPairsLine): void {
  writeFileAtomic(path, `${JSON.stringify(line)}\n`);
}

/** The first line of an allpairs.jsonl under its schema (null when the file is absent). */
export function readAllPairsFile(path: string): AllPairsLine | null {
  if (!existsSync(path)) return null;
  return parseJsonText(allPairsLineSchema, readFileSync(path, 'utf8').split('\n')[0]!, `${path}:1`);
}
