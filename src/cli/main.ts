#!/usr/bin/env node
/** The `lie-bracket` command. */
import { realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { bracketCommand } from './bracket.js';
import { trainCommand } from './train.js';
import { verifyCommand } from './verify.js';
import { mergeCommand, sweepCommand } from './sweep.js';
import { statsCommand } from './stats.js';
import { studyCommand } from './study.js';
import { reportCommand } from './report.js';
import { importCommand } from './import.js';
import { exploreCommand } from './explore.js';
import { UserError } from '../errors.js';
import { fsUserError, isFsError } from '../fs-errors.js';
import { releaseHeldLocks } from '../study/lock.js';
import { setThreads, threads } from '../engine/kernels/threads.js';
import { parseIntArg } from './util.js';
import { VERSION } from '../version.js';

export function program(): Command {
  const prog = new Command('lie-bracket')
    .description('How much does the order of two training examples matter? Exact training-example Lie brackets [v_x, v_y] = H_y g_x − H_x g_y.')
    .version(VERSION)
    .addCommand(bracketCommand())
    .addCommand(trainCommand())
    .addCommand(verifyCommand())
    .addCommand(sweepCommand())
    .addCommand(mergeCommand())
    .addCommand(statsCommand())
    .addCommand(studyCommand())
    .addCommand(reportCommand())
    .addCommand(importCommand())
    .addCommand(exploreCommand());
  // --quiet, before or after the command name: no progress bars, progress or stage lines (errors still print)
  prog.option('--quiet', 'no progress on stderr: no bars, no progress or stage lines (errors still print)');
  prog.option(
    '--threads <n>',
    `kernel threads of every computation, the calling thread included (default: LIE_BRACKET_THREADS, else every core: ${availableParallelism()} here); 1: single-threaded. A sweep's --workers each use 1`,
    parseIntArg('--threads', 1),
  );
  prog.hook('preAction', (_prog, action) => {
    const t = action.optsWithGlobals<{ threads?: number }>().threads;
    if (t !== undefined) setThreads(t);
    else {
      try {
        threads(); // a bad LIE_BRACKET_THREADS is bad input: one line, before any work
      } catch (e) {
        throw new UserError((e as Error).message);
      }
    }
  });
  for (const c of prog.commands) c.configureHelp({ showGlobalOptions: true });
  // errors propagate to main() instead of exiting, for every command
  for (const c of [prog, ...prog.commands]) c.exitOverride();
  return prog;
}

export async function main(argv: string[]): Promise<number> {
  const threadsBefore = threadsIfValid();
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (e) {
    // commander printed its message already: --help and --version exit 0, an interrupted training
    // 130 (as a shell reports Ctrl-C), a bad flag is bad input
    if (e instanceof CommanderError) return e.exitCode === 0 || e.exitCode === 130 ? e.exitCode : 2;
    const err = isFsError(e) ? fsUserError(e) : e;
    if (err instanceof UserError) {
      process.stderr.write(`lie-bracket: error: ${err.message}\n`);
      if (process.env.DEBUG) process.stderr.write(`${err.stack}\n`);
      return 2;
    }
    // a bug, not the user's fault: one line, the stack with DEBUG=1
    if (process.env.DEBUG) throw err;
    process.stderr.write(
      `lie-bracket: internal error: ${(err as Error).message?.split('\n')[0] ?? String(err)} (a bug: please report it; DEBUG=1 shows the stack trace)\n`,
    );
    return 1;
  } finally {
    // --threads holds for this command only (tests run many commands in one process)
    if (threadsBefore !== undefined) setThreads(threadsBefore);
  }
}

/** The kernel thread count now, or undefined while LIE_BRACKET_THREADS is invalid (reported by the command). */
function threadsIfValid(): number | undefined {
  try {
    return threads();
  } catch {
    return undefined;
  }
}

const isEntry = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntry) {
  // `lie-bracket … | head`: a closed pipe ends the output quietly, as in other command-line tools
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  // SIGTERM (a scheduler's eviction, scancel, docker stop) and a Ctrl-C outside training (which stops
  // at a step boundary by itself): release this process's locks, so that a retry can take them
  process.on('SIGTERM', () => {
    releaseHeldLocks();
    process.exit(143);
  });
  process.on('SIGINT', () => {
    if (process.listenerCount('SIGINT') > 1) return; // training's own handler is installed
    releaseHeldLocks();
    process.exit(130);
  });
  process.exitCode = await main(process.argv);
}
