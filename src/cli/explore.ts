/** `lie-bracket explore`: the live explorer of a run — any two examples bracketed in the browser — served on localhost or written as static files. */
import { Command, InvalidArgumentError } from 'commander';
import { UserError } from '../errors.js';
import { DEFAULT_GALLERY, serveExplorer, writeStaticExplorer } from '../explore/files.js';
import { EXPLORER_PORT } from '../report/report.js';
import { formatBytes, parseIntArg } from './util.js';

export interface ExploreFlags {
  port: number;
  static?: string;
  gallery?: number;
  steps?: number[];
  json?: boolean;
}

/** The default port of `explore` (0 would pick any free one); the report names it. */
export const DEFAULT_PORT = EXPLORER_PORT;

export function parsePort(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n > 65535) {
    throw new InvalidArgumentError(`--port must be an integer 0…65535 (0: any free port), got "${v}"`);
  }
  return n;
}

export function parseSteps(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((s) => !/^\d+$/.test(s)))
    throw new InvalidArgumentError(`--steps must be checkpoint steps like "0,100,300", got "${v}"`);
  return parts.map(Number);
}

/**
 * Serve until the process is interrupted (Ctrl-C): resolves when the server has closed. `signal`
 * (tests) closes it too.
 */
export async function runExplore(runDir: string, f: ExploreFlags, signal?: AbortSignal): Promise<void> {
  const opts = { ...(f.gallery !== undefined ? { gallery: f.gallery } : {}), ...(f.steps !== undefined ? { steps: f.steps } : {}) };
  if (f.static !== undefined) {
    if (f.static.trim() === '') throw new UserError('--static needs a directory');
    const w = writeStaticExplorer(runDir, f.static, opts);
    if (f.json) {
      process.stdout.write(`${JSON.stringify({ run: runDir, static: w.dir, files: w.files, bytes: w.bytes })}\n`);
      return;
    }
    process.stdout.write(
      `wrote the explorer of ${runDir} to ${w.dir} (${w.files} files, ${formatBytes(w.bytes)}); serve it with any static web server` +
        ` (not from file://, where browsers refuse its Web Worker), e.g. python3 -m http.server -d ${w.dir}\n`,
    );
    return;
  }
  const s = await serveExplorer(runDir, f.port, opts);
  process.stdout.write(
    f.json
      ? `${JSON.stringify({ run: runDir, url: s.url, steps: s.manifest.steps, gallery: s.manifest.examples.count })}\n`
      : `the explorer of ${runDir}: open ${s.url} (Ctrl-C stops it)\n`,
  );
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void s.close().then(done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    signal?.addEventListener('abort', stop, { once: true });
  });
}

export function exploreCommand(): Command {
  return new Command('explore')
    .description('the live explorer of a run: pick any two test examples in the browser and see their bracket and its effect on the logits')
    .argument('<run>', 'run directory (from lie-bracket train or study)')
    .option('--port <p>', 'port on localhost (0: any free port)', parsePort, DEFAULT_PORT)
    .option('--static <dir>', 'write the page as static files into DIR (new, empty, or a previous explorer output) instead of serving it')
    .option('--steps <list>', 'the checkpoints shipped, e.g. "0,100,300" (default: all of the run’s)', parseSteps)
    .option('--json', 'print one JSON object (the address, or what --static wrote) instead of a sentence')
    .option('--gallery <n>', `test examples 0…N−1 in the gallery (default: ${DEFAULT_GALLERY}, at most the test split)`, parseIntArg('--gallery', 2))
    .addHelpText(
      'after',
      `
Examples:
  lie-bracket explore runs/demo                    # then open http://127.0.0.1:${DEFAULT_PORT}/
  lie-bracket explore runs/demo --port 0 --gallery 1000
  lie-bracket explore runs/demo --static site/explorer`,
    )
    .action(async (run: string, f: ExploreFlags) => {
      await runExplore(run, f);
    });
}
