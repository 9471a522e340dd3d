/**
 * Starts a worker thread from a module beside the caller, whether SwarmBee runs from
 * its compiled JavaScript or (in the tests) from TypeScript source under tsx.
 */
import { type ResourceLimits, Worker } from 'node:worker_threads';

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
  options: { resourceLimits?: ResourceLimits } = {},
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
