/**
 * The emulated edge cluster of the planner and drift suites: one worker process per device,
 * each slowed to its speed (fixed, or read from a speed file so it can change mid-run),
 * pinned to a core so that slow devices share one (each emulated by its passes' CPU time, so
 * sharing does not slow it), behind a user-space link shaper.
 */
import type { CoordinatorOptions } from '@swarmbee/coordinator';
import { LocalCluster } from '@swarmbee/local-cluster';
import type { ModelDir } from '@swarmbee/model';
import { coresBySpeed } from '../core-placement.js';
import type { SuiteContext } from '../suite.js';

export interface EmulatedClusterOptions {
  model: ModelDir;
  /** Each device's speed, a fraction of this machine's. */
  speeds: readonly number[];
  /** Every data link, the coordinator's included: one-way delay (ms) and bandwidth (Mbit/s). */
  link: { delayMs: number; mbit: number };
  /** Worker i reads its speed from this file (which must hold it already). Default: fixed speeds. */
  speedFile?: (index: number) => string;
  cacheDir: string;
  coordinator: Partial<CoordinatorOptions>;
}

export function startEmulatedCluster(
  context: SuiteContext,
  options: EmulatedClusterOptions,
): Promise<LocalCluster> {
  const { speeds, link } = options;
  return LocalCluster.start({
    model: options.model,
    workers: speeds.length,
    cliBin: context.cliBin,
    cacheDir: options.cacheDir,
    threads: 1,
    pinCores: coresBySpeed(speeds),
    workerOutput: 'ignore',
    workerArgs: (i) => [
      ...(options.speedFile
        ? ['--speed-file', options.speedFile(i)]
        : ['--speed-factor', String(speeds[i])]),
      // Passes of the 110M preset are milliseconds of one thread's work: by CPU time, the
      // devices that share a core do not slow each other, as separate boards would not.
      '--speed-basis',
      'cpu',
      '--link-delay-ms',
      String(link.delayMs),
      '--link-bandwidth-mbit',
      String(link.mbit),
    ],
    coordinator: {
      linkShape: { delayMs: link.delayMs, bytesPerSecond: (link.mbit * 1e6) / 8 },
      // Enough generation slots for every stream the throughput plans keep in flight.
      limits: { maxActive: 256 },
      ...options.coordinator,
    },
  });
}
