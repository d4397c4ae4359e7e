/** Model resolution for runs: a preset name, a path to a JSON spec, or an inline spec, fitted to the data. */
import { existsSync, readFileSync } from 'node:fs';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { MODELS, type Model } from '../nn/models.js';
import { modelFromSpec, xresnetSpec } from '../nn/spec.js';

export function resolveModel(model: string | Record<string, unknown>, ds: Pick<Dataset, 'inputShape' | 'labelNames' | 'name'>): Model {
  const k = ds.labelNames.length;
  let m: Model;
  if (typeof model !== 'string') m = modelFromSpec(model);
  else if (model.endsWith('.json')) {
    if (!existsSync(model)) throw new UserError(`${model}: model spec file not found`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(model, 'utf8'));
    } catch (e) {
      throw new UserError(`${model}: not valid JSON (${(e as Error).message})`);
    }
    m = modelFromSpec(raw, model.replace(/^.*\//, '').replace(/\.json$/, ''));
  } else if (model === 'xresnet') {
    m = modelFromSpec(xresnetSpec({ input: [...ds.inputShape], outputs: k }));
  } else {
    const preset = MODELS[model];
    if (!preset) throw new UserError(`unknown model "${model}"; choose ${Object.keys(MODELS).join(', ')} or give a JSON spec file`);
    m = preset;
  }
  const want = m.inputShape.join(',');
  if (want !== ds.inputShape.join(',') && m.inputShape.reduce((a, b) => a * b, 1) !== ds.inputShape.reduce((a, b) => a * b, 1)) {
    throw new UserError(`model ${m.name} takes input [${want}] but ${ds.name} has [${ds.inputShape.join(',')}]; use xresnet or a spec with "input": [${ds.inputShape.join(',')}]`);
  }
  if (m.numOutputs !== k) {
    throw new UserError(`model ${m.name} has ${m.numOutputs} outputs but ${ds.name} has ${k} labels; use xresnet or a spec whose last layer has ${k} outputs`);
  }
  return m;
}
