/**
 * Serves completions over a scheduler: text in and out, limits checked,
 * admission bounded by p-queue — a full queue is refused (429), never buffered.
 * Prompts are prepared (rendered, tokenized, echo decoded) by a {@link PromptPreparer}
 * off the event loop, after every limit that can be checked without tokenizing has been;
 * only the per-token streaming decode, bounded per token, runs here.
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
import type { Tokenizer } from '@swarmbee/model';
import PQueue from 'p-queue';
import type { ChatMessage, PromptInput, PromptPreparer } from './prompt/prompt.js';
import { promptChars } from './prompt/prompt.js';
import type { Scheduler, SequenceResult } from './scheduler.js';
import { TextStream } from './text-stream.js';

export interface ServiceLimits {
  /** Sequences generated at once. Default 32. */
  maxActive: number;
  /** Requests waiting for a slot; one more is refused with 429. Default 256. */
  maxQueued: number;
  /** Longest prompt, in tokens. Default: the model's context. */
  maxPromptTokens: number;
  /**
   * Longest text prompt (a chat: its messages' text), characters, refused (413) before it
   * is tokenized. Default: maxPromptTokens × the tokenizer's longest token, the most text
   * that many tokens can stand for.
   */
  maxPromptChars: number;
  /** Most tokens one request may ask for. Default: the model's context. */
  maxTokens: number;
  /** Largest HTTP request body, bytes. Default 1 MiB (the API's). */
  maxBodyBytes?: number;
}

export const DEFAULT_MAX_ACTIVE = 32;
export const DEFAULT_MAX_QUEUED = 256;
/** max_tokens when a request does not say. */
export const DEFAULT_COMPLETION_TOKENS = 256;

export interface CompletionRequest {
  /** Text (encoded with BOS first), chat messages (rendered, then encoded) or token ids. */
  prompt: string | number[] | { messages: ChatMessage[] };
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
  /** The prompt's text when the request echoes it; else ''. */
  echo: string;
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

export interface GenerationServiceOptions {
  scheduler: Scheduler;
  /** Decodes sampled tokens as they stream; its stop ids end sequences. */
  tokenizer: Tokenizer;
  /** Prepares prompts off the event loop, with its own copies of the tokenizer. */
  prompts: PromptPreparer;
  model: ModelInfo;
  limits?: Partial<ServiceLimits>;
}

export class GenerationService {
  readonly #scheduler: Scheduler;
  readonly #tokenizer: Tokenizer;
  readonly #prompts: PromptPreparer;
  readonly #queue: PQueue;
  readonly model: ModelInfo;
  readonly limits: ServiceLimits;

  constructor(options: GenerationServiceOptions) {
    const { model, limits = {} } = options;
    this.#scheduler = options.scheduler;
    this.#tokenizer = options.tokenizer;
    this.#prompts = options.prompts;
    this.model = model;
    const maxPromptTokens = limits.maxPromptTokens ?? model.maxSeqLen;
    this.limits = {
      maxActive: limits.maxActive ?? DEFAULT_MAX_ACTIVE,
      maxQueued: limits.maxQueued ?? DEFAULT_MAX_QUEUED,
      maxPromptTokens,
      maxPromptChars:
        limits.maxPromptChars ??
        Math.min(maxPromptTokens, model.maxSeqLen) * options.tokenizer.maxTokenChars,
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

  /**
   * Checks and prepares a request, throwing coded errors (400, 413, 429) before any
   * response has started, so that a streaming client still gets a proper status. What
   * can be checked without the prompt's tokens is checked first; the prompt is then
   * tokenized off the event loop.
   */
  async prepare(
    request: CompletionRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<PreparedCompletion> {
    this.#checkRequest(request);
    this.#checkRoom();
    const prompt: PromptInput =
      typeof request.prompt === 'string'
        ? { text: request.prompt }
        : Array.isArray(request.prompt)
          ? { ids: request.prompt }
          : { messages: request.prompt.messages };
    const chars = promptChars(prompt);
    if (chars > this.limits.maxPromptChars) {
      throw new RequestTooLargeError(
        `the prompt has ${chars} characters; this server tokenizes at most ${this.limits.maxPromptChars} (--max-prompt-chars)`,
        { param: 'text' in prompt ? 'prompt' : 'messages' },
      );
    }
    const maxIds = Math.min(this.model.maxSeqLen, this.limits.maxPromptTokens);
    if ('ids' in prompt) {
      this.checkPromptLength(prompt.ids.length);
      this.#checkVocabulary(prompt.ids);
    }
    let promptIds: number[];
    let echo = '';
    if ('ids' in prompt && !request.echo) promptIds = prompt.ids;
    else {
      const prepared = await this.#prompts.prepare(
        { prompt, echo: request.echo ?? false, maxIds },
        options,
      );
      this.checkPromptLength(prepared.count);
      promptIds = prepared.ids ?? [];
      echo = prepared.echo;
    }
    const maxTokens = this.#maxTokens(request, promptIds.length);
    this.#checkRoom();
    return { request, promptIds, maxTokens, echo };
  }

  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<Completion> {
    return this.run(await this.prepare(request, options), options);
  }

  async run(prepared: PreparedCompletion, options: CompleteOptions = {}): Promise<Completion> {
    const { request, promptIds, maxTokens, echo } = prepared;
    const stream = new TextStream(this.#tokenizer, promptIds, request.stop ?? []);
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

  /** A full admission queue refuses at once (429), before any work. */
  #checkRoom(): void {
    if (this.#queue.size >= this.limits.maxQueued) {
      throw new QueueFullError(
        `${this.#queue.size} requests are already waiting (limit ${this.limits.maxQueued}); retry shortly`,
      );
    }
  }

  /** Throws unless a prompt of `count` tokens fits the context and this server's limit. */
  checkPromptLength(count: number): void {
    const { maxSeqLen } = this.model;
    const param = 'prompt';
    if (count === 0)
      throw new InvalidArgumentError('prompt: must hold at least one token', { param });
    if (count > maxSeqLen)
      throw new ContextOverflowError(
        `the prompt has ${count} tokens; the model's context holds ${maxSeqLen}`,
        { param },
      );
    if (count > this.limits.maxPromptTokens) {
      throw new RequestTooLargeError(
        `the prompt has ${count} tokens; this server accepts at most ${this.limits.maxPromptTokens} (--max-prompt-tokens)`,
        { param },
      );
    }
  }

  /** Checks what does not depend on the prompt's tokens: sampling, max_tokens, steps. */
  #checkRequest(request: CompletionRequest): void {
    validateSampling(request.sampling);
    const { maxTokens, steps } = request;
    if (steps !== undefined && (!Number.isInteger(steps) || steps < 0))
      throw new InvalidArgumentError(`steps: expected an integer ≥ 0, got ${steps}`, {
        param: 'steps',
      });
    if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 0))
      throw new InvalidArgumentError(`max_tokens: expected an integer ≥ 0, got ${maxTokens}`, {
        param: 'max_tokens',
      });
    if (steps === undefined && (maxTokens ?? 0) > this.limits.maxTokens)
      throw new InvalidArgumentError(
        `max_tokens: at most ${this.limits.maxTokens} on this server (--max-tokens), got ${maxTokens}`,
        { param: 'max_tokens' },
      );
  }

  #checkVocabulary(promptIds: readonly number[]): void {
    const { vocabSize } = this.model;
    for (const id of promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new TokenOutOfVocabularyError(
          `token id ${id} is outside the vocabulary of ${vocabSize} tokens`,
          { param: 'prompt' },
        );
      }
    }
  }

  /** How many tokens a request may sample after a prompt of `promptTokens`. */
  #maxTokens(request: CompletionRequest, promptTokens: number): number {
    const { maxSeqLen } = this.model;
    let maxTokens = request.maxTokens ?? DEFAULT_COMPLETION_TOKENS;
    if (request.steps !== undefined) {
      const positions =
        request.steps === 0 || request.steps > maxSeqLen ? maxSeqLen : request.steps;
      maxTokens = Math.max(0, positions + 1 - promptTokens);
    }
    if (maxTokens > this.limits.maxTokens) {
      const param = request.steps === undefined ? 'max_tokens' : 'steps';
      throw new InvalidArgumentError(
        `${param}: asks for ${maxTokens} tokens; this server generates at most ${this.limits.maxTokens} (--max-tokens)`,
        { param },
      );
    }
    // The context bounds what can be sampled: positions 0..maxSeqLen-1 are fed, so maxSeqLen + 1 tokens at most.
    return Math.min(maxTokens, maxSeqLen + 1 - promptTokens);
  }
}
