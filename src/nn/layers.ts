/** Functional layers over named parameters, with PyTorch's layouts (Linear: weight [out, in]). */
import * as o from '../engine/ops.js';
import type { Val } from '../engine/tensor.js';
import type { Params } from '../engine/tree.js';

function param(p: Params, name: string): Val {
  const v = p[name];
  if (!v) throw new Error(`missing parameter ${name}`);
  return v;
}

/** y = x Wᵀ + b, x [N, in], W [out, in]. */
export function linear(p: Params, prefix: string, x: Val): Val {
  const y = o.matmul(x, param(p, `${prefix}.weight`), { transB: true });
  const b = p[`${prefix}.bias`];
  return b ? o.add(y, b) : y;
}

/** torch.nn.Conv2d: cross-correlation plus a per-channel bias. */
export function conv2d(p: Params, prefix: string, x: Val, opts: o.ConvOptions = {}): Val {
  const y = o.conv2d(x, param(p, `${prefix}.weight`), opts);
  const b = p[`${prefix}.bias`];
  return b ? o.add(y, o.reshape(b, [1, -1, 1, 1])) : y;
}
