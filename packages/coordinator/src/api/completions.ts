/**
 * The OpenAI-compatible routes: `POST /v1/completions`, `POST /v1/chat/completions` (both
 * with `stream: true` as server-sent events) and `GET /v1/models`.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Completion, CompletionRequest, GenerationService } from '../generation-service.js';
import type { Metrics } from '../metrics.js';
import { toApiError } from './errors.js';
import { chatBody, completionBody, parseBody, samplingFrom, stopsFrom } from './schemas.js';
import { EventStream } from './sse.js';

export interface CompletionRoutesOptions {
  /** The service; throws a coded error (503) while the cluster is not ready. */
  service: () => GenerationService;
  metrics: Metrics;
  modelName: string;
}

const GUARDED = { config: { access: 'guarded' } } as const;

export function completionRoutes(app: FastifyInstance, options: CompletionRoutesOptions): void {
  const { modelName } = options;
  const created = () => Math.floor(Date.now() / 1000);

  app.get('/v1/models', GUARDED, async () => ({
    object: 'list',
    data: [{ id: modelName, object: 'model', created: created(), owned_by: 'swarmbee' }],
  }));

  app.post('/v1/completions', GUARDED, async (request, reply) => {
    refuseLongIdPrompt(options, request.body);
    const body = parseBody(completionBody, request.body);
    const completion: CompletionRequest = {
      prompt: body.prompt,
      maxTokens: body.max_tokens ?? body.max_completion_tokens,
      steps: body.steps,
      sampling: samplingFrom(body),
      stop: stopsFrom(body.stop),
      ignoreEos: body.ignore_eos ?? false,
      logprobs: (body.logprobs ?? 0) > 0,
      echo: body.echo ?? false,
    };
    const id = `cmpl-${randomUUID()}`;
    const base = { id, object: 'text_completion', created: created(), model: modelName };
    return serve(request, reply, options, completion, body.stream ?? false, {
      chunk: (text, tokenIds) => ({
        ...base,
        choices: [{ index: 0, text, finish_reason: null, logprobs: null, token_ids: tokenIds }],
      }),
      done: (c) => ({
        ...base,
        choices: [{ index: 0, text: '', finish_reason: c.finishReason, logprobs: null }],
      }),
      whole: (c) => ({
        ...base,
        choices: [
          {
            index: 0,
            text: c.text,
            finish_reason: c.finishReason,
            logprobs: completion.logprobs
              ? { token_logprobs: c.logprobs, tokens: c.tokenIds.slice(c.promptTokens).map(String) }
              : null,
            token_ids: c.tokenIds,
          },
        ],
        usage: usage(c),
        timings: timings(c),
      }),
    });
  });

  app.post('/v1/chat/completions', GUARDED, async (request, reply) => {
    const body = parseBody(chatBody, request.body);
    const completion: CompletionRequest = {
      prompt: { messages: body.messages },
      maxTokens: body.max_completion_tokens ?? body.max_tokens,
      steps: body.steps,
      sampling: samplingFrom(body),
      stop: stopsFrom(body.stop),
      ignoreEos: body.ignore_eos ?? false,
      logprobs: body.logprobs ?? false,
    };
    const id = `chatcmpl-${randomUUID()}`;
    const base = { id, created: created(), model: modelName };
    let first = true;
    return serve(request, reply, options, completion, body.stream ?? false, {
      chunk: (text, tokenIds) => {
        const delta = first ? { role: 'assistant', content: text } : { content: text };
        first = false;
        return {
          ...base,
          object: 'chat.completion.chunk',
          choices: [{ index: 0, delta, finish_reason: null, token_ids: tokenIds }],
        };
      },
      done: (c) => ({
        ...base,
        object: 'chat.completion.chunk',
        choices: [{ index: 0, delta: {}, finish_reason: c.finishReason }],
      }),
      whole: (c) => ({
        ...base,
        object: 'chat.completion',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: c.text },
            finish_reason: c.finishReason,
            token_ids: c.tokenIds,
          },
        ],
        usage: usage(c),
        timings: timings(c),
      }),
    });
  });
}

/**
 * A token-id prompt longer than the server accepts is refused by its length, before
 * the schema walks every element of a body that may hold a quarter of a million.
 */
function refuseLongIdPrompt(options: CompletionRoutesOptions, body: unknown): void {
  const prompt = (body as { prompt?: unknown } | null | undefined)?.prompt;
  if (!Array.isArray(prompt) || prompt.length === 0) return;
  let service: GenerationService;
  try {
    service = options.service();
  } catch {
    return; // No service yet: the request is refused with why once parsed.
  }
  service.checkPromptLength(prompt.length);
}

interface Shapes {
  /** A streamed piece: its text and the token ids that made it (SwarmBee extension `token_ids`). */
  chunk: (text: string, tokenIds: number[]) => unknown;
  done: (completion: Completion) => unknown;
  whole: (completion: Completion) => unknown;
}

async function serve(
  request: FastifyRequest,
  reply: FastifyReply,
  options: CompletionRoutesOptions,
  completion: CompletionRequest,
  stream: boolean,
  shapes: Shapes,
): Promise<unknown> {
  const service = options.service();
  const abort = new AbortController();
  // The client going away cancels its sequence and frees its KV cache.
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  const endpoint = request.routeOptions.url ?? request.url;
  const prepared = await service.prepare(completion, { signal: abort.signal });
  if (!stream) {
    const result = await service.run(prepared, { signal: abort.signal });
    options.metrics.observe(endpoint, result);
    return shapes.whole(result);
  }
  // prepare() has thrown any request error as plain JSON; from here on errors travel as events.
  reply.hijack();
  const events = new EventStream(reply.raw);
  try {
    const result = await service.run(prepared, {
      signal: abort.signal,
      onText: (text) => events.send(shapes.chunk(text, [])),
      // One event per token, even one that shows no text yet: clients can count and time them.
      onToken: (id, text) => events.send(shapes.chunk(text, [id])),
    });
    options.metrics.observe(endpoint, result);
    events.send(shapes.done(result));
  } catch (error) {
    const { body } = toApiError(error);
    options.metrics.requestErrors.inc({ code: body.error.code });
    events.send(body);
  }
  events.end();
  return reply;
}

function usage(c: Completion) {
  return {
    prompt_tokens: c.promptTokens,
    completion_tokens: c.completionTokens,
    total_tokens: c.promptTokens + c.completionTokens,
  };
}

function timings(c: Completion) {
  return {
    first_token_ms: round(c.firstTokenMs),
    total_ms: round(c.totalMs),
    tokens_per_s: round(c.tokensPerSecond),
  };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
