#!/usr/bin/env node
/**
 * Where a parallel xresnet step or bracket spends its time (from a built package): per
 * computation, the wall time; the kernel calls that were split over threads (ms, and of that the
 * ms the calling thread waited for the workers' parts after running its own: threads.ts's
 * threadStats); the kernel calls that stayed on the calling thread (ms, and the costliest of
 * them); and the time outside kernels. (The hook's own cost is inside "outside kernels".)
 *
 *   node scripts/thread-breakdown.mjs [step|bracket]
 *
 * Environment: DIST (default: this checkout's dist), T (threads, 2), N (computations timed, 10;
 * after 3 untimed), TOP (rows of unsplit kernels, 8).
 */
import { xresnetWork } from './xresnet-work.mjs';

const dist = process.env.DIST ?? new URL('../dist', import.meta.url).pathname;
const what = process.argv[2] ?? 'step';
const T = Number(process.env.T ?? 2);
const N = Number(process.env.N ?? 10);
const TOP = Number(process.env.TOP ?? 8);
const { work, setThreads } = await xresnetWork(dist, what);
const { withKernelHook, threadStats, resetThreadStats } = await import(`${dist}/engine/kernels/index.js`);
setThreads(T);
for (let i = 0; i < 3; i++) work();
resetThreadStats();
let kernelMs = 0,
  splitMs = 0,
  wall = 0;
const unsplit = new Map();
withKernelHook(
  (prim, outShape, inputs, _params, run) => {
    const c0 = threadStats().calls;
    const t0 = performance.now();
    run();
    const dt = performance.now() - t0;
    kernelMs += dt;
    if (threadStats().calls > c0) {
      splitMs += dt;
      return;
    }
    const key = `${prim} ${inputs.map((i) => i.shape.join('x')).join(',')}→${outShape.join('x')}`;
    const r = unsplit.get(key) ?? { ms: 0, calls: 0 };
    r.ms += dt;
    r.calls++;
    unsplit.set(key, r);
  },
  () => {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) work();
    wall = performance.now() - t0;
  },
);
const st = threadStats();
const per = (x) => (x / N).toFixed(1);
const unsplitMs = kernelMs - splitMs;
console.log(
  `xresnet ${what}, ${T} thread${T > 1 ? 's' : ''}, ${N} timed: ${per(wall)} ms each; split kernels ${per(splitMs)} ms (${per(st.calls)} calls; ` +
    `the calling thread waited ${per(st.waitMs)} ms for workers after its own parts, ran every part of ${per(st.ranAllHere)} calls); ` +
    `unsplit kernels ${per(unsplitMs)} ms; outside kernels ${per(wall - kernelMs)} ms`,
);
for (const [k, r] of [...unsplit].sort((a, b) => b[1].ms - a[1].ms).slice(0, TOP))
  console.log(`  ${(r.ms / N).toFixed(2).padStart(7)} ms ×${(r.calls / N).toFixed(0)} ${k}`);
process.exit(0);
