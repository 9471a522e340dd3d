/**
 * Data plane: stage i → stage i+1 directly (never through the coordinator), the
 * coordinator → stage 0, and the last stage → the coordinator. A `forward` frame is one
 * micro-batch; the last stage samples and answers with `tokens`, so logits never travel.
 */
import type { SamplingParams } from '@swarmbee/core';
import { z } from 'zod';
import { bytesSchema, countSchema, errorMessageSchema, idSchema, tensorSchema } from './common.js';

/** Most rows (sequences) one micro-batch may carry. */
export const MAX_BATCH_ROWS = 4096;

/** Largest adapter index a row may name (the shards refuse any beyond those they serve). */
export const MAX_ROW_ADAPTER = 1024;

/** Sampling parameters, checked as `validateSampling` in `@swarmbee/core` checks them. */
export const samplingSchema = z.object({
  /** 0 means greedy argmax. */
  temperature: z.number().min(0),
  /** 0 disables. */
  topK: z.int().min(0),
  /** 1 disables. */
  topP: z.number().gt(0).max(1),
  seed: z.int().min(0).optional(),
}) satisfies z.ZodType<SamplingParams>;

/** One sequence's slice of a micro-batch. */
export const forwardRowSchema = z.object({
  seqId: idSchema,
  /** Position (0-based) of the row's first token in its sequence. */
  start: countSchema,
  /** Tokens this row carries: the prompt chunk in prefill, 1 in decode. */
  count: z.int().min(1),
  /**
   * Present on rows the last stage samples (the final prompt chunk, every decode step);
   * rows without it only fill the KV cache, e.g. the earlier chunks of a long prompt.
   */
  sampling: samplingSchema.optional(),
  /** Return the sampled token's log-probability. */
  logprobs: z.boolean().optional(),
  /** The served LoRA adapter the row runs with (n-th of the shards'); absent: the base. */
  adapter: z.int().min(1).max(MAX_ROW_ADAPTER).optional(),
});

/**
 * One micro-batch moving down the pipeline. Rows shorter than the longest are padded at
 * the end: a row's tokens are `[0, count)` along the second dimension. Stage 0 receives
 * `tokens` (int64 [rows, maxCount]); every later stage receives `hidden`
 * (float32 [rows, maxCount, dim]). Exactly one of the two is present.
 */
export const forwardSchema = z
  .object({
    type: z.literal('forward'),
    /** The scheduler's id for the micro-batch; echoed in `tokens` and `error`. */
    batchId: countSchema,
    rows: z.array(forwardRowSchema).min(1).max(MAX_BATCH_ROWS),
    tokens: tensorSchema.optional(),
    hidden: tensorSchema.optional(),
    /** Sender's clock when the batch left the coordinator, ms since the epoch (for latency). */
    sentAt: z.number().min(0).optional(),
  })
  .superRefine((forward, ctx) => {
    const { rows, tokens, hidden } = forward;
    if ((tokens === undefined) === (hidden === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of tokens and hidden' });
      return;
    }
    let maxCount = 0;
    for (const row of rows) maxCount = Math.max(maxCount, row.count);
    if (tokens !== undefined) {
      const [batch, length, ...rest] = tokens.dims;
      if (
        tokens.dtype !== 'int64' ||
        batch !== rows.length ||
        length !== maxCount ||
        rest.length > 0
      ) {
        ctx.addIssue({
          code: 'custom',
          path: ['tokens'],
          message: `must be int64 [${rows.length}, ${maxCount}], got ${tokens.dtype} [${tokens.dims.join(', ')}]`,
        });
      }
    }
    if (hidden !== undefined) {
      const [batch, length, dim, ...rest] = hidden.dims;
      if (
        hidden.dtype !== 'float32' ||
        batch !== rows.length ||
        length !== maxCount ||
        dim === undefined ||
        dim < 1 ||
        rest.length > 0
      ) {
        ctx.addIssue({
          code: 'custom',
          path: ['hidden'],
          message: `must be float32 [${rows.length}, ${maxCount}, dim], got ${hidden.dtype} [${hidden.dims.join(', ')}]`,
        });
      }
    }
  });

/** The last stage's sampled token for one row. */
export const sampledTokenSchema = z.object({
  seqId: idSchema,
  tokenId: countSchema,
  /** Natural-log probability of `tokenId`, when the row asked for logprobs. */
  logprob: z.number().optional(),
});

/** Last stage → coordinator: the next token of every sampled row of a micro-batch. */
export const tokensSchema = z.object({
  type: z.literal('tokens'),
  batchId: countSchema,
  rows: z.array(sampledTokenSchema).max(MAX_BATCH_ROWS),
  /** The `sentAt` of the forward frame this answers, echoed so the coordinator can time the pipeline. */
  sentAt: z.number().min(0).optional(),
});

/** Free these sequences' KV cache; each stage forwards it to the next. */
export const releaseSchema = z.object({
  type: z.literal('release'),
  seqIds: z.array(idSchema).max(MAX_BATCH_ROWS),
});

/**
 * Link measurement over the data plane itself: the receiver answers every probe that
 * asks for it with `probe.reply` on the same connection. Round-trip time comes from
 * empty probes, bandwidth from a burst of full ones.
 */
export const probeSchema = z.object({
  type: z.literal('probe'),
  probeId: idSchema,
  payload: bytesSchema,
  reply: z.boolean(),
});

export const probeReplySchema = z.object({
  type: z.literal('probe.reply'),
  probeId: idSchema,
  /** Payload bytes the probe carried. */
  bytes: countSchema,
});

/** Most members a tensor-parallel group may have. */
export const MAX_GROUP_SIZE = 64;

/**
 * A tensor-parallel group member's first message on a link it dialed to another member:
 * which group it belongs to and its rank, so the member it dialed can file the link.
 */
export const groupJoinSchema = z.object({
  type: z.literal('group.join'),
  group: idSchema,
  rank: z
    .int()
    .min(0)
    .max(MAX_GROUP_SIZE - 1),
  /** Members in the group, as the sender knows it; the receiver refuses another count. */
  size: z.int().min(2).max(MAX_GROUP_SIZE),
});

/**
 * One part of an all-reduce between tensor-parallel members: `values` (float32, one dim)
 * are elements [offset, offset + n) of the vector, which has `length` elements in all. `seq`
 * counts the group's sums (every member counts them alike), `round` is the algorithm's
 * step within one sum, `from` the sender's rank: the receiver refuses a part whose fields
 * are not the ones it expects next, so a late or mismatched part is never summed.
 */
export const allReducePartSchema = z
  .object({
    type: z.literal('allreduce.part'),
    group: idSchema,
    seq: countSchema,
    round: countSchema,
    from: z
      .int()
      .min(0)
      .max(MAX_GROUP_SIZE - 1),
    offset: countSchema,
    length: countSchema,
    values: tensorSchema,
  })
  .superRefine((part, ctx) => {
    const { values, offset, length } = part;
    const [count, ...rest] = values.dims;
    if (values.dtype !== 'float32' || count === undefined || rest.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['values'],
        message: `must be float32 [n], got ${values.dtype} [${values.dims.join(', ')}]`,
      });
      return;
    }
    if (offset + count > length)
      ctx.addIssue({
        code: 'custom',
        path: ['values'],
        message: `elements [${offset}, ${offset + count}) run past the vector's ${length}`,
      });
  });

/**
 * Fine-tuning on the cluster, stage to stage: a training stage's output for micro-batch `id`
 * of session `session`, sent to the next stage (`train.hidden`), or the gradient at a stage's
 * input, sent back to the previous one (`train.grad`); `values` float32 [B·T·dim], one dim.
 */
const trainHandOff = <T extends 'train.hidden' | 'train.grad'>(type: T) =>
  z
    .object({ type: z.literal(type), session: idSchema, id: countSchema, values: tensorSchema })
    .refine((m) => m.values.dtype === 'float32' && m.values.dims.length === 1, {
      message: 'must be float32 [n]',
      path: ['values'],
    });
export const trainHiddenSchema = trainHandOff('train.hidden');
export const trainGradSchema = trainHandOff('train.grad');

export const dataSchemas = {
  forward: forwardSchema,
  tokens: tokensSchema,
  release: releaseSchema,
  probe: probeSchema,
  'probe.reply': probeReplySchema,
  'group.join': groupJoinSchema,
  'allreduce.part': allReducePartSchema,
  'train.hidden': trainHiddenSchema,
  'train.grad': trainGradSchema,
  error: errorMessageSchema,
} as const;

export type ForwardRow = z.infer<typeof forwardRowSchema>;
export type ForwardMessage = z.infer<typeof forwardSchema>;
export type SampledToken = z.infer<typeof sampledTokenSchema>;
export type TokensMessage = z.infer<typeof tokensSchema>;
export type ReleaseMessage = z.infer<typeof releaseSchema>;
export type ProbeMessage = z.infer<typeof probeSchema>;
export type TrainHiddenMessage = z.infer<typeof trainHiddenSchema>;
export type TrainGradMessage = z.infer<typeof trainGradSchema>;
export type ProbeReplyMessage = z.infer<typeof probeReplySchema>;
export type GroupJoinMessage = z.infer<typeof groupJoinSchema>;
export type AllReducePartMessage = z.infer<typeof allReducePartSchema>;
