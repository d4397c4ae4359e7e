/**
 * Models described by a small JSON spec (validated with zod), so users can define an architecture
 * without writing code. Layers run in order; `residual` is y = act(body(x) + shortcut(x)).
 * Parameter names follow torch.nn.Sequential: `<i>.weight`, `<i>.body.<j>.weight`,
 * `<i>.shortcut.<j>.weight`, BatchNorm buffers `<i>.running_mean` …, so the same architecture
 * written as nested nn.Sequential in PyTorch has the same state_dict keys.
 */
import { z } from 'zod';
import { gelu, geluErf, relu, sigmoid, silu } from '../engine/composites.js';
import * as o from '../engine/ops.js';
import { windowOut } from '../engine/prims.js';
import type { Val } from '../engine/tensor.js';
import type { Params } from '../engine/tree.js';
import { UserError } from '../errors.js';
import { knownKeysAt, zodUserError } from '../zod-message.js';
import { batchNorm2d, conv2d, evalState, globalAvgPool, linear, type ForwardState } from './layers.js';
import type { Model } from './models.js';
import { withModelRecipe } from './recipe.js';

const pos = z.number().int().positive();
const nonneg = z.number().int().nonnegative();
const pairOrInt = z.union([pos, z.tuple([pos, pos])]);
const pairOrNonneg = z.union([nonneg, z.tuple([nonneg, nonneg])]);
/**
 * 'gelu' is the tanh approximation (as it always was here), the same as 'gelu_tanh' =
 * torch.nn.GELU(approximate='tanh'); 'gelu_erf' is the exact GELU, torch.nn.GELU() (PyTorch's default).
 */
const activations = ['relu', 'tanh', 'silu', 'mish', 'gelu', 'gelu_tanh', 'gelu_erf', 'sigmoid'] as const;
export type Activation = (typeof activations)[number];

export type LayerSpec =
  | { type: 'linear'; out: number; bias?: boolean }
  | {
      type: 'conv2d';
      out: number;
      kernel: number | [number, number];
      stride?: number | [number, number];
      padding?: number | [number, number];
      dilation?: number | [number, number];
      groups?: number;
      bias?: boolean;
    }
  | { type: 'batchnorm2d'; eps?: number; momentum?: number }
  | { type: Activation }
  | { type: 'maxpool2d' | 'avgpool2d'; kernel: number | [number, number]; stride?: number | [number, number]; padding?: number | [number, number] }
  | { type: 'globalavgpool' | 'flatten' }
  | { type: 'residual'; body: LayerSpec[]; shortcut?: LayerSpec[]; activation?: Activation };

export const layerSpecSchema: z.ZodType<LayerSpec> = z.lazy(() =>
  z.discriminatedUnion('type', [
    z.object({ type: z.literal('linear'), out: pos, bias: z.boolean().optional() }).strict(),
    z
      .object({
        type: z.literal('conv2d'),
        out: pos,
        kernel: pairOrInt,
        stride: pairOrInt.optional(),
        padding: pairOrNonneg.optional(),
        dilation: pairOrInt.optional(),
        groups: pos.optional(),
        bias: z.boolean().optional(),
      })
      .strict(),
    z.object({ type: z.literal('batchnorm2d'), eps: z.number().positive().optional(), momentum: z.number().min(0).max(1).optional() }).strict(),
    ...activations.map((a) => z.object({ type: z.literal(a) }).strict()),
    z
      .object({ type: z.enum(['maxpool2d', 'avgpool2d']), kernel: pairOrInt, stride: pairOrInt.optional(), padding: pairOrNonneg.optional() })
      .strict(),
    z.object({ type: z.enum(['globalavgpool', 'flatten']) }).strict(),
    z
      .object({
        type: z.literal('residual'),
        body: z.array(layerSpecSchema).min(1),
        shortcut: z.array(layerSpecSchema).optional(),
        activation: z.enum(activations).optional(),
      })
      .strict(),
  ]),
);

export const modelSpecSchema = z
  .object({
    name: z.string().min(1).optional(),
    description: z.string().optional(),
    /** One example's shape [C, H, W] (or [F] for vectors). */
    input: z.array(pos).min(1).max(3),
    layers: z.array(layerSpecSchema).min(1),
  })
  .strict();
export type ModelSpec = z.infer<typeof modelSpecSchema>;

const ACT: Record<Activation, (x: Val) => Val> = { relu, tanh: o.tanh, silu, mish: o.mish, gelu, gelu_tanh: gelu, gelu_erf: geluErf, sigmoid };
const pair = (v: number | readonly [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : [v[0], v[1]];

interface Built {
  params: Record<string, number[]>;
  buffers: Record<string, number[]>;
  outShape: number[];
  /** Values one example's forward pass produces, summed over the layers (for the memory estimate). */
  activations: number;
  run: (p: Params, x: Val, s: ForwardState) => Val;
}

/** Shape inference and the forward function of a list of layers, named under `prefix`. */
function buildLayers(layers: readonly LayerSpec[], inShape: number[], prefix: string): Built {
  const params: Record<string, number[]> = {};
  const buffers: Record<string, number[]> = {};
  const steps: ((p: Params, x: Val, s: ForwardState) => Val)[] = [];
  let shape = inShape;
  let activations = 0;
  const fail = (i: number, msg: string): never => {
    throw new UserError(`model spec: layer ${prefix}${i} (${layers[i]!.type}): ${msg}, input shape [${shape.join(',')}]`);
  };
  layers.forEach((l, i) => {
    const name = `${prefix}${i}`;
    switch (l.type) {
      case 'linear': {
        if (shape.length !== 1) fail(i, 'needs a flat input (add a flatten layer)');
        params[`${name}.weight`] = [l.out, shape[0]!];
        if (l.bias !== false) params[`${name}.bias`] = [l.out];
        steps.push((p, x) => linear(p, name, x));
        shape = [l.out];
        break;
      }
      case 'conv2d': {
        if (shape.length !== 3) fail(i, 'needs a [C,H,W] input');
        const [c, h, w] = shape as [number, number, number];
        const k = pair(l.kernel, 1);
        const st = pair(l.stride, 1);
        const pd = pair(l.padding, 0);
        const dl = pair(l.dilation, 1);
        const g = l.groups ?? 1;
        if (c % g !== 0 || l.out % g !== 0) fail(i, `groups ${g} must divide input channels ${c} and output channels ${l.out}`);
        const oh = windowOut(h, k[0], st[0], pd[0], dl[0]);
        const ow = windowOut(w, k[1], st[1], pd[1], dl[1]);
        if (oh <= 0 || ow <= 0) fail(i, 'the kernel does not fit');
        params[`${name}.weight`] = [l.out, c / g, k[0], k[1]];
        if (l.bias !== false) params[`${name}.bias`] = [l.out];
        const opts = { stride: st, padding: pd, dilation: dl, groups: g };
        steps.push((p, x) => conv2d(p, name, x, opts));
        shape = [l.out, oh, ow];
        break;
      }
      case 'batchnorm2d': {
        if (shape.length !== 3) fail(i, 'needs a [C,H,W] input');
        const c = shape[0]!;
        params[`${name}.weight`] = [c];
        params[`${name}.bias`] = [c];
        buffers[`${name}.running_mean`] = [c];
        buffers[`${name}.running_var`] = [c];
        buffers[`${name}.num_batches_tracked`] = [];
        const opts = { eps: l.eps ?? 1e-5, momentum: l.momentum ?? 0.1 };
        steps.push((p, x, s) => batchNorm2d(p, name, x, s, opts));
        break;
      }
      case 'maxpool2d':
      case 'avgpool2d': {
        if (shape.length !== 3) fail(i, 'needs a [C,H,W] input');
        const k = pair(l.kernel, 1);
        const st = l.stride === undefined ? k : pair(l.stride, 1);
        const pd = pair(l.padding, 0);
        if (pd[0] * 2 > k[0] || pd[1] * 2 > k[1]) fail(i, 'padding must be at most half the kernel');
        const oh = windowOut(shape[1]!, k[0], st[0], pd[0]);
        const ow = windowOut(shape[2]!, k[1], st[1], pd[1]);
        if (oh <= 0 || ow <= 0) fail(i, 'the window does not fit');
        const opts = { stride: st, padding: pd };
        steps.push(l.type === 'maxpool2d' ? (_p, x) => o.maxPool2d(x, k, opts) : (_p, x) => o.avgPool2d(x, k, opts));
        shape = [shape[0]!, oh, ow];
        break;
      }
      case 'globalavgpool':
        if (shape.length !== 3) fail(i, 'needs a [C,H,W] input');
        steps.push((_p, x) => globalAvgPool(x));
        shape = [shape[0]!];
        break;
      case 'flatten':
        steps.push((_p, x) => o.flatten(x));
        shape = [shape.reduce((a, b) => a * b, 1)];
        break;
      case 'residual': {
        const body = buildLayers(l.body, shape, `${name}.body.`);
        const sc = l.shortcut && l.shortcut.length > 0 ? buildLayers(l.shortcut, shape, `${name}.shortcut.`) : undefined;
        const scShape = sc ? sc.outShape : shape;
        if (scShape.join(',') !== body.outShape.join(',')) {
          fail(i, `body output [${body.outShape.join(',')}] and shortcut output [${scShape.join(',')}] differ; add a shortcut that matches`);
        }
        activations += body.activations + (sc?.activations ?? 0);
        Object.assign(params, body.params, sc?.params ?? {});
        Object.assign(buffers, body.buffers, sc?.buffers ?? {});
        const act = l.activation ? ACT[l.activation] : (v: Val) => v;
        steps.push((p, x, s) => act(o.add(body.run(p, x, s), sc ? sc.run(p, x, s) : x)));
        shape = body.outShape;
        break;
      }
      default: {
        steps.push((_p, x) => ACT[l.type](x));
      }
    }
    activations += shape.reduce((a, b) => a * b, 1);
  });
  return { params, buffers, outShape: shape, activations, run: (p, x, s) => steps.reduce((h, f) => f(p, h, s), x) };
}

/** A Model from a spec (already parsed, or raw JSON to validate). */
export function modelFromSpec(raw: unknown, fallbackName = 'custom'): Model {
  checkNesting(raw);
  const parsed = modelSpecSchema.safeParse(raw);
  if (!parsed.success) throw zodUserError(parsed.error, 'model spec', (path) => specKeysAt(raw, path));
  const spec = parsed.data;
  const built = buildLayers(spec.layers, [...spec.input], '');
  if (built.outShape.length !== 1) {
    throw new UserError(
      `model spec: the last layer must produce a flat output (logits), got [${built.outShape.join(',')}]; end with flatten + linear`,
    );
  }
  for (const [name, shape] of Object.entries(built.params)) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n > MAX_TENSOR_ELEMENTS)
      throw new UserError(
        `model spec: parameter ${name} of shape [${shape.join(',')}] has ${n.toExponential(2)} values, more than one array can hold (${MAX_TENSOR_ELEMENTS.toExponential(2)}); use smaller layers`,
      );
  }
  if (built.activations > MAX_TENSOR_ELEMENTS)
    throw new UserError(
      `model spec: one example's activations hold ${built.activations.toExponential(2)} values, more than one array can hold; use smaller layers or inputs`,
    );
  const name = spec.name ?? fallbackName;
  const model: Model = {
    name,
    activationsPerExample: built.activations,
    description: spec.description ?? `${spec.layers.length} layers from a spec`,
    inputShape: spec.input,
    numOutputs: built.outShape[0]!,
    paramShapes: built.params,
    bufferShapes: built.buffers,
    apply: (p, x, state) => {
      const batched = o.reshape(x, [x.shape[0]!, ...spec.input]);
      return built.run(p, batched, state ?? evalState());
    },
  };
  return withModelRecipe(model, { kind: 'spec', spec, name });
}

/**
 * The keys valid for the object at `path` of a raw spec: the top level's, or those of the layer
 * type written there (each layer type takes its own keys, so the union of all would mislead).
 */
function specKeysAt(raw: unknown, path: readonly PropertyKey[]): string[] {
  let node: unknown = raw;
  for (const p of path) node = (node as Record<PropertyKey, unknown> | undefined)?.[p];
  if (path.length === 0) return knownKeysAt(modelSpecSchema, []);
  const type = (node as { type?: unknown } | undefined)?.type;
  const all = knownKeysAt(modelSpecSchema, path);
  // a strict parse of {type, every candidate key} reports exactly the keys this type does not take
  const probe = layerSpecSchema.safeParse(Object.fromEntries([['type', type], ...all.filter((k) => k !== 'type').map((k) => [k, undefined])]));
  const refused = new Set(
    probe.success ? [] : probe.error.issues.flatMap((i) => (i.code === 'unrecognized_keys' && i.path.length === 0 ? i.keys : [])),
  );
  return all.filter((k) => !refused.has(k));
}

/** The most values one typed array may hold here (V8's limit is 2^32 − 1 elements; kept below it). */
const MAX_TENSOR_ELEMENTS = 2 ** 31;

/** Residual blocks nested deeper than this are refused (before zod's recursive validation, which would overflow the stack). */
export const MAX_SPEC_DEPTH = 64;

/** Refuse a spec whose layer lists nest (residual body/shortcut) deeper than MAX_SPEC_DEPTH, without recursion. */
function checkNesting(raw: unknown): void {
  const stack: [unknown, number][] = [[raw, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > MAX_SPEC_DEPTH)
      throw new UserError(
        `model spec: residual blocks are nested more than ${MAX_SPEC_DEPTH} levels deep; flatten the spec (blocks can follow each other instead of nesting)`,
      );
    if (typeof node !== 'object' || node === null) continue;
    const o = node as Record<string, unknown>;
    for (const key of ['layers', 'body', 'shortcut']) {
      const list = o[key];
      if (Array.isArray(list)) for (const child of list) stack.push([child, key === 'layers' ? depth : depth + 1]);
    }
  }
}

export interface XResNetOptions {
  /** Input [C, H, W] (default [3, 64, 64]). */
  input?: [number, number, number];
  outputs?: number;
  /** Channels of each residual stage (default [32, 64, 128, 256]). */
  widths?: number[];
  /** Residual blocks per stage (default [1, 1, 1, 1]). */
  depths?: number[];
  /** Stem channels (default [16, 32, 32]). */
  stem?: number[];
  activation?: Activation;
}

const convBn = (out: number, stride = 1, act?: Activation, kernel = 3): LayerSpec[] => [
  { type: 'conv2d', out, kernel, stride, padding: (kernel - 1) / 2, bias: false },
  { type: 'batchnorm2d' },
  ...(act ? [{ type: act } as LayerSpec] : []),
];

/**
 * An XResNet-style net (fastai's "bag of tricks" ResNet; with mish, the seed study's MXResNet):
 * a stem of three 3×3 conv-BN-act layers (the first with stride 2) and a 3×3 max-pool, then stages
 * of basic residual blocks (conv-BN-act, conv-BN; the shortcut is avg-pool 2 + 1×1 conv-BN when the
 * shape changes; act after the sum), global average pooling and a linear head.
 */
export function xresnetSpec(opts: XResNetOptions = {}): ModelSpec {
  const input = opts.input ?? [3, 64, 64];
  const widths = opts.widths ?? [32, 64, 128, 256];
  const depths = opts.depths ?? [1, 1, 1, 1];
  const stem = opts.stem ?? [16, 32, 32];
  const act = opts.activation ?? 'mish';
  if (widths.length !== depths.length) throw new UserError('xresnet: widths and depths must have the same length');
  const layers: LayerSpec[] = [];
  stem.forEach((c, i) => layers.push(...convBn(c, i === 0 ? 2 : 1, act)));
  layers.push({ type: 'maxpool2d', kernel: 3, stride: 2, padding: 1 });
  let cin = stem[stem.length - 1]!;
  widths.forEach((w, s) => {
    for (let b = 0; b < depths[s]!; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      const shortcut: LayerSpec[] = [];
      if (stride === 2) shortcut.push({ type: 'avgpool2d', kernel: 2 });
      if (cin !== w) shortcut.push(...convBn(w, 1, undefined, 1));
      layers.push({ type: 'residual', body: [...convBn(w, stride, act), ...convBn(w, 1)], shortcut, activation: act });
      cin = w;
    }
  });
  layers.push({ type: 'globalavgpool' }, { type: 'linear', out: opts.outputs ?? 10 });
  return {
    name: 'xresnet',
    description: `XResNet-style, ${act}, widths ${widths.join('/')}, depths ${depths.join('/')}, input ${input.join('×')}`,
    input,
    layers,
  };
}
