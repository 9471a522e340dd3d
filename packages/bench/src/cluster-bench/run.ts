/**
 * `swarmbee bench --url URL` / `--local`: the latency and throughput matrix, a
 * per-stage timeline, and (with --plans) the plan sweep, as one report.
 */

import { type ApiTarget, getJson, postEvents } from '@swarmbee/coordinator';
import type { ClusterProfile } from '@swarmbee/core';
import { summarize } from '@swarmbee/optimize';
import { machineInfo } from '../machine.js';
import { type BenchCheck, type BenchResult, check } from '../report/report.js';
import { barChart, lineChart, timelineChart } from '../report/svg.js';
import { type PlanMeasurement, sweepPlans } from './plans.js';
import { type CellResult, DEFAULT_MATRIX, type Matrix, runMatrix } from './scenario.js';
import { recordTimeline } from './timeline.js';

export interface ClusterBenchOptions {
  target: ApiTarget;
  matrix?: Matrix;
  /** Also sweep the plans (profiles the cluster and re-plans it several times). */
  plans?: boolean;
  /** Also record a per-stage timeline. Default true. */
  timeline?: boolean;
  command: string;
  /** What the cluster is, for the report (workers, emulation settings). */
  setup: string[];
  progress: (line: string) => void;
}

interface ClusterInfo {
  model: string;
  vocabSize: number;
  plan?: { stages: { index: number; device: string; layerStart: number; layerEnd: number }[] };
  devices: { name: string; arch: string; cpus: number }[];
}

const fmt = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const cellKey = (c: CellResult) => `p${c.promptTokens}.o${c.outputTokens}.c${c.concurrency}`;

export async function runClusterBench(options: ClusterBenchOptions): Promise<BenchResult> {
  const started = Date.now();
  const { target } = options;
  const matrix = options.matrix ?? DEFAULT_MATRIX;
  const cluster = await getJson<ClusterInfo>(target, '/swarmbee/cluster');
  const cells = await runMatrix(target, cluster.vocabSize, matrix, options.progress);
  const result: BenchResult = {
    suite: 'cluster',
    title: `Cluster benchmark: ${cluster.model} on ${cluster.devices.length} worker(s)`,
    command: options.command,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    machine: machineInfo(),
    options: {
      matrix,
      plans: options.plans ?? false,
      setup: options.setup,
      plan: cluster.plan,
      devices: cluster.devices,
    },
    notes: [
      ...options.setup,
      `Greedy completions of token-id prompts, streamed; every token is timed as it arrives at the client. A warm-up round is run first and excluded. Each cell runs ${matrix.repeats} round(s) of N concurrent streams; latencies are over all streams of all rounds (p50/p95/p99), tokens/s is per round (median).`,
      `Plan: ${cluster.plan?.stages.map((s) => `${s.device}[${s.layerStart}-${s.layerEnd - 1}]`).join(' -> ') ?? 'none'}.`,
    ],
    metrics: {},
    tables: [
      {
        title: 'Latency and throughput',
        head: [
          'prompt',
          'output',
          'streams',
          'TTFT ms p50/p95/p99',
          'TPOT ms p50/p95/p99',
          'end-to-end ms p50/p95/p99',
          'tokens/s',
        ],
        rows: cells.map((c) => [
          c.promptTokens,
          c.outputTokens,
          c.concurrency,
          `${fmt(c.ttftMs.median)} / ${fmt(c.ttftMs.p95)} / ${fmt(c.ttftMs.p99)}`,
          `${fmt(c.tpotMs.median, 2)} / ${fmt(c.tpotMs.p95, 2)} / ${fmt(c.tpotMs.p99, 2)}`,
          `${fmt(c.e2eMs.median, 0)} / ${fmt(c.e2eMs.p95, 0)} / ${fmt(c.e2eMs.p99, 0)}`,
          fmt(c.tokensPerS.median),
        ]),
      },
    ],
    checks: [],
    charts: [
      {
        file: 'throughput-vs-concurrency.svg',
        title: 'Throughput against concurrency',
        svg: lineChart({
          title: 'Aggregate tokens/s against concurrent streams',
          xLabel: 'concurrent streams',
          yLabel: 'tokens/s',
          series: matrix.promptTokens.flatMap((p) =>
            matrix.outputTokens.map((o) => ({
              name: `prompt ${p}, output ${o}`,
              points: cells
                .filter((c) => c.promptTokens === p && c.outputTokens === o)
                .map((c) => [c.concurrency, c.tokensPerS.median] as [number, number]),
            })),
          ),
        }),
      },
      {
        file: 'latency-percentiles.svg',
        title: 'Latency percentiles',
        svg: barChart({
          title: `Time per output token, prompt ${matrix.promptTokens[0]}, output ${matrix.outputTokens.at(-1)}`,
          unit: 'ms',
          xLabel: 'concurrent streams: p50 / p95 / p99',
          bars: cells
            .filter(
              (c) =>
                c.promptTokens === matrix.promptTokens[0] &&
                c.outputTokens === matrix.outputTokens.at(-1),
            )
            .flatMap((c) => [
              { label: `${c.concurrency}: p50`, value: c.tpotMs.median },
              { label: `${c.concurrency}: p95`, value: c.tpotMs.p95 },
              { label: `${c.concurrency}: p99`, value: c.tpotMs.p99 },
            ]),
        }),
      },
    ],
  };
  for (const c of cells) {
    result.metrics[`ttftMs.${cellKey(c)}`] = {
      unit: 'ms',
      summary: c.ttftMs,
      samples: c.samples.ttftMs,
    };
    result.metrics[`tpotMs.${cellKey(c)}`] = {
      unit: 'ms',
      summary: c.tpotMs,
      samples: c.samples.tpotMs,
    };
    result.metrics[`e2eMs.${cellKey(c)}`] = {
      unit: 'ms',
      summary: c.e2eMs,
      samples: c.samples.e2eMs,
    };
    result.metrics[`tokensPerS.${cellKey(c)}`] = {
      unit: 'tok/s',
      summary: c.tokensPerS,
      samples: c.samples.tokensPerS,
    };
  }
  if (options.timeline ?? true) {
    options.progress('bench: recording a per-stage timeline');
    const streams = Math.max(2, (cluster.plan?.stages.length ?? 1) * 2);
    const timeline = await recordTimeline(
      target,
      cluster.vocabSize,
      matrix.promptTokens[0]!,
      32,
      streams,
    );
    result.tables.push({
      title: `Where each stage spent a run of ${streams} streams (${fmt(timeline.windowMs, 0)} ms)`,
      head: ['stage', 'device', 'computing', 'idle or waiting'],
      rows: timeline.busyShare.map((s) => [
        s.stage,
        s.device,
        `${fmt(s.busy * 100, 0)}%`,
        `${fmt((1 - s.busy) * 100, 0)}%`,
      ]),
    });
    result.charts.push({
      file: 'timeline.svg',
      title: 'Per-stage timeline',
      svg: timelineChart({
        title: `Per-stage timeline, ${streams} streams`,
        lanes: timeline.lanes,
      }),
    });
  }
  if (options.plans) await addPlanSweep(result, options, cluster.vocabSize, matrix);
  result.durationMs = Date.now() - started;
  return result;
}

async function addPlanSweep(
  result: BenchResult,
  options: ClusterBenchOptions,
  vocab: number,
  matrix: Matrix,
): Promise<void> {
  options.progress('bench: profiling the cluster');
  const events = await postEvents<{ type: string; profile?: ClusterProfile }>(
    options.target,
    '/swarmbee/profile',
    { reprofile: false },
  );
  const profile = events.find((e) => e.type === 'profile')?.profile;
  if (!profile) throw new Error('the coordinator sent no profile');
  const outputTokens = matrix.outputTokens.at(-1)!;
  const { measured, streams } = await sweepPlans(options.target, {
    profile,
    vocab,
    promptTokens: matrix.promptTokens[0]!,
    outputTokens,
    repeats: matrix.repeats,
    progress: options.progress,
  });
  result.checks.push(...planChecks(measured, streams));
  const layout = (m: PlanMeasurement) =>
    m.plan.stages.map((s) => `${s.device}[${s.layerStart}-${s.layerEnd - 1}]`).join(' ');
  result.tables.push({
    title: 'Plans: measured against predicted',
    head: [
      'plan',
      'stages',
      'ms/token',
      'predicted',
      `tokens/s (${streams} streams)`,
      'predicted',
      'micro-batch',
    ],
    rows: measured.map((m) => [
      m.label,
      layout(m),
      fmt(m.tpotMs),
      fmt(m.predictedTpotMs),
      fmt(m.tokensPerS),
      fmt(m.predictedTokensPerS),
      `${m.plan.microBatchSize}x${m.plan.microBatchesInFlight}`,
    ]),
  });
  result.charts.push({
    file: 'plans.svg',
    title: 'Throughput by plan',
    svg: barChart({
      title: `tokens/s by plan, ${streams} streams`,
      unit: 'tokens/s',
      bars: measured.map((m) => ({ label: m.label, value: m.tokensPerS })),
    }),
  });
  for (const m of measured) {
    result.metrics[`plan.tpotMs.${m.label}`] = { unit: 'ms', summary: summarize([m.tpotMs]) };
    result.metrics[`plan.tokensPerS.${m.label}`] = {
      unit: 'tok/s',
      summary: summarize([m.tokensPerS]),
    };
  }
}

/** DP plans against the even split, and every plan against its prediction. */
export function planChecks(measured: PlanMeasurement[], streams: number): BenchCheck[] {
  const byLabel = (label: string) => measured.find((m) => m.label === label)!;
  const even = byLabel('even split');
  const error = (value: number, predicted: number) => Math.abs(value - predicted) / value;
  return [
    check(
      'DP throughput plan vs even split',
      byLabel('DP throughput').tokensPerS / even.tokensPerS,
      1.3,
      `tokens/s with ${streams} streams, DP throughput plan / even split`,
    ),
    check(
      'DP latency plan vs even split',
      byLabel('DP latency').tpotMs / even.tpotMs,
      1,
      'ms per token of one stream, DP latency plan / even split',
      '<=',
    ),
    ...measured.flatMap((m) => [
      check(
        `${m.label}: predicted ms/token`,
        error(m.tpotMs, m.predictedTpotMs),
        0.15,
        '|measured - predicted| / measured, one stream',
        '<=',
      ),
      check(
        `${m.label}: predicted tokens/s`,
        error(m.tokensPerS, m.predictedTokensPerS),
        0.15,
        `|measured - predicted| / measured, ${streams} streams`,
        '<=',
      ),
    ]),
  ];
}
