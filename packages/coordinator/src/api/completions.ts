/**
 * The OpenAI-compatible routes: `POST /v1/completions`, `POST /v1/chat/completions` (both
 * with `stream: true` as server-sent events) and `GET /v1/models`.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CompletionRequest } from '../completion-request.js';
import type { Completion, GenerationService } from '../generation-service.js';
import type { Metrics } from '../metrics.js';
import { ServedModels } from '../served-models.js';
import { toApiError } from './errors.js';
import type { CompletionEndpoint } from './requests.js';
import { EventStream } from './sse.js';

export interface CompletionRoutesOptions {
  /** The service; throws a coded error (503) while the cluster is not ready. */
  service: () => GenerationService;
  metrics: Metrics;
  modelName: string;
  /** The models requests may name (`GET /v1/models`). Default: `modelName` alone. */
  models?: ServedModels;
}

/** Bodies reach these routes as received bytes, parsed off the event loop. */
const GUARDED = { config: { access: 'guarded' } } as const;

export function completionRoutes(app: FastifyInstance, options: CompletionRoutesOptions): void {
  const models = options.models ?? new ServedModels(options.modelName);
  const created = () => Math.floor(Date.now() / 1000);

  app.get('/v1/models', GUARDED, async () => ({
    object: 'list',
    data: models.ids.map((id) => ({
      id,
      object: 'model',
      created: created(),
      owned_by: 'swarmbee',
    })),
  }));

  app.post('/v1/completions', GUARDED, async (request, reply) => {
    const id = `cmpl-${randomUUID()}`;
    return serve(request, reply, options, 'completions', (completion, model) => {
      const base = { id, object: 'text_completion', created: created(), model };
      return {
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
                ? {
                    token_logprobs: c.logprobs,
                    tokens: c.tokenIds.slice(c.promptTokens).map(String),
                  }
                : null,
              token_ids: c.tokenIds,
            },
          ],
          usage: usage(c),
          timings: timings(c),
        }),
      };
    });
  });

  app.post('/v1/chat/completions', GUARDED, async (request, reply) => {
    const id = `chatcmpl-${randomUUID()}`;
    let first = true;
    return serve(request, reply, options, 'chat', (_, model) => {
      const base = { id, created: created(), model };
      return {
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
      };
    });
  });
}

interface Shapes {
  /** A streamed piece: its text and the token ids that made it (SwarmBee extension `token_ids`). */
  chunk: (text: string, tokenIds: number[]) => unknown;
  done: (completion: Completion) => unknown;
  whole: (completion: Completion) => unknown;
}

/**
 * Prepares the request from its body (off the event loop), runs it, and answers with
 * `shapesFor`'s JSON, or its events when the body asked for a stream.
 */
async function serve(
  request: FastifyRequest,
  reply: FastifyReply,
  options: CompletionRoutesOptions,
  kind: CompletionEndpoint,
  /** The answer's shapes for the request and the id of the model that serves it. */
  shapesFor: (completion: CompletionRequest, model: string) => Shapes,
): Promise<unknown> {
  const service = options.service();
  const abort = new AbortController();
  // The client going away cancels its sequence and frees its KV cache.
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  const endpoint = request.routeOptions.url ?? request.url;
  const body = request.body === undefined ? null : (request.body as Buffer);
  const prepared = await service.prepareBody(kind, body, { signal: abort.signal });
  const shapes = shapesFor(prepared.request, prepared.model.id);
  if (!prepared.stream) {
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
