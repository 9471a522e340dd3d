/**
 * `swarmbee generate --url`: the same flags against a running coordinator's API.
 * Text streams from server-sent events; --json asks for the whole completion.
 */
import { fromWire, type SamplingParams, type WireError } from '@swarmbee/core';
import { createParser } from 'eventsource-parser';

export interface RemoteGenerateRequest {
  url: string;
  prompt: string | number[];
  steps: number;
  sampling: SamplingParams;
  apiKey?: string;
}

interface CompletionResponse {
  choices: { text: string; token_ids?: number[] }[];
  timings?: { tokens_per_s: number };
  error?: { code: string; message: string; retryable: boolean };
}

function body(request: RemoteGenerateRequest, stream: boolean): string {
  const { sampling } = request;
  return JSON.stringify({
    prompt: request.prompt,
    steps: request.steps,
    temperature: sampling.temperature,
    top_p: sampling.topP,
    top_k: sampling.topK,
    ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
    echo: true,
    stream,
  });
}

async function post(request: RemoteGenerateRequest, stream: boolean): Promise<Response> {
  const endpoint = `${request.url.replace(/\/+$/, '').replace(/\/v1$/, '')}/v1/completions`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (request.apiKey) headers.authorization = `Bearer ${request.apiKey}`;
  const response = await fetch(endpoint, { method: 'POST', headers, body: body(request, stream) });
  if (!response.ok) throw apiError((await response.json()) as CompletionResponse, response.status);
  return response;
}

function apiError(payload: CompletionResponse, status: number): Error {
  const error = payload.error;
  if (!error) return new Error(`the API answered ${status}`);
  return fromWire({
    code: error.code,
    message: error.message,
    retryable: error.retryable,
  } satisfies WireError);
}

/** The whole completion: text (prompt included), token ids and speed. */
export async function remoteComplete(
  request: RemoteGenerateRequest,
): Promise<{ text: string; tokenIds: number[]; tokensPerSecond: number }> {
  const payload = (await (await post(request, false)).json()) as CompletionResponse;
  const choice = payload.choices[0]!;
  return {
    text: choice.text,
    tokenIds: choice.token_ids ?? [],
    tokensPerSecond: payload.timings?.tokens_per_s ?? 0,
  };
}

/** Streams the completion's text to `onText` as it arrives. */
export async function remoteStream(
  request: RemoteGenerateRequest,
  onText: (text: string) => void,
): Promise<void> {
  const response = await post(request, true);
  let failure: Error | undefined;
  const parser = createParser({
    onEvent: (event) => {
      if (event.data === '[DONE]') return;
      const payload = JSON.parse(event.data) as CompletionResponse;
      if (payload.error) failure = apiError(payload, 200);
      else if (payload.choices[0]?.text) onText(payload.choices[0].text);
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
    parser.feed(decoder.decode(chunk, { stream: true }));
  if (failure) throw failure;
}
