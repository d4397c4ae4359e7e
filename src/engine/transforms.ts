/**
 * Transformations over trees of values: jvp (forward mode), vjp (reverse mode), grad,
 * valueAndGrad, hvp (forward-over-reverse) and linearize-free helpers built on them. They nest to
 * any order: each pushes its own level on the interpreter stack.
 */
import { fmtShape, shapesEqual } from './shape.js';
import { Tensor, full, type Val } from './tensor.js';
import { add, zerosLike } from './ops.js';
import { backward, JVPTracer, popMain, pushMain, VJPTracer } from './trace.js';
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
  const ps = treeLeaves(primals);
  const main = pushMain('vjp');
  let outTree: U;
  try {
    ps.forEach(() => main.tape.push(null));
    const tracers = ps.map((p, i) => new VJPTracer(main, p, i));
    outTree = f(treeUnflatten(primals, tracers) as T);
  } finally {
    popMain(main);
  }
  const outs = treeLeaves(outTree);
  const own = (v: Val): v is VJPTracer => v instanceof VJPTracer && v.main === main;
  const out = treeUnflatten(outTree, outs.map((v) => (own(v) ? v.primal : v))) as U;
  const pullback = (ct: U): T => {
    const cts = treeLeaves(ct);
    checkLike('vjp cotangent', outs, cts);
    const seeds = new Map<number, Val>();
    outs.forEach((v, i) => {
      if (own(v)) seeds.set(v.id, seeds.has(v.id) ? add(seeds.get(v.id)!, cts[i]!) : cts[i]!);
      // an input returned unchanged is a leaf of the tape too
    });
    const grads = backward(main, seeds, ps.length, add);
    return treeUnflatten(primals, grads.map((g, i) => g ?? zerosLike(ps[i]!))) as T;
  };
  return [out, pullback];
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
  const [[value, g], [, hv]] = jvp((q: T) => vg(q) as unknown as [Val, T], p, v) as unknown as [[Val, T], [Val, T]];
  return { value, grad: g, hvp: hv };
}

/** Concrete value of a transformation output (outside every transformation, outputs are Tensors). */
export function concrete(v: Val): Tensor {
  if (!(v instanceof Tensor)) throw new Error('expected a concrete tensor; this value is still being traced');
  return v;
}
