/**
 * The worker-thread side of `lie-bracket sweep` (a piscina task module). Each thread opens the run
 * once and keeps the checkpoint it last used; a task is one (step, pair) unit and returns its JSON
 * line. User errors come back as values (an error's class does not survive the thread boundary).
 *
 * Loaded by file from the compiled package (dist/study/sweep-worker.js), next to dist/study/sweep.js.
 */
import { UserError } from '../errors.js';
import { UnitComputer, type UnitOptions } from './sweep-unit.js';

export interface UnitTask {
  runDir: string;
  outDir: string;
  opts: UnitOptions;
  step: number;
  x: number;
  y: number;
}

export type UnitReply = { line: string } | { error: string; user: boolean };

let cached: { key: string; computer: UnitComputer } | undefined;

export default function computeUnitTask(task: UnitTask): UnitReply {
  try {
    const key = JSON.stringify([task.runDir, task.outDir, task.opts]);
    if (!cached || cached.key !== key) cached = { key, computer: UnitComputer.open(task.runDir, task.opts, task.outDir) };
    return { line: cached.computer.compute(task.step, task.x, task.y) };
  } catch (e) {
    if (e instanceof UserError) return { error: e.message, user: true };
    return { error: e instanceof Error ? (e.stack ?? e.message) : String(e), user: false };
  }
}
