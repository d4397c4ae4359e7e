/**
 * Strided loops shared by the structural kernels: visit every multi-index of `shape`, with a
 * destination and a source offset that advance by their own strides (0 = broadcast/reduce).
 *
 * Before looping, axes of extent 1 are dropped and adjacent axes that step through both buffers
 * as one axis would are merged (e.g. [N, C, H, W] → [N, C, H·W] when broadcasting a per-channel
 * value or reducing over H and W), so the innermost loop is as long as possible. The elements
 * are visited in exactly the same order as without merging, so results are bit-identical. An
 * innermost axis that reduces (destination stride 0) accumulates in a register: in mode 'add'
 * rounded to the destination's precision after every addition as a store would (bit-identical
 * again); in mode 'sum' in float64, rounded once per innermost run (for float32 destinations a
 * little more accurate, and faster: no rounding in the loop-carried dependency).
 */
import type { Buf } from '../dtype.js';
import type { Shape } from '../shape.js';

export type Combine = 'copy' | 'add' | 'sum' | 'max';

/** Drop extent-1 axes and merge adjacent axes that are contiguous in both buffers. */
export function coalesce(shape: Shape, dstStrides: readonly number[], srcStrides: readonly number[]): [number[], number[], number[]] {
  const sh: number[] = [];
  const ds: number[] = [];
  const ss: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    const n = shape[i]!;
    if (n === 1) continue;
    const k = sh.length - 1;
    // the previous (outer) axis steps by exactly one sweep of this one in both buffers: merge
    if (k >= 0 && ds[k] === dstStrides[i]! * n && ss[k] === srcStrides[i]! * n) {
      sh[k] = sh[k]! * n;
      ds[k] = dstStrides[i]!;
      ss[k] = srcStrides[i]!;
    } else {
      sh.push(n);
      ds.push(dstStrides[i]!);
      ss.push(srcStrides[i]!);
    }
  }
  return [sh, ds, ss];
}

export function stridedLoop(
  shapeIn: Shape,
  dst: Buf,
  dstOff: number,
  dstStridesIn: readonly number[],
  src: Buf,
  srcOff: number,
  srcStridesIn: readonly number[],
  mode: Combine,
): void {
  for (const d of shapeIn) if (d === 0) return;
  const [shape, dstStrides, srcStrides] = coalesce(shapeIn, dstStridesIn, srcStridesIn);
  const r = shape.length;
  if (r === 0) {
    apply(dst, dstOff, src[srcOff]!, mode);
    return;
  }
  const last = r - 1;
  const n = shape[last]!;
  const ds = dstStrides[last]!;
  const ss = srcStrides[last]!;
  const f32 = dst instanceof Float32Array;
  const idx = new Array<number>(r).fill(0);
  let d0 = dstOff;
  let s0 = srcOff;
  for (;;) {
    // innermost axis
    if (mode === 'copy') {
      if (ds === 1 && ss === 1) dst.set(src.subarray(s0, s0 + n), d0);
      else if (ds === 1 && ss === 0) dst.fill(src[s0]!, d0, d0 + n);
      else for (let i = 0, d = d0, s = s0; i < n; i++, d += ds, s += ss) dst[d] = src[s]!;
    } else if (mode === 'add' || mode === 'sum') {
      if (ds === 0) {
        // a reduction along the innermost axis: accumulate in a register
        let acc = dst[d0]!;
        if (f32 && mode === 'add') for (let i = 0, s = s0; i < n; i++, s += ss) acc = Math.fround(acc + src[s]!);
        else if (ss === 1) acc += sumRun(src, s0, n);
        else for (let i = 0, s = s0; i < n; i++, s += ss) acc += src[s]!;
        dst[d0] = acc;
      } else {
        for (let i = 0, d = d0, s = s0; i < n; i++, d += ds, s += ss) dst[d]! += src[s]!;
      }
    } else {
      for (let i = 0, d = d0, s = s0; i < n; i++, d += ds, s += ss) {
        const v = src[s]!;
        const m = dst[d]!;
        if (v > m || v !== v) dst[d] = v;
      }
    }
    // odometer over the outer axes
    let ax = last - 1;
    while (ax >= 0) {
      idx[ax]!++;
      d0 += dstStrides[ax]!;
      s0 += srcStrides[ax]!;
      if (idx[ax]! < shape[ax]!) break;
      d0 -= dstStrides[ax]! * shape[ax]!;
      s0 -= srcStrides[ax]! * shape[ax]!;
      idx[ax] = 0;
      ax--;
    }
    if (ax < 0) return;
  }
}

/** The float64 sum of `src[s0 .. s0 + n)`, in four interleaved partial sums (no long loop-carried dependency). */
function sumRun(src: Buf, s0: number, n: number): number {
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  let s = s0;
  const end4 = s0 + (n & ~3);
  for (; s < end4; s += 4) {
    a0 += src[s]!;
    a1 += src[s + 1]!;
    a2 += src[s + 2]!;
    a3 += src[s + 3]!;
  }
  for (const end = s0 + n; s < end; s++) a0 += src[s]!;
  return a0 + a1 + (a2 + a3);
}

function apply(dst: Buf, i: number, v: number, mode: Combine): void {
  if (mode === 'copy') dst[i] = v;
  else if (mode === 'add' || mode === 'sum') dst[i]! += v;
  else if (v > dst[i]! || v !== v) dst[i] = v;
}
