/**
 * Helpers for the schemas of the files lie-bracket writes (run.json, metrics.jsonl, sweep.json,
 * results.jsonl, summary.json, allpairs.jsonl, verify.json). Each format has one zod schema, next
 * to the module that writes it; every reader parses with it, and a file that fails its schema
 * gives a one-line UserError naming the file and the field (src/zod-message.ts).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { UserError } from './errors.js';
import { zodUserError } from './zod-message.js';

/**
 * A number as `JSON.stringify` writes it: NaN and ±Infinity appear as `null`, which reads back as
 * NaN. (Where `null` means "absent", a schema uses `z.number().nullable()` instead.)
 */
export const jsonNumber = z.union([z.number(), z.null().transform(() => NaN)], {
  error: (iss) => `expected a number (null for NaN), got ${iss.input === undefined ? 'nothing' : String(JSON.stringify(iss.input)).slice(0, 40)}`,
});

/** A non-negative integer (steps, example indices, counts). */
export const index = z.number().int().nonnegative();

/** `value` under `schema`, or a one-line UserError `<source>: <field>: <problem>`. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, source: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw zodUserError(r.error, source, schema);
  return r.data;
}

/** JSON text under `schema` (`source` names the file, or the file and line, in errors). */
export function parseJsonText<S extends z.ZodType>(schema: S, text: string, source: string): z.infer<S> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  return parseWith(schema, v, source);
}

/** A JSON file under `schema`. */
export function readJsonFile<S extends z.ZodType>(schema: S, path: string): z.infer<S> {
  return parseJsonText(schema, readFileSync(path, 'utf8'), path);
}
