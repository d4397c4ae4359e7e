/**
 * The worker-thread side of a parallel bracket (parallel.ts): a second engine instance that
 * computes y's half of [v_x, v_y]. It serves one request at a time, synchronously: wait for a
 * 'half' request, record y's gradient, send it, wait for x's gradient (the 'tangent'), send
 * H_y g_x. Whatever a request throws goes back as an 'error' message; the thread then waits for
 * the next request. It builds each model once from its recipe and keeps it.
 *
 * Imported by the worker's first code (parallel.ts BOOT) from the compiled package
 * (dist/bracket/bracket-worker.js).
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { parseOnnx } from '../data/onnx.js';
import { applyEngineSettings, setThreads } from '../engine/kernels/index.js';
import { residentCopy, Scratch, withScratch } from '../engine/scratch.js';
import { concrete } from '../engine/transforms.js';
import { UserError } from '../errors.js';
import { getLoss } from '../nn/losses.js';
import { getModel, type Model } from '../nn/models.js';
import type { ModelRecipe } from '../nn/recipe.js';
import { modelFromSpec } from '../nn/spec.js';
import { bracketHalf, modelLossOf } from './half.js';
import { poll, slotTensor, slotTree, STATE, TO_MAIN, TO_WORKER, writeSlots, type FromWorker, type ToWorker } from './parallel.js';

const { ctl: sab, port } = workerData as { ctl: SharedArrayBuffer; port: MessagePort };
const ctl = new Int32Array(sab);

// (the thread's exit handler, which marks it dead, is parallel.ts's BOOT code, which imports this module)

function post(msg: FromWorker): void {
  port.postMessage(msg);
  Atomics.add(ctl, TO_MAIN, 1);
  Atomics.notify(ctl, TO_MAIN);
}

let spin = 0; // (µs: the last request's)

function receive(): ToWorker {
  for (;;) {
    const seen = Atomics.load(ctl, TO_WORKER);
    const m = receiveMessageOnPort(port);
    if (m !== undefined) return m.message as ToWorker;
    if (!poll(ctl, TO_WORKER, seen, spin)) Atomics.wait(ctl, TO_WORKER, seen);
  }
}

function build(r: ModelRecipe): Model {
  switch (r.kind) {
    case 'preset':
      return getModel(r.name);
    case 'spec':
      return modelFromSpec(r.spec, r.name);
    case 'onnx':
      return parseOnnx(r.bytes, r.source, { name: r.name });
  }
}

const models = new Map<number, Model>();
const pool = new Scratch();

let exchange: SharedArrayBuffer | null = null;

function serve(req: Extract<ToWorker, { type: 'half' }>): void {
  spin = req.spin;
  if (req.exchange) exchange = req.exchange;
  const buf = exchange;
  if (buf === null || buf.byteLength < req.layout.bytes) throw new Error('the exchange buffer is missing or too small');
  if (req.recipe) models.set(req.model, build(req.recipe));
  const model = models.get(req.model);
  if (!model) throw new Error(`no recipe for model ${req.model}`);
  applyEngineSettings(req.settings);
  setThreads(req.threads);
  const loss =
    req.loss.name === 'grouped' ? getLoss('grouped', { groups: req.loss.groups, numOutputs: req.loss.numOutputs }) : getLoss(req.loss.name);
  const { layout } = req;
  const state = { training: req.training, perExample: req.perExample, buffers: slotTree(buf, layout.buffers), updates: {} };
  const f = modelLossOf(model, loss, state, req.reduce);
  withScratch(pool, () => {
    const params = residentCopy(slotTree(buf, layout.params));
    const h = bracketHalf(f, params, { x: slotTensor(buf, layout.x), t: slotTensor(buf, layout.t) });
    writeSlots(buf, layout.gradY, h.grad);
    post({ type: 'grad', id: req.id, loss: concrete(h.loss).item() });
    const next = receive();
    if (next.type !== 'tangent' || next.id !== req.id)
      throw new Error(`expected the tangent of request ${req.id}, got a ${next.type} of request ${next.id}`);
    if (req.fail === 'throw') throw new Error('injected failure (test hook)');
    if (req.fail === 'exit') process.exit(3);
    writeSlots(buf, layout.hvp, h.hvp(slotTree(buf, layout.gradX)));
    post({ type: 'hvp', id: req.id });
  });
}

Atomics.store(ctl, STATE, 1);
Atomics.notify(ctl, STATE);
for (;;) {
  const req = receive();
  if (req.type !== 'half') continue; // (a tangent for a request that failed here)
  try {
    serve(req);
  } catch (e) {
    post({ type: 'error', id: req.id, message: e instanceof Error ? e.message : String(e), user: e instanceof UserError });
  }
}
