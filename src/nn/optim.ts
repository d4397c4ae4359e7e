/**
 * Optimizers with PyTorch 1.13's exact update rules (the single-tensor paths of
 * torch/optim/sgd.py, adam.py and adamw.py), as pure functions over concrete parameter trees.
 *
 *   sgd       p ← p − lr·g                         with g = grad + wd·p (L2 weight decay)
 *   momentum  b ← g at the first step, else μ·b + (1−dampening)·g
 *             p ← p − lr·b, or with nesterov p ← p − lr·(g + μ·b)
 *   adam      m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  t = step number from 1
 *             p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)      (g includes wd·p: L2)
 *   adamw     p ← p·(1 − lr·wd), then the adam update with the raw gradient (decoupled decay)
 *
 * No autodiff is involved: each update is one loop over typed arrays. Every element is computed in
 * JS doubles from the stored values and rounded once into the parameters' dtype, so float32
 * parameters (and their optimizer buffers) stay float32, and float64 results agree with PyTorch
 * to rounding (test/fixtures/optim.json, made by scripts/make-optim-fixtures.py).
 *
 * Nothing is mutated: `optimizerStep` returns fresh parameters and a fresh state.
 *
 * The state holds one step counter for all parameters (PyTorch keeps one per parameter, which
 * only differs when some parameter has no gradient; here every parameter needs one) and buffers
 * named like PyTorch's state entries, suffixed with the parameter name:
 *   momentum: `momentum_buffer.<param>`;  adam, adamw: `exp_avg.<param>`, `exp_avg_sq.<param>`.
 * Buffers exist from `initOptimizerState` on (zeros), so a checkpoint always has the same tensors;
 * the momentum buffer's value is ignored at step 0, where PyTorch has none yet and starts it at
 * the first (decayed) gradient.
 */
import { z } from 'zod';
import type { Params } from '../engine/tree.js';
import { allocBuf, type Buf, type DType } from '../engine/dtype.js';
import { fmtShape, shapesEqual } from '../engine/shape.js';
import { fusedAdam } from '../engine/kernels/index.js';
import { Tensor, zeros } from '../engine/tensor.js';
import { UserError } from '../errors.js';
import { zodUserError } from '../zod-message.js';

/** Concrete parameters (or gradients, or a state buffer) by name. */
type Vec = Params<Tensor>;

export type OptimizerName = 'sgd' | 'momentum' | 'adam' | 'adamw';

export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['sgd', 'momentum', 'adam', 'adamw'];

export interface OptimizerConfig {
  name: OptimizerName;
  /** Learning rate, finite and > 0. */
  lr: number;
  /** 'momentum' only: μ in (0, 1), default 0.9. */
  momentum?: number;
  /** 'momentum' only: in [0, 1], default 0 (must be 0 with nesterov). */
  dampening?: number;
  /** 'momentum' only: Nesterov momentum, default false. */
  nesterov?: boolean;
  /** 'adam', 'adamw' only: each in [0, 1), default [0.9, 0.999]. */
  betas?: [number, number];
  /** 'adam', 'adamw' only: ≥ 0, default 1e-8. */
  eps?: number;
  /** ≥ 0. Default 0, except 0.01 for 'adamw' (PyTorch's defaults). L2 (added to the gradient) for
   *  sgd, momentum and adam; decoupled (p ← p·(1 − lr·wd)) for adamw. */
  weightDecay?: number;
  /** Not supported; accepted only as `false` (PyTorch's default), rejected when true. */
  amsgrad?: false;
}

/** A config with every default filled in. */
export interface ResolvedOptimizerConfig {
  name: OptimizerName;
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

export interface OptimizerState {
  /** Number of steps taken so far (0 before the first). */
  step: number;
  /** Per-parameter buffers, e.g. 'momentum_buffer.<param>', 'exp_avg.<param>', 'exp_avg_sq.<param>'. */
  buffers: Record<string, Tensor>;
}

/** The name of the step counter in `stateToTensors` (buffer names always contain a '.'). */
export const STEP_KEY = 'step';

/** Buffer kinds per optimizer, in the order they are listed for each parameter. */
export const BUFFER_KINDS: Readonly<Record<OptimizerName, readonly string[]>> = {
  sgd: [],
  momentum: ['momentum_buffer'],
  adam: ['exp_avg', 'exp_avg_sq'],
  adamw: ['exp_avg', 'exp_avg_sq'],
};

// ---------------------------------------------------------------------------------------------
// Config validation

const got = (x: unknown): string => {
  if (typeof x === 'number' || typeof x === 'boolean' || x === null || x === undefined) return String(x);
  if (typeof x === 'string') return JSON.stringify(x);
  try {
    const s = JSON.stringify(x);
    return s.length > 40 ? `${s.slice(0, 37)}...` : s;
  } catch {
    return typeof x;
  }
};

/** A finite number satisfying `ok`; every failure says what was expected and what was given. */
function num(field: string, expected: string, ok: (x: number) => boolean) {
  const error = (iss: { input?: unknown }): string => `${field} must be ${expected} (got ${got(iss.input)})`;
  return z.number({ error }).refine(ok, { error });
}

const ADAM_ONLY = ['betas', 'eps'] as const;
const MOMENTUM_ONLY = ['momentum', 'dampening', 'nesterov'] as const;

/**
 * Validates an `OptimizerConfig` (unknown fields, ranges, fields that do not apply to the chosen
 * optimizer). Messages name the field and the offending value; `parseOptimizerConfig` joins them
 * into one line.
 */
export const optimizerConfigSchema = z
  .strictObject(
    {
      name: z.enum(['sgd', 'momentum', 'adam', 'adamw'], {
        error: (iss) => `name must be one of ${OPTIMIZER_NAMES.join(', ')} (got ${got(iss.input)})`,
      }),
      lr: num('lr', 'a finite number > 0', (x) => x > 0),
      momentum: num('momentum', 'in (0, 1)', (x) => x > 0 && x < 1).optional(),
      dampening: num('dampening', 'in [0, 1]', (x) => x >= 0 && x <= 1).optional(),
      nesterov: z.boolean({ error: (iss) => `nesterov must be true or false (got ${got(iss.input)})` }).optional(),
      betas: z
        .tuple([num('betas[0]', 'in [0, 1)', (x) => x >= 0 && x < 1), num('betas[1]', 'in [0, 1)', (x) => x >= 0 && x < 1)], {
          error: (iss) => `betas must be a pair [beta1, beta2] of numbers in [0, 1) (got ${got(iss.input)})`,
        })
        .optional(),
      eps: num('eps', 'a finite number >= 0', (x) => x >= 0).optional(),
      weightDecay: num('weightDecay', 'a finite number >= 0', (x) => x >= 0).optional(),
      amsgrad: z.literal(false, { error: 'amsgrad is not supported (only the default amsgrad=false update is implemented)' }).optional(),
    },
    {
      // unknown keys are reported by zodUserError (src/zod-message.ts), with the closest valid key
      error: (iss) =>
        iss.code === 'unrecognized_keys'
          ? undefined
          : `optimizer config must be an object like {"name": "adam", "lr": 0.001} (got ${got(iss.input)})`,
    },
  )
  .superRefine((c, ctx) => {
    const isAdam = c.name === 'adam' || c.name === 'adamw';
    for (const f of ADAM_ONLY) {
      if (c[f] !== undefined && !isAdam) {
        ctx.addIssue({ code: 'custom', path: [f], message: `${f} applies only to adam and adamw, not to ${c.name}` });
      }
    }
    for (const f of MOMENTUM_ONLY) {
      if (c[f] !== undefined && c.name !== 'momentum') {
        const hint = c.name === 'sgd' ? ` (use name "momentum" for SGD with momentum)` : '';
        ctx.addIssue({ code: 'custom', path: [f], message: `${f} applies only to momentum, not to ${c.name}${hint}` });
      }
    }
    if (c.name === 'momentum' && c.nesterov === true && (c.dampening ?? 0) !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['dampening'],
        message: `nesterov momentum requires dampening 0 (got ${c.dampening})`,
      });
    }
  });

/** Validate a config (e.g. from JSON or flags); throws a one-line `UserError` naming every problem. */
export function parseOptimizerConfig(input: unknown, source = 'optimizer config'): OptimizerConfig {
  const r = optimizerConfigSchema.safeParse(input);
  if (!r.success) throw zodUserError(r.error, source, optimizerConfigSchema);
  return r.data;
}

/** Validate and fill in the defaults (PyTorch's). */
export function resolveOptimizerConfig(cfg: OptimizerConfig): ResolvedOptimizerConfig {
  const c = parseOptimizerConfig(cfg);
  const betas = c.betas ?? [0.9, 0.999];
  return {
    name: c.name,
    lr: c.lr,
    momentum: c.name === 'momentum' ? (c.momentum ?? 0.9) : 0,
    dampening: c.dampening ?? 0,
    nesterov: c.nesterov ?? false,
    betas: [betas[0], betas[1]],
    eps: c.eps ?? 1e-8,
    weightDecay: c.weightDecay ?? (c.name === 'adamw' ? 0.01 : 0),
  };
}

// ---------------------------------------------------------------------------------------------
// State

/** The buffer names for `params` under `cfg`, in parameter order. */
export function bufferNames(cfg: OptimizerConfig, params: Vec): string[] {
  const kinds = BUFFER_KINDS[resolveOptimizerConfig(cfg).name];
  const out: string[] = [];
  for (const p of Object.keys(params)) for (const k of kinds) out.push(`${k}.${p}`);
  return out;
}

/** Step 0 and zero buffers shaped and typed like the parameters. */
export function initOptimizerState(cfg: OptimizerConfig, params: Vec): OptimizerState {
  const buffers: Record<string, Tensor> = {};
  const kinds = BUFFER_KINDS[resolveOptimizerConfig(cfg).name];
  for (const [p, t] of Object.entries(params)) {
    for (const k of kinds) setOwn(buffers, `${k}.${p}`, zeros(t.shape, t.dtype));
  }
  return { step: 0, buffers };
}

/**
 * One optimizer step. `grads` must have exactly the parameters' names, shapes and dtypes; `state`
 * must come from `initOptimizerState`/`stateFromTensors`/an earlier step with the same config and
 * parameters. Returns fresh tensors; the inputs are not modified and nothing returned aliases them.
 * `alloc` gives the returned tensors' buffers (every element is written): fresh arrays by default;
 * the training loop passes buffers that stay in WebAssembly memory (src/study/train.ts,
 * StepBuffers), which must not alias the inputs.
 */
export function optimizerStep(
  cfg: OptimizerConfig,
  params: Vec,
  grads: Vec,
  state: OptimizerState,
  alloc: (dtype: DType, n: number) => Buf = allocBuf,
): { params: Vec; state: OptimizerState } {
  const c = resolveOptimizerConfig(cfg);
  if (!Number.isSafeInteger(state.step) || state.step < 0) {
    throw new Error(`optimizerStep: state.step must be a non-negative integer, got ${state.step}`);
  }
  for (const k of Object.keys(grads)) {
    if (!Object.prototype.hasOwnProperty.call(params, k)) throw new Error(`optimizerStep: gradient ${k} has no parameter`);
  }
  const t = state.step + 1; // PyTorch increments the step before using it
  const outParams: Vec = {};
  const outBufs: Record<string, Tensor> = {};
  const kinds = BUFFER_KINDS[c.name];
  for (const [name, p] of Object.entries(params)) {
    const g = own(grads, name);
    if (!g) throw new Error(`optimizerStep: no gradient for parameter ${name}`);
    if (!shapesEqual(g.shape, p.shape) || g.dtype !== p.dtype) {
      throw new Error(`optimizerStep: gradient ${name} is ${g.dtype} ${fmtShape(g.shape)}, parameter is ${p.dtype} ${fmtShape(p.shape)}`);
    }
    const bufs = kinds.map((k) => {
      const b = own(state.buffers, `${k}.${name}`);
      if (!b) throw new Error(`optimizerStep: state has no buffer ${k}.${name} (state made for another optimizer?)`);
      if (!shapesEqual(b.shape, p.shape) || b.dtype !== p.dtype) {
        throw new Error(`optimizerStep: buffer ${k}.${name} is ${b.dtype} ${fmtShape(b.shape)}, parameter is ${p.dtype} ${fmtShape(p.shape)}`);
      }
      return b.data;
    });
    const n = p.data.length;
    const np = alloc(p.dtype, n);
    if (c.name === 'sgd') {
      sgdKernel(p.data, g.data, np, c.lr, c.weightDecay);
    } else if (c.name === 'momentum') {
      const nb = alloc(p.dtype, n);
      momentumKernel(p.data, g.data, bufs[0]!, np, nb, c, state.step === 0);
      setOwn(outBufs, `momentum_buffer.${name}`, new Tensor(nb, p.shape));
    } else {
      const nm = alloc(p.dtype, n);
      const nv = alloc(p.dtype, n);
      adamKernel(p.data, g.data, bufs[0]!, bufs[1]!, np, nm, nv, c, t);
      setOwn(outBufs, `exp_avg.${name}`, new Tensor(nm, p.shape));
      setOwn(outBufs, `exp_avg_sq.${name}`, new Tensor(nv, p.shape));
    }
    setOwn(outParams, name, new Tensor(np, p.shape));
  }
  return { params: outParams, state: { step: t, buffers: outBufs } };
}

// Kernels. The arithmetic follows PyTorch's op order: `a.add_(b, alpha=s)` is a + s·b,
// `addcmul_(x, y, value=s)` is a + s·x·y, `addcdiv_(x, y, value=s)` is a + s·x/y.

function sgdKernel(P: Buf, G: Buf, out: Buf, lr: number, wd: number): void {
  const nlr = -lr;
  if (wd !== 0) for (let i = 0; i < P.length; i++) out[i] = P[i]! + nlr * (G[i]! + wd * P[i]!);
  else for (let i = 0; i < P.length; i++) out[i] = P[i]! + nlr * G[i]!;
}

function momentumKernel(P: Buf, G: Buf, B: Buf, outP: Buf, outB: Buf, c: ResolvedOptimizerConfig, first: boolean): void {
  const nlr = -c.lr;
  const wd = c.weightDecay;
  const mu = c.momentum;
  const keep = 1 - c.dampening;
  const nesterov = c.nesterov;
  for (let i = 0; i < P.length; i++) {
    const p = P[i]!;
    const g = wd !== 0 ? G[i]! + wd * p : G[i]!;
    const b = first ? g : mu * B[i]! + keep * g;
    outB[i] = b;
    outP[i] = p + nlr * (nesterov ? g + mu * b : b);
  }
}

function adamKernel(P: Buf, G: Buf, M: Buf, V: Buf, outP: Buf, outM: Buf, outV: Buf, c: ResolvedOptimizerConfig, t: number): void {
  const [b1, b2] = c.betas;
  const a1 = 1 - b1;
  const a2 = 1 - b2;
  const eps = c.eps;
  const decoupled = c.name === 'adamw';
  const wd = c.weightDecay;
  const shrink = 1 - c.lr * wd; // adamw: param.mul_(1 - lr * weight_decay)
  const l2 = !decoupled && wd !== 0;
  const bc1 = 1 - b1 ** t;
  const bc2 = 1 - b2 ** t;
  const negStep = -(c.lr / bc1);
  const bc2Sqrt = Math.sqrt(bc2);
  // the same arithmetic in WebAssembly where it runs (bit-identical, several times faster)
  const mode = l2 ? 1 : decoupled ? 2 : 0;
  if (fusedAdam([P, G, M, V], [outP, outM, outV], { b1, a1, b2, a2, eps, negStep, bc2Sqrt, wd, shrink, mode })) return;
  for (let i = 0; i < P.length; i++) {
    let p = P[i]!;
    let g = G[i]!;
    if (l2) g = g + wd * p;
    if (decoupled) p = p * shrink;
    const m = b1 * M[i]! + a1 * g;
    const v = b2 * V[i]! + a2 * g * g;
    outM[i] = m;
    outV[i] = v;
    outP[i] = p + (negStep * m) / (Math.sqrt(v) / bc2Sqrt + eps);
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/**
 * The state as one flat tensor tree (for safetensors): the buffers under their names plus
 * `step`, a 0-d float64 tensor. The buffers are shared, not copied (nothing here mutates them).
 */
export function stateToTensors(state: OptimizerState): Record<string, Tensor> {
  if (Object.prototype.hasOwnProperty.call(state.buffers, STEP_KEY)) {
    throw new Error(`stateToTensors: a buffer is named "${STEP_KEY}", which is reserved for the step counter`);
  }
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(state.buffers)) setOwn(out, k, t);
  setOwn(out, STEP_KEY, new Tensor(Float64Array.of(state.step), []));
  return out;
}

/**
 * The inverse of `stateToTensors`, checked against what `cfg` and `params` need: a `step` tensor
 * holding one non-negative integer (0-d or [1], float32 or float64), and exactly the buffers of
 * `initOptimizerState(cfg, params)`, each with its parameter's shape and dtype, finite (and
 * exp_avg_sq non-negative). Throws a one-line `UserError` naming the first problem; `source`
 * (e.g. the file name) prefixes it. The buffers are shared with `tensors`, not copied.
 */
export function stateFromTensors(tensors: Record<string, Tensor>, cfg: OptimizerConfig, params: Vec, source = 'optimizer state'): OptimizerState {
  const c = resolveOptimizerConfig(cfg);
  const fail = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  const stepT = own(tensors, STEP_KEY);
  if (!stepT) return fail(`no "${STEP_KEY}" tensor (the number of steps taken); not an optimizer state?`);
  if (!(stepT.shape.length === 0 || (stepT.shape.length === 1 && stepT.shape[0] === 1))) {
    fail(`"${STEP_KEY}" has shape ${fmtShape(stepT.shape)}, expected [] or [1]`);
  }
  const step = stepT.data[0]!;
  if (!Number.isSafeInteger(step) || step < 0) fail(`"${STEP_KEY}" is ${step}, expected a non-negative integer`);

  const kinds = BUFFER_KINDS[c.name];
  const expected = new Set<string>([STEP_KEY]);
  const problems: string[] = [];
  const buffers: Record<string, Tensor> = {};
  for (const [p, pt] of Object.entries(params)) {
    for (const k of kinds) {
      const name = `${k}.${p}`;
      expected.add(name);
      const b = own(tensors, name);
      if (!b) {
        problems.push(`${name} is missing (${c.name} needs it for parameter ${p}, shape ${fmtShape(pt.shape)})`);
      } else if (!shapesEqual(b.shape, pt.shape)) {
        problems.push(`${name} has shape ${fmtShape(b.shape)}, parameter ${p} has ${fmtShape(pt.shape)}`);
      } else if (b.dtype !== pt.dtype) {
        problems.push(`${name} is ${b.dtype}, parameter ${p} is ${pt.dtype}`);
      } else {
        const bad = firstBad(b.data, k === 'exp_avg_sq');
        if (bad >= 0) {
          problems.push(
            `${name} has ${k === 'exp_avg_sq' ? 'an invalid (non-finite or negative)' : 'a non-finite'} value ${b.data[bad]} at flat index ${bad}`,
          );
        } else setOwn(buffers, name, b);
      }
    }
  }
  const extra = Object.keys(tensors)
    .filter((k) => !expected.has(k))
    .sort();
  for (const k of extra) {
    const hint = kinds.length === 0 ? `${c.name} keeps no buffers` : `not a ${c.name} buffer of these parameters`;
    problems.push(`${k} (shape ${fmtShape(tensors[k]!.shape)}) is unexpected: ${hint}`);
  }
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
    fail(`${problems[0]}${more}`);
  }
  return { step, buffers };
}

// ---------------------------------------------------------------------------------------------

function firstBad(d: Buf, nonNegative: boolean): number {
  for (let i = 0; i < d.length; i++) {
    const x = d[i]!;
    if (!Number.isFinite(x) || (nonNegative && x < 0)) return i;
  }
  return -1;
}

function own<T>(obj: Record<string, T>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

/** Define an own enumerable property (plain assignment would treat "__proto__" specially). */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
