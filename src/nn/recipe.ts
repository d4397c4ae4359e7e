/**
 * How to build a model or a loss again in another engine instance (a worker thread computing half
 * of a bracket, src/bracket/parallel.ts): plain data that survives postMessage. Recipes belong to
 * the exact object their constructor returned (a WeakMap, not a property), so an object derived
 * from a model by spreading it (`{ ...model, apply: other }`, as frozenModel does) has none, and
 * is never rebuilt as the model it came from.
 */
import type { OutputGroup } from './losses.js';
import type { ModelSpec } from './spec.js';

export type ModelRecipe =
  | { readonly kind: 'preset'; readonly name: string }
  | { readonly kind: 'spec'; readonly spec: ModelSpec; readonly name: string }
  | { readonly kind: 'onnx'; readonly bytes: Uint8Array; readonly source: string; readonly name: string };

export type LossRecipe =
  { readonly name: 'bce' | 'ce' } | { readonly name: 'grouped'; readonly groups: readonly OutputGroup[]; readonly numOutputs: number };

const modelRecipes = new WeakMap<object, ModelRecipe>();
const lossRecipes = new WeakMap<object, LossRecipe>();

/**
 * Record how `model` was built; returns it, frozen: a model changed after the fact (its `apply`
 * replaced, say) would no longer be what its recipe rebuilds, and a parallel bracket's halves
 * would come from two different models. A changed model is a new object (`{ ...model, apply }`),
 * which has no recipe.
 */
export function withModelRecipe<M extends object>(model: M, recipe: ModelRecipe): M {
  modelRecipes.set(Object.freeze(model), recipe);
  return model;
}

/** How `model` was built, where its constructor said. */
export function modelRecipe(model: object): ModelRecipe | undefined {
  return modelRecipes.get(model);
}

/** Record how `loss` was built; returns it, frozen (as withModelRecipe). */
export function withLossRecipe<L extends object>(loss: L, recipe: LossRecipe): L {
  lossRecipes.set(Object.freeze(loss), recipe);
  return loss;
}

export function lossRecipe(loss: object): LossRecipe | undefined {
  return lossRecipes.get(loss);
}
