/**
 * The active kernel table. `fast` is the reference table with fast paths for matmul and the conv
 * family; `reference` is the executable specification that tests compare it against.
 */
import { linalgFast } from './fast.js';
import { reference } from './reference.js';
import type { KernelTable } from './types.js';

export type KernelSet = 'fast' | 'reference';

const TABLES: Record<KernelSet, KernelTable> = {
  reference,
  fast: { ...reference, ...linalgFast },
};

let active: KernelSet = 'fast';
export let kernels: KernelTable = TABLES.fast;

export function setKernels(set: KernelSet): void {
  active = set;
  kernels = TABLES[set];
}

export function activeKernels(): KernelSet {
  return active;
}

/** Run `f` with a kernel set, restoring the previous one afterwards. */
export function withKernels<T>(set: KernelSet, f: () => T): T {
  const prev = active;
  setKernels(set);
  try {
    return f();
  } finally {
    setKernels(prev);
  }
}

export type { Kernel, KernelTable, KIn } from './types.js';
