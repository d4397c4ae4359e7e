/**
 * Reference models with PyTorch's parameter names and layouts, so weights move both ways
 * through safetensors and results compare with PyTorch number by number.
 */
import { relu, silu } from '../engine/composites.js';
import type { DType } from '../engine/dtype.js';
import * as o from '../engine/ops.js';
import { full, type Tensor, type Val } from '../engine/tensor.js';
import type { Params } from '../engine/tree.js';
import { initParams } from './init.js';
import { conv2d, linear, type ForwardState } from './layers.js';
import { withModelRecipe } from './recipe.js';
import { modelFromSpec, xresnetSpec } from './spec.js';

export interface Model {
  readonly name: string;
  readonly description: string;
  /** Shape of one input example, e.g. [1, 28, 28]. */
  readonly inputShape: readonly number[];
  readonly numOutputs: number;
  /** Parameter names and shapes, in PyTorch's module order. */
  readonly paramShapes: Readonly<Record<string, readonly number[]>>;
  /** Buffers (BatchNorm running statistics) and their shapes; empty for buffer-free models. */
  readonly bufferShapes: Readonly<Record<string, readonly number[]>>;
  /** Values one example's forward pass produces (all layers' outputs), where known: the memory estimate's input. */
  readonly activationsPerExample?: number;
  /**
   * Logits [N, numOutputs] for inputs [N, ...inputShape]. `state` chooses training or eval mode
   * and carries the buffers (default: eval mode without buffers, enough for buffer-free models).
   */
  apply(params: Params, x: Val, state?: ForwardState): Val;
  /**
   * The model's own starting parameters (cast to `dtype`) and buffers (float64), for a model that
   * comes with weights (an ONNX file); initModel and initBuffers return them instead of fresh ones.
   */
  initialState?: (dtype: DType) => { params: Record<string, Tensor>; buffers: Record<string, Tensor> };
}

/**
 * PyTorch-style initial parameters; BatchNorm weights 1 and biases 0, as PyTorch. A model with its
 * own weights (`initialState`) starts from those instead, whatever the seed.
 */
export function initModel(model: Model, seed: number, dtype: DType): Record<string, Tensor> {
  if (model.initialState) return model.initialState(dtype).params;
  const bnNames = new Set(
    Object.keys(model.bufferShapes)
      .filter((k) => k.endsWith('.running_mean'))
      .map((k) => k.replace(/\.running_mean$/, '')),
  );
  const plain = Object.fromEntries(Object.entries(model.paramShapes).filter(([k]) => !bnNames.has(k.replace(/\.(weight|bias)$/, ''))));
  const init = initParams(plain, seed, dtype);
  const out: Record<string, Tensor> = {};
  for (const [k, shape] of Object.entries(model.paramShapes)) {
    out[k] = init[k] ?? full(shape, k.endsWith('.weight') ? 1 : 0, dtype);
  }
  return out;
}

/**
 * A rough upper estimate of the memory (bytes) a training step or a bracket needs at `batch`
 * examples: the parameters about 8 times (values, gradients, optimizer moments, Hessian-vector
 * products and their tangents) and the activations about 8 times per example (forward values,
 * tangents, and the reverse pass over both).
 */
export function memoryEstimate(model: Model, batch: number, dtype: DType): number {
  const params = Object.values(model.paramShapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  const activations = model.activationsPerExample ?? 0;
  return (dtype === 'float64' ? 8 : 4) * 8 * (params + batch * activations);
}

/**
 * Initial buffers: running_mean 0, running_var 1, num_batches_tracked 0 (float64); a model with
 * its own weights (`initialState`) starts from its own buffers.
 */
export function initBuffers(model: Model): Record<string, Tensor> {
  if (model.initialState) return model.initialState('float64').buffers;
  return freshBuffers(model);
}

/** Fresh buffers whatever the model's own: running_mean 0, running_var 1, num_batches_tracked 0 (float64; `--fresh-bn-stats`). */
export function freshBuffers(model: Model): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, shape] of Object.entries(model.bufferShapes)) out[k] = full(shape, k.endsWith('.running_var') ? 1 : 0, 'float64');
  return out;
}

export const mlp: Model = withModelRecipe<Model>(
  {
    name: 'mlp',
    description: '784 → 128 (tanh) → 10',
    inputShape: [1, 28, 28],
    numOutputs: 10,
    paramShapes: { 'fc1.weight': [128, 784], 'fc1.bias': [128], 'fc2.weight': [10, 128], 'fc2.bias': [10] },
    bufferShapes: {},
    apply: (p, x) => linear(p, 'fc2', o.tanh(linear(p, 'fc1', o.flatten(x)))),
  },
  { kind: 'preset', name: 'mlp' },
);

function convnetWith(name: string, description: string, act: (x: Val) => Val, pool: (x: Val) => Val): Model {
  return withModelRecipe<Model>(
    {
      name,
      description,
      inputShape: [1, 28, 28],
      numOutputs: 10,
      paramShapes: {
        'conv1.weight': [16, 1, 3, 3],
        'conv1.bias': [16],
        'conv2.weight': [32, 16, 3, 3],
        'conv2.bias': [32],
        'fc.weight': [10, 1568],
        'fc.bias': [10],
      },
      bufferShapes: {},
      apply: (p, x) => {
        const h1 = pool(act(conv2d(p, 'conv1', x, { padding: 1 })));
        const h2 = pool(act(conv2d(p, 'conv2', h1, { padding: 1 })));
        return linear(p, 'fc', o.flatten(h2));
      },
    },
    { kind: 'preset', name },
  );
}

export const convnet = convnetWith('convnet', 'conv 3×3 1→16, relu, maxpool 2 → conv 3×3 16→32, relu, maxpool 2 → fc 1568→10', relu, (x) =>
  o.maxPool2d(x, 2),
);

export const smoothconvnet = convnetWith(
  'smoothconvnet',
  'convnet with silu and avg-pool (smooth, so the ε² swap law holds at finite ε)',
  silu,
  (x) => o.avgPool2d(x, 2),
);

/** The default XResNet (about 1.2 M parameters) for 64×64 RGB input and 40 outputs (CelebA's attributes). */
export const xresnet: Model = modelFromSpec(xresnetSpec({ outputs: 40 }));

export const MODELS: Readonly<Record<string, Model>> = { mlp, convnet, smoothconvnet, xresnet };

export function getModel(name: string): Model {
  const m = MODELS[name];
  if (!m) throw new Error(`unknown model "${name}"; choose one of ${Object.keys(MODELS).join(', ')}`);
  return m;
}
