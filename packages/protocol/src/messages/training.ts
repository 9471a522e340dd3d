/**
 * Control plane, fine-tuning on the cluster: the coordinator drives a worker's training
 * stage — LoRA adapters on the layers of the inference shard it holds — call by call.
 *
 * - `train.load` (coordinator → worker): the stage's training graphs (their frozen weights
 *   are read from the worker's loaded shard), the adapters' starting values and the
 *   optimizer's settings; answered by `train.ready` with the stage's facts.
 * - `train.call`: one method of the stage (forward, backward, the optimizer's two-phase
 *   update, state, close …); answered by `train.result`.
 *
 * - `fed.round` (coordinator → data owner): a federated round — the global adapter, to
 *   train on the owner's own data; answered by `fed.update` with the trained adapter.
 *
 * Each is answered instead by an `error` carrying the same `requestId`. Arrays travel as
 * one-dimensional tensors (raw little-endian bytes); their shapes are the stage's to check.
 */
import type { TensorData } from '@swarmbee/core';
import { z } from 'zod';
import {
  float32Tensor,
  float32Values,
  int32Tensor,
  int32Values,
  int64Tensor,
  int64Values,
} from '../tensor.js';
import {
  bytesSchema,
  countSchema,
  idSchema,
  nameSchema,
  tensorSchema,
  webSocketUrlSchema,
} from './common.js';

export type WireArrayDtype = 'float32' | 'int32' | 'int64';

/** A flat typed array as it travels: a one-dimensional tensor (see `tensorSchema`). */
export const wireArraySchema = tensorSchema.refine((t) => t.dims.length === 1, {
  message: 'must be one-dimensional',
  path: ['dims'],
});
export type WireArray = TensorData;

type ArrayOf<D extends WireArrayDtype> = D extends 'float32'
  ? Float32Array
  : D extends 'int32'
    ? Int32Array
    : BigInt64Array;

/** `array` as it travels: the tensor wrapping of tensor.ts, one dim, not copied. */
export function toWireArray(array: Float32Array | Int32Array | BigInt64Array): WireArray {
  const dims = [array.length];
  if (array instanceof Float32Array) return float32Tensor(array, dims);
  if (array instanceof Int32Array) return int32Tensor(array, dims);
  return int64Tensor(array, dims);
}

/**
 * The array a wire array holds, as `dtype` — copied into a buffer of its own (free to move
 * to a thread). A different dtype is refused with `what` named.
 */
export function fromWireArray<D extends WireArrayDtype>(
  array: WireArray,
  dtype: D,
  what: string,
): ArrayOf<D> {
  if (array.dtype !== dtype) throw new TypeError(`${what} must be ${dtype}, not ${array.dtype}`);
  const values =
    dtype === 'float32'
      ? float32Values(array)
      : dtype === 'int32'
        ? int32Values(array)
        : int64Values(array);
  return values.slice() as ArrayOf<D>;
}

/** Any number, NaN and ±Infinity included: a diverged loss must reach the driver to be refused there. */
const anyNumberSchema = z.custom<number>((value) => typeof value === 'number', 'expected a number');

const paramSchema = z.object({
  name: nameSchema,
  dims: z.tuple([z.int().min(1), z.int().min(1)]),
});

const activationsSchema = z.enum(['recompute', 'stash']);

/** Coordinator → worker: train adapters on the loaded stage's layers, as session `session`. */
export const trainLoadSchema = z.object({
  type: z.literal('train.load'),
  requestId: idSchema,
  session: idSchema,
  /** The pipeline stage the worker serves, and its layers: must be the loaded stage's. */
  stage: countSchema,
  /**
   * The previous / next stage's worker (its data URL) when it trains on a worker too: this
   * stage then takes its input from it (`train.hidden`) and sends its input's gradient back
   * (`train.grad`) directly, and sends its output on, instead of through the coordinator.
   */
  prevUrl: webSocketUrlSchema.optional(),
  nextUrl: webSocketUrlSchema.optional(),
  layerStart: countSchema,
  layerEnd: countSchema,
  graphs: z.object({
    forward: bytesSchema,
    backward: bytesSchema.optional(),
    params: z.array(paramSchema).max(4096),
    inputGradient: z.boolean(),
    saved: z
      .array(
        z.object({
          name: nameSchema,
          dims: z.array(z.union([countSchema, nameSchema])).max(8),
        }),
      )
      .max(65536),
  }),
  activations: activationsSchema,
  /** Every adapter tensor of the stage, float32, by name. */
  adapters: z.record(nameSchema, wireArraySchema),
  options: z.object({
    /** onnxruntime intra-op threads of the training sessions; default: the worker's. */
    intraOpThreads: z.int().min(1).max(1024).optional(),
    /** AdamW's decoupled weight decay, a multiple of the learning rate; default 0. */
    weightDecay: z.number().min(0).optional(),
  }),
});

/** Worker → coordinator: the training stage is loaded; its facts. */
export const trainReadySchema = z.object({
  type: z.literal('train.ready'),
  requestId: idSchema,
  session: idSchema,
  info: z.object({
    layerStart: countSchema,
    layerEnd: countSchema,
    isFirst: z.boolean(),
    isLast: z.boolean(),
    dim: z.int().min(1),
    vocabSize: z.int().min(1),
    maxSeqLen: z.int().min(1),
    params: z.array(paramSchema).max(4096),
    inputGradient: z.boolean(),
    activations: activationsSchema,
  }),
});

const stageStateSchema = z.object({
  step: countSchema,
  tensors: z.record(
    nameSchema,
    z.object({ value: wireArraySchema, expAvg: wireArraySchema, expAvgSq: wireArraySchema }),
  ),
});
export type WireTrainingState = z.infer<typeof stageStateSchema>;

/** One method call on a training stage (see `TrainingStage` in @swarmbee/engine). */
export const trainingCallSchema = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('forward'),
    batch: z.object({
      id: countSchema,
      lengths: wireArraySchema,
      width: z.int().min(1),
      tokens: wireArraySchema.optional(),
      hidden: wireArraySchema.optional(),
      targets: wireArraySchema.optional(),
      lossScale: z.number().optional(),
    }),
    evaluate: z.boolean().optional(),
  }),
  z.object({ op: z.literal('backward'), id: countSchema, gradOut: wireArraySchema.optional() }),
  z.object({ op: z.literal('gradientSquaredNorm') }),
  z.object({ op: z.literal('gradients') }),
  z.object({
    op: z.literal('prepareUpdate'),
    learningRate: z.number().min(0),
    gradientScale: z.number().min(0),
  }),
  z.object({ op: z.literal('commitUpdate') }),
  z.object({ op: z.literal('discard') }),
  z.object({ op: z.literal('state') }),
  z.object({ op: z.literal('loadState'), state: stageStateSchema }),
  z.object({ op: z.literal('stats') }),
  z.object({ op: z.literal('close') }),
]);
export type TrainingCall = z.infer<typeof trainingCallSchema>;

export const trainCallSchema = z.object({
  type: z.literal('train.call'),
  requestId: idSchema,
  session: idSchema,
  call: trainingCallSchema,
});

/** Worker → coordinator: a call's result; which fields are set depends on the call. */
export const trainResultSchema = z.object({
  type: z.literal('train.result'),
  requestId: idSchema,
  session: idSchema,
  result: z.object({
    /** forward (not the last stage): the hidden state for the next stage. */
    hidden: wireArraySchema.optional(),
    /** forward evaluating / backward on the last stage: the micro-batch's loss. */
    loss: anyNumberSchema.optional(),
    /** backward: the gradient at the stage's input. */
    gradIn: wireArraySchema.optional(),
    /** gradientSquaredNorm. */
    norm: anyNumberSchema.optional(),
    /** gradients, by adapter tensor. */
    gradients: z.record(nameSchema, wireArraySchema).optional(),
    state: stageStateSchema.optional(),
    stats: z.record(nameSchema, anyNumberSchema).optional(),
  }),
});
export type TrainingResult = z.infer<typeof trainResultSchema>['result'];

const loraSpecSchema = z.object({
  rank: z.int().min(1).max(4096),
  alpha: z.number().positive(),
  targets: z.array(nameSchema).min(1).max(16),
  layers: z.array(countSchema).min(1).max(4096),
});

/**
 * Coordinator → data owner: train the round's adapter on your own data for `steps` steps and
 * answer with the result (`fed.update`). The adapter is the global one at the rank the
 * owner's settings chose (its first `spec.rank` rows of A and columns of B).
 */
export const fedRoundSchema = z.object({
  type: z.literal('fed.round'),
  requestId: idSchema,
  round: countSchema,
  /** The base model the adapter is for: the owner's model must be this one. */
  modelHash: z.string().regex(/^[0-9a-f]{64}$/),
  spec: loraSpecSchema,
  tensors: z.record(nameSchema, wireArraySchema),
  settings: z.object({
    steps: z.int().min(1).max(1_000_000),
    /** The round's rate (0 in a warm-up's first round). */
    learningRate: z.number().min(0),
    microBatchSize: z.int().min(1).max(65536),
    accumulation: z.int().min(1).max(65536),
    seqLen: z
      .int()
      .min(1)
      .max(1 << 24),
    truncate: z.boolean(),
    seed: z.int().min(0),
    weightDecay: z.number().min(0),
    maxGradNorm: z.number().min(0),
    /** FedProx's μ (0: FedAvg's plain local training). */
    proximalMu: z.number().min(0),
    /** Train with this many of the least influential layers pruned (0: none). */
    pruneLayers: countSchema,
    activations: activationsSchema,
  }),
});

/** Data owner → coordinator: the adapter after its local steps, and what they bought. */
export const fedUpdateSchema = z.object({
  type: z.literal('fed.update'),
  requestId: idSchema,
  round: countSchema,
  /** Training records the owner holds (FedAvg weighs its update by them). */
  examples: z.int().min(1),
  /** Real tokens trained on this round (not `tokens`: that name is a tensor field's). */
  trainedTokens: countSchema,
  /** Mean loss on the owner's first records before and after the round's steps, nats. */
  lossBefore: anyNumberSchema,
  lossAfter: anyNumberSchema,
  /** The owner's time for the round, ms. */
  trainMs: z.number().min(0),
  tensors: z.record(nameSchema, wireArraySchema),
});

export const trainingSchemas = {
  'train.load': trainLoadSchema,
  'train.ready': trainReadySchema,
  'train.call': trainCallSchema,
  'train.result': trainResultSchema,
  'fed.round': fedRoundSchema,
  'fed.update': fedUpdateSchema,
} as const;

export type TrainLoadMessage = z.infer<typeof trainLoadSchema>;
export type TrainReadyMessage = z.infer<typeof trainReadySchema>;
export type TrainCallMessage = z.infer<typeof trainCallSchema>;
export type TrainResultMessage = z.infer<typeof trainResultSchema>;
export type FedRoundMessage = z.infer<typeof fedRoundSchema>;
export type FedUpdateMessage = z.infer<typeof fedUpdateSchema>;
