/** Arithmetic on concrete parameter trees (Record<string, Tensor>) as one long vector. */
import { allocBuf } from '../engine/dtype.js';
import { Tensor } from '../engine/tensor.js';
import type { Params } from '../engine/tree.js';

/** A concrete parameter tree: the engine's Params<Tensor>, named for the vector arithmetic below. */
export type Vec = Params<Tensor>;

export function sumSq(t: Tensor): number {
  let s = 0;
  const d = t.data;
  for (let i = 0; i < d.length; i++) s += d[i]! * d[i]!;
  return s;
}

export function norm(v: Vec): number {
  let s = 0;
  for (const t of Object.values(v)) s += sumSq(t);
  return Math.sqrt(s);
}

export function dot(a: Vec, b: Vec): number {
  let s = 0;
  for (const [k, t] of Object.entries(a)) {
    const u = b[k];
    if (!u) throw new Error(`dot: second vector lacks ${k}`);
    const x = t.data;
    const y = u.data;
    for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  }
  return s;
}

/** a + alpha·b, tensor by tensor. */
export function axpy(a: Vec, alpha: number, b: Vec): Vec {
  const out: Vec = {};
  for (const [k, t] of Object.entries(a)) {
    const u = b[k];
    if (!u) throw new Error(`axpy: second vector lacks ${k}`);
    const x = t.data;
    const y = u.data;
    const r = allocBuf(t.dtype, x.length);
    for (let i = 0; i < r.length; i++) r[i] = x[i]! + alpha * y[i]!;
    out[k] = new Tensor(r, t.shape);
  }
  return out;
}

export function sub(a: Vec, b: Vec): Vec {
  return axpy(a, -1, b);
}

export function scale(a: Vec, alpha: number): Vec {
  const out: Vec = {};
  for (const [k, t] of Object.entries(a))
    out[k] = new Tensor(
      t.data.map((x) => x * alpha),
      t.shape,
    );
  return out;
}

export function count(v: Vec): number {
  return Object.values(v).reduce((n, t) => n + t.size, 0);
}
