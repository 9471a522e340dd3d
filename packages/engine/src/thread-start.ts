/** Starting a stage's worker thread from source (tsx, the tests) or from the build, and moving arrays to it. */
import { Worker } from 'node:worker_threads';

/** The URL of a thread entry module beside `from` (`import.meta.url`), .ts from source, .js built. */
export function threadEntry(from: string, path: string): URL {
  return new URL(`${path}${from.endsWith('.ts') ? '.ts' : '.js'}`, from);
}

/**
 * Under tsx (the tests) the entry point is TypeScript, and Node 20 does not pass
 * `--import` loader hooks on to worker threads: register tsx inside the thread first.
 */
export function startThread(entry: URL, workerData: unknown): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** The array itself when it spans its whole buffer, else a copy that does (so it can be transferred). */
export function ownBuffer<T extends Float32Array | BigInt64Array | Int32Array>(array: T): T {
  const whole =
    array.byteOffset === 0 &&
    array.byteLength === array.buffer.byteLength &&
    array.buffer instanceof ArrayBuffer;
  return whole ? array : (array.slice() as T);
}
