/**
 * Schema pieces every plane shares: names, ids, hashes, URLs, tensors and the `error`
 * message. Schemas strip unknown fields instead of rejecting them, so a peer may add an
 * optional field without a version bump; anything that changes meaning bumps
 * {@link PROTOCOL_VERSION}.
 */
import { DTYPE_BYTES, elementCount, type TensorData } from '@swarmbee/core';
import { z } from 'zod';

/**
 * Version of the wire format. Every frame carries it as `v`, and a frame from another
 * version is refused with SWARMBEE_ERR_PROTOCOL_VERSION: peers must match exactly.
 * 2: every `shard.chunk` carries its sha256 and is written in order, so a transfer
 * resumes from its last verified chunk (`shard.need.verified`).
 * 3: a frame that carries tensors (`forward`) is its msgpack envelope followed by the
 * tensors' raw bytes, 8-byte aligned (`tensor-frame.ts`), viewed in place on arrival.
 * 4: a `shard.chunk`'s sha256 covers its file from byte 0 through the chunk, not the
 * chunk alone.
 * 5: tensor-parallel groups on the data plane: `group.join` and `allreduce.part`, whose
 * `values` is a third raw tensor section.
 * 6: `stage.load` may carry `tensor` (the group and rank of a tensor-parallel member).
 * 7: fine-tuning on the cluster: `train.load`, `train.ready`, `train.call`, `train.result`;
 * federated rounds: `register.dataOwner`, `fed.round`, `fed.update`; stage-to-stage training
 * hand-offs on the data plane: `train.hidden`, `train.grad`.
 */
export const PROTOCOL_VERSION = 7;

/** Longest name, id or kind string a message may carry, in UTF-16 code units. */
export const MAX_NAME_LENGTH = 128;

/** A human-chosen name (worker, stage): printable, 1 to {@link MAX_NAME_LENGTH} characters. */
export const nameSchema = z
  .string()
  .min(1)
  .max(MAX_NAME_LENGTH)
  .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters');

/** An opaque id (sequence, request, worker): 1 to {@link MAX_NAME_LENGTH} characters. */
export const idSchema = z.string().min(1).max(MAX_NAME_LENGTH);

/** Lower-case hex sha256: how shards and files are named by content. */
export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lower-case hex sha256');

/**
 * A file name inside a shard. Flat and plain on purpose: workers write these to disk, so
 * separators and `..` are refused here rather than trusted to every receiver.
 */
export const fileNameSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9._-]+$/, 'must be a plain file name')
  .refine((name) => name !== '.' && name !== '..', 'must be a plain file name');

function isWebSocketUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'ws:' || protocol === 'wss:';
  } catch {
    return false;
  }
}

/** A `ws://` or `wss://` URL (a data-plane endpoint). */
export const webSocketUrlSchema = z
  .string()
  .max(2048)
  .refine(isWebSocketUrl, 'must be a ws:// or wss:// URL');

export const countSchema = z.int().min(0);

/** Raw bytes (msgpack `bin`): any Uint8Array, Node Buffers included. */
export const bytesSchema = z.custom<Uint8Array>(
  (value) => value instanceof Uint8Array,
  'expected bytes',
);

/** Whole bytes or milliseconds: non-negative and exact in a float64. */
export const byteCountSchema = z.int().min(0);

/**
 * A tensor as it travels: dtype, dims and raw little-endian bytes. Receipt checks that
 * the byte length is exactly product(dims) × dtype size, so no receiver reads past a
 * tensor or misreads its shape.
 */
export const tensorSchema = z
  .object({
    dtype: z.enum(['float32', 'float16', 'int32', 'int64']),
    dims: z.array(countSchema).max(8),
    data: bytesSchema,
  })
  .superRefine((tensor, ctx) => {
    const count = elementCount(tensor.dims);
    const expected = count * DTYPE_BYTES[tensor.dtype];
    if (!Number.isSafeInteger(count) || tensor.data.byteLength !== expected) {
      ctx.addIssue({
        code: 'custom',
        path: ['data'],
        message: `${tensor.dtype} [${tensor.dims.join(', ')}] needs ${expected} bytes, got ${tensor.data.byteLength}`,
      });
    }
  }) satisfies z.ZodType<TensorData>;

/**
 * A coded failure, on either plane: the reply to a bad frame (sent just before the
 * connection closes), to a request that failed, or to a batch a stage could not run.
 */
export const errorMessageSchema = z.object({
  type: z.literal('error'),
  /** Stable `SWARMBEE_ERR_*` code; see `@swarmbee/core` errors. */
  code: z.string().min(1).max(MAX_NAME_LENGTH),
  message: z.string().max(4096),
  /** Whether repeating the same operation later can succeed. */
  retryable: z.boolean(),
  /** Pipeline stage that raised it, when one did. */
  stage: countSchema.optional(),
  /** The request this answers (control plane). */
  requestId: idSchema.optional(),
  /** The micro-batch this concerns (data plane). */
  batchId: countSchema.optional(),
  /** MEMORY_SHORT: what the stage needs and the most a plan may give the worker, bytes. */
  memory: z
    .object({ worker: nameSchema, neededBytes: byteCountSchema, capacityBytes: byteCountSchema })
    .optional(),
});
export type ErrorMessage = z.infer<typeof errorMessageSchema>;
