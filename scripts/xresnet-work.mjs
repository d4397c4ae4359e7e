/**
 * The xresnet computation that the timing scripts (step-ab.mjs, scaling-ceiling.mjs) repeat, from
 * a built package (`dist`, a dist/ directory): its Adam training step (batch 32, float32,
 * BatchNorm in training mode, random 3×64×64 inputs and 40 targets) or its per-example bracket
 * (one pair, float32, BatchNorm eval). Returns the work and that build's thread controls.
 * MODEL=convnet (or smoothconvnet): that model instead, on random 1×28×28 inputs and 10 targets.
 */
export async function xresnetWork(dist, what) {
  if (what !== 'step' && what !== 'bracket') throw new Error(`expected step or bracket, got "${what}"`);
  const imp = (p) => import(`${dist}${p}`);
  const tb = await imp('/bench/train-bench.js');
  const { setThreads, threadTuning } = await imp('/engine/kernels/threads.js');
  const { getModel, initBuffers, initModel } = await imp('/nn/models.js');
  const { LOSSES } = await imp('/nn/losses.js');
  const name = process.env.MODEL ?? 'xresnet';
  const INPUTS = { xresnet: [[3, 64, 64], 40], convnet: [[1, 28, 28], 10], smoothconvnet: [[1, 28, 28], 10] };
  if (!(name in INPUTS)) throw new Error(`MODEL: expected ${Object.keys(INPUTS).join(', ')}, got "${name}"`);
  const [inShape, outputs] = INPUTS[name];
  const model = getModel(name);
  if (what === 'step') {
    const tr = await imp('/study/train.js');
    const OPT = { name: 'adam', lr: 1e-3, betas: [0.9, 0.999] };
    const config = tr.trainConfigSchema.parse({ model: name, batchSize: 32, dtype: 'float32', seed: 0, optimizer: OPT });
    const train = tb.randomDataset(inShape, outputs, 32, 0);
    const ctx = { model, loss: LOSSES.bce, train, test: train, config };
    let ck = tr.freshCheckpoint(ctx, OPT);
    // (as `train` runs the steps: parameters and Adam state in StepBuffers, where the build has them;
    // RESIDENT=0: in fresh arrays, as before)
    const bufs = tr.StepBuffers && process.env.RESIDENT !== '0' ? new tr.StepBuffers() : undefined;
    const work = () => {
      ck = tr.trainStep(ctx, ck, OPT, bufs).next;
    };
    return { work, setThreads, threadTuning };
  }
  const { bracket, modelLoss } = await imp('/bracket/bracket.js');
  const { batch } = await imp('/data/dataset.js');
  const { Scratch, withScratch } = await imp('/engine/scratch.js');
  const { evalState } = await imp('/nn/layers.js');
  const ds = tb.randomDataset(inShape, outputs, 2, 0);
  const params = initModel(model, 0, 'float32');
  const lossFn = modelLoss(model, LOSSES.bce, evalState(initBuffers(model)));
  const [x, y] = [batch(ds, [0], 'float32'), batch(ds, [1], 'float32')];
  const pool = new Scratch();
  const work = () => withScratch(pool, () => bracket(lossFn, params, x, y));
  return { work, setThreads, threadTuning };
}
