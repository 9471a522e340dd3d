/**
 * A real cluster on loopback for end-to-end tests: a coordinator process and
 * worker processes, every address 127.0.0.1:0, every process stopped in teardown.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  COORDINATOR_EVENTS,
  type CoordinatorStateEvent,
  type ListeningEvent,
} from '@swarmbee/coordinator';
import { CLI_BIN } from './cli.js';

export interface ProcessHandle {
  child: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  log: () => string;
  /** Resolves with the first match of `pattern` in the log, within `timeoutMs`. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>;
  /**
   * Resolves with the payload of the first lifecycle event `name` (a diagnostics channel
   * name) the process logged — after log offset `since` (see `mark`), one `match`
   * accepts — within `timeoutMs` (default 30 s); the process must run with
   * `--log-format json`.
   */
  waitForEvent: <T = Record<string, unknown>>(
    name: string,
    options?: WaitForEventOptions<T>,
  ) => Promise<T>;
  /** The log's length now: events before it are not waited for with `since`. */
  mark: () => number;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

interface WaitForEventOptions<T> {
  match?: (data: T) => boolean;
  since?: number;
  timeoutMs?: number;
}

const STOP_GRACE_MS = 5000;

export function startProcess(args: string[], env: NodeJS.ProcessEnv = {}): ProcessHandle {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    log += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stderr!.on('data', append);
  child.stdout!.on('data', append);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const waitUntil = <T>(what: string, find: () => T | undefined, timeoutMs: number) =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const match = find();
        if (match === undefined) return;
        done();
        resolve(match);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; log:\n${log.slice(-3000)}`,
          ),
        );
      }, timeoutMs);
      const onExit = () => {
        done();
        reject(new Error(`process exited while waiting for ${what}; log:\n${log.slice(-3000)}`));
      };
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
        child.off('exit', onExit);
      };
      listeners.add(check);
      child.once('exit', onExit);
      check();
    });
  return {
    child,
    log: () => log,
    waitFor: (pattern, timeoutMs = 30_000) =>
      waitUntil(String(pattern), () => log.match(pattern) ?? undefined, timeoutMs),
    mark: () => log.length,
    waitForEvent: <T>(
      name: string,
      { match, since = 0, timeoutMs = 30_000 }: WaitForEventOptions<T> = {},
    ) =>
      waitUntil(
        `event ${name}`,
        () => {
          // Whole lines only: the last may still be arriving.
          for (const line of log.slice(since).split('\n').slice(0, -1)) {
            if (!line.startsWith('{') || !line.includes(name)) continue;
            let record: { event?: string; data: T };
            try {
              record = JSON.parse(line);
            } catch {
              continue; // the tail of a line before `since`
            }
            if (record.event === name && (!match || match(record.data))) return record.data;
          }
          return undefined;
        },
        timeoutMs,
      ),
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return exited;
    },
  };
}

export interface Cluster {
  apiUrl: string;
  workersUrl: string;
  token: string;
  coordinator: ProcessHandle;
  workers: ProcessHandle[];
  startWorker: (name: string, cacheDir: string, extra?: string[]) => ProcessHandle;
  stop: () => Promise<void>;
}

export interface ClusterOptions {
  model: string;
  workers: number;
  /** Where the caches go: worker i's in `<root>/w-<i>`, the coordinator's in `<root>/c`. */
  root: string;
  /** Worker cache dirs by index, when not `<root>/w-<i>` (clusters sharing a root). */
  cacheDir?: (index: number) => string;
  /** The coordinator's cache dir, when not `<root>/c`. */
  coordinatorCacheDir?: string;
  coordinatorArgs?: string[];
  workerArgs?: string[];
  token?: string;
  /** Longest wait for the coordinator to listen, ms. Default 30 s; a busy machine needs more. */
  startTimeoutMs?: number;
}

/**
 * A test coordinator's command line: JSON logs, one onnxruntime thread per stage, and —
 * unless `extra` asks for a planner — every worker, split evenly.
 */
export function coordinatorArgs(options: {
  model: string;
  /** Worker-facing HOST:PORT. Default 127.0.0.1:0. */
  listen?: string;
  /** API HOST:PORT. Default 127.0.0.1:0. */
  api?: string;
  minWorkers: number;
  cacheDir: string;
  extra?: string[];
}): string[] {
  const extra = options.extra ?? [];
  return [
    'coordinator',
    '--model',
    options.model,
    '--listen',
    options.listen ?? '127.0.0.1:0',
    '--api',
    options.api ?? '127.0.0.1:0',
    '--min-workers',
    String(options.minWorkers),
    '--threads',
    '1',
    '--cache-dir',
    options.cacheDir,
    '--log-format',
    'json',
    ...extra,
    ...(extra.includes('--planner') ? [] : ['--planner', 'even']),
  ];
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const token = options.token ?? `test-token-${process.pid}-${Date.now()}`;
  const env = { SWARMBEE_TOKEN: token };
  const coordinator = startProcess(
    coordinatorArgs({
      model: options.model,
      minWorkers: options.workers,
      cacheDir: options.coordinatorCacheDir ?? join(options.root, 'c'),
      ...(options.coordinatorArgs ? { extra: options.coordinatorArgs } : {}),
    }),
    env,
  );
  const workers: ProcessHandle[] = [];
  const cluster: Cluster = {
    apiUrl: '',
    workersUrl: '',
    token,
    coordinator,
    workers,
    startWorker: (name, cacheDir, extra = []) => {
      const worker = startProcess(
        [
          'worker',
          '--join',
          cluster.workersUrl,
          '--name',
          name,
          '--listen',
          '127.0.0.1:0',
          '--cache-dir',
          cacheDir,
          '--log-format',
          'json',
          ...(options.workerArgs ?? []),
          ...extra,
        ],
        env,
      );
      workers.push(worker);
      return worker;
    },
    stop: async () => {
      await Promise.all([coordinator, ...workers].map((p) => p.stop()));
    },
  };
  try {
    const listening = await coordinator.waitForEvent<ListeningEvent>(COORDINATOR_EVENTS.listening, {
      timeoutMs: options.startTimeoutMs ?? 30_000,
    });
    cluster.workersUrl = listening.workersUrl;
    cluster.apiUrl = listening.apiUrl;
    for (let i = 0; i < options.workers; i++)
      cluster.startWorker(`worker-${i}`, options.cacheDir?.(i) ?? join(options.root, `w-${i}`));
    await coordinator.waitForEvent<CoordinatorStateEvent>(COORDINATOR_EVENTS.state, {
      match: (e) => e.to === 'ready',
      timeoutMs: Math.max(60_000, options.startTimeoutMs ?? 0),
    });
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** Polls /healthz until it answers 200, for at most `timeoutMs`. */
export async function waitReady(apiUrl: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await fetch(`${apiUrl}/healthz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await sleep(100);
  }
  throw new Error(`${apiUrl} did not become ready within ${timeoutMs} ms`);
}

/** A /v1/completions answer: `choices` on success, `error` otherwise (check `status`). */
export interface CompletionJson {
  choices: [{ text: string; token_ids: number[]; finish_reason: string }];
  usage: { prompt_tokens: number; completion_tokens: number };
  timings: { first_token_ms: number; total_ms: number; tokens_per_s: number };
  error: { code: string; message: string; retryable: boolean };
}

export async function complete(
  apiUrl: string,
  body: Record<string, unknown>,
): Promise<{ status: number; json: CompletionJson }> {
  const response = await fetch(`${apiUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as CompletionJson };
}
