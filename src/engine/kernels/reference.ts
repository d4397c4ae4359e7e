/**
 * Reference kernels for the elementwise, reduction and structural primitives: plain loops that
 * read like the definitions. (matmul, conv and pooling references are in linalg_ref.ts.)
 */
import type { Buf } from '../dtype.js';
import type { CompareOp, Prim } from '../prims.js';
import { stridesOf } from '../shape.js';
import { stridedLoop } from './strided.js';
import type { KIn, Kernel, KernelTable } from './types.js';
import { linalgReference } from './linalg_ref.js';

function unary<P extends Prim>(f: (x: number) => number): Kernel<P> {
  return (out, _s, [a]) => {
    const x = a!.data;
    for (let i = 0; i < out.length; i++) out[i] = f(x[i]!);
  };
}

function binary<P extends Prim>(f: (x: number, y: number) => number): Kernel<P> {
  return (out, _s, [a, b]) => {
    const x = a!.data;
    const y = b!.data;
    for (let i = 0; i < out.length; i++) out[i] = f(x[i]!, y[i]!);
  };
}

const COMPARE: Record<CompareOp, (x: number, y: number) => number> = {
  gt: (x, y) => (x > y ? 1 : 0),
  ge: (x, y) => (x >= y ? 1 : 0),
  lt: (x, y) => (x < y ? 1 : 0),
  le: (x, y) => (x <= y ? 1 : 0),
  eq: (x, y) => (x === y ? 1 : 0),
  ne: (x, y) => (x !== y ? 1 : 0),
};

/** Strides of `inp` seen from an output that keeps the axes not in `axes` (reduced axes: stride 0 in dst). */
function reduceInto(out: Buf, a: KIn, axes: readonly number[], mode: 'add' | 'max'): void {
  const outStrides = stridesOf(a.shape.filter((_, i) => !axes.includes(i)));
  const dstStrides: number[] = [];
  let k = 0;
  for (let i = 0; i < a.shape.length; i++) dstStrides.push(axes.includes(i) ? 0 : outStrides[k++]!);
  if (mode === 'max') out.fill(-Infinity);
  stridedLoop(a.shape, out, 0, dstStrides, a.data, 0, stridesOf(a.shape), mode);
}

export const reference: KernelTable = {
  add: binary((x, y) => x + y),
  sub: binary((x, y) => x - y),
  mul: binary((x, y) => x * y),
  div: binary((x, y) => x / y),
  max: binary((x, y) => (x > y || x !== x ? x : y)),
  min: binary((x, y) => (x < y || x !== x ? x : y)),
  neg: unary((x) => -x),
  exp: unary(Math.exp),
  log: unary(Math.log),
  log1p: unary(Math.log1p),
  tanh: unary(Math.tanh),
  sqrt: unary(Math.sqrt),
  abs: unary(Math.abs),
  pow: (out, _s, [a], { exponent: p }) => {
    const x = a!.data;
    if (p === 2) for (let i = 0; i < out.length; i++) out[i] = x[i]! * x[i]!;
    else for (let i = 0; i < out.length; i++) out[i] = Math.pow(x[i]!, p);
  },
  compare: (out, _s, [a, b], { op }) => {
    const f = COMPARE[op];
    const x = a!.data;
    const y = b!.data;
    for (let i = 0; i < out.length; i++) out[i] = f(x[i]!, y[i]!);
  },
  select: (out, _s, [c, a, b]) => {
    const m = c!.data;
    const x = a!.data;
    const y = b!.data;
    for (let i = 0; i < out.length; i++) out[i] = m[i] !== 0 ? x[i]! : y[i]!;
  },
  cast: (out, _s, [a]) => out.set(a!.data),
  stop_gradient: (out, _s, [a]) => out.set(a!.data),
  reduce_sum: (out, _s, [a], { axes }) => reduceInto(out, a!, axes, 'add'),
  reduce_max: (out, _s, [a], { axes }) => reduceInto(out, a!, axes, 'max'),
  reshape: (out, _s, [a]) => out.set(a!.data),
  broadcast: (out, outShape, [a], { dims }) => {
    if (a!.data.length === 1) return void out.fill(a!.data[0]!);
    const inStrides = stridesOf(a!.shape);
    const src = new Array<number>(outShape.length).fill(0);
    dims.forEach((d, i) => {
      if (a!.shape[i] !== 1) src[d] = inStrides[i]!;
    });
    stridedLoop(outShape, out, 0, stridesOf(outShape), a!.data, 0, src, 'copy');
  },
  transpose: (out, outShape, [a], { perm }) => {
    const inStrides = stridesOf(a!.shape);
    stridedLoop(outShape, out, 0, stridesOf(outShape), a!.data, 0, perm.map((p) => inStrides[p]!), 'copy');
  },
  slice: (out, outShape, [a], { start }) => {
    const inStrides = stridesOf(a!.shape);
    const off = start.reduce((acc, s, i) => acc + s * inStrides[i]!, 0);
    stridedLoop(outShape, out, 0, stridesOf(outShape), a!.data, off, inStrides, 'copy');
  },
  pad: (out, outShape, [a], { lo }) => {
    const outStrides = stridesOf(outShape);
    const off = lo.reduce((acc, s, i) => acc + s * outStrides[i]!, 0);
    stridedLoop(a!.shape, out, off, outStrides, a!.data, 0, stridesOf(a!.shape), 'copy');
  },
  concatenate: (out, outShape, inputs, { axis }) => {
    const outStrides = stridesOf(outShape);
    let pos = 0;
    for (const a of inputs) {
      stridedLoop(a.shape, out, pos * outStrides[axis]!, outStrides, a.data, 0, stridesOf(a.shape), 'copy');
      pos += a.shape[axis]!;
    }
  },
  ...linalgReference,
};
