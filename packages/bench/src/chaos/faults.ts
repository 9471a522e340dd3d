/**
 * One fault at a time on a running cluster, while streams generate: kill -9, SIGSTOP
 * past the heartbeat timeout then SIGCONT, or SIGTERM of some or all workers, at the
 * moment every stream is in prefill (accepted, no token yet) or decoding (10 tokens
 * each). Then the workers come back (started again, or continued) and the cluster must
 * take them in by itself. Measured: each stream's stall (from the fault to its next
 * token), the tokens it lost or changed, how it failed if it did, and how long the
 * cluster took to use every worker again.
 */
import {
  type ChaosProcess,
  type ClusterView,
  EXIT_GRACE_MS,
  type ProcessCluster,
} from './process-cluster.js';
import { type StreamOutcome, type StreamSpec, streamAll } from './streams.js';

export type FaultKind = 'kill' | 'stop' | 'term' | 'kill+stop';
export type FaultPhase = 'prefill' | 'decode';

export interface Fault {
  kind: FaultKind;
  /** Worker indices hit (for kill+stop: the first is killed, the rest stopped). */
  targets: number[];
  phase: FaultPhase;
}

export interface FaultResult {
  name: string;
  phase: FaultPhase;
  workers: string[];
  /** Whether the fault landed in its phase for every stream (no token yet for prefill; all decoding for decode). */
  phaseHit: boolean;
  /** Streams that were in the fault's phase when it fired. */
  streamsInPhase: number;
  streams: number;
  /** Streams that ended whole with the tokens of the run without faults. */
  completed: number;
  /** Streams that ended whole but with other tokens. */
  wrongTokens: number;
  /** Tokens missing from streams that ended without an error. */
  tokensLost: number;
  /** Streams that failed with a coded retryable error, and with what. */
  failedRetryable: number;
  failureCodes: string[];
  /** Streams that failed any other way (uncoded, not retryable, or past their deadline). */
  failedOther: string[];
  /** Per stream running at the fault: the longest wait for a token after it (from the fault on), ms. */
  stallMs: number[];
  /** The coordinator's own recovery durations for this fault (before the workers returned), ms. */
  recoveryMs: number[];
  /** From the workers' return (restart or SIGCONT) to a plan over every worker serving, ms. */
  returnMs: number;
  /** Shard bytes sent to bring the returning workers back in (0: all cached). */
  returnTransferredBytes: number;
  /** Whether a request after the return got the tokens of the run without faults. */
  servesAfterReturn: boolean;
}

export interface FaultOptions {
  /** Each stream's deadline, ms: a stream still open then counts as hung. */
  streamDeadlineMs: number;
  /** Longest wait for the cluster to notice a loss or take workers back, ms. */
  settleMs: number;
  /** Tokens every stream must have before a decode fault. */
  decodeAfterTokens?: number;
}

const SIGNALS: Record<Exclude<FaultKind, 'kill+stop'>, NodeJS.Signals> = {
  kill: 'SIGKILL',
  stop: 'SIGSTOP',
  term: 'SIGTERM',
};

export function faultName(fault: Fault, workers: number): string {
  const who =
    fault.targets.length === workers ? `all ${workers}` : `${fault.targets.length} of ${workers}`;
  const what = {
    kill: 'kill -9',
    stop: 'SIGSTOP/SIGCONT',
    term: 'SIGTERM',
    'kill+stop': 'kill -9 one + SIGSTOP one',
  }[fault.kind];
  return `${what}, ${who} workers, during ${fault.phase}`;
}

/** Whether every worker of the cluster runs a stage of the serving plan. */
export function usesAll(cluster: ProcessCluster, view: ClusterView, count: number): boolean {
  const names = new Set(view.stages.map((s) => s.worker));
  return (
    view.state === 'ready' &&
    Array.from({ length: count }, (_, i) => cluster.workerName(i)).every((n) => names.has(n))
  );
}

export async function runFault(
  cluster: ProcessCluster,
  fault: Fault,
  specs: readonly StreamSpec[],
  expected: readonly number[][],
  options: FaultOptions,
): Promise<FaultResult> {
  const workerCount = cluster.workers.length;
  // Start from a settled cluster: every worker in the serving plan.
  const settled = await cluster.waitUntil(
    (v) => usesAll(cluster, v, workerCount),
    options.settleMs,
    'every worker to serve before the fault',
  );
  const before = settled.recoveries.length;
  const hit = fault.targets.map((i) => cluster.workers[i]!);
  const counts = specs.map(() => 0);
  let opened = 0;
  let faultAt: number | undefined;
  let inPhase = 0;
  const inject = () => {
    if (faultAt !== undefined) return;
    faultAt = performance.now();
    inPhase = counts.filter((c) =>
      fault.phase === 'prefill' ? c === 0 : c >= (options.decodeAfterTokens ?? 10),
    ).length;
    hit.forEach((p, k) => {
      p.signal(
        fault.kind === 'kill+stop' ? (k === 0 ? 'SIGKILL' : 'SIGSTOP') : SIGNALS[fault.kind],
      );
    });
  };
  const decodeAfter = options.decodeAfterTokens ?? 10;
  const outcomes = await streamAll(cluster.apiUrl, specs, options.streamDeadlineMs, {
    onOpen: () => {
      if (++opened === specs.length && fault.phase === 'prefill') inject();
    },
    onToken: (i, n) => {
      counts[i] = n;
      if (fault.phase === 'decode' && counts.every((c) => c >= decodeAfter)) inject();
    },
  });
  if (faultAt === undefined) {
    const why = outcomes.map((o) => o.error?.code ?? o.failure ?? `${o.tokens.length} tokens`);
    throw new Error(
      `${faultName(fault, workerCount)}: the fault never fired (${opened} of ${specs.length} streams accepted; ${why.join(', ')}); coordinator log:\n${cluster.coordinator.log().slice(-4000)}`,
    );
  }
  const stopped = hit.filter(
    (_, k) => fault.kind === 'stop' || (fault.kind === 'kill+stop' && k > 0),
  );
  // Streams have ended; stopped workers must have been declared lost before they continue.
  await continueWhenLost(cluster, stopped, options.settleMs);
  const recovered = (await cluster.view()).recoveries.slice(before);
  const returnedAt = performance.now();
  for (const [k, index] of fault.targets.entries()) {
    const process = hit[k]!;
    if (stopped.includes(process)) continue;
    await exitOf(process);
    cluster.startWorker(index);
  }
  const back = await cluster.waitUntil(
    (v) => usesAll(cluster, v, workerCount),
    options.settleMs,
    'the returning workers to be used again',
  );
  const returnMs = performance.now() - returnedAt;
  const after = await streamAll(cluster.apiUrl, specs.slice(0, 1), options.streamDeadlineMs);
  return {
    name: faultName(fault, workerCount),
    phase: fault.phase,
    workers: fault.targets.map((i) => cluster.workerName(i)),
    phaseHit: inPhase === specs.length,
    streamsInPhase: inPhase,
    ...judge(outcomes, expected, faultAt),
    recoveryMs: recovered.map((r) => r.durationMs),
    returnMs,
    returnTransferredBytes: back.stages.reduce((n, s) => n + s.transferredBytes, 0),
    servesAfterReturn: sameIds(after[0]!, expected[0]!),
  };
}

/** SIGCONTs stopped workers once the coordinator no longer lists them. */
async function continueWhenLost(
  cluster: ProcessCluster,
  stopped: readonly ChaosProcess[],
  settleMs: number,
): Promise<void> {
  if (stopped.length === 0) return;
  const names = new Set(stopped.map((p) => p.name));
  await cluster.waitUntil(
    (v) => v.workers.every((w) => !names.has(w)),
    settleMs,
    `the coordinator to declare ${[...names].join(', ')} lost`,
  );
  for (const p of stopped) p.signal('SIGCONT');
}

/** Waits (bounded) for a killed or terminated worker to be gone. */
async function exitOf(process: ChaosProcess): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${process.name} did not exit within ${EXIT_GRACE_MS} ms`)),
      EXIT_GRACE_MS,
    );
  });
  try {
    await Promise.race([process.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

function sameIds(outcome: StreamOutcome, expected: readonly number[]): boolean {
  return (
    outcome.error === undefined &&
    outcome.failure === undefined &&
    outcome.tokens.length === expected.length &&
    outcome.tokens.every((t, i) => t.id === expected[i])
  );
}

/**
 * The longest a stream waited for a token after the fault: gaps between its tokens from
 * the fault on (the first measured from the fault itself). Undefined for a stream that
 * had ended before the fault or got no token after it.
 */
function longestWaitAfter(outcome: StreamOutcome, faultAt: number): number | undefined {
  let previous = faultAt;
  let longest: number | undefined;
  for (const { at } of outcome.tokens) {
    if (at <= faultAt) continue;
    longest = Math.max(longest ?? 0, at - previous);
    previous = at;
  }
  return longest;
}

/** Sorts the streams into whole, wrong, failed with a code, failed otherwise; their stalls. */
export function judge(
  outcomes: readonly StreamOutcome[],
  expected: readonly number[][],
  faultAt: number,
): Pick<
  FaultResult,
  | 'streams'
  | 'completed'
  | 'wrongTokens'
  | 'tokensLost'
  | 'failedRetryable'
  | 'failureCodes'
  | 'failedOther'
  | 'stallMs'
> {
  const result = {
    streams: outcomes.length,
    completed: 0,
    wrongTokens: 0,
    tokensLost: 0,
    failedRetryable: 0,
    failureCodes: [] as string[],
    failedOther: [] as string[],
    stallMs: [] as number[],
  };
  outcomes.forEach((outcome, i) => {
    const want = expected[i]!;
    const stall = longestWaitAfter(outcome, faultAt);
    if (stall !== undefined) result.stallMs.push(stall);
    if (outcome.error) {
      if (outcome.error.retryable) {
        result.failedRetryable++;
        if (!result.failureCodes.includes(outcome.error.code))
          result.failureCodes.push(outcome.error.code);
      } else result.failedOther.push(`${outcome.error.code}: ${outcome.error.message}`);
      return;
    }
    if (outcome.failure) {
      result.failedOther.push(outcome.failure);
      return;
    }
    if (sameIds(outcome, want)) result.completed++;
    else {
      result.wrongTokens += outcome.tokens.some((t, k) => t.id !== want[k]) ? 1 : 0;
      result.tokensLost += Math.max(0, want.length - outcome.tokens.length);
    }
  });
  return result;
}

export interface RestartResult {
  name: string;
  /** Streams cut when the coordinator died (their connections dropped). */
  streamsCut: number;
  /** From the kill to the restarted coordinator serving again, ms. */
  readyMs: number;
  /** Whether the workers got the plan they had before. */
  samePlan: boolean;
  /** Shard bytes sent to redeploy (0: nothing transferred). */
  transferredBytes: number;
  /** Streams run after the restart that ended whole with the tokens of the run without faults. */
  completedAfter: number;
  streams: number;
}

/** kill -9 of the coordinator while streams decode, then a restart on the same ports and cache. */
export async function runCoordinatorRestart(
  cluster: ProcessCluster,
  specs: readonly StreamSpec[],
  expected: readonly number[][],
  options: FaultOptions,
): Promise<RestartResult> {
  const plan = (v: ClusterView) =>
    v.stages.map((s) => `${s.worker}[${s.layerStart},${s.layerEnd})`).join(' ');
  const before = plan(await cluster.view());
  const counts = specs.map(() => 0);
  const decodeAfter = options.decodeAfterTokens ?? 10;
  let killedAt: number | undefined;
  let restarted: Promise<unknown> | undefined;
  const outcomes = await streamAll(cluster.apiUrl, specs, options.streamDeadlineMs, {
    onToken: (i, n) => {
      counts[i] = n;
      if (killedAt !== undefined || !counts.every((c) => c >= decodeAfter)) return;
      killedAt = performance.now();
      restarted = cluster.restartCoordinator().then(
        () => undefined,
        (error: unknown) => error,
      );
    },
  });
  if (killedAt === undefined || !restarted) throw new Error('the coordinator was never killed');
  const failed = await restarted;
  if (failed) throw failed;
  const view = await cluster.waitUntil(
    (v) => v.state === 'ready',
    options.settleMs,
    'the restarted coordinator to serve',
  );
  const readyMs = performance.now() - killedAt;
  const after = await streamAll(cluster.apiUrl, specs, options.streamDeadlineMs);
  return {
    name: 'kill -9 of the coordinator during decode, then a restart',
    streamsCut: outcomes.filter((o) => o.failure !== undefined || o.error !== undefined).length,
    readyMs,
    samePlan: plan(view) === before,
    transferredBytes: view.stages.reduce((n, s) => n + s.transferredBytes, 0),
    completedAfter: after.filter((o, i) => sameIds(o, expected[i]!)).length,
    streams: specs.length,
  };
}
