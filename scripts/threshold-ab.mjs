#!/usr/bin/env node
/**
 * In one process, two values of `wasmTuning.parallelMinFlops` (the fewest flops per thread for
 * which matmul and the conv family split a call; float64 calls count each flop twice) on the
 * convnet's per-example bracket, serial halves (its kernel calls split over the threads), in
 * blocks of K brackets that alternate the values (after one untimed each), BL blocks. Prints each
 * value's median and the median and quartiles of the per-block ratio B/A. From a built package.
 *
 *   A=2097152 B=1048576 DT=float64 T=2 K=10 BL=60 node scripts/threshold-ab.mjs
 *
 * (With A twice B, float64 calls split as a float32 call of the same flops did before float64
 * counted double: A=2 Mi against B=1 Mi is the old float64 threshold against the new one.)
 */
const dist = process.env.DIST ?? new URL('../dist', import.meta.url).pathname;
const imp = (p) => import(`${dist}${p}`);
const tb = await imp('/bench/train-bench.js');
const { setThreads } = await imp('/engine/kernels/index.js');
const { wasmTuning } = await imp('/engine/kernels/wasm.js');
const { getModel, initModel } = await imp('/nn/models.js');
const { LOSSES } = await imp('/nn/losses.js');
const { bracket, modelLoss } = await imp('/bracket/bracket.js');
const { bracketTuning } = await imp('/bracket/parallel.js');
const { batch } = await imp('/data/dataset.js');
const { Scratch, withScratch } = await imp('/engine/scratch.js');

const dtype = process.env.DT ?? 'float64';
const A = Number(process.env.A ?? 2 ** 21);
const B = Number(process.env.B ?? 2 ** 20);
const K = Number(process.env.K ?? 10);
const BL = Number(process.env.BL ?? 60);
const model = getModel('convnet');
const ds = tb.randomDataset([1, 28, 28], 10, 2, 0);
const params = initModel(model, 0, dtype);
const lossFn = modelLoss(model, LOSSES.bce);
const [x, y] = [batch(ds, [0], dtype), batch(ds, [1], dtype)];
const pool = new Scratch();
setThreads(Number(process.env.T ?? 2));
bracketTuning.mode = 'never';
const work = () => withScratch(pool, () => bracket(lossFn, params, x, y));
const med = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
for (let i = 0; i < 30; i++) work();
const ta = [];
const tb2 = [];
const ratios = [];
for (let blk = 0; blk < BL; blk++) {
  const m = {};
  const order = [
    ['a', A, ta],
    ['b', B, tb2],
  ];
  for (const [k, v, arr] of blk % 2 ? order : order.reverse()) {
    wasmTuning.parallelMinFlops = v;
    work();
    const ts = [];
    for (let i = 0; i < K; i++) {
      const t0 = performance.now();
      work();
      ts.push(performance.now() - t0);
    }
    arr.push(...ts);
    m[k] = med(ts);
  }
  ratios.push(m.b / m.a);
}
const s = [...ratios].sort((p, q) => p - q);
console.log(
  `convnet ${dtype} bracket, ${process.env.T ?? 2} threads: A=${A} ${med(ta).toFixed(2)} ms, B=${B} ${med(tb2).toFixed(2)} ms; ` +
    `B/A per block: median ${med(ratios).toFixed(3)}, quartiles ${s[s.length >> 2].toFixed(3)}–${s[(3 * s.length) >> 2].toFixed(3)}`,
);
process.exit(0);
