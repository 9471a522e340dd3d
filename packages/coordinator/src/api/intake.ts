/**
 * What happens to a request before any route sees it: slow clients are cut off (a
 * deadline for the headers and one for the whole request, body included), HTTP that
 * does not parse, a missing Host, an `Expect` header it cannot meet and CONNECT tunnels are
 * answered with the API's error body, and JSON bodies are parsed (json-body.ts) for the routes
 * that ask; the others get the bytes, which the completion routes parse off the event loop.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import {
  ExpectationFailedError,
  HeadersTooLargeError,
  InvalidArgumentError,
  MethodNotAllowedError,
  RequestTimeoutError,
  type SwarmBeeError,
} from '@swarmbee/core';
import type { FastifyInstance } from 'fastify';
import { rawErrorResponse, toApiError } from './errors.js';
import { parseJson } from './json-body.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route gets its JSON body parsed here, on the event loop (small admin bodies);
     * every other route gets the bytes as received, to parse off the loop or ignore.
     */
    jsonBody?: boolean;
  }
}

export interface IntakeTimeouts {
  /** Time a client has to send a request's headers, ms. Default {@link DEFAULT_HEADERS_TIMEOUT_MS}. */
  headersTimeoutMs?: number;
  /** Time a client has to send a whole request, body included, ms (≥ the headers'). Default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Node checks its request deadlines on an interval; at most this late, ms. */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1000;

/** The timeouts, checked, and the options Fastify and Node's HTTP server take for them. */
export function intakeServerOptions(timeouts: IntakeTimeouts) {
  const headersTimeout = timeouts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const requestTimeout = timeouts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  for (const [name, value] of [
    ['headers timeout', headersTimeout],
    ['request timeout', requestTimeout],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0)
      throw new InvalidArgumentError(`the ${name} must be a positive number of ms, got ${value}`);
  }
  if (headersTimeout > requestTimeout) {
    throw new InvalidArgumentError(
      `the headers timeout (${headersTimeout} ms) cannot exceed the request timeout (${requestTimeout} ms), which includes it`,
    );
  }
  return {
    headersTimeout,
    requestTimeout,
    // Checked in a hook instead, so that the refusal has the API's error body.
    requireHostHeader: false,
    connectionsCheckingInterval: Math.min(
      MAX_TIMEOUT_CHECK_INTERVAL_MS,
      Math.max(50, Math.floor(headersTimeout / 4)),
    ),
  };
}

/**
 * Answers what Node's HTTP parser refuses (Fastify's `clientErrorHandler`): a request
 * past its deadline, headers too large, anything that is not HTTP/1.1.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // A response already under way on this connection cannot be followed by another.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) socket.write(rawErrorResponse(clientError(error)));
  socket.destroy();
}

function clientError(error: Error & { code?: string }): SwarmBeeError {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new RequestTimeoutError(
        'the request did not arrive in time: its headers or its body came too slowly (see --headers-timeout-ms and --request-timeout-ms)',
      );
    case 'HPE_HEADER_OVERFLOW':
      return new HeadersTooLargeError('the request headers are larger than the server reads');
    default:
      return new InvalidArgumentError(
        `the request is not valid HTTP/1.1: ${error.code ?? ''} ${error.message}`.trim(),
      );
  }
}

/** Installs the JSON body parser and the answers Node would otherwise give without a body. */
export function installIntake(app: FastifyInstance, headersTimeoutMs: number): void {
  app.server.headersTimeout = headersTimeoutMs;
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    if (!request.routeOptions.config.jsonBody) {
      done(null, body);
      return;
    }
    try {
      done(null, parseJson((body as Buffer).toString('utf8')));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined)
      throw new InvalidArgumentError('host: an HTTP/1.1 request needs a Host header', {
        param: 'host',
      });
  });
  app.server.on('checkExpectation', (request, response: ServerResponse) => {
    const { status, body } = toApiError(
      new ExpectationFailedError(
        `expect: only "100-continue" is supported, got ${JSON.stringify(request.headers.expect)}`,
        { param: 'expect' },
      ),
    );
    const json = JSON.stringify(body);
    response.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(json),
    });
    response.end(json);
  });
  app.server.on('connect', (_request, socket: Socket) => {
    socket.on('error', () => {});
    socket.end(
      rawErrorResponse(new MethodNotAllowedError('CONNECT is not served: this is not a proxy')),
    );
  });
}
