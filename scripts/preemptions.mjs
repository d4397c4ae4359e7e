#!/usr/bin/env node
/**
 * How often each thread of this process was preempted (Linux: nonvoluntary_ctxt_switches in
 * /proc/self/task/<tid>/status) and how often it gave up its core itself (voluntary: sleeping in
 * Atomics.wait, a V8 helper waiting for its next task) over N of the xresnet's brackets or steps
 * (xresnet-work.mjs; MODEL=convnet for the convnet), after W untimed, with their median time.
 * Threads are labelled: the calling thread; those started by the work (kernel threads, the
 * bracket worker); and those that were there before (V8's helper threads, Node's own). Start
 * it under `node --trace-gc` to see the collections, under `node --single-threaded-gc` to compare.
 *
 *   T=2 N=60 W=15 MODE=auto|always|never node scripts/preemptions.mjs [bracket|step]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { xresnetWork } from './xresnet-work.mjs';

const dist = process.env.DIST ?? new URL('../dist', import.meta.url).pathname;
const what = process.argv[2] ?? 'bracket';
const T = Number(process.env.T ?? 2);
const N = Number(process.env.N ?? 60);
const W = Number(process.env.W ?? 15);
const tasks = () => readdirSync('/proc/self/task');
const before = new Set(tasks());
const { work, setThreads } = await xresnetWork(dist, what);
const { bracketTuning } = await import(`${dist}/bracket/parallel.js`);
if (process.env.MODE) bracketTuning.mode = process.env.MODE;
setThreads(T);
for (let i = 0; i < W; i++) work();
const switches = () =>
  new Map(
    tasks().map((t) => {
      const s = readFileSync(`/proc/self/task/${t}/status`, 'utf8');
      const get = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
      return [t, [get('voluntary_ctxt_switches'), get('nonvoluntary_ctxt_switches')]];
    }),
  );
const s0 = switches();
const ts = [];
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  work();
  ts.push(performance.now() - t0);
}
const s1 = switches();
ts.sort((a, b) => a - b);
console.log(
  `xresnet ${what} (${process.env.MODEL ?? 'xresnet'}), ${T} thread${T > 1 ? 's' : ''}, ${N} timed: median ${ts[ts.length >> 1].toFixed(1)} ms`,
);
for (const [t, [v, n]] of s1) {
  const [v0, n0] = s0.get(t) ?? [0, 0];
  if (v === v0 && n === n0) continue;
  const label = t === String(process.pid) ? 'calling thread' : before.has(t) ? 'there before (V8, Node)' : 'started by the work';
  console.log(`  thread ${t} (${label}): preempted ${n - n0}, yielded ${v - v0}`);
}
process.exit(0);
