/** HTTP answers and network failures of downloads, as coded errors. */
import {
  DownloadFailedError,
  DownloadNotFoundError,
  NetworkUnavailableError,
  SwarmBeeError,
} from '@swarmbee/core';

/** The error for a response that is not 2xx; `what` names the model for a 404. */
export function statusError(url: string, response: Response, what?: string): SwarmBeeError {
  const status = `${response.status} ${response.statusText}`.trim();
  void response.body?.cancel().catch(() => {});
  if (response.status === 404)
    return new DownloadNotFoundError(
      `${url} answered ${status}: ${what ? `${what} does not exist` : 'no such model or file'} (or it is private)`,
    );
  if (response.status === 401 || response.status === 403)
    return new DownloadFailedError(
      `${url} answered ${status}: the model is gated or private; accept its licence on the Hub and set HF_TOKEN`,
    );
  return new DownloadFailedError(`${url} answered ${status}`, {
    retryable: response.status >= 500 || response.status === 429,
  });
}

/** A failed fetch or body read as a retryable error naming the cause (ECONNREFUSED, ENOTFOUND, …). */
export function networkError(url: string, error: unknown, stalledMs?: number): SwarmBeeError {
  if (error instanceof SwarmBeeError) return error;
  if (stalledMs !== undefined)
    return new NetworkUnavailableError(`${url}: no data for ${stalledMs / 1000} s`, {
      cause: error,
    });
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (error as Error).message;
  return new NetworkUnavailableError(`cannot download ${url}: ${why}`, { cause: error });
}
