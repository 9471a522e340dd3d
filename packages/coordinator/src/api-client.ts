/**
 * A client for the coordinator's HTTP API, for whoever talks to a running cluster
 * (`swarmbee generate --url`, `profile`, `replan`, `bench --url`): JSON requests,
 * server-sent event streams, and errors as the coded SwarmBee errors the API sent.
 */
import { fromWire, InvalidArgumentError } from '@swarmbee/core';
import { createParser } from 'eventsource-parser';

export interface ApiTarget {
  /** The coordinator's API URL, with or without a trailing `/v1`. */
  url: string;
  /** Bearer key, when the API has one. */
  apiKey?: string;
}

interface ApiErrorBody {
  error?: { code: string; message: string; retryable: boolean };
}

/** `path` (e.g. `/v1/completions`) on the target's API. */
export function apiUrl(target: ApiTarget, path: string): string {
  return `${target.url.replace(/\/+$/, '').replace(/\/v1$/, '')}${path}`;
}

function headers(target: ApiTarget): Record<string, string> {
  const out: Record<string, string> = { 'content-type': 'application/json' };
  if (target.apiKey) out.authorization = `Bearer ${target.apiKey}`;
  return out;
}

function codedError(payload: ApiErrorBody, status: number, text = ''): Error {
  // SwarmBee's errors carry an object with a code; a framework's own (a 404's `error:
  // "Not Found"`) or a proxy's page do not, and are reported by status and text.
  if (typeof payload.error?.code !== 'string')
    return new InvalidArgumentError(
      `the API answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}`,
    );
  const { code, message, retryable } = payload.error;
  return fromWire({ code, message, retryable });
}

/** What a call may pass besides its body. */
export interface RequestOptions {
  /** Aborting cancels the request (and a stream being read); the server stops the sequence. */
  signal?: AbortSignal;
}

async function request(
  target: ApiTarget,
  path: string,
  init: { method: 'GET' } | { method: 'POST'; body: unknown },
  options: RequestOptions = {},
): Promise<Response> {
  const response = await fetch(apiUrl(target, path), {
    method: init.method,
    headers: headers(target),
    ...(init.method === 'POST' ? { body: JSON.stringify(init.body) } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (response.ok) return response;
  const text = await response.text();
  let payload: ApiErrorBody = {};
  try {
    payload = JSON.parse(text) as ApiErrorBody;
  } catch {
    // Not JSON (a proxy's page, say): the status and the text say what happened.
  }
  throw codedError(payload, response.status, text);
}

export async function getJson<T>(target: ApiTarget, path: string): Promise<T> {
  return (await (await request(target, path, { method: 'GET' })).json()) as T;
}

export async function postJson<T>(target: ApiTarget, path: string, body: unknown): Promise<T> {
  return (await (await request(target, path, { method: 'POST', body })).json()) as T;
}

/**
 * POSTs and reads server-sent events until the stream ends, handing each to `onEvent` as it
 * arrives; returns them in order. An error event throws its coded error after the stream.
 */
export async function postEvents<T>(
  target: ApiTarget,
  path: string,
  body: unknown,
  onEvent: (event: T) => void = () => {},
  options: RequestOptions = {},
): Promise<T[]> {
  const response = await request(target, path, { method: 'POST', body }, options);
  const events: T[] = [];
  let failure: Error | undefined;
  const parser = createParser({
    onEvent: (event) => {
      if (event.data === '[DONE]') return;
      const payload = JSON.parse(event.data) as T & ApiErrorBody;
      if (payload.error) failure = codedError(payload, response.status);
      else {
        events.push(payload);
        onEvent(payload);
      }
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
    parser.feed(decoder.decode(chunk, { stream: true }));
  if (failure) throw failure;
  return events;
}
