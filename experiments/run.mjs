// @ts-check
/**
 * Run the experiments: `node experiments/run.mjs [a|b|c|d|e …] [--quick] [--out DIR] [--runs DIR]
 * [--workers N]` (`npm run experiments -- …` builds first). Without names, all five, in order.
 * Each writes its results table (JSON + Markdown) and figures (PNG + Vega-Lite spec); this runner
 * appends to run-info.json each invocation's wall times, and which studies it trained or reused. Studies are resumable and
 * shared between experiments: a second run reuses every finished training run and sweep.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import * as a from './a-magnitude.mjs';
import * as b from './b-misspecification.mjs';
import * as c from './c-fashion-losses.mjs';
import * as d from './d-optimizers.mjs';
import * as e from './e-dose-response.mjs';
import { ROOT, parseArgs, writeAtomic } from './lib.mjs';

/** @type {Record<string, { ID: string, run: (ctx: import('./lib.mjs').Context) => Promise<unknown> }>} */
const EXPERIMENTS = { a, b, c, d, e };

async function main() {
  const { ctx, names } = parseArgs(process.argv.slice(2));
  const chosen = names.length > 0 ? names : Object.keys(EXPERIMENTS);
  for (const n of chosen) {
    if (!EXPERIMENTS[n]) throw new Error(`unknown experiment "${n}"; choose from ${Object.keys(EXPERIMENTS).join(', ')}`);
  }
  ctx.log(
    `experiments ${chosen.join(', ')} (${ctx.quick ? 'quick' : 'full'}): tables → ${relative(ROOT, ctx.tables) || '.'}, figures → ${relative(ROOT, ctx.figures)}, runs → ${relative(ROOT, ctx.runs)}`,
  );
  const t0 = performance.now();
  /** @type {Record<string, number>} */
  const seconds = {};
  for (const n of chosen) {
    const e = EXPERIMENTS[n];
    if (!e) continue;
    const t = performance.now();
    ctx.log(`=== ${e.ID}`);
    await e.run(ctx);
    seconds[e.ID] = (performance.now() - t) / 1000;
    ctx.log(`=== ${e.ID} done in ${seconds[e.ID]?.toFixed(0)} s`);
  }
  const total = (performance.now() - t0) / 1000;
  const info = {
    date: new Date().toISOString(),
    quick: ctx.quick,
    experiments: chosen,
    seconds,
    totalSeconds: total,
    studiesTrained: ctx.studies.filter((s) => !s.reused).length,
    studiesReused: ctx.studies.filter((s) => s.reused).length,
    cores: availableParallelism(),
    node: process.version,
    studies: ctx.studies,
  };
  // one entry per invocation, appended: a rerun that reuses the studies keeps the from-scratch timing
  const file = join(ctx.tables, 'run-info.json');
  /** @type {unknown[]} */
  let history = [];
  if (existsSync(file)) {
    const old = JSON.parse(readFileSync(file, 'utf8'));
    history = Array.isArray(old.history) ? old.history : [old];
  }
  writeAtomic(file, `${JSON.stringify({ history: [...history, info] }, null, 2)}\n`);
  ctx.log(`all done in ${total.toFixed(0)} s (${(total / 60).toFixed(1)} min); ${relative(ROOT, file)}`);
}

main().catch((e) => {
  // one line; the stack trace with DEBUG=1
  const detail = e instanceof Error ? (process.env['DEBUG'] ? (e.stack ?? e.message) : e.message) : String(e);
  process.stderr.write(`experiments: error: ${detail}\n`);
  process.exit(1);
});
