/**
 * Transformations over trees of values: jvp (forward mode), vjp (reverse mode), grad,
 * valueAndGrad, hvp (forward-over-reverse), gradHvp (reverse-over-reverse) and linearize-free helpers built on them. They nest to
 * any order: each pushes its own level on the interpreter stack. recordTape and replayTape expose
 * a reverse-mode tape for reading (which primitives ran, on what) and for evaluating it again.
 */
import { fmtShape, shapesEqual } from './shape.js';
import { Tensor, full, type Val } from './tensor.js';
import { add, zerosLike } from './ops.js';
import type { Prim, PrimParams } from './prims.js';
import { backward, bind, JVPTracer, popMain, pushMain, VJPTracer } from './trace.js';
import { treeLeaves, treeUnflatten, type Tree } from './tree.js';

function checkLike(what: string, a: readonly Val[], b: readonly Val[]): void {
  if (a.length !== b.length) throw new Error(`${what}: trees have ${a.length} and ${b.length} leaves`);
  a.forEach((x, i) => {
    const y = b[i]!;
    if (!shapesEqual(x.shape, y.shape) || x.dtype !== y.dtype) {
      throw new Error(`${what}: leaf ${i} is ${fmtShape(x.shape)} ${x.dtype} but its partner is ${fmtShape(y.shape)} ${y.dtype}`);
    }
  });
}

/** Forward mode: f(primals) and its directional derivative along tangents. */
export function jvp<T extends Tree, U extends Tree>(f: (p: T) => U, primals: T, tangents: T): [U, U] {
  const ps = treeLeaves(primals);
  const ts = treeLeaves(tangents);
  checkLike('jvp', ps, ts);
  const main = pushMain('jvp');
  let outTree: U;
  try {
    const tracers = ps.map((p, i) => new JVPTracer(main, p, ts[i]!));
    outTree = f(treeUnflatten(primals, tracers) as T);
  } finally {
    popMain(main);
  }
  const outs = treeLeaves(outTree);
  const own = (v: Val): v is JVPTracer => v instanceof JVPTracer && v.main === main;
  const out = outs.map((v) => (own(v) ? v.primal : v));
  const tan = outs.map((v) => (own(v) ? v.tangent : zerosLike(v)));
  return [treeUnflatten(outTree, out) as U, treeUnflatten(outTree, tan) as U];
}

/** Reverse mode: f(primals) and a function from output cotangents to input cotangents. */
export function vjp<T extends Tree, U extends Tree>(f: (p: T) => U, primals: T): [U, (ct: U) => T] {
  const [out, pullback] = vjpWithAux((p: T) => [f(p), null] as [U, null], primals);
  return [out, pullback];
}

/**
 * `vjp` of a function that also returns an auxiliary tree: f(p) = [out, aux]. `aux` is returned
 * as this level sees it (its values leave the level like `out`'s) but is not differentiated: the
 * pullback takes cotangents of `out` alone (JAX's has_aux).
 */
export function vjpWithAux<T extends Tree, U extends Tree, A extends Tree | null>(f: (p: T) => [U, A], primals: T): [U, (ct: U) => T, A] {
  const ps = treeLeaves(primals);
  const main = pushMain('vjp');
  let outTree: U;
  let auxTree: A;
  try {
    ps.forEach(() => main.tape.push(null));
    const tracers = ps.map((p, i) => new VJPTracer(main, p, i));
    [outTree, auxTree] = f(treeUnflatten(primals, tracers) as T);
  } finally {
    popMain(main);
  }
  const outs = treeLeaves(outTree);
  const own = (v: Val): v is VJPTracer => v instanceof VJPTracer && v.main === main;
  const leave = (v: Val): Val => (own(v) ? v.primal : v);
  const out = treeUnflatten(outTree, outs.map(leave)) as U;
  const aux = (auxTree === null ? null : treeUnflatten(auxTree, treeLeaves(auxTree).map(leave))) as A;
  const pullback = (ct: U): T => {
    const cts = treeLeaves(ct);
    checkLike('vjp cotangent', outs, cts);
    const seeds = new Map<number, Val>();
    outs.forEach((v, i) => {
      if (own(v)) seeds.set(v.id, seeds.has(v.id) ? add(seeds.get(v.id)!, cts[i]!) : cts[i]!);
      // an input returned unchanged is a leaf of the tape too
    });
    const grads = backward(main, seeds, ps.length, add);
    return treeUnflatten(
      primals,
      grads.map((g, i) => g ?? zerosLike(ps[i]!)),
    ) as T;
  };
  return [out, pullback, aux];
}

function scalarOut(v: Val, what: string): void {
  if (v.size !== 1) throw new Error(`${what}: the function must return a single number, got shape ${fmtShape(v.shape)}`);
}

/** f(p) and ∇f(p) for a scalar-valued f. */
export function valueAndGrad<T extends Tree>(f: (p: T) => Val): (p: T) => [Val, T] {
  return (p) => {
    const [y, pull] = vjp(f, p);
    scalarOut(y, 'grad');
    return [y, pull(full(y.shape, 1, y.dtype))];
  };
}

export function grad<T extends Tree>(f: (p: T) => Val): (p: T) => T {
  const vg = valueAndGrad(f);
  return (p) => vg(p)[1];
}

/**
 * Hessian-vector product by forward-over-reverse: returns f(p), ∇f(p) and H(p)·v, exactly.
 */
export function hvp<T extends Tree>(f: (p: T) => Val, p: T, v: T): { value: Val; grad: T; hvp: T } {
  const vg = valueAndGrad(f);
  const [[value, g], [, hv]] = jvp((q: T) => vg(q), p, v);
  return { value, grad: g, hvp: hv };
}

/**
 * f(p), ∇f(p), and v ↦ H(p)·v by reverse-over-reverse: the gradient is computed under an outer
 * reverse-mode level, whose pullback is v ↦ (∂∇f/∂p)ᵀ v = Hᵀv = Hv (the Hessian is symmetric).
 * The returned `hvp` may be called with many v; each call is one backward pass over the recorded
 * gradient (PyTorch's double backward), and the tape stays alive until `hvp` is dropped. Exact,
 * like `hvp` (forward-over-reverse), with other rounding.
 */
export function gradHvp<T extends Tree>(f: (p: T) => Val, p: T): { value: Val; grad: T; hvp: (v: T) => T } {
  const vg = valueAndGrad(f);
  const [g, pull, value] = vjpWithAux((q: T): [T, Val] => {
    const [y, gq] = vg(q);
    return [gq, y];
  }, p);
  return { value, grad: g, hvp: pull };
}

/** One primitive application of a recorded tape. */
export interface TapeEntry {
  readonly prim: Prim;
  readonly params: PrimParams[Prim];
  /** Per input: the id of the recorded value it is (see `Tape`), or −1 for a constant of the tape. */
  readonly inputIds: readonly number[];
  /** Per input: its value when recorded (a recorded value's primal, or the constant itself). */
  readonly inputs: readonly Val[];
  readonly out: Val;
  /** The position of the input declared with markKink (relu's [x > 0]), or null. */
  readonly kinkMask: number | null;
}

/**
 * A recorded evaluation of f. Ids 0 … leaves − 1 are the input leaves (in treeLeaves order);
 * id leaves + i is the output of entries[i].
 */
export interface Tape {
  readonly leaves: number;
  /**
   * Every primitive applied to a value that depends on the inputs, in the order f applied them
   * (an entry's inputs are recorded before it). Primitives whose derivative is zero (compare,
   * stop_gradient) are not recorded: their outputs, like every value that does not depend on the
   * inputs, are constants of the tape. The same f on inputs of the same shapes records the same
   * primitives, in the same order, as long as f's control flow does not depend on values.
   */
  readonly entries: readonly TapeEntry[];
  /** Per output leaf of f (treeLeaves order): its id, or the value itself when it does not depend on the inputs. */
  readonly outputs: readonly (number | Val)[];
}

/**
 * f(primals), and the tape of primitives it applied (a reverse-mode trace kept for reading and
 * replaying, as jax.make_jaxpr). Values are those of this evaluation; under outer transformations
 * they may be their tracers.
 */
export function recordTape<T extends Tree, U extends Tree>(f: (p: T) => U, primals: T): { out: U; tape: Tape } {
  const ps = treeLeaves(primals);
  const main = pushMain('vjp');
  const masks = new Set<Val>();
  main.kinkMasks = masks;
  let outTree: U;
  try {
    ps.forEach(() => main.tape.push(null));
    outTree = f(
      treeUnflatten(
        primals,
        ps.map((p, i) => new VJPTracer(main, p, i)),
      ) as T,
    );
  } finally {
    popMain(main);
    main.kinkMasks = null;
  }
  const own = (v: Val): v is VJPTracer => v instanceof VJPTracer && v.main === main;
  const outs = treeLeaves(outTree);
  const entries = main.tape.slice(ps.length).map((n): TapeEntry => {
    const { prim, params, inputIds, primals: inputs, out } = n!;
    const k = inputs.findIndex((v, i) => inputIds[i]! < 0 && masks.has(v));
    return { prim, params: params as PrimParams[Prim], inputIds, inputs, out, kinkMask: k < 0 ? null : k };
  });
  const tape: Tape = { leaves: ps.length, entries, outputs: outs.map((v) => (own(v) ? v.id : v)) };
  return {
    out: treeUnflatten(
      outTree,
      outs.map((v) => (own(v) ? v.primal : v)),
    ) as U,
    tape,
  };
}

/**
 * The outputs of a recorded f (treeLeaves order) at new input leaves: each entry's primitive
 * applied to the new values of its recorded inputs and to its constants as recorded (so every
 * value computed under compare or stop_gradient keeps its recorded value). `rewrite` may compute an
 * entry otherwise, from the new values of its inputs (constants: as recorded); returning undefined
 * applies the primitive. Outputs that do not depend on the inputs are returned as recorded.
 */
export function replayTape(tape: Tape, leaves: readonly Val[], rewrite?: (entry: TapeEntry, args: readonly Val[]) => Val | undefined): Val[] {
  if (leaves.length !== tape.leaves) throw new Error(`replayTape: the tape has ${tape.leaves} leaves, got ${leaves.length}`);
  const values: Val[] = [...leaves];
  for (const e of tape.entries) {
    const args = e.inputIds.map((id, k) => (id >= 0 ? values[id]! : e.inputs[k]!));
    values.push(rewrite?.(e, args) ?? bind(e.prim, args, e.params));
  }
  return tape.outputs.map((o) => (typeof o === 'number' ? values[o]! : o));
}

/** Concrete value of a transformation output (outside every transformation, outputs are Tensors). */
export function concrete(v: Val): Tensor {
  if (!(v instanceof Tensor)) throw new Error('expected a concrete tensor; this value is still being traced');
  return v;
}
