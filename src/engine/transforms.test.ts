/** recordTape and replayTape: what a tape holds, and that replaying it is f again (to any order). */
import { describe, expect, test } from 'vitest';
import { concrete, grad, hvp, recordTape, replayTape, relu, softplus, tensor, type Params, type Val } from './index.js';
import * as o from './ops.js';

const x = tensor([-1.5, 0.5, 2], [3]);
const w = tensor([0.3, -0.2, 0.7], [3]);
const f = (p: Params): Val => o.sum(o.mul(relu(o.mul(p.w!, x)), softplus(p.w!)));

describe('recordTape', () => {
  test('entries in application order; inputs by id, constants as values; zero-derivative primitives not recorded', () => {
    const { out, tape } = recordTape(f, { w });
    expect(concrete(out).item()).toBeCloseTo(concrete(f({ w })).item(), 15);
    expect(tape.leaves).toBe(1);
    const prims = tape.entries.map((e) => e.prim);
    expect(prims.slice(0, 2)).toEqual(['mul', 'mul']); // w·x, then relu's mul by its mask
    expect(prims).not.toContain('compare');
    expect(prims[prims.length - 1]).toBe('reduce_sum');
    expect(tape.entries[0]!.inputIds).toEqual([0, -1]);
    expect(tape.entries[0]!.inputs[1]).toBe(x);
    expect(tape.entries[1]!.inputIds).toEqual([1, -1]);
    expect(tape.outputs).toEqual([tape.leaves + tape.entries.length - 1]);
    for (const [i, e] of tape.entries.entries()) for (const id of e.inputIds) expect(id).toBeLessThan(tape.leaves + i);
  });

  test("only relu's mask is a declared kink mask (softplus's branches are not)", () => {
    const { tape } = recordTape(f, { w });
    const marked = tape.entries.flatMap((e, i) => (e.kinkMask === null ? [] : [[i, e.prim, e.kinkMask]]));
    expect(marked).toEqual([[1, 'mul', 1]]);
    expect(Array.from(concrete(tape.entries[1]!.inputs[1]!).data)).toEqual([0, 0, 1]);
    expect(tape.entries.some((e) => e.prim === 'select')).toBe(true);
  });

  test('replay at new inputs: constants (the relu mask) stay as recorded; derivatives go through it', () => {
    const { tape } = recordTape(f, { w });
    const g = (p: Params): Val => replayTape(tape, [p.w!])[0]!;
    expect(concrete(g({ w })).item()).toBe(concrete(f({ w })).item());
    expect(Array.from(concrete(grad(g)({ w }).w!).data)).toEqual(Array.from(concrete(grad(f)({ w }).w!).data));
    const v = { w: tensor([1, 2, 3], [3]) };
    expect(Array.from(concrete(hvp(g, { w }, v).hvp.w).data)).toEqual(Array.from(concrete(hvp(f, { w }, v).hvp.w).data));
    // w·x crosses 0 in the first element; the replay keeps the recorded mask [0, 0, 1]
    const w2 = { w: tensor([-0.3, -0.2, 0.7], [3]) };
    expect(concrete(g(w2)).item()).not.toBe(concrete(f(w2)).item());
    // a rewrite replaces an entry
    const doubled = replayTape(tape, [w], (e, args) => (e.prim === 'reduce_sum' ? o.mul(o.sum(args[0]!), 2) : undefined))[0]!;
    expect(concrete(doubled).item()).toBe(2 * concrete(f({ w })).item());
  });

  test('an output that does not depend on the inputs is returned as recorded', () => {
    const { tape } = recordTape(() => [x], { w });
    expect(tape.entries).toEqual([]);
    expect(replayTape(tape, [w])).toEqual([x]);
    expect(() => replayTape(tape, [])).toThrow(/1 leaves/);
  });
});
