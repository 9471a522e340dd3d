/**
 * The OpenAI-compatible HTTP API: `POST /v1/completions`, `POST /v1/chat/completions`
 * (both with `stream: true` as server-sent events), `GET /v1/models`, `GET /healthz`
 * and `GET /metrics` (Prometheus text).
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, UnauthorizedError } from '@swarmbee/core';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Completion, CompletionRequest, GenerationService } from '../generation-service.js';
import type { Metrics } from '../metrics.js';
import { type AdminHandlers, adminRoutes } from './admin.js';
import { toApiError } from './errors.js';
import {
  chatBody,
  chatPromptFrom,
  completionBody,
  parseBody,
  samplingFrom,
  stopsFrom,
} from './schemas.js';
import { EventStream } from './sse.js';

export interface ApiOptions {
  /** The service, or undefined while the cluster is not ready (requests get 503). */
  service: () => GenerationService;
  health: () => { ready: boolean; [detail: string]: unknown };
  metrics: Metrics;
  modelName: string;
  /** Require `Authorization: Bearer <key>` on /v1 routes. Default: no key. */
  apiKey?: string;
  /** Largest request body, bytes. Default {@link DEFAULT_BODY_LIMIT_BYTES}. */
  bodyLimitBytes?: number;
  /** SwarmBee's cluster routes (/swarmbee/*); absent for a server without a cluster. */
  admin?: AdminHandlers;
  /** Serve https:// with this certificate (PEM text or files). Default: http://. */
  tls?: { cert?: string | Buffer; key?: string | Buffer; certFile?: string; keyFile?: string };
}

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

export function createApi(options: ApiOptions): FastifyInstance {
  const app = Fastify({
    bodyLimit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    logger: false,
    ...(options.tls
      ? {
          https: {
            cert: pem(options.tls.cert, options.tls.certFile),
            key: pem(options.tls.key, options.tls.keyFile),
          },
        }
      : {}),
  });
  const created = () => Math.floor(Date.now() / 1000);

  app.setErrorHandler((error, _request, reply) => {
    const { status, body } = toApiError(error);
    options.metrics.requestErrors.inc({ code: body.error.code });
    void reply.status(status).send(body);
  });
  app.addHook('onRequest', async (request) => {
    const guarded = request.url.startsWith('/v1/') || request.url.startsWith('/swarmbee/');
    if (options.apiKey && guarded && !keyMatches(request.headers.authorization, options.apiKey)) {
      throw new UnauthorizedError('this API needs "Authorization: Bearer <api key>"');
    }
  });

  if (options.admin) adminRoutes(app, options.admin);
  app.get('/healthz', async (_request, reply) => {
    const health = options.health();
    return reply.status(health.ready ? 200 : 503).send(health);
  });
  app.get('/metrics', async (_request, reply) => {
    return reply
      .type(options.metrics.registry.contentType)
      .send(await options.metrics.registry.metrics());
  });
  app.get('/v1/models', async () => ({
    object: 'list',
    data: [{ id: options.modelName, object: 'model', created: created(), owned_by: 'swarmbee' }],
  }));

  app.post('/v1/completions', async (request, reply) => {
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
    const base = { id, object: 'text_completion', created: created(), model: options.modelName };
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

  app.post('/v1/chat/completions', async (request, reply) => {
    const body = parseBody(chatBody, request.body);
    const completion: CompletionRequest = {
      prompt: chatPromptFrom(body),
      maxTokens: body.max_completion_tokens ?? body.max_tokens,
      steps: body.steps,
      sampling: samplingFrom(body),
      stop: stopsFrom(body.stop),
      ignoreEos: body.ignore_eos ?? false,
      logprobs: body.logprobs ?? false,
    };
    const id = `chatcmpl-${randomUUID()}`;
    const base = { id, created: created(), model: options.modelName };
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
  return app;
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
  options: ApiOptions,
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
  const prepared = service.prepare(completion);
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

function pem(text: string | Buffer | undefined, file: string | undefined): string | Buffer {
  if (text !== undefined) return text;
  if (file !== undefined) return readFileSync(file);
  throw new InvalidArgumentError('https needs a certificate and a key');
}

function keyMatches(header: string | undefined, key: string): boolean {
  const given = Buffer.from(header?.replace(/^Bearer\s+/i, '') ?? '');
  const expected = Buffer.from(key);
  return given.length === expected.length && timingSafeEqual(given, expected);
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
