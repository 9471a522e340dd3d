/**
 * An `AllReduce` across a thread boundary: a member stage on a stage thread sums through
 * the group member its process's main thread holds (a `DataPlaneAllReduce`, whose links
 * live on the main thread's event loop). `PortAllReduce` is the thread's side — each sum
 * posts the partial over a MessagePort and awaits the sum — and `serveAllReduce` the main
 * thread's, which runs the sums in arrival order on the real member. The partial moves
 * both ways without a copy when it owns its buffer; the answer is the sum or the coded
 * error the member failed with (GROUP_MEMBER_LOST, say), which the stage reports.
 */
import type { MessagePort } from 'node:worker_threads';
import {
  type AllReduce,
  asSwarmBeeError,
  EngineClosedError,
  fromWire,
  type SwarmBeeError,
  type WireError,
} from '@swarmbee/core';

/** Thread → main thread: sum this partial. */
type SumRequest = { id: number; partial: Float32Array };
/** Main thread → thread. */
type SumReply =
  | { id: number; ok: true; sum: Float32Array }
  | { id: number; ok: false; error: WireError };

/** What crosses to the stage thread to make its `PortAllReduce` (the port in the transfer list). */
export interface PortGroup {
  port: MessagePort;
  rank: number;
  size: number;
}

interface Pending {
  resolve: (sum: Float32Array) => void;
  reject: (error: SwarmBeeError) => void;
}

export class PortAllReduce implements AllReduce {
  readonly rank: number;
  readonly size: number;
  readonly #port: MessagePort;
  readonly #pending = new Map<number, Pending>();
  #next = 1;
  #closed = false;

  constructor(group: PortGroup) {
    this.rank = group.rank;
    this.size = group.size;
    this.#port = group.port;
    this.#port.on('message', (reply: SumReply) => {
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.sum);
      else pending.reject(fromWire(reply.error));
    });
  }

  sum(partial: Float32Array, signal?: AbortSignal): Promise<Float32Array> {
    if (this.#closed)
      return Promise.reject(new EngineClosedError('the tensor-parallel group was left'));
    signal?.throwIfAborted();
    const id = this.#next++;
    // A partial that owns its buffer moves; a view (an onnxruntime output's) is copied once.
    const owned =
      partial.byteOffset === 0 &&
      partial.byteLength === partial.buffer.byteLength &&
      partial.buffer instanceof ArrayBuffer;
    const sent = owned ? partial : partial.slice();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#port.postMessage({ id, partial: sent } satisfies SumRequest, [
        sent.buffer as ArrayBuffer,
      ]);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const error = new EngineClosedError('the tensor-parallel group was left');
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    this.#port.close();
  }
}

/**
 * Answers a `PortAllReduce`'s sums on `port` with `member`. The stage awaits each sum
 * before it asks for the next, so they reach the group in its order.
 */
export function serveAllReduce(port: MessagePort, member: AllReduce): void {
  port.on('message', (request: SumRequest) => {
    void answer(port, member, request.id, request.partial);
  });
}

async function answer(
  port: MessagePort,
  member: AllReduce,
  id: number,
  partial: Float32Array,
): Promise<void> {
  let reply: SumReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const sum = await member.sum(partial);
    reply = { id, ok: true, sum };
    if (sum.buffer instanceof ArrayBuffer) transfer = [sum.buffer];
  } catch (error) {
    reply = { id, ok: false, error: asSwarmBeeError(error).toWire() };
  }
  try {
    port.postMessage(reply, transfer);
  } catch {
    // The thread is gone: nobody waits for this sum.
  }
}
