/**
 * What preparing a completion takes — an API body as received, or a request built in
 * process — and gives: the checked request, its prompt's token ids and, when echoed, the
 * prompt's text. Preparing grows with the request (parsing, rendering a conversation through
 * the model's chat template, tokenizing, decoding an echo), so the coordinator does it off
 * its event loop ({@link TokenizerPool}).
 */
import type { CompletionEndpoint } from '../api/requests.js';
import type { CompletionLimits, CompletionRequest } from '../completion-request.js';

export interface CompletionJob {
  /** The body of a request to an endpoint (null: it had none), or a request made in process. */
  source:
    | { endpoint: CompletionEndpoint; body: Uint8Array | null }
    | { request: CompletionRequest };
  limits: CompletionLimits;
}

export interface PreparedPrompt {
  /** The request, checked; its `prompt` is the token ids. */
  request: CompletionRequest & { prompt: number[] };
  /** An API body asked for server-sent events. */
  stream: boolean;
  /** Tokens the request may sample after its prompt. */
  maxTokens: number;
  /** The prompt's ids decoded, when the request echoes it; else ''. */
  echo: string;
}

/** Prepares completions; implemented by {@link TokenizerPool}. */
export interface PromptPreparer {
  prepare(job: CompletionJob, options?: { signal?: AbortSignal }): Promise<PreparedPrompt>;
  close(): Promise<void>;
}
