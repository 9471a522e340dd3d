/**
 * Greedy completions streamed from the coordinator's API while faults are injected,
 * every token stamped on arrival: what a user sees. A stream ends whole, with a coded
 * error, or with an uncoded failure (a dropped connection); a deadline bounds each one.
 */
import { postEvents } from '@swarmbee/coordinator';
import { SwarmBeeError } from '@swarmbee/core';
import { promptIds } from '../cluster-bench/scenario.js';

export interface StreamSpec {
  prompt: number[];
  maxTokens: number;
}

export interface StreamOutcome {
  /** Each token's id and arrival (performance.now()). */
  tokens: { id: number; at: number }[];
  /** When the server accepted the request (headers arrived), performance.now(). */
  openedAt?: number;
  /** The coded error the stream ended with, if any. */
  error?: { code: string; retryable: boolean; message: string };
  /** A failure without a code (the connection dropped, the deadline passed). */
  failure?: string;
}

export interface StreamHooks {
  onOpen?: (index: number) => void;
  onToken?: (index: number, count: number) => void;
}

/** `count` prompts of `promptTokens` token ids, the same for every run. */
export function chaosPrompts(
  count: number,
  promptTokens: number,
  maxTokens: number,
  vocab: number,
): StreamSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    prompt: promptIds(promptTokens, 100 + i, vocab),
    maxTokens,
  }));
}

/** Streams one greedy completion of exactly `maxTokens` tokens (no early stop). */
export async function streamCompletion(
  apiUrl: string,
  spec: StreamSpec,
  index: number,
  deadlineMs: number,
  hooks: StreamHooks = {},
): Promise<StreamOutcome> {
  const outcome: StreamOutcome = { tokens: [] };
  try {
    await postEvents<{ choices?: { finish_reason: string | null; token_ids?: number[] }[] }>(
      { url: apiUrl },
      '/v1/completions',
      {
        prompt: spec.prompt,
        max_tokens: spec.maxTokens,
        temperature: 0,
        ignore_eos: true,
        stream: true,
      },
      (event) => {
        const choice = event.choices?.[0];
        if (choice?.finish_reason !== null) return;
        for (const id of choice.token_ids ?? []) outcome.tokens.push({ id, at: performance.now() });
        hooks.onToken?.(index, outcome.tokens.length);
      },
      {
        signal: AbortSignal.timeout(deadlineMs),
        onOpen: () => {
          outcome.openedAt = performance.now();
          hooks.onOpen?.(index);
        },
      },
    );
  } catch (error) {
    if (error instanceof SwarmBeeError && error.code !== 'SWARMBEE_ERR_INVALID_ARGUMENT')
      outcome.error = { code: error.code, retryable: error.retryable, message: error.message };
    else outcome.failure = error instanceof Error ? error.message : String(error);
  }
  return outcome;
}

/** Runs every stream at once; resolves when all have ended. */
export function streamAll(
  apiUrl: string,
  specs: readonly StreamSpec[],
  deadlineMs: number,
  hooks: StreamHooks = {},
): Promise<StreamOutcome[]> {
  return Promise.all(specs.map((spec, i) => streamCompletion(apiUrl, spec, i, deadlineMs, hooks)));
}
