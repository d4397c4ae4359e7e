// @ts-check
/**
 * claims.json: one entry per claim of the findings (ids "A" to "E"), written by the experiment
 * scripts only (each script records its own claim with `recordClaim`), never by hand. The schema
 * is issue 10's:
 *
 *   { id, question, verdict, primary, robustness, design }
 *   verdict     "reproduced" | "refuted" | "inconclusive" | "partly"
 *   primary     { statistic, space, estimate, ci95: [lo, hi] }
 *   robustness  [{ variant, estimate, ci95 }]
 *   design      { seeds, images, levels? }
 *
 * An entry may carry `excludes` (what a null result rules out, e.g. "a shrink larger than ×1.4 is
 * excluded at 95%") and `notes`. docs/findings.md's summary table is checked against this file
 * (test/findings-claims.test.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeAtomic } from './lib.mjs';

const interval = z.tuple([z.number(), z.number()]).refine(([lo, hi]) => !(lo > hi), { message: 'ci95 must be [lo, hi] with lo ≤ hi' });

export const claimSchema = z.strictObject({
  id: z.enum(['A', 'B', 'C', 'D', 'E']),
  question: z.string().min(1),
  verdict: z.enum(['reproduced', 'refuted', 'inconclusive', 'partly']),
  primary: z.strictObject({ statistic: z.string().min(1), space: z.string().min(1), estimate: z.number(), ci95: interval }),
  robustness: z.array(z.strictObject({ variant: z.string().min(1), estimate: z.number(), ci95: interval })),
  design: z.strictObject({
    seeds: z.number().int().positive(),
    images: z.number().int().positive(),
    levels: z.array(z.union([z.number(), z.string()])).optional(),
  }),
  excludes: z.string().optional(),
  notes: z.array(z.string()).optional(),
});

export const claimsFileSchema = z.strictObject({ claims: z.array(claimSchema) });

/** @typedef {z.infer<typeof claimSchema>} Claim */

/**
 * The claims of `<tables>/claims.json` (none when the file is missing).
 * @param {string} tables
 * @returns {Claim[]}
 */
export function readClaims(tables) {
  const file = join(tables, 'claims.json');
  if (!existsSync(file)) return [];
  return claimsFileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))).claims;
}

/**
 * Validate `claim` and write it into `<ctx.tables>/claims.json`, replacing the entry with the same
 * id and keeping the others (sorted by id); atomic (temp file, then rename).
 * @param {{ tables: string }} ctx
 * @param {Claim} claim
 */
export function recordClaim(ctx, claim) {
  const c = claimSchema.parse(claim);
  const claims = readClaims(ctx.tables).filter((x) => x.id !== c.id);
  claims.push(c);
  claims.sort((a, b) => a.id.localeCompare(b.id));
  writeAtomic(join(ctx.tables, 'claims.json'), `${JSON.stringify({ claims }, null, 2)}\n`);
}
