/**
 * One-line user errors from zod validation errors, shared by every schema that reads user input
 * (train configs, optimizer configs, model specs). Unknown keys at any depth are named with their
 * full path, with the closest valid key ("did you mean optimizer.lr?") and the valid keys there.
 */
import type { z } from 'zod';
import { UserError } from './errors.js';

type PathSegment = PropertyKey;

/** `optimizer.lr`, `groups[0].members`; `(root)` for the empty path. */
export function formatPath(path: readonly PathSegment[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s === '' ? String(p) : `.${String(p)}`;
  }
  return s === '' ? '(root)' : s;
}

/** Edit distance with insertions, deletions, substitutions and transpositions of neighbours (each 1). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

const normalize = (k: string) => k.toLowerCase().replace(/[^a-z0-9]/g, '');
/** The words of a key in any casing convention: learning_rate, learningRate, learning-rate → [learning, rate]. */
const words = (k: string) =>
  k
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter((w) => w !== '')
    .map((w) => w.toLowerCase());

/**
 * The valid key closest to `key`, or undefined when none is plausibly meant: the same key in
 * another casing (weight_decay → weightDecay), its initials (learning_rate → lr), or within a
 * small edit distance (stpes → steps).
 */
export function closestKey(key: string, valid: readonly string[]): string | undefined {
  if (valid.length === 0) return undefined;
  const nk = normalize(key);
  const same = valid.find((v) => normalize(v) === nk);
  if (same !== undefined) return same;
  const initials = words(key)
    .map((w) => w[0])
    .join('');
  if (initials.length >= 2) {
    const abbrev = valid.find((v) => normalize(v) === initials);
    if (abbrev !== undefined) return abbrev;
  }
  let best: string | undefined;
  let bestD = Infinity;
  for (const v of valid) {
    const d = editDistance(nk, normalize(v));
    if (d < bestD) {
      best = v;
      bestD = d;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(Math.max(nk.length, 2) / 3)));
  if (bestD <= limit) return best;
  // a prefix or an extension of a valid key (batch → batchSize, checkpoint → checkpointEvery)
  const part = valid.filter((v) => nk.length >= 3 && (normalize(v).startsWith(nk) || nk.startsWith(normalize(v))));
  return part.length === 1 ? part[0] : undefined;
}

interface Def {
  type: string;
  shape?: Record<string, { def: Def }>;
  innerType?: { def: Def };
  in?: { def: Def };
  element?: { def: Def };
  items?: { def: Def }[];
  rest?: { def: Def } | null;
  valueType?: { def: Def };
  options?: { def: Def }[];
  left?: { def: Def };
  right?: { def: Def };
  getter?: () => { def: Def };
}

/** The object schemas that a value at `path` of `schema` may be validated by (through optional, default, arrays, unions…). */
function objectsAt(def: Def, path: readonly PathSegment[], depth = 0): Def[] {
  if (depth > 64) return [];
  const next = (d: { def: Def } | undefined | null, p: readonly PathSegment[]) => (d ? objectsAt(d.def, p, depth + 1) : []);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
    case 'nonoptional':
      return next(def.innerType, path);
    case 'pipe':
      return next(def.in, path);
    case 'lazy':
      return def.getter ? next(def.getter(), path) : [];
    case 'union':
      return (def.options ?? []).flatMap((o) => next(o, path));
    case 'intersection':
      return [...next(def.left, path), ...next(def.right, path)];
    default:
  }
  if (path.length === 0) return def.type === 'object' ? [def] : [];
  const [head, ...rest] = path;
  switch (def.type) {
    case 'object':
      return typeof head === 'string' && def.shape && head in def.shape ? next(def.shape[head], rest) : [];
    case 'array':
      return next(def.element, rest);
    case 'tuple':
      return typeof head === 'number' ? next(def.items?.[head] ?? def.rest, rest) : [];
    case 'record':
      return next(def.valueType, rest);
    default:
      return [];
  }
}

/** The keys a schema accepts for the object at `path` (empty when unknown). */
export function knownKeysAt(schema: z.ZodType, path: readonly PathSegment[]): string[] {
  const keys = new Set<string>();
  for (const o of objectsAt((schema as unknown as { def: Def }).def, path)) for (const k of Object.keys(o.shape ?? {})) keys.add(k);
  return [...keys];
}

/** How to find the valid keys at a path: the root schema, or a function. */
export type KnownKeys = z.ZodType | ((path: readonly PathSegment[]) => readonly string[]);

/** One issue as text: `path: message`, or for unknown keys `unknown key a.b; did you mean a.c? (valid keys at a: …)`. */
export function formatIssue(issue: z.core.$ZodIssue, knownKeys?: KnownKeys): string {
  if (issue.code === 'unrecognized_keys') {
    const valid = knownKeys === undefined ? [] : typeof knownKeys === 'function' ? [...knownKeys(issue.path)] : knownKeysAt(knownKeys, issue.path);
    const where = issue.path.length === 0 ? '' : formatPath(issue.path);
    const full = (k: string) => (where === '' ? k : `${where}.${k}`);
    const parts = issue.keys.map((k) => {
      const c = closestKey(k, valid);
      return `unknown key ${full(k)}${c !== undefined ? `; did you mean ${full(c)}?` : ''}`;
    });
    const list = valid.length > 0 ? ` (valid keys${where === '' ? '' : ` at ${where}`}: ${valid.join(', ')})` : '';
    return `${parts.join('; ')}${list}`;
  }
  const msg = issue.message.replace(/\s+/g, ' ').trim();
  if (issue.path.length === 0) return msg;
  // messages that already name their field ("lr must be > 0") are not prefixed twice
  const path = formatPath(issue.path);
  return msg.startsWith(`${path} `) ? msg : `${path}: ${msg}`;
}

/**
 * A one-line `UserError` from a zod error: `<source>: <issue>; <issue>…` with every distinct issue,
 * unknown keys named with their path and the closest valid key (`knownKeys`: the root schema that
 * was parsed, or a function giving the valid keys at a path).
 */
export function zodUserError(error: z.ZodError, source: string, knownKeys?: KnownKeys): UserError {
  const msgs = [...new Set(error.issues.map((i) => formatIssue(i, knownKeys)))];
  return new UserError(`${source}: ${msgs.join('; ')}`);
}
