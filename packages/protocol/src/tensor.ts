/**
 * Typed arrays in and out of the wire form {@link TensorData} (raw little-endian bytes plus
 * dtype and dims). Going out never copies on a little-endian host; coming in views the
 * received bytes in place when they are aligned for the element type and copies only when
 * they are not (msgpack puts a `bin` payload wherever the encoder happens to be, so a
 * 4- or 8-byte boundary is luck, and a misaligned typed-array view is a RangeError).
 */
import {
  DTYPE_BYTES,
  elementCount,
  type TensorData,
  type TensorDtype,
  TensorInvalidError,
} from '@swarmbee/core';

/** Every SwarmBee target (x86-64, arm64, armv7) is little-endian; big-endian hosts pay a byte swap. */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The typed array that holds each dtype's elements; float16 travels as its raw 16-bit patterns. */
export interface TensorArrays {
  float32: Float32Array;
  float16: Uint16Array;
  int32: Int32Array;
  int64: BigInt64Array;
}

type ArrayConstructorOf<D extends TensorDtype> = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TensorArrays[D];
  new (length: number): TensorArrays[D];
};

const ARRAY_TYPES: { readonly [D in TensorDtype]: ArrayConstructorOf<D> } = {
  float32: Float32Array,
  float16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
};

/** Throws unless `dims` are non-negative safe integers whose product is a safe integer. */
export function checkDims(dims: readonly number[]): number {
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new TensorInvalidError(
        `tensor dims must be non-negative integers, got [${dims.join(', ')}]`,
      );
    }
  }
  const count = elementCount(dims);
  if (!Number.isSafeInteger(count)) {
    throw new TensorInvalidError(`tensor dims [${dims.join(', ')}] hold too many elements`);
  }
  return count;
}

/** Throws a TensorInvalidError unless the bytes hold exactly product(dims) elements of dtype. */
export function checkTensor(tensor: TensorData, dtype?: TensorDtype): void {
  if (dtype !== undefined && tensor.dtype !== dtype) {
    throw new TensorInvalidError(`expected a ${dtype} tensor, got ${tensor.dtype}`);
  }
  const width = DTYPE_BYTES[tensor.dtype];
  if (width === undefined)
    throw new TensorInvalidError(`unknown tensor dtype ${String(tensor.dtype)}`);
  const expected = checkDims(tensor.dims) * width;
  if (tensor.data.byteLength !== expected) {
    throw new TensorInvalidError(
      `${tensor.dtype} tensor [${tensor.dims.join(', ')}] needs ${expected} bytes, got ${tensor.data.byteLength}`,
    );
  }
}

/** Reverses the byte order of every `width`-byte element, into a new array. */
function swapBytes(bytes: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  for (let i = 0; i < bytes.byteLength; i += width) {
    for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j]!;
  }
  return out;
}

function fromArray<D extends TensorDtype>(
  dtype: D,
  values: TensorArrays[D],
  dims: readonly number[],
): TensorData {
  const count = checkDims(dims);
  if (values.length !== count) {
    throw new TensorInvalidError(
      `dims [${dims.join(', ')}] hold ${count} elements but the array has ${values.length}`,
    );
  }
  let data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (!HOST_IS_LITTLE_ENDIAN) data = swapBytes(data, DTYPE_BYTES[dtype]);
  return { dtype, dims: [...dims], data };
}

function toArray<D extends TensorDtype>(dtype: D, tensor: TensorData): TensorArrays[D] {
  checkTensor(tensor, dtype);
  const width = DTYPE_BYTES[dtype];
  const kind = ARRAY_TYPES[dtype];
  let { data } = tensor;
  if (!HOST_IS_LITTLE_ENDIAN) data = swapBytes(data, width);
  // new Uint8Array(view) copies into a fresh, aligned buffer; Buffer#slice would not copy.
  else if (data.byteOffset % width !== 0) data = new Uint8Array(data);
  return new kind(data.buffer, data.byteOffset, data.byteLength / width);
}

/** Wraps float32 values as a tensor without copying them. */
export function float32Tensor(values: Float32Array, dims: readonly number[]): TensorData {
  return fromArray('float32', values, dims);
}

/** Wraps float16 bit patterns as a tensor without copying them. */
export function float16Tensor(bits: Uint16Array, dims: readonly number[]): TensorData {
  return fromArray('float16', bits, dims);
}

/** Wraps int32 values as a tensor without copying them. */
export function int32Tensor(values: Int32Array, dims: readonly number[]): TensorData {
  return fromArray('int32', values, dims);
}

/** Wraps int64 values (token ids, positions) as a tensor without copying them. */
export function int64Tensor(values: BigInt64Array, dims: readonly number[]): TensorData {
  return fromArray('int64', values, dims);
}

/**
 * The tensor's elements as a Float32Array: a view of the received bytes when they are
 * 4-byte aligned, otherwise a copy. Writing to a view writes into the frame it came from.
 */
export function float32Values(tensor: TensorData): Float32Array {
  return toArray('float32', tensor);
}

/** The tensor's float16 bit patterns as a Uint16Array (a view when 2-byte aligned). */
export function float16Bits(tensor: TensorData): Uint16Array {
  return toArray('float16', tensor);
}

/** The tensor's elements as an Int32Array (a view when 4-byte aligned). */
export function int32Values(tensor: TensorData): Int32Array {
  return toArray('int32', tensor);
}

/** The tensor's elements as a BigInt64Array (a view when 8-byte aligned). */
export function int64Values(tensor: TensorData): BigInt64Array {
  return toArray('int64', tensor);
}
