/** Element types. Every tensor has one, and no primitive mixes them: use `cast`. */
export type DType = 'float32' | 'float64';

export type Buf = Float32Array | Float64Array;

export const DTYPES: readonly DType[] = ['float32', 'float64'];

export function isDType(s: string): s is DType {
  return s === 'float32' || s === 'float64';
}

export function allocBuf(dtype: DType, size: number): Buf {
  return dtype === 'float32' ? new Float32Array(size) : new Float64Array(size);
}

export function dtypeOf(buf: Buf): DType {
  return buf instanceof Float32Array ? 'float32' : 'float64';
}
