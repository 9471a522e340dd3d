/**
 * A cluster on loopback: the coordinator in this process, each worker its own
 * process (optionally pinned to one core with taskset, as a small board would
 * be). `swarmbee up` and the benchmarks start the very same thing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Coordinator, type CoordinatorOptions } from '@swarmbee/coordinator';
import { InvalidArgumentError } from '@swarmbee/core';
import type { ModelDir } from '@swarmbee/model';
import { WORKER_NODE_FLAGS } from '@swarmbee/worker';

export interface LocalClusterOptions {
  model: ModelDir;
  workers: number;
  /** The `swarmbee` CLI entry point that worker processes run. */
  cliBin: string;
  /** Root for the coordinator's and workers' caches. */
  cacheDir: string;
  /** onnxruntime threads per worker. Default 1. */
  threads?: number;
  /**
   * Pin each worker to one core with taskset: `true` puts worker i on core i mod (cores),
   * a function names worker i's core given the core count. Default false.
   */
  pinCores?: boolean | ((index: number, cores: number) => number);
  /** Extra arguments for every worker (benchmark-only slow-down and link shaping). */
  workerArgs?: (index: number) => string[];
  apiHost?: string;
  apiPort?: number;
  coordinator?: Partial<CoordinatorOptions>;
  /** Where worker output goes. Default: inherited (this process's stderr). */
  workerOutput?: 'inherit' | 'ignore';
  log?: (line: string) => void;
}

/** Time a worker gets to exit after SIGTERM before it is killed, ms. */
export const WORKER_EXIT_GRACE_MS = 5000;

export class LocalCluster {
  readonly coordinator: Coordinator;
  readonly workers: ChildProcess[] = [];
  readonly #options: LocalClusterOptions;
  readonly #token = randomBytes(24).toString('base64url');

  private constructor(options: LocalClusterOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1) {
      throw new InvalidArgumentError(
        `a local cluster needs at least one worker, got ${options.workers}`,
      );
    }
    this.#options = options;
    this.coordinator = new Coordinator({
      model: options.model,
      token: this.#token,
      listenPort: 0,
      apiHost: options.apiHost ?? '127.0.0.1',
      apiPort: options.apiPort ?? 0,
      minWorkers: options.workers,
      cacheDir: join(options.cacheDir, 'coordinator'),
      deploy: { stage: { intraOpThreads: options.threads ?? 1 } },
      log: options.log,
      ...options.coordinator,
    });
  }

  /** Starts the coordinator and the workers; resolves once the plan is deployed. */
  static async start(options: LocalClusterOptions, signal?: AbortSignal): Promise<LocalCluster> {
    const cluster = new LocalCluster(options);
    try {
      await cluster.coordinator.start();
      for (let i = 0; i < options.workers; i++) cluster.workers.push(cluster.#spawnWorker(i));
      const exited = cluster.workers.map(
        (child) =>
          new Promise<never>((_, reject) =>
            child.once('exit', (code) =>
              reject(
                new InvalidArgumentError(`a worker exited early with code ${code}; see its log`),
              ),
            ),
          ),
      );
      const aborted = new Promise<never>((_, reject) =>
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true }),
      );
      await Promise.race([cluster.coordinator.whenReady(), aborted, ...exited]);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  get apiUrl(): string {
    return this.coordinator.apiUrl;
  }

  #spawnWorker(index: number): ChildProcess {
    const { cliBin, cacheDir, pinCores } = this.#options;
    const args = [
      ...WORKER_NODE_FLAGS,
      cliBin,
      'worker',
      '--join',
      this.coordinator.workersUrl,
      '--name',
      `worker-${index}`,
      '--listen',
      '127.0.0.1:0',
      '--cache-dir',
      join(cacheDir, `worker-${index}`),
      ...(this.#options.workerArgs?.(index) ?? []),
    ];
    const cores = availableParallelism();
    const core = typeof pinCores === 'function' ? pinCores(index, cores) % cores : index % cores;
    const [command, argv] = pinCores
      ? ['taskset', ['-c', String(core), process.execPath, ...args]]
      : [process.execPath, args];
    return spawn(command, argv, {
      env: { ...process.env, SWARMBEE_TOKEN: this.#token },
      stdio: [
        'ignore',
        this.#options.workerOutput ?? 'inherit',
        this.#options.workerOutput ?? 'inherit',
      ],
    });
  }

  /** Stops the coordinator and every worker (SIGTERM, then SIGKILL after a grace period). */
  async stop(): Promise<void> {
    await this.coordinator.stop({ stopWorkers: true });
    await Promise.all(this.workers.map(stopProcess));
  }
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), WORKER_EXIT_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
