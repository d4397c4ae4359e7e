/**
 * verify.json: the swap verification of a run (written by the study at its last checkpoint, or by
 * `lie-bracket verify --json > RUN/verify.json`), the input of the report's verification figure.
 * Its top-level `eps`, `relErrors`, `orders`, `kinks`, `model` and `pair` are those of the first
 * pair (src/study/verify-report.ts builds it).
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../data/atomic.js';
import { index, jsonNumber, readJsonFile } from '../file-schema.js';
import type { VerifyReport } from './verify-report.js';

export const verifyFileSchema = z.object({
  model: z.string(),
  loss: z.string(),
  dtype: z.enum(['float32', 'float64']),
  paramCount: index,
  /** Where the weights came from: `<run> step <n>`, a file, or a seeded init. */
  weights: z.string(),
  data: z.string(),
  split: z.enum(['train', 'test']),
  bn: z.enum(['eval', 'train']),
  /** Whether the activation pattern was frozen (lie-bracket verify --frozen). */
  frozen: z.boolean(),
  eps: z.array(z.number().positive()).min(1),
  pair: z.tuple([index, index]),
  /** Per ε: ‖(θ_xy − θ_yx)/ε² − B‖ / ‖B‖. */
  relErrors: z.array(jsonNumber),
  /** Observed order between consecutive ε. */
  orders: z.array(jsonNumber),
  /** Per ε: units switched along the steps. */
  kinks: z.array(jsonNumber),
  /** Every pair's report (src/study/verify-report.ts's VerifyPairReport). */
  pairs: z.array(z.unknown()),
  seconds: jsonNumber,
});
export type VerifyFile = z.infer<typeof verifyFileSchema>;

/** The writer's type fits the schema (a compile-time check). */
const fitsSchema = (r: VerifyReport): z.input<typeof verifyFileSchema> => r;

export function writeVerifyFile(path: string, r: VerifyReport): void {
  writeFileAtomic(path, `${JSON.stringify(fitsSchema(r))}\n`);
}

/** verify.json under its schema (null when absent); a file that fails it is a one-line error naming the field. */
export function readVerifyFile(path: string): VerifyFile | null {
  return existsSync(path) ? readJsonFile(verifyFileSchema, path) : null;
}
