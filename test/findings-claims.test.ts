/**
 * docs/findings.md against experiments/results/claims.json (written by the experiment scripts):
 * every claim A–E is there and valid, and the findings' summary table is the one generated from
 * the file (`node experiments/claims.mjs --update docs/findings.md`), so the page cannot state a
 * verdict or an interval the scripts did not produce. Also the generator's own behaviour.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { claimsFileSchema, claimsSection, claimsTable, readClaims, withClaimsTable } from '../experiments/claims.mjs';

const ROOT = join(import.meta.dirname, '..');

describe('findings.md and claims.json', () => {
  const claims = readClaims(join(ROOT, 'experiments', 'results'));
  it('claims.json holds one valid entry per claim, A to E', () => {
    const raw: unknown = JSON.parse(readFileSync(join(ROOT, 'experiments', 'results', 'claims.json'), 'utf8'));
    expect(() => claimsFileSchema.parse(raw)).not.toThrow();
    expect(claims.map((c) => c.id)).toEqual(['A', 'B', 'C', 'D', 'E']);
    for (const c of claims) expect(c.primary.ci95[0]).toBeLessThanOrEqual(c.primary.ci95[1]);
  });
  it('the summary table of findings.md is the one generated from claims.json', () => {
    const text = readFileSync(join(ROOT, 'docs', 'findings.md'), 'utf8');
    expect(claimsSection(text)).toBe(claimsTable(claims));
  });
  it('the generator replaces only its section, and refuses a file without the markers', () => {
    const text = readFileSync(join(ROOT, 'docs', 'findings.md'), 'utf8');
    const t = 'TABLE';
    const out = withClaimsTable(text, t);
    expect(claimsSection(out)).toBe(t);
    expect(withClaimsTable(out, claimsTable(claims))).toBe(text);
    expect(() => withClaimsTable('# no markers\n', t)).toThrow(/lacks the markers/);
  });
});
