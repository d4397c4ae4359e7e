/**
 * The layering of src/: imports only point down engine ← nn ← data ← bracket ← study ← report ←
 * explore ← cli ← bench. The top-level modules (errors, fs-errors, zod-message, paths, version) serve every
 * layer and import none; index.ts is the public entry point, which nothing inside imports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
const LAYERS = ['engine', 'nn', 'data', 'bracket', 'study', 'report', 'explore', 'cli', 'bench'] as const;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.as.ts') ? [p] : [];
  });
}

/** The layer of a file under src/ (its first folder), -1 for a top-level module. */
function layerOf(file: string): number {
  const parts = relative(SRC, file).split(/[\\/]/);
  if (parts.length === 1) return -1;
  const i = LAYERS.indexOf(parts[0] as (typeof LAYERS)[number]);
  if (i < 0) throw new Error(`${file}: folder ${parts[0]} is not in the layering; add it to LAYERS`);
  return i;
}

/** Relative imports (static, type-only, re-exports and dynamic) of a file, as absolute .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'));
}

const name = (f: string) => relative(SRC, f);

describe('layering', () => {
  const files = sources(SRC);
  test('finds the sources', () => {
    expect(files.length).toBeGreaterThan(50);
  });

  test('no import runs up the layering, and the top-level modules import no layer', () => {
    const violations: string[] = [];
    for (const f of files) {
      if (name(f) === 'index.ts') continue;
      const lf = layerOf(f);
      for (const t of importsOf(f)) {
        if (name(t) === 'index.ts') violations.push(`${name(f)} imports the public entry point index.ts`);
        const lt = layerOf(t);
        if (lf === -1 ? lt !== -1 : lt > lf)
          violations.push(`${name(f)} (${lf === -1 ? 'top level' : LAYERS[lf]}) imports ${name(t)} (${LAYERS[lt]})`);
      }
    }
    expect(violations).toEqual([]);
  });

  test('the check sees an upward import (it would have caught study → cli)', () => {
    expect(layerOf(join(SRC, 'study', 'x.ts'))).toBeLessThan(layerOf(join(SRC, 'cli', 'verify.ts')));
    expect(importsOf(join(SRC, 'cli', 'verify.ts')).map(name)).toContain(join('study', 'verify-report.ts'));
  });
});
