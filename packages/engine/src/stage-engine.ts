/**
 * The public interface of one pipeline stage's inference. `OrtStage` runs it
 * in the calling thread; `ThreadedStage` runs the same behind a worker thread
 * so a forward pass never blocks the event loop that answers sockets.
 */
import type { LlamaConfig, SamplingParams } from '@swarmbee/core';

/** One sequence's slice of a micro-batch. */
export interface BatchRow {
  seqId: string;
  /** Position of the row's first token. Earlier KV is kept; anything at or after `start` is replaced. */
  start: number;
  /** Tokens this row carries (<= the batch width). */
  count: number;
  /** Last stage: sample the next token after this row's last token. Absent: no token (a prefill chunk). */
  sampling?: SamplingParams;
  /** Last stage: also return the sampled token's log-probability. */
  logprobs?: boolean;
  /** The served adapter the row runs with: n ≥ 1 is the shard's n-th; absent or 0, the base. */
  adapter?: number;
}

/**
 * A micro-batch: B rows, each padded to width T = max(count). Token ids go to
 * the first stage as [B, T]; hidden states to the others as [B, T, dim].
 */
export interface StageBatch {
  rows: BatchRow[];
  tokens?: BigInt64Array;
  hidden?: Float32Array;
  /** Last stage: return logits too — for the last position of each row, or for all T. */
  logits?: 'last' | 'all';
  /**
   * The whole buffers under `tokens` and `hidden` are the caller's to give away (a received
   * frame no one reads again): a threaded stage moves them to its thread instead of copying
   * the arrays out. Default false.
   */
  buffersMovable?: boolean;
}

export interface StageTiming {
  /** Wall time of the onnxruntime run. */
  forwardMs: number;
  /**
   * Wall time spent on the KV cache: making room, feeding the past, storing the new rows
   * (and, where `feedsMs` is absent, assembling the other inputs too).
   */
  kvMs: number;
  /** Wall time spent building the other inputs (ids or hidden state, positions, bias). */
  feedsMs?: number;
  /** Wall time of sampling the next tokens (last stage). */
  sampleMs?: number;
  /** Wall time of the whole forward call inside the stage's thread. */
  stageMs?: number;
}

export type StageOutput =
  | { kind: 'hidden'; hidden: Float32Array; width: number; timing: StageTiming }
  | {
      kind: 'tokens';
      /** Per row: the sampled token, or -1 for rows without sampling. */
      tokens: Int32Array;
      logprobs?: Float32Array;
      /** [B, 1 or T, vocab] when asked for. */
      logits?: Float32Array;
      timing: StageTiming;
    };

export interface StageInfo {
  layerStart: number;
  layerEnd: number;
  isFirst: boolean;
  isLast: boolean;
  dim: number;
  vocabSize: number;
  maxSeqLen: number;
  /** What the stage's KV cache admits; a scheduler in front of it queues what would exceed it. */
  limits: StageLimits;
  /** LoRA adapters the stage serves unmerged (rows pick one by `adapter`); 0 for none. */
  adapters: number;
}

/** What a stage of layers [layerStart, layerEnd) of a model with `config` says of itself. */
export function stageInfo(
  range: { layerStart: number; layerEnd: number; adapters?: number },
  config: Pick<LlamaConfig, 'nLayers' | 'dim' | 'vocabSize' | 'maxSeqLen'>,
  limits: StageLimits,
): StageInfo {
  return {
    layerStart: range.layerStart,
    layerEnd: range.layerEnd,
    isFirst: range.layerStart === 0,
    isLast: range.layerEnd === config.nLayers,
    dim: config.dim,
    vocabSize: config.vocabSize,
    maxSeqLen: config.maxSeqLen,
    limits,
    adapters: range.adapters ?? 0,
  };
}

/** A KV cache's admission limits, as a stage reports them. */
export function kvLimits(kv: {
  maxSequences: number;
  budgetBytes: number;
  bytesPerPosition: number;
  bytesPerRow: number;
}): StageLimits {
  return {
    maxSequences: kv.maxSequences,
    kvBudgetBytes: kv.budgetBytes,
    kvBytesPerPosition: kv.bytesPerPosition,
    kvBytesPerRow: kv.bytesPerRow,
  };
}

export interface StageLimits {
  /** Most sequences the stage keeps a cache for. */
  maxSequences: number;
  /** KV-cache budget, bytes. */
  kvBudgetBytes: number;
  /** Cache bytes per sequence per position (every layer of the stage that grows, keys and values). */
  kvBytesPerPosition: number;
  /** Cache bytes per sequence whatever its length (sliding-window rings; 0 without them). */
  kvBytesPerRow: number;
}

export interface StageStats {
  forwards: number;
  forwardMsTotal: number;
  sequences: number;
  kvBytes: number;
  kvBudgetBytes: number;
}

/** See {@link StageOptions.spinDurationUs}. */
export const DEFAULT_SPIN_DURATION_US = 20;

export interface StageOptions {
  /** onnxruntime intra-op threads. Default: the machine's available parallelism. */
  intraOpThreads?: number;
  /**
   * Let onnxruntime's worker threads spin while waiting for work, for at most
   * {@link spinDurationUs}. Default true: a decode step runs hundreds of kernels microseconds
   * apart, and waking a sleeping thread for each cost 2-thread decode up to a third of its speed
   * (docs/BENCHMARKS.md). False: threads sleep as soon as they run out of work.
   */
  allowSpinning?: boolean;
  /**
   * How long a spinning onnxruntime thread waits for work before it sleeps, microseconds.
   * Default {@link DEFAULT_SPIN_DURATION_US}: long enough to bridge the gaps between one step's
   * kernels, short enough that the cores go back to the event loop and to other work as the
   * step ends (unbounded spinning made 2-thread decode 2.1 times slower when every core had
   * other work; 20 µs cost 5-12 %).
   */
  spinDurationUs?: number;
  /**
   * onnxruntime execution provider, e.g. `cpu`, `cuda`, `tensorrt`, `coreml`. Default `cpu`.
   * Operators the provider lacks fall back to the CPU.
   */
  executionProvider?: string;
  /** KV-cache byte budget for all sequences of the stage. Default {@link DEFAULT_KV_BUDGET_BYTES}. */
  kvBudgetBytes?: number;
  /** Most sequences the stage keeps a cache for at once. Default {@link DEFAULT_MAX_SEQUENCES}. */
  maxSequences?: number;
}

export const DEFAULT_KV_BUDGET_BYTES = 2 * 1024 ** 3;
export const DEFAULT_MAX_SEQUENCES = 256;

export interface StageEngine {
  readonly info: StageInfo;
  forward(batch: StageBatch): Promise<StageOutput>;
  /** Frees the KV cache (and sampler state) of these sequences. Unknown ids are ignored. */
  release(seqIds: string[]): Promise<void>;
  stats(): Promise<StageStats>;
  close(): Promise<void>;
}

/** The batch width T: the longest row. */
export function batchWidth(rows: readonly BatchRow[]): number {
  let width = 0;
  for (const row of rows) width = Math.max(width, row.count);
  return width;
}
