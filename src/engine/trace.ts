/**
 * The interpreter stack, as in JAX's autodidax. Every primitive application goes through `bind`,
 * which hands it to the highest-level transformation among its arguments' tracers, or evaluates
 * it with the active kernels when there is none. Forward mode (JVPTracer) carries a tangent;
 * reverse mode (VJPTracer) records a tape whose backward pass applies vjp rules — themselves
 * written in primitives, so an outer transformation (e.g. jvp in forward-over-reverse HVPs)
 * traces the backward pass too. Levels keep nested transformations apart (no perturbation
 * confusion); a tracer used after its transformation ended is an error.
 */
import { kernels } from './kernels/index.js';
import { WRITES_EVERY_ELEMENT } from './kernels/types.js';
import type { Prim, PrimParams } from './prims.js';
import { sizeOf } from './shape.js';
import { Tensor, Val } from './tensor.js';
import { RULES } from './rules/index.js';
import { kernelOutput } from './scratch.js';
import type { Ct } from './rules/types.js';

interface TapeNode {
  readonly prim: Prim;
  readonly params: unknown;
  readonly primals: readonly Val[];
  readonly out: Val;
  /** Tape id of each input that is a tracer of this trace, else -1. */
  readonly inputIds: readonly number[];
}

export class MainTrace {
  active = true;
  /** Reverse mode only: index = tracer id; null for the inputs (leaves). */
  readonly tape: (TapeNode | null)[] = [];
  /** Under recordTape only: the values declared with markKink while this trace was on the stack. */
  kinkMasks: Set<Val> | null = null;
  constructor(
    readonly level: number,
    readonly kind: 'jvp' | 'vjp',
  ) {}
}

const stack: MainTrace[] = [];

export function pushMain(kind: 'jvp' | 'vjp'): MainTrace {
  const m = new MainTrace(stack.length, kind);
  stack.push(m);
  return m;
}

export function popMain(m: MainTrace): void {
  if (stack[stack.length - 1] !== m) throw new Error('internal: transformation stack out of order');
  stack.pop();
  m.active = false;
}

export abstract class Tracer extends Val {
  abstract readonly main: MainTrace;
  abstract readonly primal: Val;
  get shape() {
    return this.primal.shape;
  }
  get dtype() {
    return this.primal.dtype;
  }
}

export class JVPTracer extends Tracer {
  constructor(
    readonly main: MainTrace,
    readonly primal: Val,
    readonly tangent: Val,
  ) {
    super();
  }
}

export class VJPTracer extends Tracer {
  constructor(
    readonly main: MainTrace,
    readonly primal: Val,
    readonly id: number,
  ) {
    super();
  }
}

/** Apply a primitive. */
export function bind<P extends Prim>(prim: P, args: readonly Val[], params: PrimParams[P]): Val {
  let top: MainTrace | null = null;
  for (const a of args) {
    if (a instanceof Tracer) {
      if (!a.main.active) {
        throw new Error(
          `${prim}: a tracer escaped the transformation that created it (use the transformation's outputs, not values captured inside it)`,
        );
      }
      if (top === null || a.main.level > top.level) top = a.main;
    }
  }
  if (top === null) return evaluate(prim, args as readonly Tensor[], params);
  return top.kind === 'jvp' ? processJvp(top, prim, args, params) : processVjp(top, prim, args, params);
}

function evaluate<P extends Prim>(prim: P, args: readonly Tensor[], params: PrimParams[P]): Tensor {
  const aval = RULES[prim].shape(args, params);
  const out = kernelOutput(aval.dtype, sizeOf(aval.shape), !WRITES_EVERY_ELEMENT.has(prim));
  kernels[prim](out, aval.shape, args, params);
  return new Tensor(out, aval.shape);
}

function processJvp<P extends Prim>(main: MainTrace, prim: P, args: readonly Val[], params: PrimParams[P]): Val {
  const rule = RULES[prim];
  const primals = args.map((a) => (a instanceof JVPTracer && a.main === main ? a.primal : a));
  const out = bind(prim, primals, params);
  if (rule.zeroDerivative) return out;
  const tangents: Ct[] = args.map((a) => (a instanceof JVPTracer && a.main === main ? a.tangent : null));
  const t = rule.jvp(primals, tangents, out, params);
  return t === null ? out : new JVPTracer(main, out, t);
}

function processVjp<P extends Prim>(main: MainTrace, prim: P, args: readonly Val[], params: PrimParams[P]): Val {
  const rule = RULES[prim];
  const inputIds = args.map((a) => (a instanceof VJPTracer && a.main === main ? a.id : -1));
  const primals = args.map((a) => (a instanceof VJPTracer && a.main === main ? a.primal : a));
  const out = bind(prim, primals, params);
  if (rule.zeroDerivative) return out;
  const id = main.tape.length;
  main.tape.push({ prim, params, primals, out, inputIds });
  return new VJPTracer(main, out, id);
}

/**
 * Declares that the 0/1 value `mask` switches a kink of the function being computed: the function
 * is smooth in its inputs only while `mask` keeps its value (relu(x) = x·[x > 0] declares
 * [x > 0]; softplus's branch condition is no kink, its branches joining smoothly, and is not
 * declared). Pass `mask` as is (the same object) to the primitive it switches. Returns `mask`; does
 * nothing unless recordTape is running, whose tape then names that input of that entry.
 */
export function markKink(mask: Val): Val {
  for (const m of stack) m.kinkMasks?.add(mask);
  return mask;
}

/**
 * Reverse pass over a finished reverse-mode trace: seeds[id] are output cotangents; returns the
 * cotangents of the first `nLeaves` tape entries (the inputs), null where zero.
 */
export function backward(main: MainTrace, seeds: ReadonlyMap<number, Val>, nLeaves: number, add: (a: Val, b: Val) => Val): Ct[] {
  if (main.active) throw new Error('internal: backward pass on an active trace');
  const cts: Ct[] = new Array<Ct>(main.tape.length).fill(null);
  const accumulate = (id: number, v: Val) => {
    const prev = cts[id];
    cts[id] = prev === null || prev === undefined ? v : add(prev, v);
  };
  for (const [id, v] of seeds) accumulate(id, v);
  for (let id = main.tape.length - 1; id >= nLeaves; id--) {
    const ct = cts[id];
    const node = main.tape[id];
    if (ct === null || ct === undefined || !node) continue;
    cts[id] = null;
    const rule = RULES[node.prim] as (typeof RULES)['add'];
    const needs = node.inputIds.map((i) => i >= 0);
    const ins = rule.vjp(ct, node.primals, node.out, node.params as PrimParams['add'], needs);
    node.inputIds.forEach((inId, k) => {
      const c = ins[k];
      if (inId >= 0 && c !== null && c !== undefined) accumulate(inId, c);
    });
  }
  return cts.slice(0, nLeaves);
}

/**
 * The concrete value underneath any number of tracers (the primal of the primal …). For side
 * outputs that must not be differentiated, such as BatchNorm's running statistics.
 */
export function primalValue(v: Val): Tensor {
  let x: Val = v;
  while (x instanceof Tracer) x = x.primal;
  return x as Tensor;
}
