/**
 * `npm run bench -- chaos`: faults on a cluster of real processes while 8 greedy streams
 * of stories260K generate — kill -9, SIGSTOP past the heartbeat timeout then SIGCONT,
 * and SIGTERM of one, two and all three workers, in prefill and in decode, one mixed
 * fault, and the coordinator killed and restarted. Each stream must end with the tokens
 * of the run without faults, or (all workers gone) with a coded retryable error; no
 * process may die unasked; returning workers must be used again. Reported per fault:
 * the stall (from the fault to each stream's next token), tokens lost, the recovery.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarize } from '@swarmbee/optimize';
import type { FaultResult } from '../chaos/faults.js';
import { chaosFaults, runChaos } from '../chaos/run.js';
import { type BenchCheck, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import { importStories260k, STORIES260K_CHECKPOINT } from '../shared-models.js';
import { resultHeader, type Suite } from '../suite.js';

const WORKERS = 3;
const STREAMS = 8;
const SHAPE = {
  promptTokens: 160,
  outputTokens: 96,
  speedFactor: 0.2,
  heartbeatTimeoutMs: 1500,
};

const ms = (values: readonly number[], pick: 'median' | 'max') =>
  values.length === 0 ? '–' : Math.round(summarize(values)[pick === 'max' ? 'max' : 'median']);

function outcomeOf(r: FaultResult): string {
  if (r.completed === r.streams) return `${r.completed}/${r.streams} whole`;
  const parts = [`${r.completed} whole`];
  if (r.failedRetryable > 0) parts.push(`${r.failedRetryable} ${r.failureCodes.join(', ')}`);
  if (r.failedOther.length > 0) parts.push(`${r.failedOther.length} OTHER`);
  if (r.wrongTokens > 0) parts.push(`${r.wrongTokens} WRONG`);
  return parts.join(', ');
}

export const chaosSuite: Suite = {
  name: 'chaos',
  describe: `kill -9, SIGSTOP/SIGCONT and SIGTERM of 1, 2 and all of ${WORKERS} workers in prefill and decode with ${STREAMS} streams, and a coordinator restart: streams whole or failed with a coded retryable error, workers taken back`,
  async run(context) {
    const started = Date.now();
    const root = await mkdtemp(join(tmpdir(), 'swarmbee-bench-chaos-'));
    try {
      const model = await importStories260k(join(root, 's260k'));
      if (!model) throw new Error(`the chaos suite needs stories260K at ${STORIES260K_CHECKPOINT}`);
      const faults = chaosFaults(WORKERS, context.quick);
      const result = await runChaos({
        cliBin: context.cliBin,
        model,
        root,
        workers: WORKERS,
        streams: STREAMS,
        ...SHAPE,
        faults,
        restartCoordinator: true,
        progress: context.progress,
      });
      const partial = result.faults.filter((r) => r.workers.length < WORKERS);
      const total = result.faults.filter((r) => r.workers.length === WORKERS);
      const stalls = partial.flatMap((r) => r.stallMs);
      const restart = result.restart;
      const checks: BenchCheck[] = [
        check(
          'streams whole through faults of some workers',
          partial.reduce((n, r) => n + r.completed, 0) / Math.max(1, partial.length * STREAMS),
          1,
          'streams ending with the tokens of the run without faults / streams, faults of 1 or 2 workers',
        ),
        check(
          'tokens lost or changed in streams that ended',
          result.faults.reduce((n, r) => n + r.tokensLost + r.wrongTokens, 0),
          0,
          'missing tokens plus streams with other tokens, every fault',
          '<=',
        ),
        check(
          'streams failed with a coded retryable error when every worker went',
          total.reduce((n, r) => n + r.failedRetryable + r.completed, 0) /
            Math.max(1, total.length * STREAMS),
          1,
          '(failed with a retryable code + whole) / streams, faults of all workers',
        ),
        check(
          'streams failed otherwise (no code, not retryable, hung)',
          result.faults.reduce((n, r) => n + r.failedOther.length, 0),
          0,
          'count over every fault',
          '<=',
        ),
        check(
          'processes that died unasked, and faults they survived',
          result.unexpectedExits.length + result.processFaults.length,
          0,
          'unexpected exits (every process not killed must end 0 on SIGTERM) + logged unhandled rejections',
          '<=',
        ),
        check(
          'returning workers used again',
          result.faults.filter((r) => r.servesAfterReturn).length / result.faults.length,
          1,
          'faults after which the plan ran on every worker again and served the reference tokens / faults',
        ),
        check(
          'shard bytes sent to take workers back and after a coordinator restart',
          result.faults.reduce((n, r) => n + r.returnTransferredBytes, 0) +
            (restart?.transferredBytes ?? 0),
          0,
          'bytes, every return and the restart',
          '<=',
        ),
        check(
          'coordinator restart: same plan, streams whole after',
          restart?.samePlan ? restart.completedAfter / restart.streams : 0,
          1,
          'streams whole after the restart / streams (0 if the plan changed)',
        ),
      ];
      const notes = [
        `stories260K, ${WORKERS} worker processes slowed to ${SHAPE.speedFactor} of their speed (so a fault lands inside a generation), an even plan, heartbeat timeout ${SHAPE.heartbeatTimeoutMs} ms on every connection; ${STREAMS} greedy streams of ${SHAPE.promptTokens}-token prompts and ${SHAPE.outputTokens} output tokens (ignore_eos), streamed over the HTTP API. The run without faults took ${Math.round(result.referenceMs)} ms.`,
        'A prefill fault fires the moment every stream has been accepted and none has a token; a decode fault once every stream has 10 tokens. SIGSTOP lasts until the coordinator has declared the workers lost (past the heartbeat timeout), then SIGCONT. Afterwards killed or terminated workers are started again (same name and cache); the return time runs from then to a plan over every worker serving.',
        'Stall: per stream running at the fault, the longest wait for a token from the fault on (the recovery: noticing the loss, re-planning, deploying, replaying the stream). With every worker gone streams cannot continue: they must fail at once with a coded retryable error.',
        ...result.unexpectedExits.map((e) => `UNEXPECTED EXIT: ${e.slice(0, 400)}`),
        ...result.processFaults.map((e) => `PROCESS FAULT: ${e.slice(0, 400)}`),
        ...result.faults.flatMap((r) =>
          r.failedOther.map((f) => `${r.name}: a stream failed otherwise: ${f.slice(0, 200)}`),
        ),
      ];
      return {
        suite: 'chaos',
        title: `Chaos: faults of ${WORKERS} workers and the coordinator under ${STREAMS} streams`,
        ...resultHeader(context, started, model, 'stories260K (llama2.c)'),
        options: { workers: WORKERS, streams: STREAMS, ...SHAPE, faults: faults.length },
        notes,
        metrics: {
          stallMs: { unit: 'ms', summary: summarize(stalls), samples: stalls },
          ...Object.fromEntries(
            result.faults.map((r) => [
              `stallMs.${r.name}`,
              {
                unit: 'ms',
                summary: summarize(r.stallMs.length ? r.stallMs : [0]),
                samples: r.stallMs,
              },
            ]),
          ),
          ...(restart
            ? { coordinatorRestartReadyMs: { unit: 'ms', summary: summarize([restart.readyMs]) } }
            : {}),
        },
        tables: [
          {
            title: 'Stall per fault (8 streams each)',
            head: [
              '#',
              'fault',
              'streams in phase',
              'streams',
              'tokens lost',
              'stall p50 ms',
              'stall max ms',
              'recovery ms',
              'workers back ms',
              'bytes sent back',
            ],
            rows: result.faults.map((r, i) => [
              i + 1,
              r.name,
              `${r.streamsInPhase}/${r.streams}`,
              outcomeOf(r),
              r.tokensLost,
              ms(r.stallMs, 'median'),
              ms(r.stallMs, 'max'),
              r.recoveryMs.map((v) => Math.round(v)).join(', ') || '–',
              Math.round(r.returnMs),
              r.returnTransferredBytes,
            ]),
          },
          ...(restart
            ? [
                {
                  title: 'Coordinator kill -9 during decode, then a restart',
                  head: [
                    'streams cut',
                    'serving again ms',
                    'same plan',
                    'bytes sent',
                    'streams whole after',
                  ],
                  rows: [
                    [
                      `${restart.streamsCut}/${restart.streams}`,
                      Math.round(restart.readyMs),
                      restart.samePlan ? 'yes' : 'NO',
                      restart.transferredBytes,
                      `${restart.completedAfter}/${restart.streams}`,
                    ],
                  ],
                },
              ]
            : []),
        ],
        checks,
        charts: [
          {
            file: 'chaos-stall.svg',
            title: 'Stall per fault',
            svg: barChart({
              title: 'Stall per fault: median over the streams, whiskers min..max',
              unit: 'ms',
              xLabel: 'fault (# in the table)',
              bars: result.faults.map((r, i) => {
                const s = summarize(r.stallMs.length ? r.stallMs : [0]);
                return { label: String(i + 1), value: s.median, low: s.min, high: s.max };
              }),
            }),
          },
        ],
      };
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
};
