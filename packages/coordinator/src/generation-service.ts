/**
 * Serves completions over a scheduler: text in and out, limits checked,
 * admission bounded by p-queue — a full queue is refused (429), never buffered.
 */
import {
  ContextOverflowError,
  InvalidArgumentError,
  QueueFullError,
  RequestTooLargeError,
  type SamplingParams,
  TokenOutOfVocabularyError,
  validateSampling,
} from '@swarmbee/core';
import {
  type ChatMessage,
  type ChatTemplateOptions,
  decodeIds,
  encodeChat,
  type Tokenizer,
} from '@swarmbee/model';
import PQueue from 'p-queue';
import type { Scheduler, SequenceResult } from './scheduler.js';
import { TextStream } from './text-stream.js';

export interface ServiceLimits {
  /** Sequences generated at once. Default 32. */
  maxActive: number;
  /** Requests waiting for a slot; one more is refused with 429. Default 256. */
  maxQueued: number;
  /** Longest prompt, in tokens. Default: the model's context. */
  maxPromptTokens: number;
  /** Most tokens one request may ask for. Default: the model's context. */
  maxTokens: number;
  /** Largest HTTP request body, bytes. Default 1 MiB (the API's). */
  maxBodyBytes?: number;
}

export const DEFAULT_MAX_ACTIVE = 32;
export const DEFAULT_MAX_QUEUED = 256;
/** max_tokens when a request does not say. */
export const DEFAULT_COMPLETION_TOKENS = 256;

/** A conversation, rendered through the model's chat template (plain lines without one). */
export interface ChatPrompt {
  messages: ChatMessage[];
  template?: ChatTemplateOptions;
}

export interface CompletionRequest {
  /** Text (plain encoding: BOS first when the tokenizer adds one), token ids, or a conversation. */
  prompt: string | number[] | ChatPrompt;
  /** Tokens to sample at most; see also `steps`. */
  maxTokens?: number;
  /** run.c-style positions, prompt included: overrides maxTokens with steps + 1 - prompt tokens. */
  steps?: number;
  sampling: SamplingParams;
  stop?: string[];
  /** Keep generating past the tokenizer's end-of-sequence ids (benchmarks). Default false. */
  ignoreEos?: boolean;
  logprobs?: boolean;
  /** Put the prompt's text in front of the completion. */
  echo?: boolean;
}

export interface Completion {
  text: string;
  /** Prompt ids followed by the sampled ids. */
  tokenIds: number[];
  promptTokens: number;
  completionTokens: number;
  finishReason: 'stop' | 'length';
  logprobs: number[];
  firstTokenMs: number;
  totalMs: number;
  tokensPerSecond: number;
}

export interface PreparedCompletion {
  request: CompletionRequest;
  promptIds: number[];
  maxTokens: number;
}

export interface CompleteOptions {
  signal?: AbortSignal;
  /** Called with each piece of text as soon as it is safe to show (the echo, and the end). */
  onText?: (delta: string) => void;
  /**
   * Called for every sampled token with the text it made safe to show ('' when none);
   * when given, token text goes here rather than to `onText`.
   */
  onToken?: (id: number, delta: string) => void;
}

export interface ModelInfo {
  name: string;
  vocabSize: number;
  maxSeqLen: number;
}

export class GenerationService {
  readonly #scheduler: Scheduler;
  readonly #tokenizer: Tokenizer;
  readonly #queue: PQueue;
  readonly limits: ServiceLimits;

  constructor(
    scheduler: Scheduler,
    tokenizer: Tokenizer,
    readonly model: ModelInfo,
    limits: Partial<ServiceLimits> = {},
  ) {
    this.#scheduler = scheduler;
    this.#tokenizer = tokenizer;
    this.limits = {
      maxActive: limits.maxActive ?? DEFAULT_MAX_ACTIVE,
      maxQueued: limits.maxQueued ?? DEFAULT_MAX_QUEUED,
      maxPromptTokens: limits.maxPromptTokens ?? model.maxSeqLen,
      maxTokens: limits.maxTokens ?? model.maxSeqLen,
    };
    this.#queue = new PQueue({ concurrency: this.limits.maxActive });
  }

  /** Requests waiting for a generation slot. */
  get queued(): number {
    return this.#queue.size;
  }

  get active(): number {
    return this.#queue.pending;
  }

  /** Encodes a text prompt as run.c does (BOS first). */
  encode(text: string): number[] {
    return this.#tokenizer.encode(text);
  }

  /**
   * Checks and encodes a request, throwing coded errors (400, 413, 429) before any
   * response has started, so that a streaming client still gets a proper status.
   */
  prepare(request: CompletionRequest): PreparedCompletion {
    const { prompt } = request;
    const promptIds =
      typeof prompt === 'string'
        ? this.#tokenizer.encode(prompt)
        : Array.isArray(prompt)
          ? prompt
          : encodeChat(this.#tokenizer, prompt.messages, prompt.template);
    const maxTokens = this.#check(request, promptIds);
    if (this.#queue.size >= this.limits.maxQueued) {
      throw new QueueFullError(
        `${this.#queue.size} requests are already waiting (limit ${this.limits.maxQueued}); retry shortly`,
      );
    }
    return { request, promptIds, maxTokens };
  }

  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<Completion> {
    return this.run(this.prepare(request), options);
  }

  async run(prepared: PreparedCompletion, options: CompleteOptions = {}): Promise<Completion> {
    const { request, promptIds, maxTokens } = prepared;
    const stream = new TextStream(this.#tokenizer, promptIds, request.stop ?? []);
    const echo = request.echo ? decodeIds(this.#tokenizer, promptIds) : '';
    if (echo) options.onText?.(echo);
    const result = await this.#queue.add(
      (): Promise<SequenceResult> =>
        this.#scheduler.generate({
          promptIds,
          maxTokens,
          sampling: request.sampling,
          stopIds: request.ignoreEos ? [] : [...this.#tokenizer.stopIds],
          logprobs: request.logprobs,
          signal: options.signal,
          onToken: (id) => {
            const delta = stream.push(id);
            if (options.onToken) options.onToken(id, delta);
            else if (delta) options.onText?.(delta);
            return !stream.stopped;
          },
        }),
      { signal: options.signal },
    );
    const tail = stream.end();
    if (tail) options.onText?.(tail);
    const completionTokens = result.ids.length - promptIds.length;
    const decodeMs = result.totalMs - result.firstTokenMs;
    return {
      text: echo + stream.text,
      tokenIds: result.ids,
      promptTokens: promptIds.length,
      completionTokens,
      finishReason: result.finish,
      logprobs: result.logprobs,
      firstTokenMs: result.firstTokenMs,
      totalMs: result.totalMs,
      tokensPerSecond:
        completionTokens > 1 && decodeMs > 0 ? ((completionTokens - 1) * 1000) / decodeMs : 0,
    };
  }

  /** Validates a request and returns how many tokens it may sample. */
  #check(request: CompletionRequest, promptIds: number[]): number {
    validateSampling(request.sampling);
    const { maxSeqLen, vocabSize } = this.model;
    if (promptIds.length === 0)
      throw new InvalidArgumentError('prompt must hold at least one token');
    if (promptIds.length > maxSeqLen)
      throw new ContextOverflowError(
        `the prompt has ${promptIds.length} tokens; the model's context holds ${maxSeqLen}`,
      );
    if (promptIds.length > this.limits.maxPromptTokens) {
      throw new RequestTooLargeError(
        `the prompt has ${promptIds.length} tokens; this server accepts at most ${this.limits.maxPromptTokens}`,
      );
    }
    for (const id of promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new TokenOutOfVocabularyError(
          `token id ${id} is outside the vocabulary of ${vocabSize} tokens`,
        );
      }
    }
    let maxTokens = request.maxTokens ?? DEFAULT_COMPLETION_TOKENS;
    if (request.steps !== undefined) {
      if (!Number.isInteger(request.steps) || request.steps < 0)
        throw new InvalidArgumentError(
          `steps must be a non-negative integer, got ${request.steps}`,
        );
      const positions =
        request.steps === 0 || request.steps > maxSeqLen ? maxSeqLen : request.steps;
      maxTokens = Math.max(0, positions + 1 - promptIds.length);
    }
    if (!Number.isInteger(maxTokens) || maxTokens < 0)
      throw new InvalidArgumentError(`max_tokens must be a non-negative integer, got ${maxTokens}`);
    if (maxTokens > this.limits.maxTokens)
      throw new InvalidArgumentError(
        `max_tokens ${maxTokens} exceeds this server's limit of ${this.limits.maxTokens}`,
      );
    // The context bounds what can be sampled: positions 0..maxSeqLen-1 are fed, so maxSeqLen + 1 tokens at most.
    return Math.min(maxTokens, maxSeqLen + 1 - promptIds.length);
  }
}
