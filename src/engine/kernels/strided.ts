/**
 * Strided loops shared by the structural kernels: visit every multi-index of `shape`, with a
 * destination and a source offset that advance by their own strides (0 = broadcast/reduce).
 */
import type { Buf } from '../dtype.js';
import type { Shape } from '../shape.js';

export type Combine = 'copy' | 'add' | 'max';

export function stridedLoop(
  shape: Shape,
  dst: Buf, dstOff: number, dstStrides: readonly number[],
  src: Buf, srcOff: number, srcStrides: readonly number[],
  mode: Combine,
): void {
  const r = shape.length;
  if (r === 0) {
    apply(dst, dstOff, src[srcOff]!, mode);
    return;
  }
  for (const d of shape) if (d === 0) return;
  const last = r - 1;
  const n = shape[last]!;
  const ds = dstStrides[last]!;
  const ss = srcStrides[last]!;
  const idx = new Array<number>(r).fill(0);
  let d0 = dstOff;
  let s0 = srcOff;
  for (;;) {
    // innermost axis
    if (mode === 'copy') {
      if (ds === 1 && ss === 1) dst.set(src.subarray(s0, s0 + n), d0);
      else if (ds === 1 && ss === 0) dst.fill(src[s0]!, d0, d0 + n);
      else for (let i = 0, d = d0, s = s0; i < n; i++, d += ds, s += ss) dst[d] = src[s]!;
    } else if (mode === 'add') {
      for (let i = 0, d = d0, s = s0; i < n; i++, d += ds, s += ss) dst[d]! += src[s]!;
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

function apply(dst: Buf, i: number, v: number, mode: Combine): void {
  if (mode === 'copy') dst[i] = v;
  else if (mode === 'add') dst[i]! += v;
  else if (v > dst[i]! || v !== v) dst[i] = v;
}
