#!/usr/bin/env node
// Regenerates test/fixtures/torch/: PyTorch's brackets (double backward, float64) for the reference
// models at seeded weights on the first test examples of the shipped Fashion-MNIST subset.
// Needs `npm run build` and /usr/bin/python3 with Debian's python3-torch. Run by hand; tests only
// read the committed fixtures.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { initModel, getModel } from '../dist/nn/models.js';
import { loadFashion } from '../dist/data/fashion.js';
import { batchOf } from '../dist/data/examples.js';
import { writeSafetensors } from '../dist/data/safetensors.js';
import { Tensor } from '../dist/engine/tensor.js';

const OUT = 'test/fixtures/torch';
const N = 6;
const SAMPLE_STRIDE = 37; // keep every 37th entry of each full vector
mkdirSync(OUT, { recursive: true });
const tmp = join(tmpdir(), `lb-fixtures-${process.pid}`);
mkdirSync(tmp, { recursive: true });

const data = loadFashion(undefined, 'test');
const b = batchOf(
  data,
  Array.from({ length: N }, (_, i) => i),
  'float32',
);
writeSafetensors(join(OUT, 'inputs.safetensors'), { x: b.x, labels: new Tensor(Float32Array.from(b.labels), [N]) });

const sample = (v) => Object.fromEntries(Object.entries(v).map(([k, xs]) => [k, xs.filter((_, i) => i % SAMPLE_STRIDE === 0)]));

for (const [name, seed] of [
  ['mlp', 11],
  ['convnet', 12],
  ['smoothconvnet', 13],
]) {
  const model = getModel(name);
  const params = initModel(model, seed, 'float32');
  const wpath = join(OUT, `${name}-weights.safetensors`);
  writeSafetensors(wpath, params, { seed: String(seed), note: 'float32 init by lie-bracket; PyTorch runs in float64' });
  for (const loss of ['bce', 'ce']) {
    const out = join(tmp, `${name}-${loss}.json`);
    execFileSync('/usr/bin/python3', [
      'scripts/torch_peer.py',
      '--inputs',
      join(OUT, 'inputs.safetensors'),
      '--weights',
      wpath,
      '--model',
      name,
      '--loss',
      loss,
      '--dtype',
      'float64',
      '--pairs',
      '0,1;2,3',
      '--probe',
      '4',
      '--full',
      '--out',
      out,
    ]);
    const res = JSON.parse(readFileSync(out, 'utf8'));
    for (const p of res.pairs) {
      p.sampleStride = SAMPLE_STRIDE;
      p.bracket = sample(p.bracket);
      p.gradX = sample(p.gradX);
      p.gradY = sample(p.gradY);
    }
    writeFileSync(join(OUT, `${name}-${loss}.json`), JSON.stringify(res));
    console.log(`${name} ${loss}: ‖B‖ = ${res.pairs.map((p) => p.bracketNorm.toExponential(4)).join(', ')}`);
  }
}
rmSync(tmp, { recursive: true, force: true });
