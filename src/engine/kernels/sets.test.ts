/** The kernel sets: their names, the legacy name 'fast', and complete tables. */
import { describe, expect, it } from 'vitest';
import { PRIMS } from '../prims.js';
import { KERNEL_SETS, activeKernels, kernels, setKernels, withKernels } from './index.js';
import { jsKernels } from './js.js';
import { reference } from './reference.js';
import { wasmKernels } from './wasm.js';

describe('kernel sets', () => {
  it('are wasm (the default), js and reference, each a table of every primitive', () => {
    expect(KERNEL_SETS).toEqual(['wasm', 'js', 'reference']);
    expect(activeKernels()).toBe('wasm');
    expect(kernels).toBe(wasmKernels);
    for (const table of [wasmKernels, jsKernels, reference]) {
      expect(Object.keys(table).sort()).toEqual([...PRIMS].sort());
      for (const p of PRIMS) expect(typeof table[p]).toBe('function');
    }
  });

  it('select their tables, and restore the previous one after withKernels', () => {
    withKernels('js', () => {
      expect(activeKernels()).toBe('js');
      expect(kernels).toBe(jsKernels);
      withKernels('reference', () => expect(kernels).toBe(reference));
      expect(kernels).toBe(jsKernels);
    });
    expect(kernels).toBe(wasmKernels);
  });

  it("accept the former name 'fast' for wasm, and refuse unknown names", () => {
    withKernels('fast', () => {
      expect(activeKernels()).toBe('wasm');
      expect(kernels).toBe(wasmKernels);
    });
    expect(() => setKernels('simd' as 'wasm')).toThrow(/unknown kernel set "simd": expected wasm, js, reference/);
    expect(activeKernels()).toBe('wasm');
  });
});
