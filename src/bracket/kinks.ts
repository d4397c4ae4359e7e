/**
 * Kinks of a network: the state of every kinked operation of its forward pass (the on/off state
 * of every ReLU unit, the selected element of every max-pool window, the winner of every
 * elementwise max/min, the sign under every abs), and a "frozen pattern" version of any model.
 *
 * The ε² swap law θ_xy − θ_yx = ε²[v_x, v_y] + O(ε³) needs the losses to be smooth along the
 * steps. A ReLU net is smooth only inside one activation region: when a step moves a unit across
 * its kink (a pre-activation changes sign, or another element of a max-pool window becomes the
 * maximum), the gradient jumps and the expansion fails at that ε.
 *
 * Both tools work for every model, without instrumenting it: the model's forward pass is recorded
 * once (the engine's recordTape), listing every primitive that depends on the parameters with its
 * concrete inputs. The kinks are the entries of the primitives that have them:
 *  - ReLU, x·[x > 0]: the `mul` whose mask input the relu composite declared (markKink). Other
 *    0/1 factors and conditions (softplus's branch, a constant target) are no kinks;
 *  - `maxpool2d(key, val)`: the element of key each window selects (PyTorch's rule: first maximal);
 *  - `max(a, b)` and `min(a, b)`: which operand wins, or a tie;
 *  - `abs(x)`: the sign of x (−, 0 or +).
 * The frozen-pattern model replays the tape with new parameters, keeping every constant (so every
 * ReLU mask) at its value at θ₀: ReLU becomes multiplication by the mask at θ₀, max-pool a gather at
 * the argmax positions at θ₀, max/min a blend of the operands with the winner weights (1, ½ at a
 * tie, 0) at θ₀, abs multiplication by the sign at θ₀. It is smooth in the parameters and agrees
 * with the model at θ₀ in value, gradient and Hessian (the engine's derivative rules use the same
 * weights; no second derivative comes from a kink). Values computed under zero-derivative
 * primitives (stop_gradient, compare) are constants of the tape, hence frozen too.
 */
import {
  add,
  bindMaxPool,
  compare,
  eq,
  gt,
  lt,
  mul,
  primalValue,
  recordTape,
  replayTape,
  sub,
  Tensor,
  type Params,
  type PoolParams,
  type Shape,
  type Tape,
  type TapeEntry,
  type Val,
} from '../engine/index.js';
import { evalState, type ForwardState } from '../nn/layers.js';
import type { Model } from '../nn/models.js';
import type { Vec } from './vec.js';

export type KinkKind = 'relu' | 'maxpool' | 'max' | 'min' | 'abs';

export interface PatternLayer {
  kind: KinkKind;
  /** Position among the model's kinked operations, in forward order. */
  index: number;
  /** The operation's id on the forward tape (the same for every θ and input of this shape). */
  node: number;
  /** ReLU, max, min, abs: the operand's shape; max-pool: the output's shape (one unit per window). */
  shape: Shape;
  /**
   * ReLU: 1 where the unit is on (x > 0); max-pool: the offset of the selected element in its H×W
   * plane (−1 for a window with no element); max, min: 2 where a > b, 0 where a < b, else 1 (tie);
   * abs: 2 where x > 0, 0 where x < 0, else 1.
   */
  state: Uint8Array | Int32Array;
}

export interface ActivationPattern {
  layers: PatternLayer[];
  /** Number of units: elements of the ReLU, max, min and abs operands, plus max-pool windows. */
  units: number;
}

/** The model's forward pass at `params` on input x, recorded (leaves: the parameters, in key order). */
function record(model: Model, params: Params, x: Val, state: ForwardState): { keys: string[]; tape: Tape; out: Val } {
  const keys = Object.keys(params);
  const f = (ps: Val[]): Val => model.apply(Object.fromEntries(keys.map((k, i) => [k, ps[i]!])), x, state);
  const { out, tape } = recordTape(
    f,
    keys.map((k) => params[k]!),
  );
  return { keys, tape, out };
}

function kindOf(e: TapeEntry): KinkKind | null {
  if (e.kinkMask !== null) return 'relu';
  if (e.prim === 'maxpool2d') return 'maxpool';
  return e.prim === 'max' || e.prim === 'min' || e.prim === 'abs' ? e.prim : null;
}

/** 2 where a > b, 0 where a < b, else 1. */
function order(a: Tensor, b: Tensor): Uint8Array {
  const s = new Uint8Array(a.size);
  for (let i = 0; i < s.length; i++) s[i] = a.data[i]! > b.data[i]! ? 2 : a.data[i]! < b.data[i]! ? 0 : 1;
  return s;
}

function layerAt(e: TapeEntry, kind: KinkKind, node: number, index: number): PatternLayer {
  const input = (k: number) => primalValue(e.inputs[k]!);
  switch (kind) {
    case 'relu': {
      const m = input(e.kinkMask!);
      const s = new Uint8Array(m.size);
      for (let i = 0; i < s.length; i++) s[i] = m.data[i] !== 0 ? 1 : 0;
      return { kind, index, node, shape: m.shape, state: s };
    }
    case 'maxpool': {
      // the selected offsets, as the kernel selects them: pool the (offset + 1) of every element by the key
      const key = input(0);
      const [n, c, h, w] = key.shape as [number, number, number, number];
      const iota = new (key.dtype === 'float32' ? Float32Array : Float64Array)(key.size);
      for (let i = 0; i < iota.length; i++) iota[i] = (i % (h * w)) + 1;
      const sel = primalValue(bindMaxPool(key, new Tensor(iota, [n, c, h, w]), e.params as PoolParams));
      return { kind, index, node, shape: sel.shape, state: Int32Array.from(sel.data, (v) => v - 1) };
    }
    case 'abs':
      return { kind, index, node, shape: input(0).shape, state: order(input(0), new Tensor(new Float64Array(input(0).size), input(0).shape)) };
    default:
      return { kind, index, node, shape: input(0).shape, state: order(input(0), input(1)) };
  }
}

function patternOf(tape: Tape, like?: ActivationPattern): ActivationPattern {
  const layers: PatternLayer[] = [];
  tape.entries.forEach((e, i) => {
    const kind = kindOf(e);
    if (kind) layers.push(layerAt(e, kind, tape.leaves + i, layers.length));
  });
  if (like && (like.layers.length !== layers.length || like.layers.some((l, i) => l.node !== layers[i]!.node || l.kind !== layers[i]!.kind))) {
    throw new Error('activationPattern: the forward pass differs from the reference one (another model or input shape?)');
  }
  return { layers, units: layers.reduce((n, l) => n + l.state.length, 0) };
}

/**
 * The states of the kinked operations of the model's forward pass at `params` on inputs x. With
 * `like` (a pattern of the same model and input shape, e.g. at a reference point), the same
 * operations must be found, in the same order.
 */
export function activationPattern(
  model: Model,
  params: Vec,
  x: Tensor,
  state: ForwardState = evalState(),
  like?: ActivationPattern,
): ActivationPattern {
  return patternOf(record(model, params, x, state).tape, like);
}

export interface PatternDiff {
  /** ReLU units whose on/off state differs. */
  relu: number;
  /** Max-pool windows whose selected element differs. */
  maxpool: number;
  /** Elements of max and min whose winner (or tie) differs, and elements under abs whose sign differs. */
  other?: number;
  total: number;
  /** Units compared. */
  units: number;
}

/** How many units are in a different state in `b` than in `a` (patterns of the same model and input shape). */
export function patternDiff(a: ActivationPattern, b: ActivationPattern): PatternDiff {
  if (a.layers.length !== b.layers.length) throw new Error(`patternDiff: ${a.layers.length} and ${b.layers.length} kinked layers`);
  const d: Required<PatternDiff> = { relu: 0, maxpool: 0, other: 0, total: 0, units: a.units };
  a.layers.forEach((la, i) => {
    const lb = b.layers[i]!;
    if (la.kind !== lb.kind || la.state.length !== lb.state.length) throw new Error(`patternDiff: layer ${i} differs in kind or size`);
    let n = 0;
    for (let k = 0; k < la.state.length; k++) if (la.state[k] !== lb.state[k]) n++;
    d[la.kind === 'relu' || la.kind === 'maxpool' ? la.kind : 'other'] += n;
    d.total += n;
  });
  return d;
}

/** Whether the model has kinked units (on input shape of x; at θ = params). */
export function hasKinks(model: Model, params: Vec, x: Tensor, state: ForwardState = evalState()): boolean {
  return activationPattern(model, params, x, state).units > 0;
}

/** An entry of the tape computed with its kink frozen at its recorded state; undefined: as recorded. */
function frozenEntry(e: TapeEntry, args: readonly Val[]): Val | undefined {
  const at0 = (k: number) => primalValue(e.inputs[k]!);
  switch (e.prim) {
    case 'maxpool2d': // keep the key (which window element is selected) at its value at θ₀
      return bindMaxPool(at0(0), args[1]!, e.params as PoolParams);
    case 'max':
    case 'min': {
      // the operands' weights at θ₀, those of the derivative rule: 1 for the winner, ½ each at a tie
      const wa = add(compare(at0(0), e.prim === 'max' ? 'gt' : 'lt', at0(1)), mul(eq(at0(0), at0(1)), 0.5));
      return add(mul(args[0]!, wa), mul(args[1]!, sub(1, wa)));
    }
    case 'abs': // x · sign(x) at θ₀ (0 at 0, abs's derivative there)
      return mul(args[0]!, sub(gt(at0(0), 0), lt(at0(0), 0)));
    default: // ReLU: its mask is a constant of the tape already
      return undefined;
  }
}

/**
 * The model with its activation pattern frozen at θ₀ = `params0`: for each input (recorded once
 * per input tensor, by identity), every kinked operation keeps its state at θ₀ (see the file
 * comment). A `Model` like any other (differentiable to any order); at θ₀ its logits, gradients
 * and Hessians equal the model's.
 */
export function frozenModel(model: Model, params0: Vec, state: ForwardState = evalState()): Model {
  const cache = new WeakMap<object, { keys: string[]; tape: Tape }>();
  const recorded = (x: Val) => {
    const key = primalValue(x);
    let r = cache.get(key);
    if (!r) {
      r = record(model, params0, key, state);
      cache.set(key, r);
    }
    return r;
  };
  return {
    ...model,
    name: `${model.name} (frozen pattern)`,
    description: `${model.description}; ReLU masks, max-pool selections, max/min winners and abs signs frozen at θ₀`,
    apply: (p: Params, x: Val): Val => {
      const { keys, tape } = recorded(x);
      const leaves = keys.map((k) => {
        const v = p[k];
        if (!v) throw new Error(`frozen model: missing parameter ${k}`);
        return v;
      });
      return replayTape(tape, leaves, frozenEntry)[0]!;
    },
  };
}
