#!/usr/bin/env node
/**
 * One build and thread count per process: each child repeats the xresnet's per-example bracket
 * (or its Adam step: see xresnet-work.mjs; MODEL=convnet for the convnet) W times untimed, then N
 * times timed, and prints its median ms. Rounds alternate builds and thread counts, so a drifting
 * machine affects all alike, and no process holds two builds' threads at once (step-ab.mjs runs
 * both builds in one process, where their kernel pools compete). Uses built packages.
 *
 *   BUILDS=<dist>[,<dist>…] THREADS=1,2 ROUNDS=3 N=150 W=30 node scripts/separate-processes.mjs [bracket|step]
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { xresnetWork } from './xresnet-work.mjs';

const args = process.argv.slice(2);
if (args[0] === '--child') {
  const [, dist, what, threads, n, w] = args;
  const { work, setThreads } = await xresnetWork(dist, what);
  setThreads(Number(threads));
  for (let i = 0; i < Number(w); i++) work();
  const ts = [];
  for (let i = 0; i < Number(n); i++) {
    const t0 = performance.now();
    work();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  console.log(ts[ts.length >> 1]);
  process.exit(0);
}

const what = args[0] ?? 'bracket';
const here = fileURLToPath(import.meta.url);
const builds = (process.env.BUILDS ?? new URL('../dist', import.meta.url).pathname).split(',');
const threads = (process.env.THREADS ?? '1,2').split(',').map(Number);
const rounds = Number(process.env.ROUNDS ?? 3);
const n = process.env.N ?? '150';
const w = process.env.W ?? '30';
const ms = new Map();
for (let r = 1; r <= rounds; r++) {
  const line = [];
  for (const b of builds) {
    for (const t of threads) {
      const out = execFileSync(process.execPath, [here, '--child', b, what, String(t), n, w], { encoding: 'utf8' });
      const m = Number(out.trim());
      const key = `${b} × ${t}`;
      ms.set(key, [...(ms.get(key) ?? []), m]);
      line.push(`${key}: ${m.toFixed(1)} ms`);
    }
  }
  console.log(`round ${r}: ${line.join(', ')}`);
}
for (const b of builds) {
  const one = ms.get(`${b} × ${threads[0]}`);
  for (const t of threads.slice(1)) {
    const sp = ms.get(`${b} × ${t}`).map((v, i) => one[i] / v);
    console.log(`${b}: ${threads[0]} → ${t} threads, speed-up per round ${sp.map((v) => v.toFixed(2)).join(', ')}`);
  }
}
