#!/usr/bin/env node
/**
 * How long one thread takes to hand work to another and hear back, the cost that a parallel
 * kernel call pays on top of its work (src/engine/kernels/threads.ts): a worker either sleeps in
 * Atomics.wait between calls, or polls for SPIN ms first (threadTuning.spinMicros). Prints the
 * median and 90th percentile round trip after idle gaps of 0, 100 and 1000 µs.
 *
 *   node scripts/wake-latency.mjs            # the worker sleeps at once
 *   SPIN=5 node scripts/wake-latency.mjs     # it polls for 5 ms first
 */
import { Worker } from 'node:worker_threads';

const sab = new SharedArrayBuffer(64);
const I = new Int32Array(sab);
const SPIN = Number(process.env.SPIN ?? 0);
const worker = new Worker(
  `
const { workerData } = require('node:worker_threads');
const I = new Int32Array(workerData.sab);
let seen = 0;
for (;;) {
  let s = Atomics.load(I, 0);
  if (s === seen && workerData.SPIN > 0) {
    const end = performance.now() + workerData.SPIN;
    let k = 0;
    while ((s = Atomics.load(I, 0)) === seen && ((++k & 255) !== 0 || performance.now() < end));
  }
  if (s === seen) { Atomics.wait(I, 0, seen); s = Atomics.load(I, 0); }
  if (s < 0) break;
  if (s === seen) continue;
  seen = s;
  Atomics.store(I, 1, s);
  Atomics.notify(I, 1);
}`,
  { eval: true, workerData: { sab, SPIN } },
);
await new Promise((r) => setTimeout(r, 200));
for (const gapUs of [0, 100, 1000]) {
  const lat = [];
  for (let i = 1; i <= 2000; i++) {
    const tg = performance.now();
    while (performance.now() - tg < gapUs / 1000);
    const t0 = performance.now();
    Atomics.store(I, 0, i);
    Atomics.notify(I, 0);
    while (Atomics.load(I, 1) !== i) Atomics.wait(I, 1, Atomics.load(I, 1), 100);
    lat.push(performance.now() - t0);
  }
  lat.sort((a, b) => a - b);
  console.log(
    `worker polls ${SPIN} ms, gap ${gapUs} µs: round trip median ${(lat[1000] * 1000).toFixed(1)} µs, p90 ${(lat[1800] * 1000).toFixed(1)} µs`,
  );
}
Atomics.store(I, 0, -1);
Atomics.notify(I, 0);
await worker.terminate();
