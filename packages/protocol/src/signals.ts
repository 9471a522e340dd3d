/** Waiting on events with an AbortSignal, releasing every listener however the wait ends. */
import type { EventEmitter } from 'node:events';
import { abortError, ChannelClosedError } from '@swarmbee/core';

/**
 * Resolves on `event`; rejects with ChannelClosedError on the emitter's `close` and, when
 * `signal` aborts, with its coded reason (TimeoutError for a passed deadline, else AbortedError).
 */
export function waitForEvent(
  emitter: EventEmitter,
  event: string,
  options: { signal?: AbortSignal | undefined; what: string },
): Promise<void> {
  const { signal, what } = options;
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal, what));
      return;
    }
    const release = (): void => {
      emitter.off(event, onEvent);
      emitter.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const onEvent = (): void => {
      release();
      resolve();
    };
    const onClose = (): void => {
      release();
      reject(new ChannelClosedError(`channel closed while waiting for ${what}`));
    };
    const onAbort = (): void => {
      release();
      reject(abortError(signal!, what));
    };
    emitter.on(event, onEvent);
    emitter.on('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
