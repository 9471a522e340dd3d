/**
 * The load and the faults of the soak's fault variant: requests streamed with a fixed
 * number in flight while the long-lived processes' memory is sampled, and one worker hit
 * every so many requests and brought back, one fault at a time, while the load goes on.
 */
import { readFile } from 'node:fs/promises';
import { SAMPLE_EVERY, type SoakRequest } from '../suites/soak.js';
import { usesAll } from './faults.js';
import type { ChaosProcess, ProcessCluster } from './process-cluster.js';
import { type StreamOutcome, streamCompletion } from './streams.js';

/** Requests in flight at once. */
export const SOAK_CONCURRENCY = 8;
/** Signals the victim gets, in turn. */
export const SOAK_FAULT_KINDS = ['SIGKILL', 'SIGTERM', 'SIGSTOP'] as const;

/** A process's resident memory from /proc (Linux), bytes; undefined elsewhere or once gone. */
async function residentBytes(process: ChaosProcess): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${process.child.pid}/status`, 'utf8');
    const kib = status.match(/^VmRSS:\s+(\d+) kB/m)?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

export interface FaultRecord {
  atRequest: number;
  kind: (typeof SOAK_FAULT_KINDS)[number];
  /** From the fault to the coordinator serving on the workers left, ms. */
  recoveryMs: number;
  /** From the worker's return to a plan over every worker serving, ms. */
  backMs: number;
}

export interface Pass {
  outcomes: StreamOutcome[];
  wallMs: number;
  /** RSS per long-lived process, sampled every SAMPLE_EVERY requests, by requests done. */
  samples: { done: number; rss: Map<string, number> }[];
  faults: FaultRecord[];
}

export async function drive(
  cluster: ProcessCluster,
  requests: readonly SoakRequest[],
  longLived: () => ChaosProcess[],
  onDone: (done: number) => void,
): Promise<Omit<Pass, 'faults'>> {
  const outcomes: StreamOutcome[] = new Array(requests.length);
  const samples: Pass['samples'] = [];
  const sampling: Promise<void>[] = [];
  const started = performance.now();
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < requests.length) {
      const index = next++;
      const request = requests[index]!;
      outcomes[index] = await streamCompletion(
        cluster.apiUrl,
        { prompt: request.prompt, maxTokens: request.maxTokens },
        index,
        120_000,
      );
      done++;
      onDone(done);
      if (done % SAMPLE_EVERY === 0) {
        const at = done;
        sampling.push(
          Promise.all(longLived().map(async (p) => [p.name, await residentBytes(p)] as const)).then(
            (pairs) => {
              const rss = new Map<string, number>();
              for (const [name, bytes] of pairs) if (bytes !== undefined) rss.set(name, bytes);
              samples.push({ done: at, rss });
            },
          ),
        );
      }
    }
  };
  await Promise.all(Array.from({ length: SOAK_CONCURRENCY }, lane));
  const wallMs = performance.now() - started;
  await Promise.all(sampling);
  samples.sort((a, b) => a.done - b.done);
  return { outcomes, wallMs, samples };
}

/** Hits the victim every `every` requests and brings it back, one fault at a time. */
export function faultLoop(
  cluster: ProcessCluster,
  victim: number,
  workers: number,
  every: number,
  total: number,
) {
  const faults: FaultRecord[] = [];
  let done = 0;
  let wake: (() => void) | undefined;
  const reached = (count: number) =>
    new Promise<void>((resolve) => {
      if (done >= count) resolve();
      else
        wake = () => {
          if (done >= count) resolve();
        };
    });
  const run = async () => {
    for (let at = every, k = 0; at < total; at += every, k++) {
      await reached(at);
      const kind = SOAK_FAULT_KINDS[k % SOAK_FAULT_KINDS.length]!;
      const hit = cluster.workers[victim]!;
      const before = (await cluster.view()).recoveries.length;
      const hitAt = performance.now();
      hit.signal(kind);
      const name = cluster.workerName(victim);
      await cluster.waitUntil(
        (v) => v.recoveries.length > before && v.state === 'ready' && !v.workers.includes(name),
        60_000,
        `the coordinator to recover from ${kind} of ${name}`,
      );
      const recoveryMs = performance.now() - hitAt;
      const backAt = performance.now();
      if (kind === 'SIGSTOP') hit.signal('SIGCONT');
      else {
        await hit.exited;
        cluster.startWorker(victim);
      }
      await cluster.waitUntil((v) => usesAll(cluster, v, workers), 120_000, `${name} back`);
      faults.push({
        atRequest: at,
        kind,
        recoveryMs,
        backMs: performance.now() - backAt,
      });
    }
  };
  return {
    faults,
    onDone: (count: number) => {
      done = count;
      wake?.();
    },
    run,
  };
}
