/**
 * What every StageEngine implementation shares: the onnxruntime session of a
 * shard, the checks a micro-batch must pass before it reaches onnxruntime (a bad
 * token id is a coded error, never "input index out of range"), and sampling on
 * the last stage with one run.c-style sampler per sequence.
 */
import { availableParallelism } from 'node:os';
import {
  AdapterUnsupportedError,
  InvalidArgumentError,
  ShardInvalidError,
  TokenOutOfVocabularyError,
} from '@swarmbee/core';
import type { ShardGraph } from '@swarmbee/model';
import ort from 'onnxruntime-node';
import { executionProviders } from './execution-provider.js';
import { Sampler } from './sampler.js';
import {
  batchWidth,
  DEFAULT_SPIN_DURATION_US,
  type StageBatch,
  type StageInfo,
  type StageOptions,
  type StageOutput,
} from './stage-engine.js';

/**
 * Session options of every stage graph: threads, spinning, provider, and where external
 * weights live. Spinning is as `allowSpinning` says (off when absent), bounded by
 * `spinDurationUs` when given; {@link createShardSession} fills in the serving defaults.
 */
export function stageSessionOptions(
  externalDataDir: string,
  options: Pick<
    StageOptions,
    'intraOpThreads' | 'allowSpinning' | 'spinDurationUs' | 'executionProvider'
  >,
): ort.InferenceSession.SessionOptions {
  const spinning = options.allowSpinning === true;
  if (
    options.spinDurationUs !== undefined &&
    !(Number.isInteger(options.spinDurationUs) && options.spinDurationUs >= 0)
  ) {
    throw new InvalidArgumentError(
      `spinDurationUs must be a non-negative integer of microseconds, got ${options.spinDurationUs}`,
    );
  }
  const intraOp: Record<string, string> = { allow_spinning: spinning ? '1' : '0' };
  if (spinning && options.spinDurationUs !== undefined)
    intraOp.spin_duration_us = String(options.spinDurationUs);
  return {
    intraOpNumThreads: options.intraOpThreads ?? availableParallelism(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    executionProviders: executionProviders(options.executionProvider),
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    extra: {
      session: {
        model_external_initializers_file_folder_path: externalDataDir,
        intra_op: intraOp,
      },
    },
  };
}

/** Loads a shard into onnxruntime; a graph it cannot load is a ShardInvalidError. */
export async function createShardSession(
  shard: ShardGraph,
  options: StageOptions,
): Promise<ort.InferenceSession> {
  const sessionOptions = stageSessionOptions(shard.externalDataDir, {
    ...options,
    allowSpinning: options.allowSpinning ?? true,
    spinDurationUs: options.spinDurationUs ?? DEFAULT_SPIN_DURATION_US,
  });
  try {
    return await ort.InferenceSession.create(shard.onnx, sessionOptions);
  } catch (error) {
    throw new ShardInvalidError(
      `onnxruntime cannot load the shard for layers [${shard.layerStart}, ${shard.layerEnd}): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Checks a micro-batch against the stage and returns its width T. */
export function checkBatch(batch: StageBatch, info: StageInfo): number {
  const { rows } = batch;
  if (rows.length === 0) throw new InvalidArgumentError('a micro-batch needs at least one row');
  const seen = new Set<string>();
  for (const row of rows) {
    if (
      !Number.isInteger(row.count) ||
      row.count < 1 ||
      !Number.isInteger(row.start) ||
      row.start < 0
    ) {
      throw new InvalidArgumentError(
        `row ${row.seqId}: start ${row.start} and count ${row.count} must be integers, count >= 1`,
      );
    }
    if (seen.has(row.seqId))
      throw new InvalidArgumentError(`sequence ${row.seqId} appears twice in one micro-batch`);
    seen.add(row.seqId);
    const adapter = row.adapter ?? 0;
    if (!Number.isInteger(adapter) || adapter < 0 || adapter > info.adapters)
      throw new AdapterUnsupportedError(
        `row ${row.seqId} runs with adapter ${adapter}; this stage serves ${info.adapters === 0 ? 'the base model alone' : `adapters 1-${info.adapters}`}`,
      );
  }
  const width = batchWidth(rows);
  if (info.isFirst) {
    if (batch.tokens?.length !== rows.length * width) {
      throw new InvalidArgumentError(
        `the first stage needs ${rows.length}x${width} token ids, got ${batch.tokens?.length ?? 'none'}`,
      );
    }
    rows.forEach((row, r) => {
      for (let i = 0; i < row.count; i++) {
        const id = batch.tokens![r * width + i]!;
        if (id < 0n || id >= BigInt(info.vocabSize)) {
          throw new TokenOutOfVocabularyError(
            `token id ${id} (sequence ${row.seqId}) is outside the vocabulary of ${info.vocabSize} tokens`,
          );
        }
      }
    });
  } else if (batch.hidden?.length !== rows.length * width * info.dim) {
    throw new InvalidArgumentError(
      `stage needs hidden states of ${rows.length}x${width}x${info.dim}, got ${batch.hidden?.length ?? 'none'} values`,
    );
  }
  return width;
}

/** The last stage's samplers, one per sequence, so a seed gives one random stream per sequence. */
export class RowSampler {
  readonly #samplers = new Map<string, Sampler>();

  constructor(readonly vocabSize: number) {}

  /**
   * Samples each row with sampling parameters from `logits` ([B, perRow, vocab]):
   * the row's last real token when `perRow` is the batch width, else its only row.
   */
  sample(
    batch: StageBatch,
    logits: Float32Array,
    perRow: number,
    timing: StageOutput['timing'],
  ): StageOutput {
    const vocab = this.vocabSize;
    const tokens = new Int32Array(batch.rows.length).fill(-1);
    const wantLogprobs = batch.rows.some((row) => row.logprobs);
    const logprobs = wantLogprobs ? new Float32Array(batch.rows.length) : undefined;
    batch.rows.forEach((row, r) => {
      if (!row.sampling) return;
      let sampler = this.#samplers.get(row.seqId);
      if (!sampler || row.start === 0) {
        sampler = new Sampler(row.sampling);
        this.#samplers.set(row.seqId, sampler);
      }
      const lastPosition = perRow === 1 ? 0 : row.count - 1;
      const offset = (r * perRow + lastPosition) * vocab;
      const sample = sampler.sample(logits.subarray(offset, offset + vocab), row.logprobs === true);
      tokens[r] = sample.token;
      if (logprobs) logprobs[r] = sample.logprob;
    });
    const output: StageOutput = { kind: 'tokens', tokens, timing };
    if (logprobs) output.logprobs = logprobs;
    if (batch.logits) output.logits = logits;
    return output;
  }

  release(seqId: string): void {
    this.#samplers.delete(seqId);
  }
}
