/**
 * Control plane: coordinator ↔ worker. Registration with device facts, content-addressed
 * shard transfer (offer → need → chunks → done → stored), stage loading, profiling,
 * stats and lifecycle. Liveness is WebSocket ping/pong, so there is no heartbeat message.
 */
import { z } from 'zod';
import {
  byteCountSchema,
  bytesSchema,
  countSchema,
  errorMessageSchema,
  fileNameSchema,
  idSchema,
  nameSchema,
  sha256Schema,
  webSocketUrlSchema,
} from './common.js';
import { MAX_GROUP_SIZE } from './data.js';
import { trainingSchemas } from './training.js';

/** An execution provider's name as onnxruntime-node spells it: lower-case letters, digits, `_`. */
const executionProviderSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,31}$/, 'an execution provider name');

/** Most files one shard may list. */
export const MAX_SHARD_FILES = 256;
/** Most cached shard ids a worker may report when it registers. */
export const MAX_CACHED_SHARDS = 4096;

/** Facts about a worker's machine, reported once at registration. */
export const deviceFactsSchema = z.object({
  /** `process.arch`, e.g. arm64. */
  arch: z.string().max(64),
  /** `process.platform`, e.g. linux. */
  platform: z.string().max(64),
  /** Logical CPUs. */
  cpus: countSchema,
  /** Total memory, bytes. */
  memoryBytes: byteCountSchema,
  /** Free memory when registering, bytes. */
  freeMemoryBytes: byteCountSchema,
  /** onnxruntime-node version. */
  ortVersion: z.string().max(64),
  /** The onnxruntime execution provider the worker runs its stages on, e.g. `cpu`, `cuda`. */
  executionProvider: executionProviderSchema,
  /** `process.version`. */
  nodeVersion: z.string().max(64),
});
export type DeviceFacts = z.infer<typeof deviceFactsSchema>;

/** Worker → coordinator: join the cluster. */
export const registerSchema = z.object({
  type: z.literal('register'),
  name: nameSchema,
  device: deviceFactsSchema,
  /** The worker's data-plane listen URL, where the previous stage (or coordinator) connects. */
  dataUrl: webSocketUrlSchema,
  /** Shards already on the worker's disk, so the coordinator need not send them again. */
  cachedShards: z.array(sha256Schema).max(MAX_CACHED_SHARDS),
  /**
   * A data owner (`swarmbee worker --train-data`): it holds the whole model (this hash; with
   * `quantizedFrom`, a quantized copy of that model) and its own training data, trains in
   * federated rounds, and takes no inference stage.
   */
  dataOwner: z
    .object({ modelHash: sha256Schema, quantizedFrom: sha256Schema.optional() })
    .optional(),
});

/** Coordinator → worker: accepted, under this id. */
export const registeredSchema = z.object({
  type: z.literal('registered'),
  workerId: idSchema,
});

const shardFileSchema = z.object({
  name: fileNameSchema,
  bytes: byteCountSchema,
  sha256: sha256Schema,
});
export type ShardFile = z.infer<typeof shardFileSchema>;

/** Coordinator → worker: this shard is about to be deployed to you. */
export const shardOfferSchema = z
  .object({
    type: z.literal('shard.offer'),
    /** sha256 of the shard content: the cache key. */
    shardId: sha256Schema,
    /** Total bytes over all files. */
    bytes: byteCountSchema,
    files: z.array(shardFileSchema).min(1).max(MAX_SHARD_FILES),
    /**
     * The KV-cache budget the stage will load with, bytes: a worker whose free memory
     * cannot hold `bytes` plus this refuses the offer (MEMORY_SHORT) before receiving.
     */
    kvBudgetBytes: byteCountSchema.optional(),
  })
  .superRefine((offer, ctx) => {
    const names = new Set(offer.files.map((file) => file.name));
    if (names.size !== offer.files.length) {
      ctx.addIssue({ code: 'custom', path: ['files'], message: 'file names must be unique' });
    }
    const total = offer.files.reduce((sum, file) => sum + file.bytes, 0);
    if (total !== offer.bytes) {
      ctx.addIssue({
        code: 'custom',
        path: ['bytes'],
        message: `files add up to ${total} bytes, not ${offer.bytes}`,
      });
    }
  });

/** Worker → coordinator: whether the worker needs the offered shard sent. */
export const shardNeedSchema = z.object({
  type: z.literal('shard.need'),
  shardId: sha256Schema,
  /** True when the worker already holds the shard: no chunks follow. */
  have: z.boolean(),
  /**
   * Bytes at the start of each named file the worker already holds, chunk by chunk
   * verified, from an interrupted transfer: send each file from there. Files not named
   * are sent whole.
   */
  verified: z
    .array(z.object({ file: fileNameSchema, bytes: byteCountSchema }))
    .max(MAX_SHARD_FILES)
    .optional(),
});

/**
 * Coordinator → worker: `data` belongs in `file` at byte `offset`. Chunks of a file come
 * in order, each right after the last; `sha256` is the digest of the file's bytes from 0
 * through this chunk (so each byte is hashed once on either side, and the last chunk's is
 * the file's own), checked before the chunk is written (a mismatch is refused with
 * SHARD_CHUNK_CORRUPT).
 */
export const shardChunkSchema = z.object({
  type: z.literal('shard.chunk'),
  shardId: sha256Schema,
  file: fileNameSchema,
  offset: byteCountSchema,
  data: bytesSchema,
  sha256: sha256Schema,
});

/** Coordinator → worker: every chunk has been sent. */
export const shardDoneSchema = z.object({
  type: z.literal('shard.done'),
  shardId: sha256Schema,
});

/** Worker → coordinator: the shard is on disk and every file matched its sha256. */
export const shardStoredSchema = z.object({
  type: z.literal('shard.stored'),
  shardId: sha256Schema,
});

/** A tensor-parallel group as its members are told it (see `group/description.ts`). */
export const tensorGroupSchema = z.object({
  id: nameSchema,
  /** The pipeline stage the group runs. */
  stage: countSchema,
  /** Each member's data-plane URL, by rank; rank 0 leads. */
  members: z.array(webSocketUrlSchema).min(2).max(MAX_GROUP_SIZE).readonly(),
  algorithm: z.enum(['star', 'ring']),
});

/**
 * Coordinator → worker: run layers [layerStart, layerEnd) of the pipeline as stage `stage`
 * — with `tensor`, as member `rank` of the tensor-parallel group that runs it (the shard is
 * that member's slice shard). The leader (rank 0) takes the stage's input and sends its
 * output to `nextUrl`; the other members get their input from the leader and send nothing.
 */
export const stageLoadSchema = z
  .object({
    type: z.literal('stage.load'),
    stage: countSchema,
    layerStart: countSchema,
    layerEnd: countSchema,
    shardId: sha256Schema,
    /**
     * Where this stage sends its output: the next stage's data URL, required before the
     * last stage. On the last stage it may name the coordinator's data URL for `tokens`
     * frames; how tokens return when it is absent is the coordinator's choice.
     */
    nextUrl: webSocketUrlSchema.optional(),
    isFirst: z.boolean(),
    isLast: z.boolean(),
    tensor: z
      .object({
        group: tensorGroupSchema,
        rank: z
          .int()
          .min(0)
          .max(MAX_GROUP_SIZE - 1),
      })
      .optional(),
    options: z.object({
      /** onnxruntime intra-op threads; default: the engine's choice. */
      intraOpThreads: z.int().min(1).max(1024).optional(),
      /** Most sequences the stage keeps KV cache for at once. */
      maxSequences: z.int().min(1).optional(),
      /** KV-cache budget of this stage, bytes. */
      kvBudgetBytes: byteCountSchema.optional(),
    }),
  })
  .superRefine((load, ctx) => {
    if (load.layerEnd <= load.layerStart) {
      ctx.addIssue({ code: 'custom', path: ['layerEnd'], message: 'must be above layerStart' });
    }
    if (load.isFirst !== (load.stage === 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['isFirst'],
        message: 'must be true exactly for stage 0',
      });
    }
    const { tensor } = load;
    if (tensor && tensor.rank >= tensor.group.members.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['tensor', 'rank'],
        message: `must be below the group's ${tensor.group.members.length} members`,
      });
    }
    if (tensor && tensor.group.stage !== load.stage) {
      ctx.addIssue({
        code: 'custom',
        path: ['tensor', 'group', 'stage'],
        message: 'must be `stage`',
      });
    }
    // A member other than the leader sends nothing on.
    const leads = !tensor || tensor.rank === 0;
    if (leads && !load.isLast && load.nextUrl === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['nextUrl'],
        message: 'is required before the last stage',
      });
    }
  });

/** What a loaded stage admits; the coordinator queues requests beyond it instead of sending them. */
export const stageLimitsSchema = z.object({
  /** Most sequences the stage keeps a KV cache for. */
  maxSequences: z.int().min(1),
  /** The stage's KV-cache budget, bytes. */
  kvBudgetBytes: byteCountSchema,
  /** KV-cache bytes one sequence takes per position on this stage (its layers that grow, keys and values). */
  kvBytesPerPosition: byteCountSchema,
  /** KV-cache bytes one sequence takes whatever its length (sliding-window rings). Default 0. */
  kvBytesPerRow: byteCountSchema.optional(),
});
export type StageLimitsMessage = z.infer<typeof stageLimitsSchema>;

/** Worker → coordinator: the stage's sessions are loaded and it accepts forward frames. */
export const stageReadySchema = z.object({
  type: z.literal('stage.ready'),
  stage: countSchema,
  /** Time to load the shard and create its sessions, milliseconds. */
  loadMs: z.number().min(0),
  /** The engine's admission limits (absent from workers that predate them). */
  limits: stageLimitsSchema.optional(),
});

/** Coordinator → worker: measure something (compute speed, a link) and report. */
export const profileRequestSchema = z.object({
  type: z.literal('profile.request'),
  requestId: idSchema,
  /** What to measure, e.g. `compute` or `link`. */
  kind: nameSchema,
  params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
});

/** Worker → coordinator: the measurement. Free-form; the profiler owns its shape. */
export const profileResultSchema = z.object({
  type: z.literal('profile.result'),
  requestId: idSchema,
  result: z.record(z.string(), z.unknown()),
});

/** Coordinator → worker: send your counters. */
export const statsRequestSchema = z.object({
  type: z.literal('stats.request'),
  requestId: idSchema,
});

/** Worker → coordinator: counters and gauges by name. */
export const statsSchema = z.object({
  type: z.literal('stats'),
  requestId: idSchema,
  stats: z.record(z.string(), z.number()),
});

/** Coordinator → worker: finish in-flight work, accept no more. */
export const drainSchema = z.object({ type: z.literal('drain') });

/** Coordinator → worker: unload and disconnect. */
export const stopSchema = z.object({ type: z.literal('stop') });

export const controlSchemas = {
  register: registerSchema,
  registered: registeredSchema,
  'shard.offer': shardOfferSchema,
  'shard.need': shardNeedSchema,
  'shard.chunk': shardChunkSchema,
  'shard.done': shardDoneSchema,
  'shard.stored': shardStoredSchema,
  'stage.load': stageLoadSchema,
  'stage.ready': stageReadySchema,
  'profile.request': profileRequestSchema,
  'profile.result': profileResultSchema,
  'stats.request': statsRequestSchema,
  stats: statsSchema,
  drain: drainSchema,
  stop: stopSchema,
  ...trainingSchemas,
  error: errorMessageSchema,
} as const;

export type RegisterMessage = z.infer<typeof registerSchema>;
export type RegisteredMessage = z.infer<typeof registeredSchema>;
export type ShardOfferMessage = z.infer<typeof shardOfferSchema>;
export type ShardNeedMessage = z.infer<typeof shardNeedSchema>;
export type ShardChunkMessage = z.infer<typeof shardChunkSchema>;
export type ShardDoneMessage = z.infer<typeof shardDoneSchema>;
export type ShardStoredMessage = z.infer<typeof shardStoredSchema>;
export type StageLoadMessage = z.infer<typeof stageLoadSchema>;
export type StageReadyMessage = z.infer<typeof stageReadySchema>;
export type ProfileRequestMessage = z.infer<typeof profileRequestSchema>;
export type ProfileResultMessage = z.infer<typeof profileResultSchema>;
export type StatsRequestMessage = z.infer<typeof statsRequestSchema>;
export type StatsMessage = z.infer<typeof statsSchema>;
export type DrainMessage = z.infer<typeof drainSchema>;
export type StopMessage = z.infer<typeof stopSchema>;
