/**
 * Generation with llama2.c run.c's semantics over an in-process pipeline: `steps` counts
 * positions (the prompt included), prompt tokens are forced, sampling starts after the
 * last prompt token, and a sampled stop id (run.c: BOS) ends the sequence.
 *
 * This is only the request's shape: the sequences run through the same {@link Scheduler}
 * a cluster's coordinator uses (chunked prefill, micro-batches, admission against the
 * stages' KV budgets), with the pipeline as its transport, so `swarmbee generate --model`
 * and a cluster batch the same requests alike and give the same ids.
 */
import {
  ContextOverflowError,
  DEFAULT_PREFILL_CHUNK_TOKENS,
  InvalidArgumentError,
  KvBudgetExceededError,
  type SamplingParams,
  TokenOutOfVocabularyError,
  validateSampling,
} from '@swarmbee/core';
import type { Pipeline } from './pipeline.js';
import type { SequenceRequest } from './scheduler/micro-batch.js';
import { pipelineTransport } from './scheduler/pipeline-transport.js';
import { Scheduler } from './scheduler/scheduler.js';

export interface GenerateRequest {
  /** Token ids to start from (a text prompt encodes with BOS first). At least one. */
  promptIds: number[];
  /** Positions to run, as run.c's `-n`: the result holds at most steps + 1 tokens. 0 = the model's context. */
  steps: number;
  sampling: SamplingParams;
  /** Sampled ids that end the sequence (not included in it). run.c stops at BOS. */
  stopIds?: number[];
  /** Also return the log-probability of each sampled token. */
  logprobs?: boolean;
  /** The served LoRA adapter to run with (the shards' n-th, n ≥ 1); absent: the base model. */
  adapter?: number;
}

export interface GenerateResult {
  /** Every token of the sequence: forced prompt ids, then sampled ids. */
  ids: number[];
  /** How many of `ids` came from the prompt. */
  promptTokens: number;
  logprobs: number[];
  /** Why it ended: the steps ran out, or a stop id was sampled. */
  finish: 'length' | 'stop';
  /** Time from the request until the first sampled token. */
  firstTokenMs: number;
  /** Sampled tokens after the first, per second of decoding (what run.c reports). */
  tokensPerSecond: number;
}

export interface GenerateOptions {
  /** Longest prompt piece one forward pass takes, in tokens. Default {@link DEFAULT_PREFILL_CHUNK_TOKENS} (128). */
  prefillChunkTokens?: number;
  /** Micro-batches in the pipeline at once. Default: the pipeline's stage count, as a cluster deployment. */
  maxInFlight?: number;
  /** Called for every sampled token as it arrives. */
  onToken?: (sequence: number, id: number) => void;
  signal?: AbortSignal;
}

export async function generate(
  pipeline: Pipeline,
  requests: GenerateRequest[],
  options: GenerateOptions = {},
): Promise<GenerateResult[]> {
  const { maxSeqLen, vocabSize, stages } = pipeline.info;
  const chunk = options.prefillChunkTokens ?? DEFAULT_PREFILL_CHUNK_TOKENS;
  if (!Number.isInteger(chunk) || chunk < 1)
    throw new InvalidArgumentError(`prefill chunk must be a positive integer, got ${chunk}`);
  const sequences = requests.map((request) => sequenceOf(request, maxSeqLen, vocabSize));
  options.signal?.throwIfAborted();
  const scheduler = new Scheduler(undefined, {
    maxInFlight: options.maxInFlight ?? Math.max(1, stages.length),
    prefillChunkTokens: chunk,
    maxSeqLen,
  });
  scheduler.attach(pipelineTransport(pipeline), {
    limits: stages.flatMap((s, stage) => (s.limits ? [{ stage, ...s.limits }] : [])),
  });
  for (const sequence of sequences) {
    const refusal = scheduler.refusal(sequence.promptIds.length + sequence.maxTokens - 1);
    if (refusal !== undefined) throw new KvBudgetExceededError(refusal);
  }
  const results = await Promise.allSettled(
    sequences.map((sequence, index) =>
      scheduler.generate({
        ...sequence,
        ...(options.onToken
          ? {
              onToken: (id: number) => {
                options.onToken?.(index, id);
                return undefined;
              },
            }
          : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      }),
    ),
  );
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((settled) => {
    const r = (settled as PromiseFulfilledResult<Awaited<ReturnType<Scheduler['generate']>>>).value;
    const sampled = r.ids.length - r.promptTokens;
    return {
      ids: r.ids,
      promptTokens: r.promptTokens,
      logprobs: r.logprobs,
      finish: r.finish,
      firstTokenMs: r.firstTokenMs,
      tokensPerSecond: sampled > 1 && r.decodeMs > 0 ? ((sampled - 1) * 1000) / r.decodeMs : 0,
    };
  });
}

/** Checks a run.c-style request and states it as the scheduler's: the prompt, then at most `maxTokens`. */
function sequenceOf(
  request: GenerateRequest,
  maxSeqLen: number,
  vocabSize: number,
): Omit<SequenceRequest, 'onToken' | 'signal'> {
  validateSampling(request.sampling);
  const { promptIds, steps } = request;
  if (promptIds.length === 0)
    throw new InvalidArgumentError(
      'a prompt needs at least one token (BOS for an empty text prompt)',
    );
  if (!Number.isInteger(steps) || steps < 0)
    throw new InvalidArgumentError(`steps must be a non-negative integer, got ${steps}`);
  if (promptIds.length > maxSeqLen) {
    throw new ContextOverflowError(
      `the prompt has ${promptIds.length} tokens; the model's context holds ${maxSeqLen}`,
    );
  }
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new TokenOutOfVocabularyError(
        `token id ${id} is outside the vocabulary of ${vocabSize} tokens`,
      );
    }
  }
  // run.c runs `steps` positions: the sequence holds at most steps + 1 tokens.
  const positions = steps === 0 || steps > maxSeqLen ? maxSeqLen : steps;
  const forced = promptIds.slice(0, positions + 1);
  return {
    promptIds: forced,
    maxTokens: positions + 1 - forced.length,
    sampling: request.sampling,
    stopIds: request.stopIds ?? [],
    ...(request.logprobs ? { logprobs: true } : {}),
    ...(request.adapter ? { adapter: request.adapter } : {}),
  };
}
