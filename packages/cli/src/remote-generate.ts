/**
 * `swarmbee generate --url`: the same flags against a running coordinator's API.
 * Text streams from server-sent events; --json asks for the whole completion.
 */
import { getJson, postEvents, postJson } from '@swarmbee/coordinator/client';
import { ModelNotFoundError, type SamplingParams } from '@swarmbee/core';

export interface RemoteGenerateRequest {
  url: string;
  prompt: string | number[];
  steps: number;
  sampling: SamplingParams;
  apiKey?: string;
  /** The model asked for (`<model>:<adapter>` for a served adapter). Default: the coordinator's. */
  model?: string;
}

interface CompletionResponse {
  choices: { text: string; token_ids?: number[] }[];
  timings?: { tokens_per_s: number };
}

function body(request: RemoteGenerateRequest, stream: boolean): unknown {
  const { sampling } = request;
  return {
    ...(request.model === undefined ? {} : { model: request.model }),
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

/**
 * The id of adapter `name` among the models the coordinator serves (`<model>:<name>`).
 * @throws ModelNotFoundError naming the ones it serves
 */
export async function servedAdapterModel(
  target: { url: string; apiKey?: string },
  name: string,
): Promise<string> {
  const { data } = await getJson<{ data: { id: string }[] }>(target, '/v1/models');
  const ids = data.map((m) => m.id);
  const id = ids.find((m) => m.endsWith(`:${name}`));
  if (id === undefined)
    throw new ModelNotFoundError(
      `the coordinator at ${target.url} serves no adapter ${JSON.stringify(name)}; it serves ${ids.join(', ')}`,
    );
  return id;
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
