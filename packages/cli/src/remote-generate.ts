/**
 * `swarmbee generate --url`: the same flags against a running coordinator's API.
 * Text streams from server-sent events; --json asks for the whole completion.
 */
import { postEvents, postJson } from '@swarmbee/coordinator/client';
import type { SamplingParams } from '@swarmbee/core';

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
}

function body(request: RemoteGenerateRequest, stream: boolean): unknown {
  const { sampling } = request;
  return {
    prompt: request.prompt,
    steps: request.steps,
    temperature: sampling.temperature,
    top_p: sampling.topP,
    top_k: sampling.topK,
    ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
    echo: true,
    stream,
  };
}

/** The whole completion: text (prompt included), token ids and speed. */
export async function remoteComplete(
  request: RemoteGenerateRequest,
): Promise<{ text: string; tokenIds: number[]; tokensPerSecond: number }> {
  const payload = await postJson<CompletionResponse>(
    request,
    '/v1/completions',
    body(request, false),
  );
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
  await postEvents<CompletionResponse>(request, '/v1/completions', body(request, true), (event) => {
    if (event.choices[0]?.text) onText(event.choices[0].text);
  });
}
