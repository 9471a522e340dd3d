/**
 * OpenAI-style error bodies, `{"error": {"message", "type", "param", "code", "retryable"}}`,
 * with SwarmBee's codes. The API answers with the codes in {@link API_ERROR_STATUS} only
 * (docs/API.md lists the same; a test keeps them equal): a failure from deeper down whose
 * code is not one of them is reported as `CLUSTER_UNAVAILABLE` when it may be retried and
 * `INTERNAL` when not, its own code leading the message.
 */
import { STATUS_CODES } from 'node:http';
import {
  asSwarmBeeError,
  ChatTemplateRenderError,
  ClusterUnavailableError,
  ContextOverflowError,
  DeviceUnknownError,
  ExpectationFailedError,
  HeadersTooLargeError,
  InvalidArgumentError,
  KvBudgetExceededError,
  MethodNotAllowedError,
  ModelNotFoundError,
  NotFoundError,
  PlanInfeasibleError,
  PlanTooLargeError,
  QueueFullError,
  RequestTimeoutError,
  RequestTooLargeError,
  SwarmBeeError,
  TokenizerFailedError,
  TokenOutOfVocabularyError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from '@swarmbee/core';

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string; retryable: boolean };
}

/** Every error code the API answers with, and the HTTP status that goes with it. */
export const API_ERROR_STATUS: ReadonlyMap<string, number> = new Map(
  [
    InvalidArgumentError,
    ContextOverflowError,
    TokenOutOfVocabularyError,
    ChatTemplateRenderError,
    DeviceUnknownError,
    UnauthorizedError,
    NotFoundError,
    ModelNotFoundError,
    MethodNotAllowedError,
    RequestTimeoutError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
    ExpectationFailedError,
    PlanInfeasibleError,
    PlanTooLargeError,
    QueueFullError,
    KvBudgetExceededError,
    HeadersTooLargeError,
    SwarmBeeError,
    ClusterUnavailableError,
    TokenizerFailedError,
  ].map((kind) => [kind.code, kind.httpStatus]),
);

const TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  408: 'timeout_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  417: 'invalid_request_error',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
  431: 'invalid_request_error',
  503: 'service_unavailable',
};

/** Maps anything thrown while serving a request to a status and an OpenAI-style body. */
export function toApiError(error: unknown): { status: number; body: ApiErrorBody } {
  const coded = documented(fromFramework(error) ?? asSwarmBeeError(error));
  const status = coded.httpStatus;
  return {
    status,
    body: {
      error: {
        message: coded.message,
        type: TYPES[status] ?? 'server_error',
        param: coded.param ?? null,
        code: coded.code,
        retryable: coded.retryable,
      },
    },
  };
}

/** An error body as a complete raw HTTP/1.1 response, for a socket no framework answers on. */
export function rawErrorResponse(error: SwarmBeeError): string {
  const { status, body } = toApiError(error);
  const json = JSON.stringify(body);
  return [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(json)}`,
    'connection: close',
    '',
    json,
  ].join('\r\n');
}

function documented(error: SwarmBeeError): SwarmBeeError {
  if (API_ERROR_STATUS.has(error.code)) return error;
  const message = `${error.code}: ${error.message}`;
  if (error.retryable) return new ClusterUnavailableError(message, { cause: error });
  return new SwarmBeeError(message, { cause: error });
}

/** Fastify's own failures (body too large, bad content type, a bad URL) as coded errors. */
function fromFramework(error: unknown): SwarmBeeError | undefined {
  if (error instanceof SwarmBeeError || !(error instanceof Error)) return undefined;
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new RequestTooLargeError(`request body is too large: ${error.message}`, {
        param: 'body',
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(
        'content-type: expected application/json (the API reads JSON bodies)',
        { param: 'content-type' },
      );
    case 'FST_ERR_BAD_URL':
      return new InvalidArgumentError(`url: ${error.message}`, { param: 'url' });
  }
  const status = (error as { statusCode?: number }).statusCode;
  if (status !== undefined && status >= 400 && status < 500)
    return new InvalidArgumentError(error.message);
  return undefined;
}
