/**
 * Max pooling in WebAssembly SIMD: the window argmaxes in one pass (f32x4 for the common 2×2
 * stride-2 pool), then a gather (maxpool) or a scatter (maxpool_scatter; overlapping windows
 * sum their contributions in float64, plane by plane, and round once, as js.ts does).
 */
import { max32, min32 } from './common.as';

// ---------------------------------------------------------------------------------------------
// max pooling (the selection rule of linalg_ref.ts: scanning the in-bounds window elements in
// row-major order, the candidate is replaced when k > best or k is NaN, starting from best = −∞
// and the first in-bounds element; a window without in-bounds elements selects nothing)

let pKH: i32 = 2, pKW: i32 = 2, pSH: i32 = 2, pSW: i32 = 2, pPH: i32 = 0, pPW: i32 = 0;

export function setPool(KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32): void {
  pKH = KH; pKW = KW; pSH = sh; pSW = sw; pPH = ph; pPW = pw;
}

/**
 * idx[o] = the element index (into the NC·H·W planes of key) that window o selects, −1 if none,
 * for the NC·OH·OW windows in output order.
 */
function poolArgmax<T>(Kp: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, idx: usize): void {
  const sz: usize = sizeof<T>();
  const KH = pKH, KW = pKW, sh = pSH, sw = pSW, ph = pPH, pw = pPW;
  let o: usize = idx;
  if (KH == 2 && KW == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0) {
    // every window in bounds; candidates in row-major order
    // (branch-free: after a ReLU the comparisons are unpredictable; f32 takes 4 windows at a time)
    const OW4 = sizeof<T>() == 4 ? OW & ~3 : 0;
    const step = i32x4(0, 2, 4, 6);
    const one = i32x4.splat(1);
    const wv = i32x4.splat(W);
    for (let q = 0; q < NC; q++) {
      for (let oh = 0; oh < OH; oh++) {
        const r0 = q * H * W + 2 * oh * W;
        let ow = 0;
        for (; ow < OW4; ow += 4) {
          const i0 = r0 + 2 * ow;
          const p0 = Kp + <usize>i0 * sz;
          const p2 = p0 + <usize>W * sz;
          const u0 = v128.load(p0), u1 = v128.load(p0, 16);
          const w0 = v128.load(p2), w1 = v128.load(p2, 16);
          // even and odd columns of the two rows
          const a = v128.shuffle<f32>(u0, u1, 0, 2, 4, 6);
          const b = v128.shuffle<f32>(u0, u1, 1, 3, 5, 7);
          const c = v128.shuffle<f32>(w0, w1, 0, 2, 4, 6);
          const d = v128.shuffle<f32>(w0, w1, 1, 3, 5, 7);
          const ia = i32x4.add(i32x4.splat(i0), step);
          const ic = i32x4.add(ia, wv);
          let best = a;
          let arg = ia;
          let m = v128.or(f32x4.gt(b, best), f32x4.ne(b, b));
          best = v128.bitselect(b, best, m);
          arg = v128.bitselect(i32x4.add(ia, one), arg, m);
          m = v128.or(f32x4.gt(c, best), f32x4.ne(c, c));
          best = v128.bitselect(c, best, m);
          arg = v128.bitselect(ic, arg, m);
          m = v128.or(f32x4.gt(d, best), f32x4.ne(d, d));
          arg = v128.bitselect(i32x4.add(ic, one), arg, m);
          v128.store(o, arg);
          o += 16;
        }
        for (; ow < OW; ow++) {
          const i0 = r0 + 2 * ow;
          const i2 = i0 + W;
          let arg = i0;
          let best = load<T>(Kp + <usize>i0 * sz);
          let v = load<T>(Kp + <usize>(i0 + 1) * sz);
          let m = v > best || v != v;
          best = select<T>(v, best, m);
          arg = select<i32>(i0 + 1, arg, m);
          v = load<T>(Kp + <usize>i2 * sz);
          m = v > best || v != v;
          best = select<T>(v, best, m);
          arg = select<i32>(i2, arg, m);
          v = load<T>(Kp + <usize>(i2 + 1) * sz);
          m = v > best || v != v;
          arg = select<i32>(i2 + 1, arg, m);
          store<i32>(o, arg);
          o += 4;
        }
      }
    }
    return;
  }
  if (sizeof<T>() == 4 && KH == 3 && KW == 3 && sh == 2 && sw == 2 && ph == 1 && pw == 1) {
    poolArgmax3s2(Kp, NC, H, W, OH, OW, idx);
    return;
  }
  for (let q = 0; q < NC; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = max32(0, oh * sh - ph);
      const ih1 = min32(H, oh * sh - ph + KH);
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = max32(0, ow * sw - pw);
        const iw1 = min32(W, ow * sw - pw + KW);
        let arg = -1;
        if (ih0 < ih1 && iw0 < iw1) {
          arg = base + ih0 * W + iw0;
          let best = <T>(-Infinity);
          for (let ih = ih0; ih < ih1; ih++) {
            const r = base + ih * W;
            for (let iw = iw0; iw < iw1; iw++) {
              const v = load<T>(Kp + <usize>(r + iw) * sz);
              if (v > best || v != v) {
                best = v;
                arg = r + iw;
              }
            }
          }
        }
        store<i32>(o, arg);
        o += 4;
      }
    }
  }
}

/**
 * poolArgmax for float32, 3×3 windows, stride 2, padding 1 (the xresnet's stem pool): 4 windows
 * of a row at a time where their 9 input columns are in bounds (branch-free, the same selection
 * rule and order: rows in order, and within a row the columns), the edge windows one at a time.
 */
function poolArgmax3s2(Kp: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, idx: usize): void {
  const step = i32x4(0, 2, 4, 6);
  let o: usize = idx;
  for (let q = 0; q < NC; q++) {
    const base = q * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = max32(0, 2 * oh - 1);
      const ih1 = min32(H, 2 * oh + 2);
      let ow = 0;
      for (; ow < OW; ) {
        const b = 2 * ow - 1; // the first input column of window ow
        if (ih0 < ih1 && b >= 0 && ow + 4 <= OW && b + 8 < W) {
          let best = f32x4.splat(0);
          let arg = i32x4.splat(0);
          for (let ih = ih0; ih < ih1; ih++) {
            const r = base + ih * W + b;
            const p0 = Kp + (<usize>r << 2);
            const v0 = v128.load(p0), v1 = v128.load(p0, 16);
            const k0 = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
            const k1 = v128.shuffle<f32>(v0, v1, 1, 3, 5, 7);
            const k2 = v128.shuffle<f32>(k0, f32x4.splat(load<f32>(p0, 32)), 1, 2, 3, 4);
            const i0 = i32x4.add(i32x4.splat(r), step);
            let m: v128;
            if (ih == ih0) {
              best = k0;
              arg = i0;
            } else {
              m = v128.or(f32x4.gt(k0, best), f32x4.ne(k0, k0));
              best = v128.bitselect(k0, best, m);
              arg = v128.bitselect(i0, arg, m);
            }
            m = v128.or(f32x4.gt(k1, best), f32x4.ne(k1, k1));
            best = v128.bitselect(k1, best, m);
            arg = v128.bitselect(i32x4.add(i0, i32x4.splat(1)), arg, m);
            m = v128.or(f32x4.gt(k2, best), f32x4.ne(k2, k2));
            best = v128.bitselect(k2, best, m);
            arg = v128.bitselect(i32x4.add(i0, i32x4.splat(2)), arg, m);
          }
          v128.store(o, arg);
          o += 16;
          ow += 4;
          continue;
        }
        const iw0 = max32(0, b);
        const iw1 = min32(W, b + 3);
        let arg = -1;
        if (ih0 < ih1 && iw0 < iw1) {
          arg = base + ih0 * W + iw0;
          let best: f32 = -Infinity;
          for (let ih = ih0; ih < ih1; ih++) {
            const r = base + ih * W;
            for (let iw = iw0; iw < iw1; iw++) {
              const v = load<f32>(Kp + (<usize>(r + iw) << 2));
              const m = v > best || v != v;
              best = select<f32>(v, best, m);
              arg = select<i32>(r + iw, arg, m);
            }
          }
        }
        store<i32>(o, arg);
        o += 4;
        ow++;
      }
    }
  }
}

/** out[o] = val[selected element of window o] (0 where a window selects nothing). */
function maxpool<T>(Kp: usize, V: usize, Out: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  const sz: usize = sizeof<T>();
  poolArgmax<T>(Kp, NC, H, W, OH, OW, idx);
  const n = NC * OH * OW;
  for (let o = 0; o < n; o++) {
    const a = load<i32>(idx + (<usize>o << 2));
    store<T>(Out + <usize>o * sz, a < 0 ? <T>0 : load<T>(V + <usize>a * sz));
  }
}

/**
 * dx (zeroed here) with dy[o] added at the element that window o selects, in output order. The
 * JS side uses this only for non-overlapping windows (one contribution per element, so the
 * result is exact in any precision).
 */
function maxpoolScatter<T>(Kp: usize, DY: usize, DX: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  const sz: usize = sizeof<T>();
  poolArgmax<T>(Kp, NC, H, W, OH, OW, idx);
  memory.fill(DX, 0, <usize>(NC * H * W) * sz);
  const n = NC * OH * OW;
  for (let o = 0; o < n; o++) {
    const a = load<i32>(idx + (<usize>o << 2));
    if (a >= 0) {
      const d = DX + <usize>a * sz;
      store<T>(d, load<T>(d) + load<T>(DY + <usize>o * sz));
    }
  }
}

/**
 * maxpoolScatter for windows that overlap (several contributions to an element): per plane, the
 * contributions are added in output order into a float64 accumulator `acc` (H·W elements; for
 * float64 data, dx itself), then rounded once to T: the same sums in the same order as js.ts.
 */
function maxpoolScatterOverlap<T>(Kp: usize, DY: usize, DX: usize, idx: usize, acc: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  const sz: usize = sizeof<T>();
  poolArgmax<T>(Kp, NC, H, W, OH, OW, idx);
  const HW = H * W, OHW = OH * OW;
  for (let q = 0; q < NC; q++) {
    const A: usize = sizeof<T>() == 8 ? DX + <usize>(q * HW) * 8 : acc;
    memory.fill(A, 0, <usize>HW * 8);
    const base = q * HW;
    const io: usize = idx + (<usize>(q * OHW) << 2);
    const dy: usize = DY + <usize>(q * OHW) * sz;
    for (let o = 0; o < OHW; o++) {
      const a = load<i32>(io + (<usize>o << 2));
      if (a >= 0) {
        const d = A + (<usize>(a - base) << 3);
        store<f64>(d, load<f64>(d) + <f64>load<T>(dy + <usize>o * sz));
      }
    }
    if (sizeof<T>() == 4) {
      const out: usize = DX + <usize>(q * HW) * 4;
      for (let i = 0; i < HW; i++) store<f32>(out + (<usize>i << 2), <f32>load<f64>(acc + (<usize>i << 3)));
    }
  }
}

export function maxpool_scatter_overlap_f32(Kp: usize, DY: usize, DX: usize, idx: usize, acc: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  maxpoolScatterOverlap<f32>(Kp, DY, DX, idx, acc, NC, H, W, OH, OW);
}

export function maxpool_scatter_overlap_f64(Kp: usize, DY: usize, DX: usize, idx: usize, acc: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  maxpoolScatterOverlap<f64>(Kp, DY, DX, idx, acc, NC, H, W, OH, OW);
}

export function maxpool_f32(Kp: usize, V: usize, Out: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  maxpool<f32>(Kp, V, Out, idx, NC, H, W, OH, OW);
}

export function maxpool_f64(Kp: usize, V: usize, Out: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  maxpool<f64>(Kp, V, Out, idx, NC, H, W, OH, OW);
}

export function maxpool_scatter_f32(Kp: usize, DY: usize, DX: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  maxpoolScatter<f32>(Kp, DY, DX, idx, NC, H, W, OH, OW);
}

export function maxpool_scatter_f64(Kp: usize, DY: usize, DX: usize, idx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  maxpoolScatter<f64>(Kp, DY, DX, idx, NC, H, W, OH, OW);
}
