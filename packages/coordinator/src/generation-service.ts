/**
 * Serves completions over a scheduler: text in and out, limits checked,
 * admission bounded by p-queue — a full queue is refused (429), never buffered.
 * Requests are prepared — an API body parsed and checked, every limit that needs no
 * tokens checked, the prompt rendered, tokenized, echo decoded — by a
 * {@link PromptPreparer} off the event loop; only the per-token streaming decode, bounded
 * per token, runs here.
 */
import { QueueFullError, RequestTooLargeError } from '@swarmbee/core';
import type { Scheduler, SequenceResult } from '@swarmbee/engine';
import type { Tokenizer } from '@swarmbee/model';
import PQueue from 'p-queue';
import type { CompletionEndpoint } from './api/requests.js';
import type { CompletionLimits, CompletionRequest } from './completion-request.js';
import type { CompletionJob, PromptPreparer } from './prompt/prompt.js';
import { type ServedModel, ServedModels } from './served-models.js';
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
export {
  type ChatPrompt,
  type CompletionRequest,
  DEFAULT_COMPLETION_TOKENS,
} from './completion-request.js';

export interface Completion {
  /** The model that answered: the default one, or `<model>:<adapter>`. */
  model: string;
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
  /** The served model the request's `model` picked. */
  model: ServedModel;
  promptIds: number[];
  maxTokens: number;
  /** The prompt's text when the request echoes it; else ''. */
  echo: string;
  /** An API body asked for server-sent events. */
  stream: boolean;
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
  /** The names requests may ask for. Default: the model's name alone. */
  served?: ServedModels;
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
  /** The models requests may name. */
  readonly served: ServedModels;

  constructor(options: GenerationServiceOptions) {
    const { model, limits = {} } = options;
    this.#scheduler = options.scheduler;
    this.#tokenizer = options.tokenizer;
    this.#prompts = options.prompts;
    this.model = model;
    this.served = model.served ?? new ServedModels(model.name);
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

  /** Requests waiting for a generation slot (not counting those waiting for KV-cache room). */
  get queued(): number {
    return this.#queue.size;
  }

  get active(): number {
    return this.#queue.pending;
  }

  /** What requests are checked against: this server's limits and the model's. */
  get checks(): CompletionLimits {
    return {
      maxSeqLen: this.model.maxSeqLen,
      vocabSize: this.model.vocabSize,
      maxPromptTokens: this.limits.maxPromptTokens,
      maxPromptChars: this.limits.maxPromptChars,
      maxTokens: this.limits.maxTokens,
    };
  }

  /**
   * Checks and prepares a request, throwing coded errors (400, 413, 429) before any
   * response has started, so that a streaming client still gets a proper status.
   */
  prepare(
    request: CompletionRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<PreparedCompletion> {
    return this.#prepare({ source: { request }, limits: this.checks }, options);
  }

  /** The same for an API body as received (null: none), parsed off the event loop too. */
  prepareBody(
    endpoint: CompletionEndpoint,
    body: Uint8Array | null,
    options: { signal?: AbortSignal } = {},
  ): Promise<PreparedCompletion> {
    return this.#prepare({ source: { endpoint, body }, limits: this.checks }, options);
  }

  async #prepare(
    job: CompletionJob,
    options: { signal?: AbortSignal },
  ): Promise<PreparedCompletion> {
    this.#checkRoom();
    const prepared = await this.#prompts.prepare(job, options);
    const model = this.served.resolve(prepared.request.model);
    // Refused now, as a status, rather than failed mid-stream by a stage.
    const positions = prepared.request.prompt.length + Math.max(0, prepared.maxTokens - 1);
    const refusal = this.#scheduler.refusal(positions);
    if (refusal) throw new RequestTooLargeError(refusal);
    this.#checkRoom();
    return {
      request: prepared.request,
      model,
      promptIds: prepared.request.prompt,
      maxTokens: prepared.maxTokens,
      echo: prepared.echo,
      stream: prepared.stream,
    };
  }

  async complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<Completion> {
    return this.run(await this.prepare(request, options), options);
  }

  async run(prepared: PreparedCompletion, options: CompleteOptions = {}): Promise<Completion> {
    const { request, promptIds, maxTokens, echo, model } = prepared;
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
          ...(model.adapter > 0 ? { adapter: model.adapter } : {}),
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
      model: model.id,
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
}
