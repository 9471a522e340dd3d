/**
 * Starts a worker thread from a module beside the caller, whether SwarmBee runs from
 * its compiled JavaScript or (in the tests) from TypeScript source under tsx.
 */
import { type ResourceLimits, type TransferListItem, Worker } from 'node:worker_threads';
import { EngineFailedError, fromWire, type WireError } from '@swarmbee/core';

/**
 * The URL of `name` (without extension) next to the module at `moduleUrl`: `.ts` when
 * that module is itself TypeScript source, else `.js`.
 */
export function threadEntry(moduleUrl: string, name: string): URL {
  return new URL(`./${name}${moduleUrl.endsWith('.ts') ? '.ts' : '.js'}`, moduleUrl);
}

/**
 * A worker thread running `entry`. Node 20 does not pass `--import` loader hooks on to
 * worker threads, so a TypeScript entry registers tsx inside the thread first.
 */
export function startThread(
  entry: URL,
  workerData: unknown,
  options: { resourceLimits?: ResourceLimits; transferList?: TransferListItem[] } = {},
): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { ...options, workerData });
  const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true, workerData });
}

/** The array itself when it spans its whole buffer, else a copy that does (so it can be transferred). */
export function ownBuffer<T extends Float32Array | BigInt64Array | Int32Array>(array: T): T {
  const whole =
    array.byteOffset === 0 &&
    array.byteLength === array.buffer.byteLength &&
    array.buffer instanceof ArrayBuffer;
  return whole ? array : (array.slice() as T);
}

/** A thread's reply to one request: its value, or the coded error it failed with. */
export type ThreadResult = { ok: true; value: unknown } | { ok: false; error: WireError };

/**
 * The value of a freshly started thread's first reply (it loads, then says it is ready).
 * A failed load, a crash or an exit rejects, and a thread that answered with an error is
 * terminated. `what` names the thread in messages ("stage thread").
 */
export function threadReady<T>(worker: Worker, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onExit = (code: number) =>
      reject(new EngineFailedError(`${what} exited with code ${code} while loading`));
    worker.once('error', reject);
    worker.once('exit', onExit);
    worker.once('message', (reply: ThreadResult) => {
      worker.off('error', reject);
      worker.off('exit', onExit);
      if (reply.ok) resolve(reply.value as T);
      else {
        void worker.terminate();
        reject(fromWire(reply.error));
      }
    });
  });
}
