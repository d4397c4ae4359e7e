#!/usr/bin/env node
/**
 * A/B timing of whole computations of two builds in one process, alternating call by call (on a
 * shared machine whose speed drifts, only this kind of comparison separates differences of a few
 * per cent): the xresnet's Adam training step (batch 32, float32, BatchNorm in training mode,
 * random 3×64×64 inputs and 40 targets) or its per-example bracket (one pair, float32, BatchNorm
 * eval). Prints each build's median ms and the median over the pairs of (B ms) / (A ms).
 *
 *   A=<dist of build A> B=<dist of build B> node scripts/step-ab.mjs [step|bracket]
 *
 * A build is a `dist/` directory (e.g. one made by `npm run build` in a `git worktree` of another
 * commit, with node_modules linked). Environment: MODEL (xresnet, or convnet: see xresnet-work.mjs),
 * A, B (default: this checkout's dist for both),
 * T (threads, both; TA, TB each), R (pairs, 24), SPIN (µs, "a,b": threadTuning.spinMicros of A and
 * of B; with one build, its two settings alternate), TUNEA / TUNEB (JSON objects assigned to that
 * build's wasmTuning, e.g. TUNEB='{"parallelMinElements":65536}'). Each build is its own module instance, with
 * its own WebAssembly memory and kernel threads. (One build at two thread counts: `node
 * dist/bench/train-bench.js --threads N --scaling`, which warms each count up untimed.)
 */
import { xresnetWork } from './xresnet-work.mjs';

const here = new URL('../dist', import.meta.url).pathname;
const dirs = [process.env.A ?? here, process.env.B ?? here];
const what = process.argv[2] ?? 'step'; // (checked by xresnetWork)
const T = Number(process.env.T ?? 1);
const TS = [Number(process.env.TA ?? T), Number(process.env.TB ?? T)];
const R = Number(process.env.R ?? 24);
const SPIN = process.env.SPIN?.split(',').map(Number);
if (SPIN && (SPIN.length !== 2 || SPIN.some((v) => !(v >= 0)))) throw new Error(`SPIN: expected two µs values "a,b", got "${process.env.SPIN}"`);
const mods = [];
if (dirs[0] === dirs[1] && TS[0] !== TS[1]) throw new Error('one build at two thread counts: use train-bench --scaling (see above)');
const TUNE = [process.env.TUNEA, process.env.TUNEB].map((j, k) => {
  if (!j) return null;
  const o = JSON.parse(j);
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new Error(`TUNE${'AB'[k]}: expected a JSON object, got ${j}`);
  return o;
});
if (dirs[0] === dirs[1] && (TUNE[0] || TUNE[1])) throw new Error('TUNEA/TUNEB: A and B must be separate builds (copies of dist)');
for (const [k, d] of dirs.entries()) {
  const { work, setThreads, threadTuning } = await xresnetWork(d, what);
  if (TUNE[k]) {
    const { wasmTuning } = await import(`${d}/engine/kernels/wasm.js`);
    for (const [key, v] of Object.entries(TUNE[k])) {
      if (!(key in wasmTuning)) throw new Error(`TUNE${'AB'[k]}: wasmTuning has no "${key}" (it has ${Object.keys(wasmTuning).join(', ')})`);
      wasmTuning[key] = v;
    }
  }
  const spin = SPIN?.[k];
  mods.push({
    setT: () => {
      setThreads(TS[k]);
      if (spin !== undefined) threadTuning.spinMicros = spin;
    },
    work,
  });
}
for (const m of mods) {
  m.setT();
  for (let i = 0; i < 3; i++) m.work();
}
const ts = [[], []];
for (let r = 0; r < R; r++)
  for (let k = 0; k < 2; k++) {
    mods[k].setT();
    const t0 = performance.now();
    mods[k].work();
    ts[k].push(performance.now() - t0);
  }
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const ratios = ts[0].map((a, i) => ts[1][i] / a);
console.log(
  `${process.env.MODEL ?? 'xresnet'} ${what}: A (${TS[0]} thread${TS[0] > 1 ? 's' : ''}) ${med(ts[0]).toFixed(1)} ms, B (${TS[1]}) ${med(ts[1]).toFixed(1)} ms; ` +
    `B/A over ${R} pairs: median ${med(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`,
);
