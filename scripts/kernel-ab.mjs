#!/usr/bin/env node
/**
 * A/B timing of the wasm kernels of two builds in one process, the two alternating call by call
 * (on a shared machine whose speed drifts, only this kind of comparison separates small
 * differences): the xresnet's convolutions at batch NB (conv2d, input and filter gradients), Mish
 * and its derivative on resident buffers, and the 3×3 stride-2 max-pool and its scatter. Prints
 * the minimum and median ms per call of each build and their ratio (B/A).
 *
 *   A=<dist of build A> B=<dist of build B> node scripts/kernel-ab.mjs [conv,ew]
 *
 * A build is a `dist/` directory (e.g. a copy of one made by `npm run build` at another commit,
 * inside a checkout so that its imports resolve). Environment: A, B (default: this checkout's
 * dist for both), T (threads, both; TA, TB each), R (rounds, 15), NB (batch, 32), W (which conv
 * kernels: any of f, i, d; default fid), IMPLA=0 (build A without the implicit-GEMM convolution:
 * wasmTuning.implicitConv = false), CHUNK (build B's wasmTuning.filterGradChunk).
 */
const here = new URL('../dist', import.meta.url).pathname;
const dirs = [process.env.A ?? here, process.env.B ?? here];
const T = Number(process.env.T ?? 1);
const mods = [];
for (const d of dirs) {
  const { allocBuf } = await import(d + '/engine/dtype.js');
  const { setThreads } = await import(d + '/engine/kernels/index.js');
  const { wasmKernels } = await import(d + '/engine/kernels/wasm.js');
  setThreads(d === dirs[0] ? Number(process.env.TA ?? T) : Number(process.env.TB ?? T));
  if (d === dirs[0] && process.env.IMPLA === '0') (await import(d + '/engine/kernels/wasm.js')).wasmTuning.implicitConv = false;
  if (d === dirs[1] && process.env.CHUNK) (await import(d + '/engine/kernels/wasm.js')).wasmTuning.filterGradChunk = Number(process.env.CHUNK);
  const sc = await import(d + '/engine/scratch.js');
  const pool = new sc.Scratch();
  // resident buffers (scratch-pool buffers live in the wasm memory)
  const res = (n) => sc.withScratch(pool, () => sc.kernelOutput('float32', n, false));
  mods.push({ allocBuf, K: wasmKernels, res });
}
let seed = 1;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296 - 0.5;
const inp = (shape) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rnd();
  return { data: d, shape };
};
const R = Number(process.env.R ?? 15);
function cmp(label, flops, mk) {
  const fs = mods.map(mk);
  for (const f of fs) {
    f();
    f();
  }
  const ts = [[], []];
  for (let r = 0; r < R; r++)
    for (let k = 0; k < 2; k++) {
      const t0 = performance.now();
      fs[k]();
      ts[k].push(performance.now() - t0);
    }
  const st = ts.map((a) => {
    a.sort((x, y) => x - y);
    return [a[0], a[Math.floor(a.length / 2)]];
  });
  const g = (t) => (flops ? (flops / t / 1e6).toFixed(1).padStart(5) + ' GF/s' : '');
  console.log(
    `${label.padEnd(30)} A min ${st[0][0].toFixed(2).padStart(7)} med ${st[0][1].toFixed(2).padStart(7)} ${g(st[0][0])} | B min ${st[1][0].toFixed(2).padStart(7)} med ${st[1][1].toFixed(2).padStart(7)} ${g(st[1][0])} | B/A ${(st[1][0] / st[0][0]).toFixed(2)}`,
  );
  return st;
}
const sel = (process.argv[2] ?? 'conv,ew').split(',');
const tot = [0, 0];
function conv(label, B, C, H, O, k, s, pad, mult = 1, which = 'fid') {
  const OH = Math.floor((H + 2 * pad - k) / s) + 1;
  const p = { stride: [s, s], padding: [pad, pad], dilation: [1, 1], groups: 1 };
  const xs = [B, C, H, H],
    ws = [O, C, k, k],
    ys = [B, O, OH, OH];
  const flops = 2 * B * O * OH * OH * C * k * k;
  const x = inp(xs),
    w = inp(ws),
    dy = inp(ys);
  const add = (st) => {
    tot[0] += mult * st[0][0];
    tot[1] += mult * st[1][0];
  };
  if (which.includes('f'))
    add(
      cmp(label + ' fwd', flops, ({ allocBuf, K }) => {
        const y = allocBuf('float32', B * O * OH * OH);
        return () => {
          y.fill(0);
          K.conv2d(y, ys, [x, w], p);
        };
      }),
    );
  if (which.includes('i'))
    add(
      cmp(label + ' dx', flops, ({ allocBuf, K }) => {
        const dx = allocBuf('float32', B * C * H * H);
        return () => {
          dx.fill(0);
          K.conv2d_input_grad(dx, xs, [dy, w], { ...p, inputShape: xs });
        };
      }),
    );
  if (which.includes('d'))
    add(
      cmp(label + ' dw', flops, ({ allocBuf, K }) => {
        const dw = allocBuf('float32', O * C * k * k);
        return () => {
          dw.fill(0);
          K.conv2d_filter_grad(dw, ws, [x, dy], { ...p, filterShape: ws });
        };
      }),
    );
}
if (sel.includes('conv')) {
  const w = process.env.W ?? 'fid';
  const NB = Number(process.env.NB ?? 32);
  conv('stem1 3→16 64² s2', NB, 3, 64, 16, 3, 2, 1, 1, w);
  conv('stem2 16→32 32²', NB, 16, 32, 32, 3, 1, 1, 1, w);
  conv('stem3 32→32 32²', NB, 32, 32, 32, 3, 1, 1, 1, w);
  conv('s1 32→32 16²', NB, 32, 16, 32, 3, 1, 1, 2, w);
  conv('s2a 32→64 16² s2', NB, 32, 16, 64, 3, 2, 1, 1, w);
  conv('s2b 64→64 8²', NB, 64, 8, 64, 3, 1, 1, 1, w);
  conv('s3a 64→128 8² s2', NB, 64, 8, 128, 3, 2, 1, 1, w);
  conv('s3b 128→128 4²', NB, 128, 4, 128, 3, 1, 1, 1, w);
  conv('s4a 128→256 4² s2', NB, 128, 4, 256, 3, 2, 1, 1, w);
  conv('s4b 256→256 2²', NB, 256, 2, 256, 3, 1, 1, 1, w);
  console.log(`conv total (mins): A ${tot[0].toFixed(1)} B ${tot[1].toFixed(1)} ms`);
}
if (sel.includes('ew')) {
  const a0 = inp([32, 32, 32, 32]);
  const a = a0;
  cmp('mish 1M', 0, ({ K, res }) => {
    const o = res(a0.data.length);
    const x = { data: res(a0.data.length), shape: a0.shape };
    x.data.set(a0.data);
    return () => K.mish(o, x.shape, [x], {});
  });
  cmp('mish_grad 1M', 0, ({ K, res }) => {
    const o = res(a0.data.length);
    const x = { data: res(a0.data.length), shape: a0.shape };
    x.data.set(a0.data);
    return () => K.mish_grad(o, x.shape, [x], {});
  });
  const pp = { kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
  const ys = [32, 32, 16, 16];
  const dy = inp(ys);
  cmp('maxpool 3x3s2', 0, ({ allocBuf, K }) => {
    const y = allocBuf('float32', 32 * 32 * 256);
    return () => K.maxpool2d(y, ys, [a, a], pp);
  });
  cmp('maxpool_scatter', 0, ({ allocBuf, K }) => {
    const o = allocBuf('float32', a.data.length);
    return () => {
      o.fill(0);
      K.maxpool2d_scatter(o, a.shape, [a, dy], { ...pp, inputShape: a.shape });
    };
  });
}
process.exit(0);
