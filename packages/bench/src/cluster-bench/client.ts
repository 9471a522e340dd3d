/**
 * The benchmark's timed completions: streams a completion from a coordinator's API
 * (through the coordinator package's API client) and stamps every token, so time to
 * first token, time per output token and end-to-end latency come from what a user
 * would see.
 */
import { type ApiTarget, postEvents } from '@swarmbee/coordinator';

export interface TimedCompletion {
  /** When the request was sent (performance.now()). */
  sentAt: number;
  /** Request sent to first token, ms. */
  ttftMs: number;
  /** Each token's arrival, ms since the request was sent. */
  tokenMs: number[];
  /** Request sent to the last byte, ms. */
  e2eMs: number;
}

/** One streamed greedy completion of exactly `maxTokens` tokens (`ignore_eos`: no early stop). */
export async function timedCompletion(
  target: ApiTarget,
  prompt: number[],
  maxTokens: number,
): Promise<TimedCompletion> {
  const started = performance.now();
  const tokenMs: number[] = [];
  await postEvents<{ choices?: { finish_reason: string | null }[] }>(
    target,
    '/v1/completions',
    { prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true },
    (event) => {
      if (event.choices?.[0]?.finish_reason === null) tokenMs.push(performance.now() - started);
    },
  );
  return {
    sentAt: started,
    ttftMs: tokenMs[0] ?? Number.NaN,
    tokenMs,
    e2eMs: performance.now() - started,
  };
}
