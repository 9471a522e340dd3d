/** Calls to a coordinator's HTTP API for the CLI: JSON requests, SSE streams, coded errors. */
import { fromWire, InvalidArgumentError } from '@swarmbee/core';
import { createParser } from 'eventsource-parser';

export interface ApiTarget {
  url: string;
  apiKey?: string;
}

interface ApiError {
  error?: { code: string; message: string; retryable: boolean };
}

function endpoint(target: ApiTarget, path: string): string {
  return `${target.url.replace(/\/+$/, '').replace(/\/v1$/, '')}${path}`;
}

function headers(target: ApiTarget): Record<string, string> {
  const out: Record<string, string> = { 'content-type': 'application/json' };
  if (target.apiKey) out.authorization = `Bearer ${target.apiKey}`;
  return out;
}

function apiError(payload: ApiError, status: number): Error {
  if (!payload.error) return new InvalidArgumentError(`the API answered ${status}`);
  return fromWire({
    code: payload.error.code,
    message: payload.error.message,
    retryable: payload.error.retryable,
  });
}

export async function postJson<T>(target: ApiTarget, path: string, body: unknown): Promise<T> {
  const response = await fetch(endpoint(target, path), {
    method: 'POST',
    headers: headers(target),
    body: JSON.stringify(body),
  });
  const payload = (await response.json()) as T & ApiError;
  if (!response.ok) throw apiError(payload, response.status);
  return payload;
}

/** Posts and reads server-sent events, handing each parsed event to `onEvent`; an error event throws. */
export async function postEvents(
  target: ApiTarget,
  path: string,
  body: unknown,
  onEvent: (event: unknown) => void,
): Promise<void> {
  const response = await fetch(endpoint(target, path), {
    method: 'POST',
    headers: headers(target),
    body: JSON.stringify(body),
  });
  if (!response.ok) throw apiError((await response.json()) as ApiError, response.status);
  let failure: Error | undefined;
  const parser = createParser({
    onEvent: (event) => {
      if (event.data === '[DONE]') return;
      const payload = JSON.parse(event.data) as ApiError;
      if (payload.error) failure = apiError(payload, 200);
      else onEvent(payload);
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
    parser.feed(decoder.decode(chunk, { stream: true }));
  if (failure) throw failure;
}
