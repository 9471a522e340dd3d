/**
 * Requests waiting for their reply on one channel, keyed by `requestId`. A reply is the
 * request's reply type or an `error` with the same id; whichever comes first of reply,
 * timeout (TimeoutError), abort (AbortedError) and channel close settles the request, and every timer and listener is
 * released then.
 */
import {
  AbortedError,
  asSwarmBeeError,
  fromWire,
  InvalidArgumentError,
  MessageSchemaError,
  type SwarmBeeError,
  TimeoutError,
} from '@swarmbee/core';
import { type Message, REPLY_MESSAGE_TYPES } from './messages/index.js';

interface Pending {
  requestType: string;
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

  /**
   * Registers a request, sends it with `send`, and resolves with its reply. Registering
   * first means a fast reply cannot slip past; a `send` that throws rejects this same
   * promise and forgets the request, so nothing is left waiting that nobody observes.
   */
  exchange(
    requestId: string,
    requestType: string,
    replyType: string,
    options: WaitOptions,
    send: () => void,
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
        reject(new TimeoutError(`no reply to ${requestType} ${requestId} within ${timeoutMs} ms`));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const pending: Pending = {
        requestType,
        replyType,
        resolve: (reply) => {
          release();
          resolve(reply);
        },
        reject: (error) => {
          release();
          reject(error);
        },
      };
      this.#pending.set(requestId, pending);
      try {
        send();
      } catch (error) {
        pending.reject(asSwarmBeeError(error));
      }
    });
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
