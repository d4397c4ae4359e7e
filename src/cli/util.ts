/** Small CLI helpers: option parsers that fail with a one-line UserError, tables, progress. */
import { InvalidArgumentError, type Command } from 'commander';
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

/** 812 B, 1.2 kB, 3.4 MB, 1.1 GB (powers of 1000). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 999.95 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Where progress goes: process.stderr, or a fake in tests. */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ReporterOptions {
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Milliseconds; default performance.now. */
  now?: () => number;
  /** Nothing at all: no bars, no progress lines, no stage lines. */
  quiet?: boolean;
  /** Terminal (a redrawn cli-progress bar) or log (plain lines); default stream.isTTY. */
  tty?: boolean;
}

/** One long piece of work with a known size: a bar on a terminal, about ten lines in a log. */
export interface ProgressTask {
  /** `done` units are finished; `detail` (e.g. "loss 0.4123") is shown after the counts. */
  update(done: number, detail?: string): void;
  /** One more unit finished. */
  tick(detail?: string): void;
  stop(): void;
}

/** Progress of a command: stage lines and one task at a time, on stderr. */
export interface Reporter {
  readonly quiet: boolean;
  readonly tty: boolean;
  /** A line "[name] detail"; stops the running task. */
  stage(name: string, detail?: string): void;
  /**
   * Starts a task (stopping the running one): `total` units named `unit`, `start` of them done
   * already (a resumed run). Fewer than 2 units to do: nothing is shown.
   */
  task(label: string, total: number, o?: { unit?: string; start?: number }): ProgressTask;
  /** Stops the running task, if any. */
  stop(): void;
}

/** 12.3 s, 4 min 05 s, 2 h 03 min. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 59.95) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

const NOOP_TASK: ProgressTask = { update() {}, tick() {}, stop() {} };

/**
 * The progress reporter of every long command. On a terminal: a cli-progress bar. Otherwise (a
 * log file, CI, a pipe): a line when the task is first updated, one whenever another tenth of the
 * work is done, and one at the end (if not printed already), each with done/total, elapsed time
 * and ETA, e.g. "train: 120/300 steps (40%), 12.3 s elapsed, ETA 18.4 s, loss 0.4123".
 * The stream and the clock are injectable for tests.
 */
export function reporter(o: ReporterOptions = {}): Reporter {
  const stream = o.stream ?? process.stderr;
  const now = o.now ?? (() => performance.now());
  const quiet = o.quiet === true;
  const tty = o.tty ?? stream.isTTY === true;
  let current: ProgressTask | undefined;

  const barTask = (label: string, total: number, unit: string, start: number): ProgressTask => {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total}${unit}{detail} | {eta_formatted} left`,
        stream: stream as NodeJS.WritableStream,
        hideCursor: true,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, start, { detail: '' });
    let done = start;
    let stopped = false;
    const update = (d: number, detail?: string) => {
      if (stopped) return;
      done = d;
      bar.update(d, { detail: detail ? ` | ${detail}` : '' });
    };
    return {
      update,
      tick: (detail) => update(done + 1, detail),
      stop() {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  };

  const logTask = (label: string, total: number, unit: string, start: number): ProgressTask => {
    const t0 = now();
    let done = start;
    let lastDetail: string | undefined;
    let printedAt: number | null = null; // the `done` of the last line
    let decile = Math.floor((10 * start) / total);
    let stopped = false;
    const line = () => {
      const elapsed = (now() - t0) / 1000;
      const rate = (done - start) / elapsed;
      const eta = done >= total ? 0 : done > start && elapsed > 0 ? (total - done) / rate : NaN;
      const pct = Math.floor((100 * done) / total);
      stream.write(
        `${label}: ${done}/${total}${unit} (${pct}%), ${formatDuration(elapsed)} elapsed, ETA ${formatDuration(eta)}${lastDetail ? `, ${lastDetail}` : ''}\n`,
      );
      printedAt = done;
    };
    const update = (d: number, detail?: string) => {
      if (stopped) return;
      done = d;
      if (detail !== undefined) lastDetail = detail;
      const k = Math.floor((10 * Math.min(d, total)) / total);
      if (printedAt === null || k > decile) {
        decile = Math.max(decile, k);
        line();
      }
    };
    return {
      update,
      tick: (detail) => update(done + 1, detail),
      stop() {
        if (stopped) return;
        stopped = true;
        if (printedAt !== null && printedAt !== done) line();
      },
    };
  };

  const stop = () => {
    current?.stop();
    current = undefined;
  };
  return {
    quiet,
    tty,
    stage(name, detail) {
      stop();
      if (!quiet) stream.write(`[${name}]${detail ? ` ${detail}` : ''}\n`);
    },
    task(label, total, t = {}) {
      stop();
      const start = t.start ?? 0;
      if (quiet || total - start < 2) return NOOP_TASK;
      current = (tty ? barTask : logTask)(label, total, t.unit ? ` ${t.unit}` : '', start);
      return current;
    },
    stop,
  };
}

/**
 * The reporter of a command's action: silent with the global --quiet (given before or after the
 * command name). --json does not silence it: progress goes to stderr, JSON to stdout.
 */
export function commandReporter(cmd: Command, o: Omit<ReporterOptions, 'quiet'> = {}): Reporter {
  return reporter({ ...o, quiet: cmd.optsWithGlobals<{ quiet?: boolean }>().quiet === true });
}

/**
 * Run a per-pair job (bracket, verify) with progress over its pairs: `--first K` gives K(K−1)/2,
 * `--pairs` their count, neither one pair. `fn` gets the tick to call after each pair.
 */
export function withPairProgress<T>(cmd: Command, label: string, f: { first?: number; pairs?: readonly unknown[] }, fn: (tick: () => void) => T): T {
  const n = f.first !== undefined ? (f.first * (f.first - 1)) / 2 : (f.pairs?.length ?? 1);
  const progress = commandReporter(cmd);
  const bar = progress.task(label, n, { unit: 'pairs' });
  try {
    return fn(() => bar.tick());
  } finally {
    progress.stop();
  }
}
