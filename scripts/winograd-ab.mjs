#!/usr/bin/env node
/**
 * Winograd F(2×2, 3×3) against the other float32 convolution paths, per call, in one process
 * (from a built package): the xresnet's batch-32 3×3 stride-1 layers, `wasmTuning.winograd` off
 * and on in alternating calls (each call after an untimed one), medians in ms.
 *
 *   node scripts/winograd-ab.mjs
 *
 * Environment: DIST (default: this checkout's dist), T (threads, 1), R (calls per path, 9), KERNEL
 * (conv2d, conv2d_input_grad or conv2d_filter_grad; conv2d), N (the batch, 32).
 */
const dist = process.env.DIST ?? new URL('../dist', import.meta.url).pathname;
const T = Number(process.env.T ?? 1);
const R = Number(process.env.R ?? 9);
const wasm = await import(`${dist}/engine/kernels/wasm.js`);
const { setThreads, shutdownThreads } = await import(`${dist}/engine/kernels/index.js`);
setThreads(T);
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
const arr = (n) => Float32Array.from({ length: n }, rnd);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const KERNEL = process.env.KERNEL ?? 'conv2d';
const BATCH = process.env.N === undefined ? null : Number(process.env.N);
for (const [N0, C, O, H] of [
  [32, 32, 32, 32],
  [32, 16, 32, 32],
  [32, 32, 32, 16],
  [32, 64, 64, 8],
  [32, 128, 128, 4],
  [32, 256, 256, 2],
]) {
  const N = BATCH ?? N0;
  const x = { data: arr(N * C * H * H), shape: [N, C, H, H] };
  const w = { data: arr(O * C * 9), shape: [O, C, 3, 3] };
  const dy = { data: arr(N * O * H * H), shape: [N, O, H, H] };
  const p = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
  // the kernel's output shape, inputs and parameters
  const [shape, ins, params] = {
    conv2d: [[N, O, H, H], [x, w], p],
    conv2d_input_grad: [[N, C, H, H], [dy, w], { ...p, inputShape: [N, C, H, H] }],
    conv2d_filter_grad: [[O, C, 3, 3], [x, dy], { ...p, filterShape: [O, C, 3, 3] }],
  }[KERNEL];
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const times = [[], []];
  for (let r = 0; r < R; r++)
    for (const k of [0, 1]) {
      wasm.wasmTuning.winograd = k === 1;
      wasm.wasmKernels[KERNEL](out, shape, ins, params);
      const t0 = performance.now();
      wasm.wasmKernels[KERNEL](out, shape, ins, params);
      times[k].push(performance.now() - t0);
    }
  console.log(
    `${KERNEL} N${N} ${C}→${O} ${H}×${H}, ${T} thread${T > 1 ? 's' : ''}: other paths ${median(times[0]).toFixed(2)} ms, Winograd ${median(times[1]).toFixed(2)} ms`,
  );
}
wasm.wasmTuning.winograd = true;
shutdownThreads();
