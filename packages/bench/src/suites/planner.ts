/**
 * `npm run bench -- planner`: an emulated edge cluster on one machine — three
 * workers slowed to 1, 0.5 and 0.25 of this machine's speed, every link shaped to
 * 100 Mbit/s with 2 ms one-way delay — running the 110M preset under each plan
 * (even split, memory share, best single device, DP for latency, DP for
 * throughput). Measured time per token and tokens/s against the planner's
 * predictions from the cluster's own profile, and the DP plans against the even split.
 */
import { join } from 'node:path';
import type { Coordinator, PlanningOptions } from '@swarmbee/coordinator';
import type { ClusterProfile, Plan } from '@swarmbee/core';
import { BENCH_PRESET, cachedSynthModel, cacheRoot, DEFAULT_SYNTH_SEED } from '@swarmbee/model';
import { CostModel, type PlanResult, type Workload } from '@swarmbee/planner';
import { LocalCluster } from '../local-cluster.js';
import { machineInfo } from '../machine.js';
import { type BenchCheck, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import { summarize } from '../stats.js';
import type { Suite, SuiteContext } from '../suite.js';

export const PLANNER_BENCH_SPEEDS = [1, 0.5, 0.25];
export const PLANNER_BENCH_LINK = { delayMs: 2, mbit: 100 };
const PROMPT_TOKENS = 16;
/** Micro-batch sizes within the profiled grid, so predictions interpolate rather than extrapolate. */
const MICRO_BATCH_CANDIDATES = [1, 2, 4, 8];
const GREEDY = { temperature: 0, topK: 0, topP: 1 };

const CASES: { label: string; planning: PlanningOptions }[] = [
  { label: 'even split', planning: { planner: 'even', objective: 'throughput' } },
  { label: 'memory share', planning: { planner: 'memory', objective: 'throughput' } },
  { label: 'best single device', planning: { planner: 'solo', objective: 'latency' } },
  { label: 'DP latency', planning: { planner: 'dp', objective: 'latency' } },
  { label: 'DP throughput', planning: { planner: 'dp', objective: 'throughput' } },
];

interface Measured {
  label: string;
  planning: PlanningOptions;
  plan: PlanResult;
  /** One stream: ms per output token, measured and predicted. */
  tpotMs: number;
  predictedTpotMs: number;
  /** Concurrent streams: steady-state tokens/s, measured and predicted. */
  tokensPerS: number;
  predictedTokensPerS: number;
}

/** Token arrival times (ms) of one completion, run through the coordinator's service. */
async function tokenTimes(
  coordinator: Coordinator,
  promptIds: number[],
  maxTokens: number,
): Promise<number[]> {
  const times: number[] = [];
  await coordinator.service.complete(
    { prompt: promptIds, maxTokens, sampling: GREEDY },
    { onToken: () => times.push(performance.now()) },
  );
  return times;
}

/** Median gap between tokens after the first: one stream's time per output token. */
function tpot(times: number[]): number {
  return summarize(times.slice(1).map((t, i) => t - times[i]!)).median;
}

/**
 * Decode throughput with every stream running: tokens that arrived while all streams had
 * started and none had finished, over that window. Prefill and the ragged ends are left
 * out, as they are from the cost model's steady state.
 */
function steadyRate(streams: number[][]): number {
  const from = Math.max(...streams.map((t) => t[0]!));
  const to = Math.min(...streams.map((t) => t.at(-1)!));
  const inWindow = streams.reduce((n, t) => n + t.filter((x) => x > from && x <= to).length, 0);
  if (to > from && inWindow >= streams.length) return (inWindow * 1000) / (to - from);
  // The streams barely overlapped: fall back to every token after each stream's first.
  const start = Math.min(...streams.map((t) => t[0]!));
  const end = Math.max(...streams.map((t) => t.at(-1)!));
  return (streams.reduce((n, t) => n + t.length - 1, 0) * 1000) / Math.max(1, end - start);
}

function prompt(stream: number, vocab: number): number[] {
  return [
    1,
    ...Array.from(
      { length: PROMPT_TOKENS - 1 },
      (_, i) => 3 + ((stream * 7919 + i * 104_729) % (vocab - 3)),
    ),
  ];
}

/** The cost model's view of a plan with `batch`-row micro-batches, `inFlight` at once. */
function predict(
  profile: ClusterProfile,
  workload: Partial<Workload>,
  plan: Plan,
  batch: number,
  inFlight: number,
) {
  const cost = new CostModel(profile, workload);
  const stages = plan.stages.map((s) => ({
    device: cost.deviceIndex(s.device),
    layerStart: s.layerStart,
    layerEnd: s.layerEnd,
  }));
  const evaluation = cost.evaluate(stages, batch, inFlight);
  return {
    tpotMs: evaluation.tpotNs / 1e6,
    tokensPerS: evaluation.tokensPerS,
    stageMs: evaluation.stages.map((st) => st.decodeNs / 1e6),
  };
}

export const plannerSuite: Suite = {
  name: 'planner',
  describe:
    'emulated heterogeneous cluster (speeds 1, 0.5, 0.25; 100 Mbit/s, 2 ms links): plans measured against their predictions',
  async run(context: SuiteContext) {
    const started = Date.now();
    const tokens = context.quick ? 24 : 64;
    const repeats = context.quick ? 1 : 3;
    const model = await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED);
    const vocab = model.manifest.config.vocabSize;
    // Plans are judged on the traffic this benchmark sends.
    const workload: Partial<Workload> = {
      contextTokens: 256,
      promptTokens: PROMPT_TOKENS,
      decodeContextTokens: PROMPT_TOKENS + tokens / 2,
    };
    const planning = (p: PlanningOptions): PlanningOptions => ({
      ...p,
      workload,
      microBatchCandidates: MICRO_BATCH_CANDIDATES,
    });
    const linkShape = {
      delayMs: PLANNER_BENCH_LINK.delayMs,
      bytesPerSecond: (PLANNER_BENCH_LINK.mbit * 1e6) / 8,
    };
    context.progress(
      'planner: starting 3 workers (speeds 1, 0.5, 0.25) behind 100 Mbit/s, 2 ms links',
    );
    const cluster = await LocalCluster.start({
      model,
      workers: PLANNER_BENCH_SPEEDS.length,
      cliBin: context.cliBin,
      cacheDir: join(cacheRoot(), 'bench', 'planner'),
      threads: 1,
      pinCores: true,
      workerOutput: 'ignore',
      workerArgs: (i) => [
        '--speed-factor',
        String(PLANNER_BENCH_SPEEDS[i]),
        '--link-delay-ms',
        String(PLANNER_BENCH_LINK.delayMs),
        '--link-bandwidth-mbit',
        String(PLANNER_BENCH_LINK.mbit),
      ],
      // Enough generation slots for every stream the throughput plans keep in flight.
      coordinator: {
        planning: planning({ planner: 'even' }),
        linkShape,
        limits: { maxActive: 256 },
      },
    });
    try {
      context.progress('planner: profiling the cluster');
      const profile = await cluster.coordinator.profile({ reprofile: true });
      const measured: Measured[] = [];
      const stageRows: string[][] = [];
      for (const planCase of CASES) {
        context.progress(`planner: ${planCase.label}: deploying, one stream`);
        const plan = (await cluster.coordinator.replan(planning(planCase.planning))) as PlanResult;
        await tokenTimes(cluster.coordinator, prompt(0, vocab), 8); // warm-up, excluded
        const before = await cluster.coordinator.workerStats();
        const single: number[] = [];
        for (let r = 0; r < repeats; r++)
          single.push(tpot(await tokenTimes(cluster.coordinator, prompt(r, vocab), tokens)));
        const after = await cluster.coordinator.workerStats();
        const predicted = predict(profile, workload, plan, 1, 1);
        plan.stages.forEach((stage, i) => {
          const delta = (key: string) =>
            (after[stage.device]?.[key] ?? 0) - (before[stage.device]?.[key] ?? 0);
          const perForward = delta('forwardMsTotal') / Math.max(1, delta('forwards'));
          stageRows.push([
            planCase.label,
            `${i}: ${stage.device}[${stage.layerStart}-${stage.layerEnd - 1}]`,
            perForward.toFixed(2),
            predicted.stageMs[i]!.toFixed(2),
          ]);
        });
        measured.push({
          label: planCase.label,
          planning: planCase.planning,
          plan,
          tpotMs: summarize(single).median,
          predictedTpotMs: predicted.tpotMs,
          tokensPerS: 0,
          predictedTokensPerS: 0,
        });
      }
      // Every plan under the load the DP throughput plan is sized for.
      const dpThroughput = measured.find((m) => m.label === 'DP throughput')!.plan;
      const streams = Math.max(2, dpThroughput.microBatchSize * dpThroughput.microBatchesInFlight);
      for (const entry of measured) {
        context.progress(`planner: ${entry.label}: ${streams} concurrent streams`);
        await cluster.coordinator.replan(planning(entry.planning));
        const rates: number[] = [];
        for (let r = 0; r < repeats; r++) {
          rates.push(
            // Long enough that the first streams still decode while the last ones prefill.
            steadyRate(
              await Promise.all(
                Array.from({ length: streams }, (_, s) =>
                  tokenTimes(cluster.coordinator, prompt(s + 1, vocab), 3 * tokens),
                ),
              ),
            ),
          );
        }
        // The scheduler keeps one micro-batch per stage in flight, or the throughput plan's count.
        const inFlight = Math.max(
          entry.plan.stages.length,
          entry.plan.objective === 'throughput' ? entry.plan.microBatchesInFlight : 1,
        );
        entry.tokensPerS = summarize(rates).median;
        entry.predictedTokensPerS = predict(
          profile,
          workload,
          entry.plan,
          Math.ceil(streams / inFlight),
          inFlight,
        ).tokensPerS;
      }
      const byLabel = (label: string) => measured.find((m) => m.label === label)!;
      const even = byLabel('even split');
      const error = (value: number, predicted: number) => Math.abs(value - predicted) / value;
      const checks: BenchCheck[] = [
        check(
          'DP throughput plan vs even split',
          byLabel('DP throughput').tokensPerS / even.tokensPerS,
          1.3,
          `steady tok/s with ${streams} streams, DP throughput plan / even split`,
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
      const fmt = (v: number, d = 1) => v.toFixed(d);
      const layout = (plan: Plan) =>
        plan.stages.map((s) => `${s.device}[${s.layerStart}-${s.layerEnd - 1}]`).join(' ');
      return {
        suite: 'planner',
        title: 'Planner: plans on an emulated heterogeneous cluster, measured against predictions',
        command: context.command,
        startedAt: new Date(started).toISOString(),
        durationMs: Date.now() - started,
        machine: machineInfo(),
        model: {
          name: model.manifest.name,
          modelHash: model.manifest.modelHash,
          weightBytes: model.manifest.weights.bytes,
          source: `synthetic preset ${BENCH_PRESET}`,
        },
        options: {
          speeds: PLANNER_BENCH_SPEEDS,
          link: PLANNER_BENCH_LINK,
          tokens,
          repeats,
          streams,
          workload,
        },
        notes: [
          `Workers run as devices ${PLANNER_BENCH_SPEEDS.join(', ')} times as fast as this machine (they idle after each forward pass) and every data link, the coordinator's included, goes through a user-space shaper: ${PLANNER_BENCH_LINK.mbit} Mbit/s, ${PLANNER_BENCH_LINK.delayMs} ms one way.`,
          `The cluster is profiled once (compute and links, measured over the shaped links); every prediction comes from that profile. One stream: a ${PROMPT_TOKENS}-token prompt and ${tokens} greedy tokens; ms/token is the median gap between tokens, median of ${repeats} run(s). Throughput: ${streams} concurrent streams (the DP throughput plan's micro-batch size x micro-batches in flight), counting only tokens that arrive while every stream is decoding (the steady state the cost model predicts), median of ${repeats}. Warm-up excluded.`,
        ],
        metrics: Object.fromEntries(
          measured.flatMap((m) => [
            [`tpotMs.${m.label}`, { unit: 'ms', summary: summarize([m.tpotMs]) }],
            [`tokensPerS.${m.label}`, { unit: 'tok/s', summary: summarize([m.tokensPerS]) }],
          ]),
        ),
        tables: [
          {
            title: 'Plans',
            head: [
              'plan',
              'stages',
              'ms/token',
              'predicted',
              'tokens/s',
              'predicted',
              'micro-batch',
            ],
            rows: measured.map((m) => [
              m.label,
              layout(m.plan),
              fmt(m.tpotMs),
              fmt(m.predictedTpotMs),
              fmt(m.tokensPerS),
              fmt(m.predictedTokensPerS),
              `${m.plan.microBatchSize}x${m.plan.microBatchesInFlight}`,
            ]),
          },
          {
            title: 'Stage compute, one stream (ms per forward pass)',
            head: ['plan', 'stage', 'measured', 'predicted'],
            rows: stageRows,
          },
        ],
        checks,
        charts: [
          {
            file: 'plans-throughput.svg',
            title: 'Throughput by plan',
            svg: barChart({
              title: `Steady decode tokens/s, ${streams} streams`,
              unit: 'tokens/s',
              bars: measured.map((m) => ({ label: m.label, value: m.tokensPerS })),
            }),
          },
          {
            file: 'plans-latency.svg',
            title: 'Time per token by plan',
            svg: barChart({
              title: 'ms per token, one stream',
              unit: 'ms',
              bars: measured.map((m) => ({ label: m.label, value: m.tpotMs })),
            }),
          },
        ],
      };
    } finally {
      await cluster.stop();
    }
  },
};
