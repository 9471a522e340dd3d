/**
 * A completion request as the service runs it, and the checks it must pass — pure
 * functions of the request and the server's limits, so they run wherever the request is
 * prepared (a tokenizer thread, for the API). Each failure is a coded error naming the
 * field (`param`) and, for a limit, the flag that sets it.
 */
import {
  ContextOverflowError,
  InvalidArgumentError,
  RequestTooLargeError,
  type SamplingParams,
  TokenOutOfVocabularyError,
  validateSampling,
} from '@swarmbee/core';
import type { ChatMessage, ChatTemplateOptions } from '@swarmbee/model';

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
  /**
   * The model asked for (the API's `model`): `<model>:<adapter>` runs with that served
   * adapter; absent or a name without `:`, the default model (see served-models.ts).
   */
  model?: string;
}

/** What a request is checked against. */
export interface CompletionLimits {
  /** The model's context, tokens. */
  maxSeqLen: number;
  vocabSize: number;
  /** Longest prompt this server takes, tokens (--max-prompt-tokens). */
  maxPromptTokens: number;
  /** Longest text prompt, characters, checked before tokenizing (--max-prompt-chars). */
  maxPromptChars: number;
  /** Most tokens one request may ask for (--max-tokens). */
  maxTokens: number;
}

/** max_tokens when a request does not say. */
export const DEFAULT_COMPLETION_TOKENS = 256;

/** What does not depend on the prompt's tokens: sampling, max_tokens, steps. */
export function checkRequest(request: CompletionRequest, limits: CompletionLimits): void {
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
  if (steps === undefined && (maxTokens ?? 0) > limits.maxTokens)
    throw new InvalidArgumentError(
      `max_tokens: at most ${limits.maxTokens} on this server (--max-tokens), got ${maxTokens}`,
      { param: 'max_tokens' },
    );
}

/**
 * The characters a prompt holds before any template: a text's, or its messages' text. A
 * rendered conversation is at least this long, so the limit holds before rendering too.
 */
export function promptChars(prompt: CompletionRequest['prompt']): number {
  if (typeof prompt === 'string') return prompt.length;
  if (Array.isArray(prompt)) return 0;
  let chars = 0;
  for (const message of prompt.messages) chars += message.content.length;
  return chars;
}

/** A text (or chat) prompt within --max-prompt-chars: checked before anything is tokenized. */
export function checkPromptChars(prompt: CompletionRequest['prompt'], limits: CompletionLimits) {
  const chars = promptChars(prompt);
  if (chars > limits.maxPromptChars) {
    throw new RequestTooLargeError(
      `the prompt has ${chars} characters; this server tokenizes at most ${limits.maxPromptChars} (--max-prompt-chars)`,
      { param: typeof prompt === 'string' ? 'prompt' : 'messages' },
    );
  }
}

/** Throws unless a prompt of `count` tokens fits the context and this server's limit. */
export function checkPromptLength(count: number, limits: CompletionLimits): void {
  const param = 'prompt';
  if (count === 0)
    throw new InvalidArgumentError('prompt: must hold at least one token', { param });
  if (count > limits.maxSeqLen)
    throw new ContextOverflowError(
      `the prompt has ${count} tokens; the model's context holds ${limits.maxSeqLen}`,
      { param },
    );
  if (count > limits.maxPromptTokens) {
    throw new RequestTooLargeError(
      `the prompt has ${count} tokens; this server accepts at most ${limits.maxPromptTokens} (--max-prompt-tokens)`,
      { param },
    );
  }
}

export function checkVocabulary(promptIds: readonly number[], limits: CompletionLimits): void {
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= limits.vocabSize) {
      throw new TokenOutOfVocabularyError(
        `token id ${id} is outside the vocabulary of ${limits.vocabSize} tokens`,
        { param: 'prompt' },
      );
    }
  }
}

/** How many tokens a request may sample after a prompt of `promptTokens`. */
export function maxTokensFor(
  request: CompletionRequest,
  promptTokens: number,
  limits: CompletionLimits,
): number {
  const { maxSeqLen } = limits;
  let maxTokens = request.maxTokens ?? DEFAULT_COMPLETION_TOKENS;
  if (request.steps !== undefined) {
    const positions = request.steps === 0 || request.steps > maxSeqLen ? maxSeqLen : request.steps;
    maxTokens = Math.max(0, positions + 1 - promptTokens);
  }
  if (maxTokens > limits.maxTokens) {
    const param = request.steps === undefined ? 'max_tokens' : 'steps';
    throw new InvalidArgumentError(
      `${param}: asks for ${maxTokens} tokens; this server generates at most ${limits.maxTokens} (--max-tokens)`,
      { param },
    );
  }
  // The context bounds what can be sampled: positions 0..maxSeqLen-1 are fed, so maxSeqLen + 1 tokens at most.
  return Math.min(maxTokens, maxSeqLen + 1 - promptTokens);
}
