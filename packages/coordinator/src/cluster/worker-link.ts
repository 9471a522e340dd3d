/**
 * The coordinator's side of one worker's control connection: its registration
 * facts, and a way to wait for the worker's next message of a given kind.
 */
import { AbortedError, asSwarmBeeError, fromWire, type SwarmBeeError } from '@swarmbee/core';
import type { Channel, ControlMessage, DeviceFacts, ErrorMessage } from '@swarmbee/protocol';

type Waiter = {
  match: (message: ControlMessage) => boolean;
  resolve: (message: ControlMessage) => void;
  reject: (error: SwarmBeeError) => void;
};

export class WorkerLink {
  readonly #waiters = new Set<Waiter>();
  /** Failures of micro-batches the worker reports (batchId set). */
  onBatchError?: (error: ErrorMessage) => void;
  #closedError?: SwarmBeeError;

  constructor(
    readonly id: string,
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
      for (const waiter of this.#waiters) waiter.reject(this.#closedError);
      this.#waiters.clear();
    });
  }

  get open(): boolean {
    return this.#closedError === undefined;
  }

  #dispatch(message: ControlMessage): void {
    if (message.type === 'error' && message.batchId !== undefined) {
      this.onBatchError?.(message);
      return;
    }
    for (const waiter of this.#waiters) {
      if (message.type === 'error' && message.requestId === undefined) {
        this.#waiters.delete(waiter);
        waiter.reject(fromWire(message));
        continue;
      }
      if (waiter.match(message)) {
        this.#waiters.delete(waiter);
        waiter.resolve(message);
        return;
      }
    }
  }

  /** The next message of type `type` that satisfies `match`; an unsolicited error rejects. */
  expect<T extends ControlMessage['type']>(
    type: T,
    match: (message: Extract<ControlMessage, { type: T }>) => boolean,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<Extract<ControlMessage, { type: T }>> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(
          new AbortedError(
            `worker ${this.name} did not send ${type} within ${options.timeoutMs} ms`,
          ),
        );
      }, options.timeoutMs);
      const waiter: Waiter = {
        match: (m) => m.type === type && match(m as Extract<ControlMessage, { type: T }>),
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<ControlMessage, { type: T }>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#waiters.add(waiter);
      options.signal?.addEventListener(
        'abort',
        () => waiter.reject(new AbortedError('cancelled')),
        { once: true },
      );
    });
  }

  close(reason: string): void {
    this.channel.close(1001, reason);
  }
}
