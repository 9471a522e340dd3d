/** Errors of serving requests: admission, limits and availability. */
import { registerErrors, SwarmBeeError } from './errors.js';

/** The admission queue is full; try again shortly. */
export class QueueFullError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_QUEUE_FULL';
  static override readonly retryable = true;
  static override readonly httpStatus = 429;
}

/** A request body or field is larger than its configured limit. */
export class RequestTooLargeError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_REQUEST_TOO_LARGE';
  static override readonly httpStatus = 413;
}

/** The cluster cannot serve right now: too few workers, deploying, or re-planning. */
export class ClusterUnavailableError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_CLUSTER_UNAVAILABLE';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/** The named model is not the one this coordinator serves. */
export class ModelNotFoundError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_MODEL_NOT_FOUND';
  static override readonly httpStatus = 404;
}

/** An API key is required and was missing or wrong. */
export class UnauthorizedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_UNAUTHORIZED';
  static override readonly httpStatus = 401;
}

/** A tokenizer thread crashed, or the pool of them is closed; the request may be retried. */
export class TokenizerFailedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TOKENIZER_FAILED';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/** No route has this path (with the API key, or when none is set: without one it is a 401). */
export class NotFoundError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_NOT_FOUND';
  static override readonly httpStatus = 404;
}

/** The path exists, but not for this method; the answer's `Allow` header lists those it has. */
export class MethodNotAllowedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_METHOD_NOT_ALLOWED';
  static override readonly httpStatus = 405;
}

/** The client took longer than the server allows to send a request's headers or its whole body. */
export class RequestTimeoutError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_REQUEST_TIMEOUT';
  static override readonly retryable = true;
  static override readonly httpStatus = 408;
}

/** A request body in a format the API does not read (it reads application/json). */
export class UnsupportedMediaTypeError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_UNSUPPORTED_MEDIA_TYPE';
  static override readonly httpStatus = 415;
}

/** An `Expect` header other than `100-continue`. */
export class ExpectationFailedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_EXPECTATION_FAILED';
  static override readonly httpStatus = 417;
}

/** A request's headers are larger than the server reads. */
export class HeadersTooLargeError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_HEADERS_TOO_LARGE';
  static override readonly httpStatus = 431;
}

registerErrors(
  QueueFullError,
  RequestTooLargeError,
  ClusterUnavailableError,
  ModelNotFoundError,
  UnauthorizedError,
  TokenizerFailedError,
  NotFoundError,
  MethodNotAllowedError,
  RequestTimeoutError,
  UnsupportedMediaTypeError,
  ExpectationFailedError,
  HeadersTooLargeError,
);
