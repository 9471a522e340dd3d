import { TensorInvalidError } from '@swarmbee/core';
import {
  checkTensor,
  float16Bits,
  float16Tensor,
  float32Tensor,
  float32Values,
  int32Tensor,
  int32Values,
  int64Tensor,
  int64Values,
} from '@swarmbee/protocol';
import t from 'tap';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

t.test('typed arrays become tensors without a copy and come back as views', async (t) => {
  const f32 = new Float32Array([1.5, -2, 3.25, 4, 5, 6]);
  const tensor = float32Tensor(f32, [2, 3]);
  t.equal(tensor.data.buffer, f32.buffer, 'shares the array buffer');
  t.equal(tensor.data.byteLength, 24);
  const back = float32Values(tensor);
  t.equal(back.buffer, f32.buffer, 'aligned bytes are viewed, not copied');
  t.same(Array.from(back), [1.5, -2, 3.25, 4, 5, 6]);

  const i64 = new BigInt64Array([1n, -2n, 2n ** 40n]);
  t.same(Array.from(int64Values(int64Tensor(i64, [3]))), [1n, -2n, 2n ** 40n]);
  const i32 = new Int32Array([7, -8]);
  t.same(Array.from(int32Values(int32Tensor(i32, [1, 2]))), [7, -8]);
  const f16 = new Uint16Array([0x3c00, 0xc000]);
  t.same(Array.from(float16Bits(float16Tensor(f16, [2]))), [0x3c00, 0xc000]);
});

t.test('a subarray keeps its offset: only its own elements travel', async (t) => {
  const all = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]);
  const tensor = float32Tensor(all.subarray(2, 6), [4]);
  t.equal(tensor.data.byteOffset, 8);
  t.same(Array.from(float32Values(tensor)), [2, 3, 4, 5]);
});

t.test('misaligned bytes (also inside a Node Buffer) are copied before viewing', async (t) => {
  const bytes = Buffer.alloc(8 * 3 + 1);
  const source = new BigInt64Array([11n, 12n, 13n]);
  bytes.set(new Uint8Array(source.buffer), 1);
  const tensor = { dtype: 'int64' as const, dims: [3], data: bytes.subarray(1) };
  const values = int64Values(tensor);
  t.same(Array.from(values), [11n, 12n, 13n]);
  t.not(values.buffer, bytes.buffer, 'a fresh buffer');
  t.equal(values.byteOffset, 0);
});

t.test('BAD TENSOR - byte length does not match dims', async (t) => {
  t.equal(
    codeOf(() => float32Values({ dtype: 'float32', dims: [2, 2], data: new Uint8Array(15) })),
    TensorInvalidError.code,
  );
  t.equal(
    codeOf(() => checkTensor({ dtype: 'int64', dims: [3], data: new Uint8Array(16) })),
    TensorInvalidError.code,
  );
});

t.test('BAD TENSOR - dims do not match the array length', async (t) => {
  t.equal(
    codeOf(() => float32Tensor(new Float32Array(6), [2, 2])),
    TensorInvalidError.code,
  );
  t.equal(
    codeOf(() => float32Tensor(new Float32Array(6), [2, -3])),
    TensorInvalidError.code,
  );
  t.equal(
    codeOf(() => float32Tensor(new Float32Array(6), [2, 3.5])),
    TensorInvalidError.code,
  );
});

t.test('BAD TENSOR - asking for the wrong dtype', async (t) => {
  const tensor = int32Tensor(new Int32Array(4), [4]);
  t.equal(
    codeOf(() => float32Values(tensor)),
    TensorInvalidError.code,
  );
});
