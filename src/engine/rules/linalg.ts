/**
 * matmul, the conv2d family and max-pooling. conv2d, its input gradient and its filter gradient
 * are the three partial derivatives of one trilinear form T(x, w, y) = ⟨y, conv2d(x, w)⟩, so the
 * family is closed: each one's derivatives are the other two. maxpool2d(key, val) selects val at
 * key's window argmax; its transpose in val is maxpool2d_scatter and vice versa.
 */
import type { ConvParams, PoolParams } from '../prims.js';
import { windowOut } from '../prims.js';
import { fmtShape, shapesEqual, type Shape } from '../shape.js';
import type { Val } from '../tensor.js';
import * as o from '../ops.js';
import { sumCts, type Aval, type Rule } from './types.js';

function sameDtype(name: string, ins: readonly Aval[]): void {
  for (const b of ins) {
    if (b.dtype !== ins[0]!.dtype) throw new Error(`${name}: operands have dtypes ${ins[0]!.dtype} and ${b.dtype}; cast explicitly`);
  }
}

function matmulShape([a, b]: readonly Aval[], transA: boolean, transB: boolean): Aval {
  sameDtype('matmul', [a!, b!]);
  const sa = a!.shape;
  const sb = b!.shape;
  const r = sa.length;
  const batchOk = r >= 2 && sb.length === r && shapesEqual(sa.slice(0, -2), sb.slice(0, -2));
  const [m, ka] = transA ? [sa[r - 1]!, sa[r - 2]!] : [sa[r - 2]!, sa[r - 1]!];
  const [kb, n] = transB ? [sb[r - 1]!, sb[r - 2]!] : [sb[r - 2]!, sb[r - 1]!];
  if (!batchOk || ka !== kb) {
    throw new Error(`matmul: cannot multiply ${fmtShape(sa)}${transA ? 'ᵀ' : ''} by ${fmtShape(sb)}${transB ? 'ᵀ' : ''}`);
  }
  return { shape: [...sa.slice(0, -2), m, n], dtype: a!.dtype };
}

function convOutShape(x: Shape, w: Shape, p: ConvParams): number[] {
  const [n, c, h, wd] = x;
  const [oc, cg, kh, kw] = w;
  const ok = x.length === 4 && w.length === 4 && c! % p.groups === 0 && oc! % p.groups === 0 && cg! * p.groups === c;
  if (!ok)
    throw new Error(
      `conv2d: input ${fmtShape(x)} and weight ${fmtShape(w)} do not fit (groups ${p.groups}); expected x [N,C,H,W], w [O,C/groups,KH,KW]`,
    );
  const oh = windowOut(h!, kh!, p.stride[0], p.padding[0], p.dilation[0]);
  const ow = windowOut(wd!, kw!, p.stride[1], p.padding[1], p.dilation[1]);
  if (oh <= 0 || ow <= 0) throw new Error(`conv2d: kernel ${kh}×${kw} does not fit input ${h}×${wd} with padding ${p.padding.join('×')}`);
  return [n!, oc!, oh, ow];
}

function expect(name: string, got: Shape, want: Shape): void {
  if (!shapesEqual(got, want)) throw new Error(`${name}: operand has shape ${fmtShape(got)}, expected ${fmtShape(want)}`);
}

function poolOutShape(x: Shape, p: PoolParams): number[] {
  if (x.length !== 4) throw new Error(`maxpool2d: input must be [N,C,H,W], got ${fmtShape(x)}`);
  if (p.padding[0] * 2 > p.kernel[0] || p.padding[1] * 2 > p.kernel[1]) throw new Error('maxpool2d: padding must be at most half the kernel');
  return [x[0]!, x[1]!, windowOut(x[2]!, p.kernel[0], p.stride[0], p.padding[0]), windowOut(x[3]!, p.kernel[1], p.stride[1], p.padding[1])];
}

const conv = (p: ConvParams) => ({ stride: p.stride, padding: p.padding, dilation: p.dilation, groups: p.groups });
const inputGrad = (dy: Val, w: Val, p: ConvParams, inputShape: Shape) => o.bindConvInputGrad(dy, w, { ...conv(p), inputShape: [...inputShape] });
const filterGrad = (x: Val, dy: Val, p: ConvParams, filterShape: Shape) => o.bindConvFilterGrad(x, dy, { ...conv(p), filterShape: [...filterShape] });
const conv2d = (x: Val, w: Val, p: ConvParams) => o.bindConv(x, w, conv(p));

export const linalgRules = {
  matmul: {
    shape: (ins, { transA, transB }) => matmulShape(ins, transA, transB),
    // d(AB) = Ȧ B + A Ḃ
    jvp: ([a, b], [ta, tb], _out, p) => sumCts([() => (ta ? o.matmul(ta, b!, p) : null), () => (tb ? o.matmul(a!, tb, p) : null)], o.add),
    // C = op(A) op(B):  ∂op(A) = C̄ op(B)ᵀ,  ∂op(B) = op(A)ᵀ C̄  (stored transposed when the flag is set)
    vjp: (ct, [a, b], _out, { transA, transB }, needs) => [
      !needs[0] ? null : transA ? o.matmul(b!, ct, { transA: transB, transB: true }) : o.matmul(ct, b!, { transB: !transB }),
      !needs[1] ? null : transB ? o.matmul(ct, a!, { transA: true, transB: transA }) : o.matmul(a!, ct, { transA: !transA }),
    ],
  },
  conv2d: {
    shape: ([x, w], p) => {
      sameDtype('conv2d', [x!, w!]);
      return { shape: convOutShape(x!.shape, w!.shape, p), dtype: x!.dtype };
    },
    jvp: ([x, w], [tx, tw], _out, p) => sumCts([() => (tx ? conv2d(tx, w!, p) : null), () => (tw ? conv2d(x!, tw, p) : null)], o.add),
    vjp: (ct, [x, w], _out, p, needs) => [needs[0] ? inputGrad(ct, w!, p, x!.shape) : null, needs[1] ? filterGrad(x!, ct, p, w!.shape) : null],
  },
  conv2d_input_grad: {
    shape: ([dy, w], p) => {
      sameDtype('conv2d_input_grad', [dy!, w!]);
      expect('conv2d_input_grad', dy!.shape, convOutShape(p.inputShape, w!.shape, p));
      return { shape: p.inputShape, dtype: dy!.dtype };
    },
    jvp: ([dy, w], [tdy, tw], _out, p) =>
      sumCts([() => (tdy ? inputGrad(tdy, w!, p, p.inputShape) : null), () => (tw ? inputGrad(dy!, tw, p, p.inputShape) : null)], o.add),
    // ⟨c, input_grad(dy, w)⟩ = T(c, w, dy)
    vjp: (ct, [dy, w], _out, p, needs) => [needs[0] ? conv2d(ct, w!, p) : null, needs[1] ? filterGrad(ct, dy!, p, w!.shape) : null],
  },
  conv2d_filter_grad: {
    shape: ([x, dy], p) => {
      sameDtype('conv2d_filter_grad', [x!, dy!]);
      expect('conv2d_filter_grad', dy!.shape, convOutShape(x!.shape, p.filterShape, p));
      return { shape: p.filterShape, dtype: x!.dtype };
    },
    jvp: ([x, dy], [tx, tdy], _out, p) =>
      sumCts([() => (tx ? filterGrad(tx, dy!, p, p.filterShape) : null), () => (tdy ? filterGrad(x!, tdy, p, p.filterShape) : null)], o.add),
    // ⟨c, filter_grad(x, dy)⟩ = T(x, c, dy)
    vjp: (ct, [x, dy], _out, p, needs) => [needs[0] ? inputGrad(dy!, ct, p, x!.shape) : null, needs[1] ? conv2d(x!, ct, p) : null],
  },
  maxpool2d: {
    shape: ([k, v], p) => {
      sameDtype('maxpool2d', [k!, v!]);
      expect('maxpool2d', v!.shape, k!.shape);
      return { shape: poolOutShape(k!.shape, p), dtype: v!.dtype };
    },
    // linear in val; the argmax pattern of key is locally constant
    jvp: ([k], [, tv], _out, p) => (tv ? o.bindMaxPool(k!, tv, p) : null),
    vjp: (ct, [k], _out, p, needs) => [null, needs[1] ? o.bindMaxPoolScatter(k!, ct, { ...p, inputShape: [...k!.shape] }) : null],
  },
  maxpool2d_scatter: {
    shape: ([k, dy], p) => {
      sameDtype('maxpool2d_scatter', [k!, dy!]);
      expect('maxpool2d_scatter', k!.shape, p.inputShape);
      expect('maxpool2d_scatter', dy!.shape, poolOutShape(p.inputShape, p));
      return { shape: p.inputShape, dtype: dy!.dtype };
    },
    jvp: ([k], [, tdy], _out, p) => (tdy ? o.bindMaxPoolScatter(k!, tdy, p) : null),
    vjp: (ct, [k], _out, p, needs) => [null, needs[1] ? o.bindMaxPool(k!, ct, { kernel: p.kernel, stride: p.stride, padding: p.padding }) : null],
  },
} satisfies { [K in 'matmul' | 'conv2d' | 'conv2d_input_grad' | 'conv2d_filter_grad' | 'maxpool2d' | 'maxpool2d_scatter']: Rule<K> };
