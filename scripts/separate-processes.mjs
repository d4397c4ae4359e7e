#!/usr/bin/env node
/**
 * One build and thread count per process: each child repeats the xresnet's per-example bracket
 * (or its Adam step: see xresnet-work.mjs; MODEL=convnet for the convnet) W times untimed, then N
 * times timed, and prints its median ms. Rounds alternate builds and thread counts, so a drifting
 * machine affects all alike, and no process holds two builds' threads at once (step-ab.mjs runs
 * both builds in one process, where their kernel pools compete). Uses built packages. FLAGS: node
 * option sets to alternate as well, comma-separated, each a space-separated list, the empty set
 * for none (FLAGS=",--single-threaded-gc": without and with it); each set's time is then also
 * printed per round as a ratio to the first set's; even rounds run the sets in reverse order.
 *
 *   BUILDS=<dist>[,<dist>…] THREADS=1,2 FLAGS=… ROUNDS=3 N=150 W=30 node scripts/separate-processes.mjs [bracket|step]
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
const flagSets = (process.env.FLAGS ?? '').split(',').map((f) => f.split(' ').filter((x) => x !== ''));
const flagsOf = (f) => (f.length > 0 ? ` ${f.join(' ')}` : '');
const keyOf = (b, t, f) => `${b} × ${t}${flagsOf(f)}`;
const ms = new Map();
for (let r = 1; r <= rounds; r++) {
  const line = [];
  // (even rounds run the option sets in reverse order, so that a drift between the first and the
  // second process of a round does not favour one set)
  for (const b of builds) {
    for (const t of threads) {
      for (const f of r % 2 === 0 ? [...flagSets].reverse() : flagSets) {
        const out = execFileSync(process.execPath, [...f, here, '--child', b, what, String(t), n, w], { encoding: 'utf8' });
        const m = Number(out.trim());
        const key = keyOf(b, t, f);
        ms.set(key, [...(ms.get(key) ?? []), m]);
        line.push(`${key}: ${m.toFixed(1)} ms`);
      }
    }
  }
  console.log(`round ${r}: ${line.join(', ')}`);
}
const perRound = (a) => a.map((v) => v.toFixed(2)).join(', ');
for (const b of builds) {
  for (const f of flagSets) {
    const one = ms.get(keyOf(b, threads[0], f));
    for (const t of threads.slice(1)) {
      const sp = ms.get(keyOf(b, t, f)).map((v, i) => one[i] / v);
      console.log(`${b}${flagsOf(f)}: ${threads[0]} → ${t} threads, speed-up per round ${perRound(sp)}`);
    }
  }
  for (const t of threads) {
    const base = ms.get(keyOf(b, t, flagSets[0]));
    for (const f of flagSets.slice(1))
      console.log(
        `${keyOf(b, t, f)}: time per round over ${keyOf(b, t, flagSets[0])}'s ${perRound(ms.get(keyOf(b, t, f)).map((v, i) => v / base[i]))}`,
      );
  }
}
