/**
 * The coordinator's side of one worker's control connection: its registration
 * facts, and exchanges — send a message, wait for the worker's answer — that are
 * one promise each, settled by the answer, a failed send, the worker's error, the
 * connection closing, the step's deadline or the caller's signal, whichever comes
 * first. Nothing is left waiting after it settles.
 */
import {
  AbortedError,
  abortError,
  asSwarmBeeError,
  fromWire,
  type SwarmBeeError,
  stepSignal,
} from '@swarmbee/core';
import type { Channel, ControlMessage, DeviceFacts, ErrorMessage } from '@swarmbee/protocol';

type Waiter = {
  match: (message: ControlMessage) => boolean;
  resolve: (message: ControlMessage) => void;
  reject: (error: SwarmBeeError) => void;
};

export type Reply<T extends ControlMessage['type']> = Extract<ControlMessage, { type: T }>;

export interface ExchangeOptions {
  /** Deadline for the answer, ms (from sending). */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export class WorkerLink {
  readonly #waiters = new Set<Waiter>();
  readonly #errorListeners = new Set<(error: SwarmBeeError) => void>();
  /** Set for a data owner (`--train-data`): the model it holds; it takes no stage. */
  dataOwner?: { modelHash: string; quantizedFrom?: string };
  /** Failures of micro-batches the worker reports (batchId set). */
  onBatchError?: (error: ErrorMessage) => void;
  #closedError?: SwarmBeeError;

  constructor(
    readonly name: string,
    readonly device: DeviceFacts,
    readonly dataUrl: string,
    readonly channel: Channel<'control'>,
  ) {
    channel.on('message', (message) => this.#dispatch(message));
    channel.on('close', (close) => {
      this.#closedError = asSwarmBeeError(
        close.error ??
          new AbortedError(`worker ${name} disconnected (${close.code} ${close.reason})`),
      );
      for (const waiter of [...this.#waiters]) waiter.reject(this.#closedError);
    });
  }

  get open(): boolean {
    return this.#closedError === undefined;
  }

  /** Waiting exchanges (for tests: none may be left behind). */
  get waiting(): number {
    return this.#waiters.size;
  }

  #dispatch(message: ControlMessage): void {
    if (message.type === 'error' && message.batchId !== undefined) {
      this.onBatchError?.(message);
      return;
    }
    if (message.type === 'error' && message.requestId === undefined) {
      // A control message the worker could not handle: whatever waits on it has failed.
      const error = fromWire(message);
      for (const waiter of [...this.#waiters]) waiter.reject(error);
      for (const listener of [...this.#errorListeners]) listener(error);
      return;
    }
    for (const waiter of this.#waiters) {
      if (waiter.match(message)) {
        waiter.resolve(message);
        return;
      }
    }
  }

  /**
   * Sends `message` and resolves with the worker's next `type` message that satisfies
   * `match`. The waiter is registered before sending (no answer can slip past) and
   * removed however the exchange ends.
   */
  exchange<T extends ControlMessage['type']>(
    message: ControlMessage,
    type: T,
    match: (reply: Reply<T>) => boolean,
    options: ExchangeOptions,
  ): Promise<Reply<T>> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    const what = `${type} from worker ${this.name} (${options.timeoutMs} ms)`;
    const signal = stepSignal(options.timeoutMs, options.signal);
    return new Promise<Reply<T>>((resolve, reject) => {
      const settle = () => {
        this.#waiters.delete(waiter);
        signal.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        match: (m) => m.type === type && match(m as Reply<T>),
        resolve: (m) => {
          settle();
          resolve(m as Reply<T>);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      const onAbort = () => waiter.reject(abortError(signal, what));
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
      try {
        this.channel.send(message);
      } catch (error) {
        waiter.reject(asSwarmBeeError(error));
      }
    });
  }

  /**
   * Calls `listener` with every error the worker reports outside an exchange or a batch
   * (a control message it failed to handle); returns the unsubscribe function.
   */
  onError(listener: (error: SwarmBeeError) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  /** Sends without waiting; false when the link is closed or the send failed. */
  trySend(message: ControlMessage): boolean {
    try {
      this.channel.send(message);
      return true;
    } catch {
      return false;
    }
  }

  close(reason: string): void {
    this.channel.close(1001, reason);
  }
}
