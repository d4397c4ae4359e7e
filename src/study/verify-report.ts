/**
 * The swap verification of example pairs, as a report: the bracket against real swapped SGD steps
 * per ε (relative error of (θ_xy − θ_yx)/ε² against B, observed order of convergence, ReLU/max-pool
 * units that switch state along the steps), optionally with the activation pattern frozen, and the
 * decomposition of a real optimizer's two-step order effect. `lie-bracket verify` prints it.
 */
import { firstKPairs } from '../bracket/analysis.js';
import { optimizerSwap, type OptSwapResult } from '../bracket/optswap.js';
import { verifySwap, type SwapCheck } from '../bracket/verify.js';
import { batch } from '../data/dataset.js';
import type { Tensor } from '../engine/tensor.js';
import { UserError } from '../errors.js';
import { initOptimizerState, parseOptimizerConfig, type OptimizerConfig, type OptimizerState } from '../nn/optim.js';
import { resolveSource, sourceHeader, type SourceHeader, type SourceOptions } from './source.js';

export interface VerifyOptions extends SourceOptions {
  pairs?: [number, number][];
  first?: number;
  eps: number[];
  frozen?: boolean;
  optimizer?: string;
  probes?: number;
}

/** The optimizer decomposition of one pair, without the vectors. */
export interface OptimizerSummary {
  optimizer: string;
  lr: number;
  step: number;
  realNorm: number;
  realLogitNorm?: number;
  parts: Record<string, { norm: number; logitNorm?: number; description: string }>;
  share: OptSwapResult['share'];
  logitShare?: OptSwapResult['logitShare'];
  curvatureShare: OptSwapResult['curvatureShare'];
  remainderRelative: number;
  drained?: OptSwapResult['drained'];
}

export interface VerifyPairReport {
  x: number;
  y: number;
  bracketNorm: number;
  /** ReLU units and max-pool windows in the forward passes of x and y (0: smooth). */
  kinkUnits: number;
  /** Per ε, as `eps` at the top level. */
  relErrors: number[];
  /** Observed order between consecutive ε (one fewer than eps). */
  orders: number[];
  /** Per ε: the most units switched at any stepped point (0 in frozen mode, where nothing switches). */
  kinks: number[];
  checks: SwapCheck[];
  /** Whether the ε² law is confirmed: the last order within [0.8, 1.2], no invalidating switches. */
  lawHolds: boolean;
  verdict: string;
  optimizer?: OptimizerSummary;
}

/**
 * The report; its top-level `eps`, `relErrors`, `orders`, `kinks`, `model` and `pair` are those of
 * the first pair, so `lie-bracket verify --json > RUN/verify.json` feeds the run report's figure.
 */
export interface VerifyReport extends SourceHeader {
  frozen: boolean;
  eps: number[];
  pair: [number, number];
  relErrors: number[];
  orders: number[];
  kinks: number[];
  pairs: VerifyPairReport[];
  seconds: number;
}

function verdictOf(checks: readonly SwapCheck[], frozen: boolean, kinkUnits: number): { lawHolds: boolean; verdict: string } {
  const last = checks[checks.length - 1]!;
  const invalid = checks.filter((c) => !c.expansionValid);
  const order = last.order;
  const orderOk = order !== null && order > 0.8 && order < 1.2;
  const smooth = frozen ? 'the net with its activation pattern frozen' : kinkUnits === 0 ? 'this smooth net' : 'this net';
  if (invalid.length > 0) {
    const eps = invalid.map((c) => c.eps).join(', ');
    return {
      lawHolds: false,
      verdict: `ReLU/max-pool units switch state along the steps at ε = ${eps}: the ε² expansion is not valid there${orderOk && last.expansionValid ? `; at ε = ${last.eps} it holds (order ${order.toFixed(2)})` : ''} (try --frozen, or smaller ε)`,
    };
  }
  if (checks.length < 2) return { lawHolds: false, verdict: 'give at least two ε to measure the order of convergence' };
  if (orderOk)
    return { lawHolds: true, verdict: `the ε² law holds for ${smooth}: the error falls like ε (order ${order.toFixed(2)} at the smallest ε)` };
  if (last.roundoffFloor > 0.1 * last.relError)
    return { lawHolds: false, verdict: `rounding-limited at ε = ${last.eps}: use larger ε or --dtype float64` };
  return { lawHolds: false, verdict: `the error does not fall like ε (order ${order === null ? '—' : order.toFixed(2)} at the smallest ε)` };
}

function optimizerSummary(r: OptSwapResult): OptimizerSummary {
  const parts: OptimizerSummary['parts'] = {};
  for (const p of r.parts) {
    parts[p.name] = { norm: p.norm, description: p.description };
    if (p.logitNorm !== undefined) parts[p.name]!.logitNorm = p.logitNorm;
  }
  const s: OptimizerSummary = {
    optimizer: r.optimizer,
    lr: r.lr,
    step: r.step,
    realNorm: r.real.norm,
    parts,
    share: r.share,
    curvatureShare: r.curvatureShare,
    remainderRelative: r.remainderRelative,
  };
  if (r.real.logitNorm !== undefined) s.realLogitNorm = r.real.logitNorm;
  if (r.logitShare) s.logitShare = r.logitShare;
  if (r.drained) s.drained = r.drained;
  return s;
}

export function runVerify(f: VerifyOptions, onPair: () => void = () => {}): VerifyReport {
  const t0 = performance.now();
  if (f.pairs !== undefined && f.first !== undefined) throw new UserError('give either --pairs or --first, not both');
  const src = resolveSource(f);
  const pairs = f.first !== undefined ? firstKPairs(f.first) : (f.pairs ?? [[0, 1]]);
  const ex = (i: number) => batch(src.data, [i], src.dtype);
  for (const [x, y] of pairs) {
    ex(x);
    ex(y); // every index is checked before the long work starts
  }
  let opt: { config: OptimizerConfig; state: OptimizerState } | undefined;
  if (f.optimizer !== undefined) {
    if (f.optimizer === 'run') {
      if (!src.optimizer) throw new UserError('--optimizer run needs --run (the optimizer and its state at --step come from the run)');
      opt = src.optimizer;
    } else {
      let raw: unknown;
      try {
        raw = JSON.parse(f.optimizer);
      } catch {
        throw new UserError(`--optimizer: expected "run" or a JSON object like '{"name":"momentum","lr":0.01}', got ${JSON.stringify(f.optimizer)}`);
      }
      const config = parseOptimizerConfig(raw, '--optimizer');
      opt = { config, state: initOptimizerState(config, src.params) };
    }
  } else if (f.probes !== undefined) throw new UserError('--probes applies to --optimizer (logit effects of the decomposition)');
  const nProbes = Math.min(f.probes ?? 8, src.probes.length);
  const probes =
    opt && nProbes > 0
      ? batch(
          src.probes,
          Array.from({ length: nProbes }, (_, i) => i),
          src.dtype,
        ).x
      : undefined;

  const same = (a: Tensor, b: Tensor) => a.size === b.size && a.data.every((v, i) => v === b.data[i]);
  const identical = pairs.map(([x, y]) => x === y || (same(ex(x).x, ex(y).x) && same(ex(x).t, ex(y).t)));
  if (identical.every((v) => v)) {
    const [x, y] = pairs[0]!;
    throw new UserError(`pair ${x},${y}: identical examples: nothing to verify (their bracket is exactly 0); choose two different examples`);
  }

  const reports = pairs.map(([x, y], i): VerifyPairReport => {
    const ax = ex(x);
    const ay = ex(y);
    const r = verifySwap(src.model, src.loss, src.params, ax, ay, { eps: f.eps, frozen: f.frozen === true, state: src.forward() });
    const v =
      r.checks.length > 0
        ? verdictOf(r.checks, r.frozen, r.kinkUnits)
        : {
            lawHolds: false,
            verdict: identical[i] ? 'identical examples: nothing to verify' : 'the bracket is exactly 0 (a gradient vanishes): nothing to verify',
          };
    const p: VerifyPairReport = {
      x,
      y,
      bracketNorm: r.bracketNorm,
      kinkUnits: r.kinkUnits,
      relErrors: r.checks.map((c) => c.relError),
      orders: r.checks.slice(1).map((c) => c.order!),
      kinks: r.checks.map((c) => (r.frozen ? 0 : c.switched)),
      checks: r.checks,
      ...v,
    };
    if (opt && r.checks.length > 0) {
      p.optimizer = optimizerSummary(
        optimizerSwap({
          model: src.model,
          loss: src.loss,
          params: src.params,
          x: ax,
          y: ay,
          optimizer: opt.config,
          state: opt.state,
          probes,
          forward: src.forward(),
        }),
      );
    }
    onPair();
    return p;
  });
  // the top-level figures are those of the first pair with something to verify
  const first = reports.find((p) => p.checks.length > 0) ?? reports[0]!;
  return {
    ...sourceHeader(src, f),
    frozen: f.frozen === true,
    eps: [...f.eps],
    pair: [first.x, first.y],
    relErrors: first.relErrors,
    orders: first.orders,
    kinks: first.kinks,
    pairs: reports,
    seconds: (performance.now() - t0) / 1000,
  };
}
