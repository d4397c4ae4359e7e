/**
 * What every primitive must define. Derivative rules are written with the differentiable ops of
 * ops.ts, never with raw numbers, so they can be differentiated again (derivatives nest).
 */
import type { DType } from '../dtype.js';
import type { Prim, PrimParams } from '../prims.js';
import type { Shape } from '../shape.js';
import type { Val } from '../tensor.js';

export interface Aval {
  readonly shape: Shape;
  readonly dtype: DType;
}

/** A tangent or cotangent; null is the symbolic zero. */
export type Ct = Val | null;

export interface Rule<P extends Prim> {
  /** Output shape and dtype; throws (naming the primitive) on invalid inputs. */
  shape(inputs: readonly Aval[], params: PrimParams[P]): Aval;
  /** Output tangent from primal inputs, their tangents (null = zero) and the primal output. */
  jvp(primals: readonly Val[], tangents: readonly Ct[], out: Val, params: PrimParams[P]): Ct;
  /** Input cotangents from the output cotangent; only inputs with needs[i] must be computed. */
  vjp(ct: Val, primals: readonly Val[], out: Val, params: PrimParams[P], needs: readonly boolean[]): Ct[];
  /** Derivative is identically zero: transformations pass the primitive through untraced. */
  readonly zeroDerivative?: true;
}

export type RuleTable = { readonly [P in Prim]: Rule<P> };

/** Sum of the non-zero terms; null when all are zero. */
export function sumCts(terms: readonly (() => Ct)[], add: (a: Val, b: Val) => Val): Ct {
  let acc: Ct = null;
  for (const t of terms) {
    const v = t();
    if (v !== null) acc = acc === null ? v : add(acc, v);
  }
  return acc;
}
