/**
 * The coordinator's HTTP API: the OpenAI-compatible routes (completions.ts), SwarmBee's
 * cluster routes (admin.ts), their live feed and the web console at `/` (console/),
 * `GET /healthz` and `GET /metrics` (Prometheus text). Every
 * answer that is not a success carries the error body of errors.ts; routing.ts decides
 * who may call what on the matched route; intake.ts deals with slow or malformed clients.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, ListenFailedError } from '@swarmbee/core';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { benchRunRoutes } from '../console/bench-runs.js';
import { eventRoutes } from '../console/event-routes.js';
import { staticRoutes } from '../console/static-routes.js';
import type { GenerationService } from '../generation-service.js';
import type { Metrics } from '../metrics.js';
import type { ServedModels } from '../served-models.js';
import { type AdminHandlers, adminRoutes } from './admin.js';
import { completionRoutes } from './completions.js';
import { toApiError } from './errors.js';
import {
  answerClientError,
  type IntakeTimeouts,
  installIntake,
  intakeServerOptions,
} from './intake.js';
import { guardRoutes } from './routing.js';

export interface ApiOptions extends IntakeTimeouts {
  /** The service; throws a coded error (503) while the cluster is not ready. */
  service: () => GenerationService;
  health: () => { ready: boolean; [detail: string]: unknown };
  metrics: Metrics;
  modelName: string;
  /** The models requests may name (`GET /v1/models`). Default: `modelName` alone. */
  models?: ServedModels;
  /** Require `Authorization: Bearer <key>` on the /v1 and /swarmbee routes. Default: no key. */
  apiKey?: string;
  /** Largest request body, bytes. Default {@link DEFAULT_BODY_LIMIT_BYTES}. */
  bodyLimitBytes?: number;
  /** Directory of `swarmbee bench` reports listed at /swarmbee/bench. Default: none listed. */
  benchDir?: string;
  /** SwarmBee's cluster routes (/swarmbee/*); absent for a server without a cluster. */
  admin?: AdminHandlers;
  /** Serve https:// with this certificate (PEM text or files). Default: http://. */
  tls?: { cert?: string | Buffer; key?: string | Buffer; certFile?: string; keyFile?: string };
}

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

const OPEN = { config: { access: 'open' } } as const;

export function createApi(options: ApiOptions): FastifyInstance {
  const timeouts = intakeServerOptions(options);
  const serverOptions = {
    requestTimeout: timeouts.requestTimeout,
    headersTimeout: timeouts.headersTimeout,
    connectionsCheckingInterval: timeouts.connectionsCheckingInterval,
    requireHostHeader: timeouts.requireHostHeader,
  };
  const app = Fastify({
    bodyLimit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    logger: false,
    requestTimeout: timeouts.requestTimeout,
    clientErrorHandler: answerClientError,
    // A URL the router cannot decode: answered like every other error.
    frameworkErrors: (error, _request, reply) => {
      const { status, body } = toApiError(error);
      void (reply as FastifyReply).status(status).send(body);
    },
    ...(options.tls
      ? {
          https: {
            ...serverOptions,
            cert: pem(options.tls.cert, options.tls.certFile),
            key: pem(options.tls.key, options.tls.keyFile),
          },
        }
      : { http: serverOptions }),
  });
  installIntake(app, timeouts.headersTimeout);
  app.setErrorHandler((error, _request, reply) => {
    const { status, body } = toApiError(error);
    options.metrics.requestErrors.inc({ code: body.error.code });
    void reply.status(status).send(body);
  });
  const guard = guardRoutes(app, options.apiKey);

  if (options.admin) {
    adminRoutes(app, options.admin);
    eventRoutes(app, { cluster: options.admin.cluster, metrics: options.metrics });
    benchRunRoutes(app, options.benchDir);
    staticRoutes(app);
  }
  app.get('/healthz', OPEN, async (_request, reply) => {
    const health = options.health();
    return reply.status(health.ready ? 200 : 503).send(health);
  });
  app.get('/metrics', OPEN, async (_request, reply) => {
    return reply
      .type(options.metrics.registry.contentType)
      .send(await options.metrics.registry.metrics());
  });
  completionRoutes(app, options);
  guard.seal();
  return app;
}

/**
 * Binds the API to `host:port` (port 0: any free port) and returns its URL; an address
 * that cannot be bound is a coded {@link ListenFailedError}.
 */
export async function listenApi(
  app: FastifyInstance,
  at: { host: string; port: number; tls: boolean },
): Promise<string> {
  try {
    await app.listen({ host: at.host, port: at.port });
  } catch (error) {
    throw new ListenFailedError(
      `cannot serve the API on ${at.host}:${at.port}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : at.port;
  const host = at.host.includes(':') ? `[${at.host}]` : at.host;
  return `${at.tls ? 'https' : 'http'}://${host}:${port}`;
}

function pem(text: string | Buffer | undefined, file: string | undefined): string | Buffer {
  if (text !== undefined) return text;
  if (file !== undefined) return readFileSync(file);
  throw new InvalidArgumentError('https needs a certificate and a key');
}
