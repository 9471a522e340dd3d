/**
 * A small pool of worker threads, each holding its own instance of the model's tokenizer,
 * that prepares completions (parsing and checking API bodies, chat rendering, tokenizing,
 * echo decoding) off the event loop that serves every other request and stream. Jobs wait in a bounded FIFO queue (one more
 * is refused with 429); an aborted job leaves the queue, or has its result dropped if a
 * thread already runs it. A thread that dies (out of memory on some input, say) fails only
 * its own job, with a retryable coded error, and is replaced.
 *
 * @example
 * ```ts
 * const pool = await TokenizerPool.start(await openModelDir('models/s260k'));
 * const limits = { maxSeqLen: 512, vocabSize: 512, maxPromptTokens: 512, maxPromptChars: 3584, maxTokens: 512 };
 * const request = { prompt: 'Once upon a time', sampling: { temperature: 0, topK: 0, topP: 1 } };
 * const { request: { prompt } } = await pool.prepare({ source: { request }, limits }); // [1, 403, 407, 261, 378]
 * await pool.close();
 * ```
 */
import type { Worker } from 'node:worker_threads';
import {
  AbortedError,
  fromWire,
  QueueFullError,
  type SwarmBeeError,
  TokenizerFailedError,
} from '@swarmbee/core';
import { startThread, threadEntry } from '@swarmbee/engine/source-thread';
import type { ModelDir } from '@swarmbee/model';
import type {
  PromptReplyMessage,
  PromptRequestMessage,
  TokenizerThreadData,
} from './pool-messages.js';
import type { CompletionJob, PreparedPrompt, PromptPreparer } from './prompt.js';

export interface TokenizerPoolOptions {
  /** Threads, each with its own tokenizer. Default {@link DEFAULT_TOKENIZER_THREADS}. */
  threads?: number;
  /** Jobs that may wait for a thread; one more is refused (429). Default 256. */
  maxQueued?: number;
  /** Heap limit of each thread, MiB: a runaway input ends that thread, not the process. Default 512. */
  threadHeapMib?: number;
  log?: (line: string) => void;
}

export const DEFAULT_TOKENIZER_THREADS = 2;
export const DEFAULT_TOKENIZER_QUEUE = 256;
export const DEFAULT_TOKENIZER_THREAD_HEAP_MIB = 512;

const THREAD_ENTRY = threadEntry(import.meta.url, 'tokenizer-thread');

interface Job {
  id: number;
  job: CompletionJob;
  resolve: (prepared: PreparedPrompt) => void;
  reject: (error: SwarmBeeError) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface PoolThread {
  worker: Worker;
  job?: Job;
}

export class TokenizerPool implements PromptPreparer {
  readonly #model: ModelDir;
  readonly #options: Required<Omit<TokenizerPoolOptions, 'log'>>;
  readonly #log: (line: string) => void;
  readonly #threads = new Set<PoolThread>();
  readonly #queue: Job[] = [];
  #starting = 0;
  #nextId = 1;
  #closed = false;

  private constructor(model: ModelDir, options: TokenizerPoolOptions) {
    this.#model = model;
    this.#options = {
      threads: Math.max(1, Math.floor(options.threads ?? DEFAULT_TOKENIZER_THREADS)),
      maxQueued: options.maxQueued ?? DEFAULT_TOKENIZER_QUEUE,
      threadHeapMib: options.threadHeapMib ?? DEFAULT_TOKENIZER_THREAD_HEAP_MIB,
    };
    this.#log = options.log ?? (() => {});
  }

  /** Starts the threads; resolves once every one has loaded the tokenizer (or rejects with why not). */
  static async start(model: ModelDir, options: TokenizerPoolOptions = {}): Promise<TokenizerPool> {
    const pool = new TokenizerPool(model, options);
    const started = await Promise.allSettled(
      Array.from({ length: pool.#options.threads }, () => pool.#startThread()),
    );
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    return pool;
  }

  /** Jobs waiting for a thread. */
  get queued(): number {
    return this.#queue.length;
  }

  prepare(job: CompletionJob, options: { signal?: AbortSignal } = {}): Promise<PreparedPrompt> {
    if (this.#closed)
      return Promise.reject(new TokenizerFailedError('the tokenizer threads are shutting down'));
    if (options.signal?.aborted) return Promise.reject(aborted(options.signal));
    if (this.#queue.length >= this.#options.maxQueued) {
      return Promise.reject(
        new QueueFullError(
          `${this.#queue.length} prompts are already waiting for a tokenizer thread (limit ${this.#options.maxQueued}); retry shortly`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const entry: Job = { id: this.#nextId++, job, resolve, reject, signal: options.signal };
      if (options.signal) {
        const signal = options.signal;
        entry.onAbort = () => this.#abandon(entry, aborted(signal));
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.#queue.push(entry);
      // Every thread died and none could be started since: try again for this job.
      if (this.#threads.size === 0 && this.#starting === 0)
        this.#startThread().catch((error: SwarmBeeError) => this.#log(error.message));
      this.#dispatch();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const error = new TokenizerFailedError('the tokenizer threads are shutting down');
    for (const entry of this.#queue.splice(0)) this.#settle(entry, error);
    const threads = [...this.#threads];
    this.#threads.clear();
    for (const thread of threads) if (thread.job) this.#settle(thread.job, error);
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }

  /** Starts one thread and adds it to the pool once its tokenizer is loaded. */
  #startThread(): Promise<void> {
    this.#starting++;
    const worker = startThread(THREAD_ENTRY, { model: this.#model } satisfies TokenizerThreadData, {
      resourceLimits: { maxOldGenerationSizeMb: this.#options.threadHeapMib },
    });
    return new Promise<void>((resolve, reject) => {
      // Listeners are removed one by one: a Worker's own listeners must stay.
      const onError = (error: Error): void =>
        fail(new TokenizerFailedError(`a tokenizer thread failed to start: ${error.message}`));
      const onExit = (code: number): void =>
        fail(
          new TokenizerFailedError(`a tokenizer thread exited with code ${code} while starting`),
        );
      const onReady = (reply: PromptReplyMessage): void => {
        if (!reply.ok) {
          fail(fromWire(reply.error));
          return;
        }
        stopListening();
        resolve();
        this.#adopt(worker);
      };
      const stopListening = (): void => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.off('message', onReady);
      };
      const fail = (error: SwarmBeeError): void => {
        stopListening();
        void worker.terminate();
        reject(error);
      };
      worker.once('error', onError);
      worker.once('exit', onExit);
      worker.once('message', onReady);
    }).finally(() => {
      this.#starting--;
      if (this.#threads.size === 0 && this.#starting === 0) this.#failQueue();
    });
  }

  #adopt(worker: Worker): void {
    if (this.#closed) {
      void worker.terminate();
      return;
    }
    // Idle threads must not keep a process alive that has nothing else to do.
    worker.unref();
    const thread: PoolThread = { worker };
    this.#threads.add(thread);
    const onMessage = (reply: PromptReplyMessage): void => this.#finish(thread, reply);
    const onError = (error: Error): void => lost(`failed: ${error.message}`);
    const onExit = (code: number): void => lost(`exited with code ${code}`);
    const lost = (why: string): void => {
      if (!this.#threads.delete(thread)) return;
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      this.#log(`a tokenizer thread ${why}; starting another`);
      if (thread.job)
        this.#settle(
          thread.job,
          new TokenizerFailedError(`the tokenizer thread preparing this prompt ${why}`),
        );
      if (!this.#closed)
        this.#startThread().catch((error: SwarmBeeError) => this.#log(error.message));
      this.#dispatch();
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    this.#dispatch();
  }

  #dispatch(): void {
    for (const thread of this.#threads) {
      if (thread.job) continue;
      const entry = this.#queue.shift();
      if (!entry) return;
      thread.job = entry;
      thread.worker.ref();
      thread.worker.postMessage({ id: entry.id, job: entry.job } satisfies PromptRequestMessage);
    }
  }

  #finish(thread: PoolThread, reply: PromptReplyMessage): void {
    const entry = thread.job;
    thread.job = undefined;
    thread.worker.unref();
    if (entry && entry.id === reply.id) {
      if (reply.ok && reply.prepared) {
        const { request, ...rest } = reply.prepared;
        const prompt = Array.from(reply.ids ?? []);
        this.#settle(entry, undefined, { ...rest, request: { ...request, prompt } });
      } else if (!reply.ok) this.#settle(entry, fromWire(reply.error, { param: reply.param }));
    }
    this.#dispatch();
  }

  /** An aborted job: out of the queue now, or its thread's answer will be dropped. */
  #abandon(entry: Job, error: SwarmBeeError): void {
    const at = this.#queue.indexOf(entry);
    if (at >= 0) this.#queue.splice(at, 1);
    this.#settle(entry, error);
  }

  #failQueue(): void {
    const error = new TokenizerFailedError('no tokenizer thread could be started');
    for (const entry of this.#queue.splice(0)) this.#settle(entry, error);
  }

  #settle(entry: Job, error: SwarmBeeError | undefined, value?: PreparedPrompt): void {
    if (entry.onAbort) entry.signal?.removeEventListener('abort', entry.onAbort);
    const { resolve, reject } = entry;
    // Settle once: an abandoned job's late answer finds these gone.
    entry.resolve = () => {};
    entry.reject = () => {};
    if (error) reject(error);
    else resolve(value!);
  }
}

function aborted(signal: AbortSignal): SwarmBeeError {
  const reason: unknown = signal.reason;
  return new AbortedError(
    reason instanceof Error ? reason.message : 'the request was cancelled while its prompt waited',
    { cause: reason },
  );
}
