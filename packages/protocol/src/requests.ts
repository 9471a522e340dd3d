/**
 * Requests waiting for their reply on one channel, keyed by `requestId`. A reply is the
 * request's reply type or an `error` with the same id; whichever comes first of reply,
 * timeout, abort and channel close settles the request, and every timer and listener is
 * released then.
 */
import {
  AbortedError,
  fromWire,
  InvalidArgumentError,
  MessageSchemaError,
  type SwarmBeeError,
} from '@swarmbee/core';
import { type Message, REPLY_MESSAGE_TYPES } from './messages/index.js';

interface Pending {
  requestType: string;
  /** Clears the timer and abort listener and forgets the request, without settling it. */
  release: () => void;
  replyType: string;
  resolve: (reply: Message) => void;
  reject: (error: SwarmBeeError) => void;
}

export interface WaitOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export class PendingRequests {
  readonly #pending = new Map<string, Pending>();

  get size(): number {
    return this.#pending.size;
  }

  /** Registers a request before it is sent, so a fast reply cannot slip past. */
  wait(
    requestId: string,
    requestType: string,
    replyType: string,
    options: WaitOptions,
  ): Promise<Message> {
    const { timeoutMs, signal } = options;
    if (this.#pending.has(requestId)) {
      throw new InvalidArgumentError(`request ${requestId} is already waiting for a reply`);
    }
    if (signal?.aborted) {
      throw new AbortedError(`${requestType} ${requestId} aborted`, { cause: signal.reason });
    }
    return new Promise<Message>((resolve, reject) => {
      const release = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(requestId);
      };
      const onAbort = (): void => {
        release();
        reject(new AbortedError(`${requestType} ${requestId} aborted`, { cause: signal?.reason }));
      };
      const timer = setTimeout(() => {
        release();
        reject(new AbortedError(`no reply to ${requestType} ${requestId} within ${timeoutMs} ms`));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(requestId, {
        requestType,
        replyType,
        release,
        resolve: (reply) => {
          release();
          resolve(reply);
        },
        reject: (error) => {
          release();
          reject(error);
        },
      });
    });
  }

  /** Forgets a request whose sending failed; the caller never got its promise, so it stays unsettled. */
  cancel(requestId: string): void {
    this.#pending.get(requestId)?.release();
  }

  /** Settles the request `message` answers; false when it answers none (deliver it as a message). */
  settle(message: Message): boolean {
    if (!REPLY_MESSAGE_TYPES.has(message.type)) return false;
    const requestId = 'requestId' in message ? message.requestId : undefined;
    if (requestId === undefined) return false;
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return false;
    if (message.type === 'error') pending.reject(fromWire(message));
    else if (message.type === pending.replyType) pending.resolve(message);
    else {
      pending.reject(
        new MessageSchemaError(
          `'${message.type}' cannot answer ${pending.requestType} ${requestId}`,
        ),
      );
    }
    return true;
  }

  rejectAll(error: SwarmBeeError): void {
    for (const pending of [...this.#pending.values()]) pending.reject(error);
  }
}
