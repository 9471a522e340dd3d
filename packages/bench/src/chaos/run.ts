/**
 * A chaos run: a cluster of real processes, a run without faults for the reference
 * tokens, then each fault in turn with its streams, then the coordinator killed and
 * restarted; and the record of every process exit and every fault a process survived.
 */
import type { ModelDir } from '@swarmbee/model';
import {
  type Fault,
  type FaultKind,
  type FaultPhase,
  type FaultResult,
  type RestartResult,
  runCoordinatorRestart,
  runFault,
} from './faults.js';
import { ProcessCluster } from './process-cluster.js';
import { chaosPrompts, streamAll } from './streams.js';

export interface ChaosOptions {
  cliBin: string;
  model: ModelDir;
  /** Cache root of the run (a fresh directory). */
  root: string;
  workers: number;
  streams: number;
  promptTokens: number;
  outputTokens: number;
  /** Workers run at this share of their speed, so faults land inside a generation. */
  speedFactor: number;
  /** Heartbeat timeout of every connection, ms: how long a stall goes unnoticed. */
  heartbeatTimeoutMs: number;
  faults: Fault[];
  restartCoordinator: boolean;
  progress?: (line: string) => void;
}

export interface ChaosResult {
  faults: FaultResult[];
  restart?: RestartResult;
  /** Processes that ended when nobody asked them to, with their log tails. */
  unexpectedExits: string[];
  /** Unhandled rejections or exceptions a process logged surviving. */
  processFaults: string[];
  /** Wall time of the reference run, ms. */
  referenceMs: number;
}

/** Every fault kind on one, two and all workers, in prefill and in decode; one mixed fault. */
export function chaosFaults(workers: number, quick: boolean): Fault[] {
  const all = Array.from({ length: workers }, (_, i) => i);
  if (quick) {
    return [
      { kind: 'kill', targets: [0, workers - 1], phase: 'decode' },
      { kind: 'stop', targets: [1], phase: 'prefill' },
      { kind: 'term', targets: [0, workers - 1], phase: 'prefill' },
      { kind: 'term', targets: all, phase: 'decode' },
      { kind: 'kill+stop', targets: [workers - 1, 0], phase: 'decode' },
    ];
  }
  const groups = [[1], [0, workers - 1], all];
  const faults: Fault[] = [];
  for (const kind of ['kill', 'stop', 'term'] as FaultKind[])
    for (const targets of groups)
      for (const phase of ['prefill', 'decode'] as FaultPhase[])
        faults.push({ kind, targets, phase });
  faults.push({ kind: 'kill+stop', targets: [workers - 1, 0], phase: 'decode' });
  return faults;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const progress = options.progress ?? (() => {});
  const heartbeat = ['--heartbeat-timeout-ms', String(options.heartbeatTimeoutMs)];
  progress(`chaos: starting a coordinator and ${options.workers} workers`);
  const cluster = await ProcessCluster.start({
    cliBin: options.cliBin,
    model: options.model.path,
    workers: options.workers,
    root: options.root,
    coordinatorArgs: ['--planner', 'even', ...heartbeat],
    workerArgs: ['--speed-factor', String(options.speedFactor), ...heartbeat],
  });
  let measured: Omit<ChaosResult, 'unexpectedExits' | 'processFaults'>;
  try {
    const specs = chaosPrompts(
      options.streams,
      options.promptTokens,
      options.outputTokens,
      options.model.manifest.config.vocabSize,
    );
    const settle = {
      streamDeadlineMs: 120_000,
      settleMs: 120_000,
    };
    progress(`chaos: ${options.streams} streams without faults, for the reference tokens`);
    const started = performance.now();
    const reference = await streamAll(cluster.apiUrl, specs, settle.streamDeadlineMs);
    const referenceMs = performance.now() - started;
    const broken = reference.find((o) => o.error || o.failure);
    if (broken)
      throw new Error(`the run without faults failed: ${broken.error?.code ?? broken.failure}`);
    const expected = reference.map((o) => o.tokens.map((t) => t.id));
    const faults: FaultResult[] = [];
    for (const [i, fault] of options.faults.entries()) {
      const result = await runFault(cluster, fault, specs, expected, settle);
      progress(
        `chaos: ${i + 1}/${options.faults.length} ${result.name}: ${result.completed} whole, ${result.failedRetryable} failed retryable, stall ≤ ${Math.round(Math.max(0, ...result.stallMs))} ms`,
      );
      faults.push(result);
    }
    let restart: RestartResult | undefined;
    if (options.restartCoordinator) {
      restart = await runCoordinatorRestart(cluster, specs, expected, settle);
      progress(
        `chaos: ${restart.name}: serving again after ${Math.round(restart.readyMs)} ms, same plan ${restart.samePlan}, ${restart.transferredBytes} bytes sent`,
      );
    }
    measured = { faults, ...(restart ? { restart } : {}), referenceMs };
  } finally {
    await cluster.stop();
  }
  // After the stop, too: every process must have ended cleanly on its SIGTERM.
  return {
    ...measured,
    unexpectedExits: cluster.unexpectedExits(),
    processFaults: cluster.processFaults(),
  };
}
