/**
 * A cluster of real processes on loopback for fault injection: the coordinator and
 * every worker are `swarmbee` processes, so each can be killed, stopped, terminated and
 * started again — the coordinator on the same ports, each worker under the same name
 * and cache. Every exit is checked: a process may end only when it was told to (SIGKILL
 * ends by that signal, SIGTERM with status 0); anything else is recorded as unexpected.
 * Waits are on observable state (the coordinator's /swarmbee/cluster, log lines), each
 * bounded in time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { getJson } from '@swarmbee/coordinator';
import { WORKER_NODE_FLAGS } from '@swarmbee/worker';

/** Log kept per process, characters (the tail). */
const LOG_KEEP_CHARS = 200_000;
/** Between two looks at the coordinator's state, ms. */
const POLL_MS = 25;
/** A process given SIGTERM must be gone by then, ms. */
export const EXIT_GRACE_MS = 15_000;

export interface ClusterView {
  state: string;
  workers: string[];
  stages: {
    stage: number;
    worker: string;
    layerStart: number;
    layerEnd: number;
    transferredBytes: number;
  }[];
  recoveries: { reason: string; at: number; durationMs: number; workers: string[] }[];
  processFaults: number;
}

export class ChaosProcess {
  readonly child: ChildProcess;
  /** Resolves with how the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #log = '';
  readonly #listeners = new Set<() => void>();
  /** The signal this process was sent on purpose, if any: its exit is then expected. */
  intended?: NodeJS.Signals;
  /** Set when the process ended in a way nobody asked for. */
  unexpected?: string;

  constructor(
    readonly name: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const append = (chunk: Buffer) => {
      this.#log = (this.#log + chunk.toString()).slice(-LOG_KEEP_CHARS);
      for (const listener of this.#listeners) listener();
    };
    this.child.stdout!.on('data', append);
    this.child.stderr!.on('data', append);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        const expected =
          (this.intended === 'SIGKILL' && signal === 'SIGKILL') ||
          (this.intended === 'SIGTERM' && code === 0);
        if (!expected)
          this.unexpected = `${this.name} exited with ${signal ?? `status ${code}`}${this.intended ? ` after ${this.intended}` : ''}; log tail:\n${this.#log.slice(-2000)}`;
        resolve({ code, signal });
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  log(): string {
    return this.#log;
  }

  /** Sends a signal; SIGKILL and SIGTERM make the exit expected. */
  signal(signal: NodeJS.Signals): void {
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.intended = signal;
    this.child.kill(signal);
  }

  /** The first match of `pattern` in the log (from `from` on), within `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = this.#log.slice(from).match(pattern);
        if (!match) return;
        done();
        resolve(match);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onExit = () => {
        done();
        reject(new Error(`${this.name} exited while waiting for ${pattern}`));
      };
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        this.child.off('exit', onExit);
      };
      this.#listeners.add(check);
      this.child.once('exit', onExit);
      check();
    });
  }

  /** SIGTERM, then SIGKILL if it is still there after the grace period. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface ProcessClusterOptions {
  /** The `swarmbee` CLI entry point. */
  cliBin: string;
  model: string;
  workers: number;
  /** Caches: the coordinator's in `<root>/coordinator`, worker i's in `<root>/worker-<i>`. */
  root: string;
  coordinatorArgs?: string[];
  workerArgs?: string[];
}

export class ProcessCluster {
  readonly #options: ProcessClusterOptions;
  readonly #token = randomBytes(18).toString('base64url');
  /** Every process started, in order: the record of exits. */
  readonly processes: ChaosProcess[] = [];
  coordinator!: ChaosProcess;
  /** The current process of each worker. */
  readonly workers: ChaosProcess[] = [];
  workersUrl = '';
  apiUrl = '';

  private constructor(options: ProcessClusterOptions) {
    this.#options = options;
  }

  /** Starts the coordinator and the workers; resolves once a plan serves. */
  static async start(options: ProcessClusterOptions, readyMs = 120_000): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(options);
    try {
      await cluster.#startCoordinator('127.0.0.1:0', '127.0.0.1:0');
      for (let i = 0; i < options.workers; i++) cluster.startWorker(i);
      await cluster.waitUntil((v) => v.state === 'ready', readyMs, 'the first plan to serve');
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  workerName(index: number): string {
    return `worker-${index}`;
  }

  async #startCoordinator(listen: string, api: string): Promise<void> {
    const o = this.#options;
    this.coordinator = this.#spawn('coordinator', [
      o.cliBin,
      'coordinator',
      '--model',
      o.model,
      '--listen',
      listen,
      '--api',
      api,
      '--min-workers',
      String(o.workers),
      '--threads',
      '1',
      '--cache-dir',
      join(o.root, 'coordinator'),
      ...(o.coordinatorArgs ?? []),
    ]);
    const [, workersUrl, apiUrl] = await this.coordinator.waitFor(
      /listening for workers on (\S+); API on (\S+)/,
      60_000,
    );
    this.workersUrl = workersUrl!;
    this.apiUrl = apiUrl!;
  }

  /** Starts worker `index` (again): the same name and cache dir. */
  startWorker(index: number): ChaosProcess {
    const o = this.#options;
    const name = this.workerName(index);
    const worker = this.#spawn(name, [
      ...WORKER_NODE_FLAGS,
      o.cliBin,
      'worker',
      '--join',
      this.workersUrl,
      '--name',
      name,
      '--listen',
      '127.0.0.1:0',
      '--cache-dir',
      join(o.root, `worker-${index}`),
      ...(o.workerArgs ?? []),
    ]);
    this.workers[index] = worker;
    return worker;
  }

  /** Kills the coordinator with SIGKILL and starts it again on the same ports and cache. */
  async restartCoordinator(): Promise<void> {
    this.coordinator.signal('SIGKILL');
    await this.coordinator.exited;
    const workers = new URL(this.workersUrl);
    const api = new URL(this.apiUrl);
    await this.#startCoordinator(
      `${workers.hostname}:${workers.port}`,
      `${api.hostname}:${api.port}`,
    );
  }

  #spawn(name: string, args: string[]): ChaosProcess {
    const child = new ChaosProcess(name, args, { SWARMBEE_TOKEN: this.#token });
    this.processes.push(child);
    return child;
  }

  /** The coordinator's /swarmbee/cluster. */
  view(): Promise<ClusterView> {
    return getJson<ClusterView>({ url: this.apiUrl }, '/swarmbee/cluster');
  }

  /** Resolves with the first view that satisfies `ready`, looked at every 25 ms for at most `timeoutMs`. */
  async waitUntil(
    ready: (view: ClusterView) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<ClusterView> {
    const deadline = performance.now() + timeoutMs;
    let last: ClusterView | undefined;
    while (performance.now() < deadline) {
      if (!this.coordinator.running)
        throw new Error(`the coordinator exited while waiting for ${what}`);
      last = await this.view().catch(() => undefined);
      if (last && ready(last)) return last;
      await sleep(POLL_MS);
    }
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${JSON.stringify(last)?.slice(0, 600)}`,
    );
  }

  /** Processes that ended in a way nobody asked for, with their log tails. */
  unexpectedExits(): string[] {
    return this.processes.flatMap((p) => (p.unexpected ? [p.unexpected] : []));
  }

  /** Lines where a process reported surviving an unhandled rejection or exception. */
  processFaults(): string[] {
    return this.processes.flatMap((p) =>
      p
        .log()
        .split('\n')
        .filter((line) => line.includes('BUG: '))
        .map((line) => `${p.name}: ${line}`),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
  }
}
