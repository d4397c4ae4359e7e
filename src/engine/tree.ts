/**
 * Trees of values: a value, an array of trees, or a plain object of trees (a model's named
 * parameters are a flat object). Leaves are visited in a fixed order: arrays by index, objects by
 * key insertion order.
 */
import { Val } from './tensor.js';

export type Tree<L = Val> = L | readonly Tree<L>[] | { readonly [k: string]: Tree<L> };

/** Parameters by name, PyTorch state-dict style. */
export type Params<L = Val> = Record<string, L>;

export function treeLeaves<L>(t: Tree<L>, isLeaf: (x: unknown) => x is L = isVal as never): L[] {
  const out: L[] = [];
  const walk = (x: Tree<L>): void => {
    if (isLeaf(x)) out.push(x);
    else if (Array.isArray(x)) (x as Tree<L>[]).forEach(walk);
    else if (x !== null && typeof x === 'object') Object.values(x as Record<string, Tree<L>>).forEach(walk);
    else throw new Error(`tree: unexpected leaf ${String(x)}`);
  };
  walk(t);
  return out;
}

/** Same structure, each leaf replaced by f(leaf, index) in leaf order. */
export function treeMap<A, B>(t: Tree<A>, f: (leaf: A, i: number) => B, isLeaf: (x: unknown) => x is A = isVal as never): Tree<B> {
  let i = 0;
  const walk = (x: Tree<A>): Tree<B> => {
    if (isLeaf(x)) return f(x, i++);
    if (Array.isArray(x)) return (x as Tree<A>[]).map(walk);
    if (x !== null && typeof x === 'object') {
      const o: Record<string, Tree<B>> = {};
      for (const [k, v] of Object.entries(x as Record<string, Tree<A>>)) o[k] = walk(v);
      return o;
    }
    throw new Error(`tree: unexpected leaf ${String(x)}`);
  };
  return walk(t);
}

/** Rebuild `like`'s structure from a flat list of leaves. */
export function treeUnflatten<L>(like: Tree<unknown>, leaves: readonly L[]): Tree<L> {
  return treeMap(like as Tree<Val>, (_, i) => leaves[i] as L);
}

export function isVal(x: unknown): x is Val {
  return x instanceof Val;
}

/** Map over the values of a parameter object, keeping its keys. */
export function mapParams<A, B>(p: Params<A>, f: (v: A, name: string) => B): Params<B> {
  const out: Params<B> = {};
  for (const [k, v] of Object.entries(p)) out[k] = f(v, k);
  return out;
}
