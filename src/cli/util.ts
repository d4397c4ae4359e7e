/** Small CLI helpers: option parsers that fail with a one-line UserError, tables, progress. */
import { InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';

export function parseIntArg(name: string, min = 0): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got "${v}"`);
    }
    return n;
  };
}

/** "0,1;2,3" → [[0,1],[2,3]]. */
export function parsePairs(v: string): [number, number][] {
  const pairs = v
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const m = /^(\d+)\s*,\s*(\d+)$/.exec(s);
      if (!m) throw new InvalidArgumentError(`pairs must look like "0,1;2,3" (indices into the split), got "${s}"`);
      return [Number(m[1]), Number(m[2])] as [number, number];
    });
  if (pairs.length === 0) throw new InvalidArgumentError('pairs: give at least one pair, e.g. "0,1"');
  return pairs;
}

/** Right-aligned plain-text table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function sci(v: number, digits = 3): string {
  return Number.isFinite(v) ? v.toExponential(digits) : String(v);
}

/** A progress bar on stderr when it is a terminal and output is not JSON; a no-op otherwise. */
export function progress(total: number, label: string, enabled: boolean): { tick(): void; stop(): void } {
  if (!enabled || !process.stderr.isTTY || total < 2) return { tick() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} | {eta_formatted} left`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { tick: () => bar.increment(), stop: () => bar.stop() };
}
