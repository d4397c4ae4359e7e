/**
 * Derivative checks against independent oracles, for tests and for users adding primitives
 * (in the spirit of JAX's check_grads): forward mode against central finite differences, the
 * adjoint identity ⟨u, J v⟩ = ⟨Jᵀu, v⟩ between forward and reverse mode, and second order
 * (forward-over-reverse HVP) against finite differences of the gradient and against
 * reverse-over-reverse. Work in float64.
 */
import { Rng } from './random.js';
import { Tensor, type Val } from './tensor.js';
import { add, mul, sum } from './ops.js';
import { concrete, grad, hvp, jvp, vjp } from './transforms.js';

export interface GradCheckReport {
  /** ‖J v − FD‖ / max(‖J v‖, ‖FD‖) (0 when both vanish). */
  jvpVsFd: number;
  /** |⟨u, J v⟩ − ⟨Jᵀu, v⟩| / (|⟨u, J v⟩| + ε). */
  adjoint: number;
  /** ‖H v − FD of ∇⟨u, f⟩‖ / max(norms), forward-over-reverse. */
  hvpVsFd: number;
  /** ‖H v (forward-over-reverse) − H v (reverse-over-reverse)‖ / max(norms). */
  hvpFwdVsRev: number;
}

const flat = (ts: readonly Val[]) => ts.map((t) => concrete(t).data);

function dot(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): number {
  let s = 0;
  a.forEach((x, k) => {
    const y = b[k]!;
    for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  });
  return s;
}

function relDiff(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[], atol: number): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  a.forEach((x, k) => {
    const y = b[k]!;
    for (let i = 0; i < x.length; i++) {
      d += (x[i]! - y[i]!) ** 2;
      na += x[i]! ** 2;
      nb += y[i]! ** 2;
    }
  });
  const scale = Math.max(Math.sqrt(na), Math.sqrt(nb));
  return Math.sqrt(d) <= atol ? 0 : Math.sqrt(d) / Math.max(scale, atol);
}

function axpy(xs: readonly Tensor[], h: number, vs: readonly Tensor[]): Tensor[] {
  return xs.map((x, k) => {
    const out = x.data.slice();
    const v = vs[k]!.data;
    for (let i = 0; i < out.length; i++) out[i]! += h * v[i]!;
    return new Tensor(out, x.shape);
  });
}

export function checkGrads(f: (xs: Val[]) => Val, xs: Tensor[], opts: { seed?: number; h?: number; atol?: number } = {}): GradCheckReport {
  const rng = new Rng(opts.seed ?? 1);
  const h = opts.h ?? 1e-5;
  const atol = opts.atol ?? 1e-9;
  const vs = xs.map((x) => rng.normalTensor(x.shape, x.dtype));
  const [y, jv] = jvp(f, xs, vs);
  const u = rng.normalTensor(y.shape, y.dtype);

  const fp = concrete(f(axpy(xs, h, vs)));
  const fm = concrete(f(axpy(xs, -h, vs)));
  const fd = fp.data.map((p, i) => (p - fm.data[i]!) / (2 * h));
  const jvpVsFd = relDiff([concrete(jv).data], [fd], atol);

  const [, pull] = vjp(f, xs);
  const jtu = pull(u);
  const lhs = dot([u.data], [concrete(jv).data]);
  const rhs = dot(
    flat(jtu),
    vs.map((v) => v.data),
  );
  const adjoint = Math.abs(lhs - rhs) / (Math.abs(lhs) + Math.abs(rhs) + atol);

  const s = (zs: Val[]) => sum(mul(f(zs), u));
  const fwd = hvp(s, xs, vs).hvp;
  const gp = grad(s)(axpy(xs, h, vs));
  const gm = grad(s)(axpy(xs, -h, vs));
  const hfd = flat(gp).map((g, k) => g.map((v, i) => (v - flat(gm)[k]![i]!) / (2 * h)));
  const hvpVsFd = relDiff(flat(fwd), hfd, atol);

  // reverse-over-reverse: ∇ₓ ⟨∇s(x), v⟩
  const rev = grad((zs: Val[]) => {
    const g = grad(s)(zs);
    return g.map((gi, k) => sum(mul(gi, vs[k]!))).reduce((a, b) => add(a, b));
  })(xs);
  const hvpFwdVsRev = relDiff(flat(fwd), flat(rev), atol);
  return { jvpVsFd, adjoint, hvpVsFd, hvpFwdVsRev };
}
