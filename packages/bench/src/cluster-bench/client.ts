/**
 * The benchmark's HTTP client: streams completions from a coordinator's API and
 * stamps every token, so time to first token, time per output token and
 * end-to-end latency come from what a user would see.
 */
import { createParser } from 'eventsource-parser';

export interface ApiTarget {
  url: string;
  apiKey?: string;
}

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

function headers(target: ApiTarget): Record<string, string> {
  const out: Record<string, string> = { 'content-type': 'application/json' };
  if (target.apiKey) out.authorization = `Bearer ${target.apiKey}`;
  return out;
}

export function apiUrl(target: ApiTarget, path: string): string {
  return `${target.url.replace(/\/+$/, '').replace(/\/v1$/, '')}${path}`;
}

export async function getJson<T>(target: ApiTarget, path: string): Promise<T> {
  const response = await fetch(apiUrl(target, path), { headers: headers(target) });
  if (!response.ok)
    throw new Error(`GET ${path} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

export async function postJson<T>(target: ApiTarget, path: string, body: unknown): Promise<T> {
  const response = await fetch(apiUrl(target, path), {
    method: 'POST',
    headers: headers(target),
    body: JSON.stringify(body),
  });
  if (!response.ok)
    throw new Error(`POST ${path} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/** One streamed greedy completion of exactly `maxTokens` tokens (`ignore_eos`: no early stop). */
export async function timedCompletion(
  target: ApiTarget,
  prompt: number[],
  maxTokens: number,
): Promise<TimedCompletion> {
  const started = performance.now();
  const response = await fetch(apiUrl(target, '/v1/completions'), {
    method: 'POST',
    headers: headers(target),
    body: JSON.stringify({
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      ignore_eos: true,
      stream: true,
    }),
  });
  if (!response.ok)
    throw new Error(`completion answered ${response.status}: ${await response.text()}`);
  const tokenMs: number[] = [];
  let failure: string | undefined;
  const parser = createParser({
    onEvent: (event) => {
      if (event.data === '[DONE]') return;
      const payload = JSON.parse(event.data) as {
        choices?: { text: string; finish_reason: string | null }[];
        error?: { code: string; message: string };
      };
      if (payload.error) failure = `${payload.error.code}: ${payload.error.message}`;
      else if (payload.choices?.[0]?.finish_reason === null)
        tokenMs.push(performance.now() - started);
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
    parser.feed(decoder.decode(chunk, { stream: true }));
  if (failure) throw new Error(failure);
  return {
    sentAt: started,
    ttftMs: tokenMs[0] ?? Number.NaN,
    tokenMs,
    e2eMs: performance.now() - started,
  };
}

/** POSTs and reads server-sent events until the stream ends; returns the events in order. */
export async function postEvents<T>(
  target: ApiTarget,
  path: string,
  body: unknown,
  onEvent: (event: T) => void = () => {},
): Promise<T[]> {
  const response = await fetch(apiUrl(target, path), {
    method: 'POST',
    headers: headers(target),
    body: JSON.stringify(body),
  });
  if (!response.ok)
    throw new Error(`POST ${path} answered ${response.status}: ${await response.text()}`);
  const events: T[] = [];
  let failure: string | undefined;
  const parser = createParser({
    onEvent: (event) => {
      if (event.data === '[DONE]') return;
      const payload = JSON.parse(event.data) as T & { error?: { code: string; message: string } };
      if (payload.error) failure = `${payload.error.code}: ${payload.error.message}`;
      else {
        events.push(payload);
        onEvent(payload);
      }
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
    parser.feed(decoder.decode(chunk, { stream: true }));
  if (failure) throw new Error(failure);
  return events;
}
