#!/usr/bin/env node
/**
 * What two cores give, on this machine, to work that shares nothing: the xresnet's Adam step
 * (batch 32, float32) or its per-example bracket (float32, BatchNorm eval), run for D seconds
 *   a) in one process on 1 thread,
 *   b) in two processes at once, 1 thread each (independent: no shared memory, no hand-offs),
 *   c) in one process on 2 threads (the engine's kernel threads),
 * rounds alternating a, b, c so that a drifting machine affects all three alike. Prints the
 * throughput (computations per second) of each, and b/a (the ceiling of any way of using the
 * second core for this work here) beside c/a (the engine's speed-up). Uses the built package.
 *
 *   node scripts/scaling-ceiling.mjs [step|bracket] [--seconds D] [--rounds R]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { xresnetWork } from './xresnet-work.mjs';

const here = fileURLToPath(import.meta.url);
const dist = new URL('../dist', import.meta.url).pathname;
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};

if (args[0] === '--child') {
  // one worker process: `--child what threads seconds`; prints {n, ms} as JSON
  const [, what, threads, seconds] = args;
  const { work, setThreads } = await xresnetWork(dist, what);
  setThreads(Number(threads));
  for (let i = 0; i < 3; i++) work();
  let n = 0;
  const t0 = performance.now();
  const end = t0 + Number(seconds) * 1000;
  while (performance.now() < end) {
    work();
    n++;
  }
  console.log(JSON.stringify({ n, ms: performance.now() - t0 }));
  process.exit(0);
}

const what = args[0] ?? 'bracket';
if (what !== 'step' && what !== 'bracket') throw new Error(`expected step or bracket, got "${what}"`);
const seconds = opt('--seconds', 10);
const rounds = opt('--rounds', 3);

function child(threads) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [here, '--child', what, String(threads), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited with ${code}`))));
  });
}

const rate = (r) => (r.n * 1000) / r.ms;
const rows = [];
for (let r = 0; r < rounds; r++) {
  const a = rate(await child(1));
  const b = (await Promise.all([child(1), child(1)])).map(rate).reduce((s, v) => s + v, 0);
  const c = rate(await child(2));
  rows.push({ a, b, c });
  console.log(
    `round ${r + 1}: 1 process × 1 thread ${a.toFixed(2)}/s, 2 processes × 1 thread ${b.toFixed(2)}/s (${(b / a).toFixed(2)}×), 1 process × 2 threads ${c.toFixed(2)}/s (${(c / a).toFixed(2)}×)`,
  );
}
const med = (xs) => [...xs].sort((p, q) => p - q)[xs.length >> 1];
console.log(
  `xresnet ${what}, ${rounds} rounds of ${seconds} s: two independent processes ${med(rows.map((x) => x.b / x.a)).toFixed(2)}× one (median), ` +
    `the engine on 2 threads ${med(rows.map((x) => x.c / x.a)).toFixed(2)}×`,
);
