/**
 * A training session's links to its neighbouring stages, when they train on workers too:
 * hidden states go forward to the next stage (`train.hidden`) and the gradients at a
 * stage's input go back to the previous one (`train.grad`) over the data plane, worker to
 * worker, instead of through the coordinator. What arrives waits in a mailbox by
 * micro-batch id until the coordinator's call for that micro-batch takes it.
 */
import { AbortedError, EngineClosedError, TimeoutError } from '@swarmbee/core';
import {
  type Channel,
  float32Tensor,
  float32Values,
  type TrainGradMessage,
  type TrainHiddenMessage,
} from '@swarmbee/protocol';

type Kind = 'train.hidden' | 'train.grad';

interface Waiter {
  resolve: (values: Float32Array) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class StageLinks {
  readonly #arrived = new Map<string, Float32Array>();
  readonly #waiting = new Map<string, Waiter>();
  #closed = false;

  constructor(
    readonly session: string,
    /** To the previous stage's worker (gradients go back on it). */
    readonly prev: Channel<'data'> | undefined,
    /** To the next stage's worker (hidden states go on it). */
    readonly next: Channel<'data'> | undefined,
    /** How long a call waits for its neighbour's hand-off, ms. */
    readonly timeoutMs: number,
  ) {
    for (const channel of [prev, next])
      channel?.once('close', () =>
        this.#failAll(new EngineClosedError(`a training link of session ${session} closed`)),
      );
  }

  /** Opens the links the coordinator named; closes what it opened if one fails. */
  static async open(
    session: string,
    urls: { prevUrl?: string | undefined; nextUrl?: string | undefined },
    connect: (url: string) => Promise<Channel<'data'>>,
    timeoutMs: number,
  ): Promise<StageLinks> {
    const settled = await Promise.allSettled(
      [urls.prevUrl, urls.nextUrl].map((url) => (url ? connect(url) : Promise.resolve(undefined))),
    );
    const opened = settled.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const channel of opened) channel?.close(1000, 'training session not started');
      throw failed.reason;
    }
    return new StageLinks(session, opened[0], opened[1], timeoutMs);
  }

  /** Files a neighbour's hand-off (or hands it to the call waiting for it). */
  deliver(message: TrainHiddenMessage | TrainGradMessage): void {
    if (this.#closed) return;
    const key = `${message.type}:${message.id}`;
    const values = float32Values(message.values).slice();
    const waiter = this.#waiting.get(key);
    if (!waiter) {
      this.#arrived.set(key, values);
      return;
    }
    this.#waiting.delete(key);
    clearTimeout(waiter.timer);
    waiter.resolve(values);
  }

  /** The hand-off of kind `kind` for micro-batch `id`, once it has arrived. */
  take(kind: Kind, id: number): Promise<Float32Array> {
    const key = `${kind}:${id}`;
    const arrived = this.#arrived.get(key);
    if (arrived) {
      this.#arrived.delete(key);
      return Promise.resolve(arrived);
    }
    if (this.#closed)
      return Promise.reject(new EngineClosedError(`training session ${this.session} has ended`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        reject(
          new TimeoutError(
            `no ${kind} for micro-batch ${id} of session ${this.session} within ${this.timeoutMs} ms`,
          ),
        );
      }, this.timeoutMs);
      this.#waiting.set(key, { resolve, reject, timer });
    });
  }

  /** Sends a hand-off to the neighbour: hidden states on, gradients back. */
  send(kind: Kind, id: number, values: Float32Array): void {
    const channel = kind === 'train.hidden' ? this.next : this.prev;
    if (!channel) throw new EngineClosedError(`session ${this.session} has no link for ${kind}`);
    channel.send({
      type: kind,
      session: this.session,
      id,
      values: float32Tensor(values, [values.length]),
    });
  }

  /** Drops hand-offs that arrived for micro-batches a failed step leaves behind. */
  clear(): void {
    this.#arrived.clear();
  }

  close(): void {
    this.#failAll(new AbortedError(`training session ${this.session} ended`));
    for (const channel of [this.prev, this.next]) channel?.close(1000, 'training session ended');
  }

  #failAll(error: Error): void {
    this.#closed = true;
    this.#arrived.clear();
    for (const waiter of this.#waiting.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.#waiting.clear();
  }
}
