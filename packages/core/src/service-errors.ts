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

registerErrors(
  QueueFullError,
  RequestTooLargeError,
  ClusterUnavailableError,
  ModelNotFoundError,
  UnauthorizedError,
  TokenizerFailedError,
);
