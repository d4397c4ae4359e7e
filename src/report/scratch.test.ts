import { test } from 'vitest';
import { rmSync } from 'node:fs';
import { openDataset } from '../data/registry.js';
import { resolveModel } from '../study/resolve.js';
import { lossFor, parseTrainConfig, train } from '../study/train.js';
import { runSweep } from '../study/sweep.js';
import { writeReport } from './report.js';
test('real sweep', async () => {
  const dir = '/tmp/lbr/real';
  rmSync(dir, { recursive: true, force: true });
  const config = parseTrainConfig({ model: 'mlp', loss: 'bce', steps: 20, evalSize: 200 }, 'x');
  const tr = openDataset(config.data, 'train', { loss: 'bce' });
  const te = openDataset(config.data, 'test', { loss: 'bce' });
  train({ config, model: resolveModel(config.model, tr), loss: lossFor(config, tr), train: tr, test: te }, dir);
  const t = performance.now();
  const r = await runSweep({ runDir: dir, workers: 1 });
  console.log('sweep', r.units, (performance.now() - t) / 1000, r.summaryFile);
  writeReport(dir);
}, 600000);
