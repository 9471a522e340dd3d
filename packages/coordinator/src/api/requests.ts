/**
 * The bytes of a `/v1/completions` or `/v1/chat/completions` body into the request the
 * service runs: parsed as JSON (prototype keys refused), a token-id prompt over the limit
 * refused by its length before anything walks it, then checked by the schema. Pure, so it
 * runs in a tokenizer thread: nothing that grows with a body runs on the event loop.
 */
import {
  type CompletionLimits,
  type CompletionRequest,
  checkPromptLength,
} from '../completion-request.js';
import { parseJson } from './json-body.js';
import {
  chatBody,
  chatPromptFrom,
  completionBody,
  parseBody,
  samplingFrom,
  stopsFrom,
} from './schemas.js';

export type CompletionEndpoint = 'completions' | 'chat';

export interface ParsedCompletion {
  request: CompletionRequest;
  /** The body asked for server-sent events. */
  stream: boolean;
}

/** `bytes` is the body as received, or null when the request had none. */
export function completionFromBody(
  endpoint: CompletionEndpoint,
  bytes: Uint8Array | null,
  limits: CompletionLimits,
): ParsedCompletion {
  const value =
    bytes === null
      ? undefined
      : parseJson(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  if (endpoint === 'chat') {
    const body = parseBody(chatBody, value);
    return {
      request: {
        prompt: chatPromptFrom(body),
        maxTokens: body.max_completion_tokens ?? body.max_tokens,
        steps: body.steps,
        sampling: samplingFrom(body),
        stop: stopsFrom(body.stop),
        ignoreEos: body.ignore_eos ?? false,
        logprobs: body.logprobs ?? false,
        ...(body.model === undefined ? {} : { model: body.model }),
      },
      stream: body.stream ?? false,
    };
  }
  const prompt = (value as { prompt?: unknown } | null | undefined)?.prompt;
  // A quarter of a million ids is refused by their count before the schema walks them.
  if (Array.isArray(prompt) && prompt.length > 0) checkPromptLength(prompt.length, limits);
  const body = parseBody(completionBody, value);
  return {
    request: {
      prompt: body.prompt,
      maxTokens: body.max_tokens ?? body.max_completion_tokens,
      steps: body.steps,
      sampling: samplingFrom(body),
      stop: stopsFrom(body.stop),
      ignoreEos: body.ignore_eos ?? false,
      logprobs: (body.logprobs ?? 0) > 0,
      echo: body.echo ?? false,
      ...(body.model === undefined ? {} : { model: body.model }),
    },
    stream: body.stream ?? false,
  };
}
