/** Element types that cross stage boundaries and the wire. */
export type TensorDtype = 'float32' | 'float16' | 'int32' | 'int64';

export const DTYPE_BYTES: Readonly<Record<TensorDtype, number>> = {
  float32: 4,
  float16: 2,
  int32: 4,
  int64: 8,
};

/** A tensor as raw little-endian bytes plus its type and shape: the wire form. */
export interface TensorData {
  dtype: TensorDtype;
  dims: number[];
  data: Uint8Array;
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}
