/**
 * Structural checks of the data plane's hot messages (`forward`, `tokens`, `allreduce.part`), each a few
 * comparisons per field instead of a schema parse: a decode step crosses every hop with one
 * of each, and the zod parse that rebuilt them was a measurable share of a hop. They accept
 * exactly what `forwardSchema` and `tokensSchema` accept (test/tensor-frame.test.ts holds them
 * to it on the fuzzer's messages) and, like the schemas, return a copy without unknown fields.
 */
import { DTYPE_BYTES, elementCount, MessageSchemaError, type TensorData } from '@swarmbee/core';
import { MAX_NAME_LENGTH } from './common.js';
import {
  type AllReducePartMessage,
  type ForwardMessage,
  type ForwardRow,
  MAX_BATCH_ROWS,
  MAX_GROUP_SIZE,
  MAX_ROW_ADAPTER,
  type TokensMessage,
} from './data.js';

/** Most dims a tensor may have (as `tensorSchema`). */
const MAX_TENSOR_DIMS = 8;

type Fields = Record<string, unknown>;

function fail(type: string, path: string, message: string): never {
  throw new MessageSchemaError(`${type} message does not match its schema: ${path}: ${message}`);
}

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= MAX_NAME_LENGTH;
}

function optionalTime(type: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    fail(type, 'sentAt', 'must be a number >= 0');
  return value;
}

/** A tensor's dtype and dims (its bytes are checked where they are framed). */
export function checkTensorShape(
  type: string,
  path: string,
  value: unknown,
): Omit<TensorData, 'data'> & { byteLength: number } {
  if (!isObject(value)) fail(type, path, 'must be a tensor');
  const { dtype, dims } = value;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype))
    fail(type, `${path}.dtype`, 'must be float32, float16, int32 or int64');
  if (!Array.isArray(dims) || dims.length > MAX_TENSOR_DIMS || !dims.every(isCount))
    fail(type, `${path}.dims`, `must be at most ${MAX_TENSOR_DIMS} non-negative integers`);
  const count = elementCount(dims as number[]);
  const byteLength = count * DTYPE_BYTES[dtype as TensorData['dtype']];
  if (!Number.isSafeInteger(byteLength))
    fail(type, `${path}.dims`, `[${dims.join(', ')}] hold too many elements`);
  return { dtype: dtype as TensorData['dtype'], dims: dims as number[], byteLength };
}

function checkTensor(type: string, path: string, value: unknown): TensorData {
  const shape = checkTensorShape(type, path, value);
  const { data } = value as Fields;
  if (!(data instanceof Uint8Array)) fail(type, `${path}.data`, 'expected bytes');
  if (data.byteLength !== shape.byteLength)
    fail(
      type,
      `${path}.data`,
      `${shape.dtype} [${shape.dims.join(', ')}] needs ${shape.byteLength} bytes, got ${data.byteLength}`,
    );
  return { dtype: shape.dtype, dims: shape.dims, data };
}

function checkSampling(at: string, value: unknown): NonNullable<ForwardRow['sampling']> {
  if (!isObject(value)) fail('forward', at, 'must be an object');
  const { temperature, topK, topP, seed } = value;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0)
    fail('forward', `${at}.temperature`, 'must be a number >= 0');
  if (!isCount(topK)) fail('forward', `${at}.topK`, 'must be an integer >= 0');
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1))
    fail('forward', `${at}.topP`, 'must be in (0, 1]');
  if (seed !== undefined && !isCount(seed))
    fail('forward', `${at}.seed`, 'must be an integer >= 0');
  return seed === undefined ? { temperature, topK, topP } : { temperature, topK, topP, seed };
}

function checkRow(value: unknown, r: number): ForwardRow {
  const at = `rows.${r}`;
  if (!isObject(value)) fail('forward', at, 'must be an object');
  const { seqId, start, count, sampling, logprobs, adapter } = value;
  if (!isId(seqId)) fail('forward', `${at}.seqId`, `must be 1-${MAX_NAME_LENGTH} characters`);
  if (!isCount(start)) fail('forward', `${at}.start`, 'must be an integer >= 0');
  if (!isCount(count) || count < 1) fail('forward', `${at}.count`, 'must be an integer >= 1');
  const row: ForwardRow = { seqId, start, count };
  if (sampling !== undefined) row.sampling = checkSampling(`${at}.sampling`, sampling);
  if (logprobs !== undefined) {
    if (typeof logprobs !== 'boolean') fail('forward', `${at}.logprobs`, 'must be a boolean');
    row.logprobs = logprobs;
  }
  if (adapter !== undefined) {
    if (!isCount(adapter) || adapter < 1 || adapter > MAX_ROW_ADAPTER)
      fail('forward', `${at}.adapter`, `must be an integer from 1 to ${MAX_ROW_ADAPTER}`);
    row.adapter = adapter;
  }
  return row;
}

function checkRows(type: string, value: unknown): unknown[] {
  if (!Array.isArray(value) || value.length > MAX_BATCH_ROWS)
    fail(type, 'rows', `must be an array of at most ${MAX_BATCH_ROWS} rows`);
  return value;
}

/** A `forward` message as `forwardSchema` checks it; tensors' bytes must be attached. */
export function checkForward(value: Fields): ForwardMessage {
  const { batchId, tokens, hidden } = value;
  if (!isCount(batchId)) fail('forward', 'batchId', 'must be an integer >= 0');
  const rawRows = checkRows('forward', value.rows);
  if (rawRows.length < 1) fail('forward', 'rows', 'must hold at least one row');
  const rows = rawRows.map(checkRow);
  const forward: ForwardMessage = { type: 'forward', batchId, rows };
  if ((tokens === undefined) === (hidden === undefined))
    fail('forward', '(message)', 'needs exactly one of tokens and hidden');
  let maxCount = 0;
  for (const row of rows) maxCount = Math.max(maxCount, row.count);
  if (tokens !== undefined) {
    const tensor = checkTensor('forward', 'tokens', tokens);
    const [batch, length, ...rest] = tensor.dims;
    if (tensor.dtype !== 'int64' || batch !== rows.length || length !== maxCount || rest.length)
      fail(
        'forward',
        'tokens',
        `must be int64 [${rows.length}, ${maxCount}], got ${tensor.dtype} [${tensor.dims.join(', ')}]`,
      );
    forward.tokens = tensor;
  } else {
    const tensor = checkTensor('forward', 'hidden', hidden);
    const [batch, length, dim, ...rest] = tensor.dims;
    if (
      tensor.dtype !== 'float32' ||
      batch !== rows.length ||
      length !== maxCount ||
      dim === undefined ||
      dim < 1 ||
      rest.length
    )
      fail(
        'forward',
        'hidden',
        `must be float32 [${rows.length}, ${maxCount}, dim], got ${tensor.dtype} [${tensor.dims.join(', ')}]`,
      );
    forward.hidden = tensor;
  }
  const sentAt = optionalTime('forward', value.sentAt);
  if (sentAt !== undefined) forward.sentAt = sentAt;
  return forward;
}

/** A `tokens` message as `tokensSchema` checks it. */
export function checkTokens(value: Fields): TokensMessage {
  const { batchId } = value;
  if (!isCount(batchId)) fail('tokens', 'batchId', 'must be an integer >= 0');
  const rows = checkRows('tokens', value.rows).map((row, r) => {
    if (!isObject(row)) fail('tokens', `rows.${r}`, 'must be an object');
    const { seqId, tokenId, logprob } = row;
    if (!isId(seqId)) fail('tokens', `rows.${r}.seqId`, `must be 1-${MAX_NAME_LENGTH} characters`);
    if (!isCount(tokenId)) fail('tokens', `rows.${r}.tokenId`, 'must be an integer >= 0');
    if (logprob === undefined) return { seqId, tokenId };
    if (typeof logprob !== 'number' || !Number.isFinite(logprob))
      fail('tokens', `rows.${r}.logprob`, 'must be a number');
    return { seqId, tokenId, logprob };
  });
  const tokens: TokensMessage = { type: 'tokens', batchId, rows };
  const sentAt = optionalTime('tokens', value.sentAt);
  if (sentAt !== undefined) tokens.sentAt = sentAt;
  return tokens;
}

/** An `allreduce.part` message as `allReducePartSchema` checks it; its values must be attached. */
export function checkAllReducePart(value: Fields): AllReducePartMessage {
  const { group, seq, round, from, offset, length } = value;
  const type = 'allreduce.part';
  if (!isId(group)) fail(type, 'group', `must be 1-${MAX_NAME_LENGTH} characters`);
  if (!isCount(seq)) fail(type, 'seq', 'must be an integer >= 0');
  if (!isCount(round)) fail(type, 'round', 'must be an integer >= 0');
  if (!isCount(from) || from >= MAX_GROUP_SIZE)
    fail(type, 'from', `must be an integer in [0, ${MAX_GROUP_SIZE - 1}]`);
  if (!isCount(offset)) fail(type, 'offset', 'must be an integer >= 0');
  if (!isCount(length)) fail(type, 'length', 'must be an integer >= 0');
  const values = checkTensor(type, 'values', value.values);
  const [count, ...rest] = values.dims;
  if (values.dtype !== 'float32' || count === undefined || rest.length > 0)
    fail(type, 'values', `must be float32 [n], got ${values.dtype} [${values.dims.join(', ')}]`);
  if (offset + count > length)
    fail(type, 'values', `elements [${offset}, ${offset + count}) run past the vector's ${length}`);
  return { type, group, seq, round, from, offset, length, values };
}

/** The data plane's messages checked structurally, by type. */
export const STRUCTURAL_CHECKS: Readonly<Record<string, (value: Fields) => unknown>> = {
  forward: checkForward,
  tokens: checkTokens,
  'allreduce.part': checkAllReducePart,
};
