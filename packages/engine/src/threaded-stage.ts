/**
 * A StageEngine whose onnxruntime session lives in a worker thread, so the
 * calling thread's event loop keeps answering sockets during forward passes.
 */
import type { TransferListItem, Worker } from 'node:worker_threads';
import { EngineClosedError, EngineFailedError, fromWire, type SwarmBeeError } from '@swarmbee/core';
import type { ShardGraph, TensorSliceShard } from '@swarmbee/model';
import type { SegmentEmulation } from './device-emulation.js';
import type { PortGroup } from './port-all-reduce.js';
import type { SharedGroup } from './shared-all-reduce.js';
import { ownBuffer, startThread, threadEntry, threadReady } from './source-thread.js';
import type {
  StageBatch,
  StageEngine,
  StageInfo,
  StageOptions,
  StageOutput,
  StageStats,
} from './stage-engine.js';
import type { ThreadReply, ThreadRequest } from './thread-messages.js';

const THREAD_ENTRY = threadEntry(import.meta.url, 'stage-thread');

type Pending = { resolve: (value: unknown) => void; reject: (error: SwarmBeeError) => void };
type RequestBody<R = ThreadRequest> = R extends unknown ? Omit<R, 'id'> : never;

export class ThreadedStage implements StageEngine {
  readonly info: StageInfo;
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  private constructor(worker: Worker, info: StageInfo) {
    this.#worker = worker;
    this.info = info;
    worker.on('message', (reply: ThreadReply) => this.#settle(reply));
    worker.on('error', (error) =>
      this.#failAll(
        new EngineFailedError(`stage thread crashed: ${error.message}`, { cause: error }),
      ),
    );
    worker.on('exit', () => this.#failAll(new EngineClosedError('the stage thread has exited')));
  }

  /**
   * Starts a thread, loads the shard there, and resolves once the session is ready. With
   * `moveGraph`, a graph whose bytes own their whole buffer moves to the thread instead of
   * being copied (the caller must not use `shard.onnx` afterwards): one copy of the graph
   * fewer while the stage loads.
   */
  static async create(
    shard: ShardGraph,
    options: StageOptions = {},
    how: { moveGraph?: boolean } = {},
  ): Promise<ThreadedStage> {
    const { onnx } = shard;
    const movable =
      how.moveGraph === true &&
      onnx.byteOffset === 0 &&
      onnx.byteLength === onnx.buffer.byteLength &&
      onnx.buffer instanceof ArrayBuffer;
    return ThreadedStage.#start(
      { shard, options },
      movable ? [onnx.buffer as ArrayBuffer] : undefined,
    );
  }

  /**
   * Starts a thread hosting one member of a tensor-parallel group: of an in-process group
   * (its shared memory), or of one whose member this thread's side holds (a port to it,
   * which moves to the new thread; see `serveAllReduce`). `emulation` (benchmarks) paces its
   * segments as on a slower device.
   */
  static async createMember(
    shard: TensorSliceShard,
    group: SharedGroup | PortGroup,
    options: StageOptions = {},
    emulation?: SegmentEmulation,
  ): Promise<ThreadedStage> {
    return ThreadedStage.#start(
      { shard, options, group, ...(emulation ? { emulation } : {}) },
      'port' in group ? [group.port] : undefined,
    );
  }

  static async #start(
    workerData: object,
    transferList?: TransferListItem[],
  ): Promise<ThreadedStage> {
    const worker = startThread(THREAD_ENTRY, workerData, transferList ? { transferList } : {});
    const info = await threadReady<StageInfo>(worker, 'stage thread');
    return new ThreadedStage(worker, info);
  }

  /**
   * Runs a micro-batch in the thread. Token and hidden arrays that own their whole
   * buffer move to the thread (the caller must not use them afterwards), as do views whose
   * buffers the batch marks movable; other views into larger buffers are copied, never
   * detached.
   */
  forward(batch: StageBatch): Promise<StageOutput> {
    const movable = batch.buffersMovable === true;
    const tokens = batch.tokens && (movable ? batch.tokens : ownBuffer(batch.tokens));
    const hidden = batch.hidden && (movable ? batch.hidden : ownBuffer(batch.hidden));
    const transfer = [
      ...new Set([tokens?.buffer, hidden?.buffer].filter((b) => b instanceof ArrayBuffer)),
    ];
    const { buffersMovable: _, ...rest } = batch;
    return this.#call(
      { op: 'forward', batch: { ...rest, tokens, hidden } },
      transfer,
    ) as Promise<StageOutput>;
  }

  async release(seqIds: string[]): Promise<void> {
    await this.#call({ op: 'release', seqIds });
  }

  stats(): Promise<StageStats> {
    return this.#call({ op: 'stats' }) as Promise<StageStats>;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#call({ op: 'close' });
    } finally {
      this.#closed = true;
      await this.#worker.terminate();
    }
  }

  /**
   * Sends a request. Buffers in `transfer` move to the thread: the caller must
   * not touch the batch's token or hidden arrays afterwards.
   */
  #call(body: RequestBody, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.#closed) return Promise.reject(new EngineClosedError('the stage engine is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...body, id } as ThreadRequest, transfer);
    });
  }

  #settle(reply: ThreadReply): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(fromWire(reply.error));
  }

  #failAll(error: SwarmBeeError): void {
    this.#closed = true;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
