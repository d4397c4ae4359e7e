/**
 * Kinks of a network: the on/off state of every ReLU unit and the selected element of every
 * max-pool window, and a "frozen pattern" version of any model.
 *
 * The ε² swap law θ_xy − θ_yx = ε²[v_x, v_y] + O(ε³) needs the losses to be smooth along the
 * steps. A ReLU net is smooth only inside one activation region: when a step moves a unit across
 * its kink (a pre-activation changes sign, or another element of a max-pool window becomes the
 * maximum), the gradient jumps and the expansion fails at that ε.
 *
 * Both tools work for every model, without instrumenting it: the model's forward pass is run once
 * under a reverse-mode trace, whose tape lists every primitive that depends on the parameters with
 * its concrete inputs. ReLU is x·[x > 0] (`mul` by a mask that is a constant of the tape, since
 * `compare` has zero derivative; older engines wrote select(x > 0, x, 0)), max-pool is
 * `maxpool2d(key, val)` with key = val; so
 *  - the activation pattern is read off the tape: the mask of every ReLU — a `mul` of a traced
 *    value by a constant equal to [value > 0], or the condition of a `select` — and the argmax
 *    (PyTorch's rule: first maximal element) of every `maxpool2d` key. Which tape nodes are ReLUs
 *    is decided at the reference point and reused at the others (`like`), so a constant 0/1 factor
 *    that only happens to equal [x > 0] never "switches";
 *  - the frozen-pattern model replays the tape with new parameters, keeping every constant (so
 *    every ReLU mask) and every max-pool key at their values at θ₀: ReLU becomes multiplication by
 *    the mask at θ₀, max-pool a gather at the argmax positions at θ₀. It is smooth in the
 *    parameters and agrees with the model at θ₀ in value, gradient and Hessian (no second
 *    derivative comes from a kink).
 * Other kinked primitives (max/min in softplus, abs) sit inside smooth composites and are not
 * counted. Values computed under zero-derivative primitives (stop_gradient, compare) are constants
 * of the tape, hence frozen too.
 */
import { poolArgmax } from '../engine/kernels/linalg_ref.js';
import type { PoolParams, Prim, PrimParams } from '../engine/prims.js';
import type { Shape } from '../engine/shape.js';
import { Tensor, type Val } from '../engine/tensor.js';
import { bind, popMain, primalValue, pushMain, VJPTracer, type MainTrace } from '../engine/trace.js';
import type { Params } from '../engine/tree.js';
import { evalState, type ForwardState } from '../nn/layers.js';
import type { Model } from '../nn/models.js';
import type { Vec } from './vec.js';

export type KinkKind = 'relu' | 'maxpool';

export interface PatternLayer {
  kind: KinkKind;
  /** Position among the model's kinked operations, in forward order. */
  index: number;
  /** The operation's position on the forward tape (the same for every θ and input of this shape). */
  node: number;
  /** ReLU: the pre-activation's shape; max-pool: the output's shape (one unit per window). */
  shape: Shape;
  /** ReLU: 1 where the unit is on (x > 0); max-pool: the offset of the selected element in its H×W plane. */
  state: Uint8Array | Int32Array;
}

export interface ActivationPattern {
  layers: PatternLayer[];
  /** Number of units: ReLU elements plus max-pool windows. */
  units: number;
}

interface TapeNode {
  readonly prim: Prim;
  readonly params: unknown;
  readonly primals: readonly Val[];
  readonly out: Val;
  readonly inputIds: readonly number[];
}

/** The model's forward pass at `params` on input x as a tape of primitives (leaves: the parameters, in key order). */
function record(model: Model, params: Params, x: Val, state: ForwardState): { main: MainTrace; keys: string[]; outId: number | null; out: Val } {
  const keys = Object.keys(params);
  const main = pushMain('vjp');
  let out: Val;
  try {
    keys.forEach(() => main.tape.push(null));
    const tracers: Params = {};
    keys.forEach((k, i) => (tracers[k] = new VJPTracer(main, params[k]!, i)));
    out = model.apply(tracers, x, state);
  } finally {
    popMain(main);
  }
  const outId = out instanceof VJPTracer && out.main === main ? out.id : null;
  return { main, keys, outId, out };
}

function tapeNodes(main: MainTrace): (TapeNode | null)[] {
  return main.tape as unknown as (TapeNode | null)[];
}

/** The mask of a ReLU written x·[x > 0]: the constant factor, when it equals [traced factor > 0]. */
function reluMask(node: TapeNode): Tensor | null {
  if (node.prim !== 'mul' || node.inputIds.length !== 2) return null;
  const k = node.inputIds[0]! < 0 && node.inputIds[1]! >= 0 ? 0 : node.inputIds[1]! < 0 && node.inputIds[0]! >= 0 ? 1 : -1;
  if (k < 0) return null;
  const mask = primalValue(node.primals[k]!);
  const x = primalValue(node.primals[1 - k]!);
  if (mask.size !== x.size) return null;
  for (let i = 0; i < x.size; i++) if (mask.data[i] !== (x.data[i]! > 0 ? 1 : 0)) return null;
  return mask;
}

function layerAt(node: TapeNode, id: number, kind: KinkKind, index: number): PatternLayer {
  if (kind === 'maxpool') {
    const key = primalValue(node.primals[0]!);
    const p = node.params as PoolParams;
    const outShape = primalValue(node.out).shape;
    const [n, c, h, w] = key.shape as [number, number, number, number];
    const [oh, ow] = [outShape[2]!, outShape[3]!];
    const s = new Int32Array(n * c * oh * ow);
    for (let q = 0; q < n * c; q++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) s[(q * oh + i) * ow + j] = poolArgmax(key.data, q * h * w, h, w, i, j, p.kernel, p.stride, p.padding);
      }
    }
    return { kind, index, node: id, shape: outShape, state: s };
  }
  // ReLU: the select's condition, or the constant factor of the mul
  const k = node.prim === 'select' ? 0 : node.inputIds[0]! < 0 ? 0 : 1;
  const m = primalValue(node.primals[k]!);
  const s = new Uint8Array(m.size);
  for (let i = 0; i < s.length; i++) s[i] = m.data[i] !== 0 ? 1 : 0;
  return { kind, index, node: id, shape: m.shape, state: s };
}

function patternOf(nodes: readonly (TapeNode | null)[], like?: ActivationPattern): ActivationPattern {
  const layers: PatternLayer[] = [];
  if (like) {
    for (const l of like.layers) {
      const node = nodes[l.node];
      const ok = node && (l.kind === 'maxpool' ? node.prim === 'maxpool2d' : node.prim === 'select' || node.prim === 'mul');
      if (!node || !ok) throw new Error('activationPattern: the forward pass differs from the reference one (another model or input shape?)');
      layers.push(layerAt(node, l.node, l.kind, l.index));
    }
  } else {
    nodes.forEach((node, id) => {
      if (!node) return;
      if (node.prim === 'maxpool2d') layers.push(layerAt(node, id, 'maxpool', layers.length));
      else if (node.prim === 'select' || reluMask(node)) layers.push(layerAt(node, id, 'relu', layers.length));
    });
  }
  return { layers, units: layers.reduce((n, l) => n + l.state.length, 0) };
}

/**
 * The ReLU on/off states and max-pool selections of the model's forward pass at `params` on inputs
 * x. With `like` (a pattern of the same model and input shape, e.g. at a reference point), the
 * same operations are read, in the same order.
 */
export function activationPattern(model: Model, params: Vec, x: Tensor, state: ForwardState = evalState(), like?: ActivationPattern): ActivationPattern {
  return patternOf(tapeNodes(record(model, params as Params, x, state).main), like);
}

export interface PatternDiff {
  /** ReLU units whose on/off state differs. */
  relu: number;
  /** Max-pool windows whose selected element differs. */
  maxpool: number;
  total: number;
  /** Units compared. */
  units: number;
}

/** How many units are in a different state in `b` than in `a` (patterns of the same model and input shape). */
export function patternDiff(a: ActivationPattern, b: ActivationPattern): PatternDiff {
  if (a.layers.length !== b.layers.length) throw new Error(`patternDiff: ${a.layers.length} and ${b.layers.length} kinked layers`);
  const d: PatternDiff = { relu: 0, maxpool: 0, total: 0, units: a.units };
  a.layers.forEach((la, i) => {
    const lb = b.layers[i]!;
    if (la.kind !== lb.kind || la.state.length !== lb.state.length) throw new Error(`patternDiff: layer ${i} differs in kind or size`);
    let n = 0;
    for (let k = 0; k < la.state.length; k++) if (la.state[k] !== lb.state[k]) n++;
    d[la.kind] += n;
    d.total += n;
  });
  return d;
}

/** Whether the model has ReLU or max-pool units (on input shape of x; at θ = params). */
export function hasKinks(model: Model, params: Vec, x: Tensor, state: ForwardState = evalState()): boolean {
  return activationPattern(model, params, x, state).units > 0;
}

interface Replay {
  keys: string[];
  nodes: (TapeNode | null)[];
  outId: number | null;
  out: Val;
}

/**
 * The model with its activation pattern frozen at θ₀ = `params0`: for each input (recorded once
 * per input tensor, by identity), ReLU multiplies by the on/off mask at θ₀ and max-pool gathers at
 * the argmax positions at θ₀. A `Model` like any other (differentiable to any order); at θ₀ its
 * logits, gradients and Hessians equal the model's.
 */
export function frozenModel(model: Model, params0: Vec, state: ForwardState = evalState()): Model {
  const cache = new WeakMap<object, Replay>();
  const replayFor = (x: Val): Replay => {
    const key = primalValue(x);
    let r = cache.get(key);
    if (!r) {
      const rec = record(model, params0 as Params, key, state);
      r = { keys: rec.keys, nodes: tapeNodes(rec.main), outId: rec.outId, out: rec.out };
      cache.set(key, r);
    }
    return r;
  };
  return {
    ...model,
    name: `${model.name} (frozen pattern)`,
    description: `${model.description}; ReLU masks and max-pool selections frozen at θ₀`,
    apply: (p: Params, x: Val): Val => {
      const r = replayFor(x);
      if (r.outId === null) return r.out; // the output does not depend on the parameters
      const values: Val[] = new Array<Val>(r.nodes.length);
      r.keys.forEach((k, i) => {
        const v = p[k];
        if (!v) throw new Error(`frozen model: missing parameter ${k}`);
        values[i] = v;
      });
      for (let id = r.keys.length; id < r.nodes.length; id++) {
        const node = r.nodes[id]!;
        const args = node.inputIds.map((src, k) => (src >= 0 ? values[src]! : node.primals[k]!));
        // max-pool: keep the key (which window element is selected) at its value at θ₀
        if (node.prim === 'maxpool2d') args[0] = node.primals[0]!;
        // select: its condition is never a tracer of the tape, so it is the recorded mask already
        values[id] = bind(node.prim, args, node.params as PrimParams[Prim]);
      }
      return values[r.outId]!;
    },
  };
}
