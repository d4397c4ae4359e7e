/** Reductions and shape primitives. */
import { fmtShape, sizeOf, type Shape } from '../shape.js';
import type { Val } from '../tensor.js';
import * as o from '../ops.js';
import type { Aval, Rule } from './types.js';

const keptDims = (rank: number, axes: readonly number[]) => Array.from({ length: rank }, (_, i) => i).filter((i) => !axes.includes(i));

/** Broadcast a reduced value back over the reduced axes of `shape`. */
function unreduce(y: Val, shape: Shape, axes: readonly number[]): Val {
  return o.broadcastInDim(y, shape, keptDims(shape.length, axes));
}

function reduceShape(name: string, [a]: readonly Aval[], axes: readonly number[]): Aval {
  for (const ax of axes) {
    if (!(ax >= 0 && ax < a!.shape.length)) throw new Error(`${name}: axis ${ax} out of range for ${fmtShape(a!.shape)}`);
  }
  return { shape: a!.shape.filter((_, i) => !axes.includes(i)), dtype: a!.dtype };
}

/** For reduce_max: the indicator of maximal elements divided by their count (ties share equally). */
function maxWeights(x: Val, out: Val, axes: readonly number[]): Val {
  const mask = o.eq(x, unreduce(out, x.shape, axes));
  return o.div(mask, unreduce(o.sum(mask, axes), x.shape, axes));
}

export const structuralRules = {
  reduce_sum: {
    shape: (ins, { axes }) => reduceShape('reduce_sum', ins, axes),
    jvp: (_p, [t], _out, { axes }) => (t ? o.sum(t, axes) : null),
    vjp: (ct, [x], _out, { axes }) => [unreduce(ct, x!.shape, axes)],
  },
  reduce_max: {
    shape: (ins, { axes }) => reduceShape('reduce_max', ins, axes),
    jvp: ([x], [t], out, { axes }) => (t ? o.sum(o.mul(t, maxWeights(x!, out, axes)), axes) : null),
    vjp: (ct, [x], out, { axes }) => [o.mul(unreduce(ct, x!.shape, axes), maxWeights(x!, out, axes))],
  },
  reshape: {
    shape: ([a], { shape }) => {
      if (sizeOf(shape) !== sizeOf(a!.shape)) throw new Error(`reshape: ${fmtShape(a!.shape)} to ${fmtShape(shape)} changes the size`);
      return { shape, dtype: a!.dtype };
    },
    jvp: (_p, [t], _out, { shape }) => (t ? o.reshape(t, shape) : null),
    vjp: (ct, [x]) => [o.reshape(ct, x!.shape)],
  },
  broadcast: {
    shape: ([a], { shape, dims }) => {
      const ok = dims.length === a!.shape.length && a!.shape.every((d, i) => d === 1 || d === shape[dims[i]!]);
      if (!ok) throw new Error(`broadcast: cannot broadcast ${fmtShape(a!.shape)} to ${fmtShape(shape)} along dims ${fmtShape(dims)}`);
      return { shape, dtype: a!.dtype };
    },
    jvp: (_p, [t], _out, { shape, dims }) => (t ? o.broadcastInDim(t, shape, dims) : null),
    // transpose: sum over the new axes and the expanded size-1 axes
    vjp: (ct, [x], _out, { shape, dims }) => {
      const expanded = dims.filter((d, i) => x!.shape[i] === 1 && shape[d] !== 1);
      const summed = shape.map((_, i) => i).filter((i) => !dims.includes(i) || expanded.includes(i));
      return [o.reshape(o.sum(ct, summed), x!.shape)];
    },
  },
  transpose: {
    shape: ([a], { perm }) => {
      const ok = perm.length === a!.shape.length && [...perm].sort((x, y) => x - y).every((v, i) => v === i);
      if (!ok) throw new Error(`transpose: ${fmtShape(perm)} is not a permutation of the axes of ${fmtShape(a!.shape)}`);
      return { shape: perm.map((p) => a!.shape[p]!), dtype: a!.dtype };
    },
    jvp: (_p, [t], _out, { perm }) => (t ? o.transpose(t, perm) : null),
    vjp: (ct, _p, _out, { perm }) => {
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => (inv[p] = i));
      return [o.transpose(ct, inv)];
    },
  },
  slice: {
    shape: ([a], { start, end }) => {
      const s = a!.shape;
      const ok = start.length === s.length && end.length === s.length && s.every((d, i) => 0 <= start[i]! && start[i]! <= end[i]! && end[i]! <= d);
      if (!ok) throw new Error(`slice: [${fmtShape(start)}, ${fmtShape(end)}) is outside ${fmtShape(s)}`);
      return { shape: s.map((_, i) => end[i]! - start[i]!), dtype: a!.dtype };
    },
    jvp: (_p, [t], _out, { start, end }) => (t ? o.slice(t, start, end) : null),
    vjp: (ct, [x], _out, { start, end }) => [
      o.pad(
        ct,
        start,
        x!.shape.map((d, i) => d - end[i]!),
      ),
    ],
  },
  pad: {
    shape: ([a], { lo, hi }) => {
      const s = a!.shape;
      const ok = lo.length === s.length && hi.length === s.length && [...lo, ...hi].every((v) => Number.isInteger(v) && v >= 0);
      if (!ok) throw new Error(`pad: widths ${fmtShape(lo)}/${fmtShape(hi)} invalid for ${fmtShape(s)}`);
      return { shape: s.map((d, i) => d + lo[i]! + hi[i]!), dtype: a!.dtype };
    },
    jvp: (_p, [t], _out, { lo, hi }) => (t ? o.pad(t, lo, hi) : null),
    vjp: (ct, [x], _out, { lo }) => [
      o.slice(
        ct,
        lo,
        x!.shape.map((d, i) => lo[i]! + d),
      ),
    ],
  },
  concatenate: {
    shape: (ins, { axis }) => {
      const a = ins[0]!;
      for (const b of ins) {
        const ok = b.dtype === a.dtype && b.shape.length === a.shape.length && b.shape.every((d, i) => i === axis || d === a.shape[i]);
        if (!ok) throw new Error(`concatenate: ${fmtShape(b.shape)} ${b.dtype} does not match ${fmtShape(a.shape)} ${a.dtype} off axis ${axis}`);
      }
      const shape = [...a.shape];
      shape[axis] = ins.reduce((acc, b) => acc + b.shape[axis]!, 0);
      return { shape, dtype: a.dtype };
    },
    jvp: (ps, ts, _out, { axis }) =>
      ts.every((t) => t === null)
        ? null
        : o.concatenate(
            ts.map((t, i) => t ?? o.zerosLike(ps[i]!)),
            axis,
          ),
    vjp: (ct, ps, _out, { axis }, needs) => {
      let pos = 0;
      return ps.map((p, i) => {
        const from = pos;
        pos += p.shape[axis]!;
        return needs[i] ? o.sliceAxis(ct, axis, from, pos) : null;
      });
    },
  },
} satisfies { [K in 'reduce_sum' | 'reduce_max' | 'reshape' | 'broadcast' | 'transpose' | 'slice' | 'pad' | 'concatenate']: Rule<K> };
