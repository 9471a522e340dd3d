/** Answering the coordinator with a coded error, as every part of the worker does. */
import { asSwarmBeeError } from '@swarmbee/core';
import { type ControlMessage, errorMessageFor } from '@swarmbee/protocol';

/**
 * Sends `error` (coded if it is not) as an `error` message about `about` (the request or the
 * micro-batch it answers), naming `stage` when there is one. A coordinator already gone is
 * not an error here: it learns from the closed connection.
 */
export function sendErrorReply(
  send: ((message: ControlMessage) => void) | undefined,
  error: unknown,
  about: { requestId?: string; batchId?: number },
  stage?: number,
): void {
  try {
    send?.({
      ...errorMessageFor(asSwarmBeeError(error), about),
      ...(stage === undefined ? {} : { stage }),
    });
  } catch {
    // The connection closed under us.
  }
}
