import { setThreads } from './dist/engine/kernels/threads.js';
import { bracket, modelLoss } from './dist/bracket/bracket.js';
import { getModel, initModel, initBuffers } from './dist/nn/models.js';
import { LOSSES } from './dist/nn/losses.js';
import { evalState } from './dist/nn/layers.js';
import { batch } from './dist/data/dataset.js';
import { randomDataset } from './dist/bench/train-bench.js';
import { Scratch, withScratch } from './dist/engine/scratch.js';
const model = getModel(process.env.MODEL ?? 'xresnet');
const ds = randomDataset(model.name==='xresnet'?[3,64,64]:model.inputShape, model.numOutputs, 2, 0);
const params = initModel(model, 0, 'float32');
const lossFn = modelLoss(model, LOSSES.bce, evalState(initBuffers(model)));
const [x, y] = [batch(ds, [0], 'float32'), batch(ds, [1], 'float32')];
const pool = new Scratch();
const run = () => withScratch(pool, () => bracket(lossFn, params, x, y));
const med = (T, n=11) => { setThreads(T); for (let i=0;i<3;i++) run(); const ts=[]; for (let i=0;i<n;i++){const t=performance.now(); run(); ts.push(performance.now()-t);} ts.sort((a,b)=>a-b); return ts[n>>1]; };
setThreads(1); const r1 = run(); setThreads(2); const r2 = run(); setThreads(3); const r3 = run();
const same = (a, b) => Object.keys(a.bracket).every(k => a.bracket[k].data.every((v, i) => Object.is(v, b.bracket[k].data[i]))) && a.lossY === b.lossY && Object.keys(a.gradY).every(k => a.gradY[k].data.every((v, i) => Object.is(v, b.gradY[k].data[i])));
console.log('bit-identical 1 vs 2:', same(r1, r2), '1 vs 3:', same(r1, r3));
for (let r = 0; r < 3; r++) { const a = med(1), b = med(2); console.log(`T1 ${a.toFixed(1)} T2 ${b.toFixed(1)} speedup ${(a/b).toFixed(2)}`); }
setThreads(2); let tot=0; for (let i=0;i<10;i++){ const t0=performance.now(); run(); tot+=performance.now()-t0;} console.log('T2 mean', (tot/10).toFixed(1));
const ratios=[]; const a1=[], a2=[];
for (let i=0;i<30;i++){ setThreads(1); run(); let t=performance.now(); run(); const d1=performance.now()-t; setThreads(2); run(); t=performance.now(); run(); const d2=performance.now()-t; ratios.push(d1/d2); a1.push(d1); a2.push(d2); }
const md = (a) => [...a].sort((x,y)=>x-y)[a.length>>1];
console.log('paired: T1', md(a1).toFixed(1), 'T2', md(a2).toFixed(1), 'median ratio', md(ratios).toFixed(2));
