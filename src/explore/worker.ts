/**
 * The explorer's Web Worker (bundled for the browser by scripts/build-explorer.mjs): it rebuilds
 * the run's model and loss from explorer.json, loads checkpoints (float32) and the gallery's pixels
 * from the page's origin, and computes a pair's bracket and its logit effect on a probe batch with
 * the same functions, in the same order, as `lie-bracket bracket` (src/bracket/analysis.ts), so the
 * numbers agree with the CLI's at --dtype float32. It also computes the gallery's logits at a
 * checkpoint (the predictions). Everything here is synchronous engine work between messages.
 */
import { bracket, logitEffect, modelLoss, type Example } from '../bracket/bracket.js';
import { pairStats } from '../bracket/pair-stats.js';
import type { Vec } from '../bracket/vec.js';
import { batch, type Dataset } from '../data/dataset.js';
import { wasmVariant } from '../engine/kernels/wasm.js';
import { Scratch, withScratch } from '../engine/scratch.js';
import { Tensor } from '../engine/tensor.js';
import { concrete } from '../engine/transforms.js';
import { evalState } from '../nn/layers.js';
import { getLoss, type Loss } from '../nn/losses.js';
import { MODELS, type Model } from '../nn/models.js';
import { modelFromSpec } from '../nn/spec.js';
import type { BracketRequest, FromWorker, Manifest, TensorEntry, ToWorker } from './protocol.js';

/** What this file touches of the worker's global scope (the project's TypeScript has no DOM library). */
interface WorkerScope {
  postMessage(m: FromWorker): void;
  onmessage: ((e: { data: ToWorker }) => void) | null;
  fetch(url: string): Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer>; json(): Promise<unknown> }>;
}
const scope = globalThis as unknown as WorkerScope;

interface State {
  manifest: Manifest;
  base: string;
  model: Model;
  loss: Loss;
  data: Dataset;
}

let state: State | null = null;
const checkpoints = new Map<number, Promise<{ params: Vec; buffers: Vec }>>();
const scratch = new Scratch();

async function getBytes(url: string): Promise<ArrayBuffer> {
  const r = await scope.fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.arrayBuffer();
}

function tensors(entries: readonly TensorEntry[], data: Float32Array, dtype: 'float32' | 'float64'): Vec {
  const out: Vec = {};
  for (const e of entries) {
    const src = data.subarray(e.offset, e.offset + e.length);
    out[e.name] = new Tensor(dtype === 'float32' ? src.slice() : Float64Array.from(src), [...e.shape]);
  }
  return out;
}

function checkpoint(s: State, step: number): Promise<{ params: Vec; buffers: Vec }> {
  let p = checkpoints.get(step);
  if (!p) {
    p = getBytes(`${s.base}ckpt/${step}.bin`).then((buf) => {
      const f = new Float32Array(buf);
      // parameters float32 as the run's (--dtype float32); BatchNorm statistics float64, as loadCheckpoint gives them
      return { params: tensors(s.manifest.params, f, 'float32'), buffers: tensors(s.manifest.buffers, f, 'float64') };
    });
    p.catch(() => checkpoints.delete(step));
    checkpoints.set(step, p);
  }
  return p;
}

async function init(base: string): Promise<void> {
  const r = await scope.fetch(`${base}explorer.json`);
  if (!r.ok) throw new Error(`explorer.json: HTTP ${r.status}`);
  const manifest = (await r.json()) as Manifest;
  const pixels = new Float32Array(await getBytes(`${base}examples.bin`));
  const md = manifest.model;
  const model = 'preset' in md ? MODELS[md.preset] : modelFromSpec(md.spec, md.name);
  if (!model) throw new Error(`unknown model ${JSON.stringify(md)}`);
  const loss = getLoss(manifest.loss.name, { groups: manifest.loss.groups, numOutputs: manifest.loss.numOutputs });
  const [c, h, w] = manifest.inputShape;
  const px = c * h * w;
  const data: Dataset = {
    name: manifest.data,
    split: 'test',
    length: manifest.examples.count,
    inputShape: manifest.inputShape,
    labelNames: manifest.labelNames,
    labelKind: manifest.labelKind,
    get: (i) => ({ x: pixels.subarray(i * px, (i + 1) * px), y: Float32Array.from(manifest.examples.targets[i]!) }),
    fingerprint: () => 'explorer',
  };
  state = { manifest, base, model, loss, data };
}

async function computeBracket(s: State, req: BracketRequest): Promise<void> {
  const progress = (stage: string, fraction: number) => scope.postMessage({ type: 'progress', id: req.id, stage, fraction });
  progress('loading checkpoint', 0);
  const ck = await checkpoint(s, req.step);
  progress('bracket B = H_y g_x − H_x g_y', 0.1);
  await new Promise((r) => setTimeout(r, 0)); // let the progress message out before the synchronous work
  const t0 = performance.now();
  const forward = () => evalState(ck.buffers);
  const lossFn = modelLoss(s.model, s.loss, forward());
  const example = (i: number): Example => batch(s.data, [i], 'float32');
  const z = batch(s.data, req.probes, 'float32').x;
  const result = withScratch(scratch, () => {
    const r = bracket(lossFn, ck.params, example(req.x), example(req.y));
    const stats = pairStats(req.x, req.y, r);
    progress(`logit effect J_f(z)·B on ${req.probes.length} probes`, 0.6);
    const eff = logitEffect(s.model, ck.params, z, r.bracket, forward());
    const k = eff.shape[1]!;
    const n = req.probes.length;
    const logit: number[][] = Array.from({ length: k }, (_, o) => Array.from({ length: n }, (_, p) => eff.data[p * k + o]!));
    return { stats, logit };
  });
  const ms = performance.now() - t0;
  const st = result.stats;
  scope.postMessage({
    type: 'result',
    id: req.id,
    result: {
      x: req.x,
      y: req.y,
      step: req.step,
      probes: [...req.probes],
      lossX: st.lossX,
      lossY: st.lossY,
      gradNormX: st.gradNormX,
      gradNormY: st.gradNormY,
      gradCosine: st.gradCosine,
      bracketNorm: st.bracketNorm,
      tensors: st.tensors,
      logitEffect: result.logit,
      ms,
      kernels: wasmVariant(),
    },
  });
}

async function predict(s: State, step: number): Promise<void> {
  const ck = await checkpoint(s, step);
  const n = s.data.length;
  const logits: number[][] = [];
  const CHUNK = 64;
  for (let i0 = 0; i0 < n; i0 += CHUNK) {
    const idx = Array.from({ length: Math.min(CHUNK, n - i0) }, (_, j) => i0 + j);
    const x = batch(s.data, idx, 'float32').x;
    const out = withScratch(scratch, () => {
      const y = concrete(s.model.apply(ck.params, x, evalState(ck.buffers)));
      const k = y.shape[1]!;
      return idx.map((_, j) => Array.from(y.data.subarray(j * k, (j + 1) * k)));
    });
    logits.push(...out);
    await new Promise((r) => setTimeout(r, 0)); // a bracket request may go first
  }
  scope.postMessage({ type: 'predictions', step, logits });
}

// init and brackets one at a time, in order
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (e) => {
  const m = e.data;
  const job = queue.then(async () => {
    try {
      if (m.type === 'init') {
        await init(m.base);
        scope.postMessage({ type: 'ready', kernels: wasmVariant() });
      } else if (!state) throw new Error('the worker has not been initialised');
      else if (m.type === 'bracket') await computeBracket(state, m);
      else await predict(state, m.step);
    } catch (err) {
      scope.postMessage({ type: 'error', id: m.type === 'bracket' ? m.id : null, message: err instanceof Error ? err.message : String(err) });
    }
  });
  // predictions run in chunks beside the queue (a bracket asked for meanwhile goes between two chunks)
  if (m.type !== 'predict') queue = job;
};
