/**
 * docs/sweep-format.md is the contract of the sweep's files: its examples and field lists must
 * name exactly the fields of the schemas the writers and readers use (src/study/sweep.ts,
 * src/study/sweep-unit.ts, src/bracket/pair-stats.ts, src/study/sweep-stats.ts).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import type { z } from 'zod';
import { tensorStatsSchema } from '../bracket/pair-stats.js';
import { featureRankSchema, gradFitSchema, summarySchema, tensorModelSchema } from './sweep-stats.js';
import { sweepParamsSchema } from './sweep.js';
import { unitRecordSchema } from './sweep-unit.js';

const doc = readFileSync(new URL('../../docs/sweep-format.md', import.meta.url), 'utf8');
const keys = (s: z.ZodObject) => Object.keys(s.shape);

/** The text of a `## heading` section, up to the next heading of the same or a higher level. */
function section(title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  expect(start, title).toBeGreaterThan(0);
  const rest = doc.slice(start + 1);
  const end = rest.slice(3).search(/\n## /);
  return end < 0 ? rest : rest.slice(0, end + 3);
}

function codeBlock(text: string, lang = ''): string {
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)\\n```').exec(text);
  expect(m, `a \`\`\`${lang} block`).not.toBeNull();
  return m![1]!;
}

/** A documented example with "…" placeholders, as JSON: placeholder entries dropped. */
function exampleJson(text: string): unknown {
  const cleaned = text
    .replace(/,\s*"…[^"]*"\s*:\s*\{\}/g, '')
    .replace(/,\s*"…[^"]*"/g, '')
    .replace(/\s+/g, ' ');
  return JSON.parse(cleaned);
}

/** The backticked names of the first column of the section's field table. */
function tableFields(text: string): string[] {
  const names: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\| (`[^|]*`) \|/.exec(line);
    if (m) for (const n of m[1]!.matchAll(/`([A-Za-z0-9]+)(?:\[[a-z]+\])?`/g)) names.push(n[1]!);
  }
  return names;
}

describe('docs/sweep-format.md against the schemas', () => {
  test('sweep.json: the example parses under the schema and names every field', () => {
    const ex = exampleJson(codeBlock(section('`sweep.json`'), 'json')) as Record<string, unknown>;
    expect(Object.keys(ex)).toEqual(keys(sweepParamsSchema));
    expect(Object.keys(ex.options as object)).toEqual(keys(sweepParamsSchema.shape.options));
    const r = sweepParamsSchema.safeParse(ex);
    expect(r.error?.issues ?? []).toEqual([]);
  });

  test('results.jsonl: the example line has the schema’s keys in the written order and parses; the table names every field', () => {
    const text = section('`results.jsonl`');
    const ex = exampleJson(codeBlock(text, 'json')) as Record<string, unknown>;
    expect(Object.keys(ex)).toEqual(keys(unitRecordSchema));
    for (const t of Object.values(ex.tensors as Record<string, object>)) expect(Object.keys(t)).toEqual(keys(tensorStatsSchema));
    const r = unitRecordSchema.safeParse(ex);
    expect(r.error?.issues ?? []).toEqual([]);
    expect(new Set(tableFields(text))).toEqual(new Set(keys(unitRecordSchema)));
  });

  test('summary.json: the outline names the schema’s fields at every level, and the definitions name every statistic', () => {
    const text = section('`summary.json`');
    const outline = codeBlock(text);
    const fieldsOf = (re: RegExp) => {
      const m = re.exec(outline);
      expect(m, String(re)).not.toBeNull();
      return m![1]!.split(',').map((s) => /^\s*([A-Za-z0-9]+)/.exec(s)![1]!);
    };
    const top = [...outline.matchAll(/^\s*[{ ]\s*([A-Za-z]+):/gm)].map((m) => m[1]!);
    expect(top).toEqual(keys(summarySchema));
    expect(fieldsOf(/sweep: \{([^}]*)\}/)).toEqual(keys(summarySchema.shape.sweep));
    expect(fieldsOf(/checkpoints: \[ \{([^}]*)\} \]/)).toEqual(keys(summarySchema.shape.checkpoints.element));
    expect(fieldsOf(/overall: \{ ([^\n]*) \} \}/).filter((k) => k !== 'step' && k !== 'mean' && k !== 'sd')).toEqual(
      keys(summarySchema.shape.overall),
    );
    expect(fieldsOf(/bootstrap: \{([^}]*)\}/)).toEqual(keys(summarySchema.shape.bootstrap));
    expect(fieldsOf(/factorByStep: \[\{([^}]*)\}\]/)).toEqual(keys(summarySchema.shape.overall.shape.factorByStep.element));
    const bullet = (name: string) => {
      const m = new RegExp('- \\*\\*`' + name + '`\\*\\*([\\s\\S]*?)(?=\\n- \\*\\*|\\n\\n|\\n*$)').exec(text);
      expect(m, name).not.toBeNull();
      return new Set([...m![1]!.matchAll(/`([A-Za-z0-9]+)`/g)].map((x) => x[1]!));
    };
    const documented = (name: string, schema: z.ZodObject, others: readonly string[] = []) => {
      const named = bullet(name);
      for (const k of keys(schema)) expect(named.has(k), `${name}.${k} is documented`).toBe(true);
      for (const k of named) expect([...keys(schema), ...others].includes(k), `${name}: \`${k}\` is a field`).toBe(true);
    };
    documented('gradientFit', gradFitSchema, ['pairs', 'factorByStep', 'mean', 'sd', 'overall']);
    documented('tensorModel', tensorModelSchema, ['pairs']);
    documented('features', featureRankSchema);
  });
});
