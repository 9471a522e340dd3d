/** OpenAI-style error bodies: {"error": {"message", "type", "param", "code"}}, with SwarmBee's codes. */
import {
  asSwarmBeeError,
  InvalidArgumentError,
  RequestTooLargeError,
  SwarmBeeError,
} from '@swarmbee/core';

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string; retryable: boolean };
}

const TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'not_found_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
  503: 'service_unavailable',
};

/** Maps anything thrown while serving a request to a status and an OpenAI-style body. */
export function toApiError(error: unknown): { status: number; body: ApiErrorBody } {
  const coded = fromFramework(error) ?? asSwarmBeeError(error);
  const status = coded.httpStatus;
  return {
    status,
    body: {
      error: {
        message: coded.message,
        type: TYPES[status] ?? 'server_error',
        param: null,
        code: coded.code,
        retryable: coded.retryable,
      },
    },
  };
}

/** Fastify's own failures (body too large, malformed JSON) as coded errors. */
function fromFramework(error: unknown): SwarmBeeError | undefined {
  if (error instanceof SwarmBeeError || !(error instanceof Error)) return undefined;
  const code = (error as { code?: string }).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new RequestTooLargeError(`request body is too large: ${error.message}`);
  const status = (error as { statusCode?: number }).statusCode;
  if (status !== undefined && status >= 400 && status < 500)
    return new InvalidArgumentError(error.message);
  return undefined;
}
