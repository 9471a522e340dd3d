/**
 * Generation with llama2.c run.c's semantics: `steps` counts positions (the
 * prompt included), prompt tokens are forced, sampling starts after the last
 * prompt token, and a sampled BOS ends the sequence. Several sequences advance
 * together as one micro-batch; the prompt is prefilled in chunks.
 */
import {
  ContextOverflowError,
  InvalidArgumentError,
  type SamplingParams,
  TokenOutOfVocabularyError,
  validateSampling,
} from '@swarmbee/core';
import type { Pipeline } from './pipeline.js';
import type { BatchRow } from './stage-engine.js';

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
  /** Longest prompt piece one forward pass takes, in tokens. Default {@link DEFAULT_PREFILL_CHUNK_TOKENS}. */
  prefillChunkTokens?: number;
  /** Called for every sampled token as it arrives. */
  onToken?: (sequence: number, id: number) => void;
  signal?: AbortSignal;
}

export const DEFAULT_PREFILL_CHUNK_TOKENS = 256;

interface Live {
  index: number;
  seqId: string;
  request: GenerateRequest;
  ids: number[];
  /** Tokens the sequence may reach: steps + 1, capped by the context. */
  limit: number;
  /** Positions already in the KV cache. */
  cached: number;
  logprobs: number[];
  finish?: 'length' | 'stop';
  startedAt: number;
  firstTokenAt?: number;
  lastTokenAt?: number;
}

let nextSequence = 0;

export async function generate(
  pipeline: Pipeline,
  requests: GenerateRequest[],
  options: GenerateOptions = {},
): Promise<GenerateResult[]> {
  const { maxSeqLen, vocabSize } = pipeline.info;
  const chunk = options.prefillChunkTokens ?? DEFAULT_PREFILL_CHUNK_TOKENS;
  if (!Number.isInteger(chunk) || chunk < 1)
    throw new InvalidArgumentError(`prefill chunk must be a positive integer, got ${chunk}`);
  const live: Live[] = requests.map((request, index) => {
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
    const positions = steps === 0 || steps > maxSeqLen ? maxSeqLen : steps;
    const limit = positions + 1;
    return {
      index,
      seqId: `gen-${process.pid}-${nextSequence++}`,
      request,
      ids: promptIds.slice(0, limit),
      limit,
      cached: 0,
      logprobs: [],
      startedAt: performance.now(),
    };
  });
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const active = live.filter((s) => s.finish === undefined && s.ids.length < s.limit);
      for (const s of live)
        if (s.finish === undefined && s.ids.length >= s.limit) s.finish = 'length';
      if (active.length === 0) break;
      await advance(pipeline, active, chunk, options);
    }
  } finally {
    await pipeline.release(live.map((s) => s.seqId));
  }
  return live.map((s) => {
    const sampled = s.ids.length - Math.min(s.request.promptIds.length, s.ids.length);
    const decodeMs = (s.lastTokenAt ?? 0) - (s.firstTokenAt ?? 0);
    return {
      ids: s.ids,
      promptTokens: Math.min(s.request.promptIds.length, s.ids.length),
      logprobs: s.logprobs,
      finish: s.finish ?? 'length',
      firstTokenMs: (s.firstTokenAt ?? s.startedAt) - s.startedAt,
      tokensPerSecond: sampled > 1 && decodeMs > 0 ? ((sampled - 1) * 1000) / decodeMs : 0,
    };
  });
}

/** One forward pass over every active sequence: the next prompt chunk, or one decode token. */
async function advance(
  pipeline: Pipeline,
  active: Live[],
  chunk: number,
  options: GenerateOptions,
): Promise<void> {
  // Feed everything not yet cached except the newest token's successor: up to `chunk` tokens per row.
  const rows: BatchRow[] = active.map((s) => {
    const count = Math.min(s.ids.length - s.cached, chunk);
    const done = s.cached + count === s.ids.length;
    const row: BatchRow = { seqId: s.seqId, start: s.cached, count };
    if (done) {
      row.sampling = s.request.sampling;
      if (s.request.logprobs) row.logprobs = true;
    }
    return row;
  });
  const width = Math.max(...rows.map((r) => r.count));
  const tokens = new BigInt64Array(rows.length * width);
  active.forEach((s, r) => {
    for (let i = 0; i < rows[r]!.count; i++) tokens[r * width + i] = BigInt(s.ids[s.cached + i]!);
  });
  const result = await pipeline.step({ rows, tokens });
  const now = performance.now();
  active.forEach((s, r) => {
    const row = rows[r]!;
    s.cached += row.count;
    if (!row.sampling) return;
    const token = result.tokens[r]!;
    s.firstTokenAt ??= now;
    s.lastTokenAt = now;
    if (s.request.stopIds?.includes(token)) {
      s.finish = 'stop';
      return;
    }
    s.ids.push(token);
    if (s.request.logprobs) s.logprobs.push(result.logprobs?.[r] ?? 0);
    options.onToken?.(s.index, token);
  });
}
