/**
 * `npm run bench -- planner`: first how long planning takes at scale (80 layers over
 * 16 and 64 preset devices, no cluster); then an emulated edge cluster on one machine —
 * three workers slowed to 0.5, 0.25 and 0.125 of this machine's speed, every link shaped to
 * 100 Mbit/s with 2 ms one-way delay — running the 110M preset under each plan,
 * measured against the planner's predictions from the cluster's own profile. The
 * same plan sweep as `swarmbee bench --local --plans`. Last, the closed loop: the DP
 * throughput plan again with the coordinator's drift loop on, serving until the loop has
 * judged (and perhaps re-planned) it, then measured like the sweep against the baselines.
 */
import { join } from 'node:path';
import { BENCH_PRESET, cachedSynthModel, cacheRoot, DEFAULT_SYNTH_SEED } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import type { PlanResult } from '@swarmbee/planner';
import { closedLoop } from '../cluster-bench/closed-loop.js';
import { startEmulatedCluster } from '../cluster-bench/emulated-cluster.js';
import { PLAN_CASES, replanBody, sweepPlans } from '../cluster-bench/plans.js';
import { planChecks } from '../cluster-bench/run.js';
import { runCell } from '../cluster-bench/scenario.js';
import { check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import { resultHeader, type Suite, type SuiteContext } from '../suite.js';
import { measurePlanningTime, planningTimeChecks, planningTimeTable } from './planning-time.js';

/**
 * Speeds of the emulated devices. Together they ask for 0.875 of a core at most, so on a
 * 2-core machine the coordinator and the 32 streams' clients have the rest: at 1, 0.5 and
 * 0.25 (1.75 cores) the contention the profile never saw decided the measured rates.
 */
export const PLANNER_BENCH_SPEEDS = [0.5, 0.25, 0.125];
/** Concurrent streams of the throughput cells. */
export const PLANNER_BENCH_STREAMS = 32;
export const PLANNER_BENCH_LINK = { delayMs: 2, mbit: 100 };
/** The drift loop of the closed-loop case: the coordinator's defaults. */
export const PLANNER_BENCH_LOOP = {
  threshold: 0.15,
  windows: 2,
  minIntervalMs: 30_000,
};
/** The plans the DP must never be worse than. */
const BASELINES = ['even split', 'memory share', 'best single device'];
const PROMPT_TOKENS = 16;

export const plannerSuite: Suite = {
  name: 'planner',
  describe:
    'emulated heterogeneous cluster (speeds 0.5, 0.25, 0.125; 100 Mbit/s, 2 ms links): plans measured against their predictions',
  async run(context: SuiteContext) {
    const started = Date.now();
    const outputTokens = context.quick ? 16 : 32;
    const repeats = context.quick ? 1 : 3;
    const planning = measurePlanningTime({
      warmRuns: context.quick ? 1 : 3,
      progress: context.progress,
    });
    const model = await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED);
    context.progress(
      `planner: starting 3 workers (speeds ${PLANNER_BENCH_SPEEDS.join(', ')}) behind 100 Mbit/s, 2 ms links`,
    );
    const cluster = await startEmulatedCluster(context, {
      model,
      speeds: PLANNER_BENCH_SPEEDS,
      link: PLANNER_BENCH_LINK,
      cacheDir: join(cacheRoot(), 'bench', 'planner'),
      coordinator: {
        planning: { planner: 'even' },
        // Every plan is measured as deployed: the drift loop would re-plan the baselines.
        drift: { threshold: 0 },
      },
    });
    try {
      // The coordinator's own step time goes into the profile once it has served: one stream,
      // then every stream at once, on the even split it starts with (excluded from results).
      context.progress('planner: warm-up, so the coordinator has timed its own steps');
      const target = { url: cluster.apiUrl };
      const vocab = model.manifest.config.vocabSize;
      await runCell(target, vocab, PROMPT_TOKENS, 32, 1, 1);
      await runCell(target, vocab, PROMPT_TOKENS, 32, PLANNER_BENCH_STREAMS, 1);
      context.progress('planner: profiling the cluster');
      const profile = await cluster.coordinator.profile({ reprofile: true });
      const microBatchCandidates = [1, 2, 4, 8, 16];
      const { measured, streams, workload } = await sweepPlans(target, {
        profile,
        vocab,
        promptTokens: PROMPT_TOKENS,
        outputTokens,
        repeats,
        streams: PLANNER_BENCH_STREAMS,
        // The profile measures batches up to 32; the scheduler composes at most 16 rows.
        microBatchCandidates,
        progress: context.progress,
      });
      const dpCase = PLAN_CASES.find((c) => c.label === 'DP throughput')!;
      const loop = await closedLoop(target, cluster.coordinator, {
        replanBody: replanBody(dpCase, workload, { microBatchCandidates, streams }),
        loop: PLANNER_BENCH_LOOP,
        serveMs: context.quick ? 30_000 : 60_000,
        streams,
        vocab,
        promptTokens: PROMPT_TOKENS,
        outputTokens,
        repeats,
        progress: context.progress,
      });
      const openLoop = measured.find((m) => m.label === dpCase.label)!;
      const best = measured
        .filter((m) => BASELINES.includes(m.label))
        .reduce((a, b) => (b.tokensPerS > a.tokensPerS ? b : a));
      const fmt = (v: number) => v.toFixed(1);
      const stagesOf = (plan: PlanResult) =>
        plan.stages.map((s) => `${s.device}[${s.layerStart}-${s.layerEnd - 1}]`).join(' ');
      return {
        suite: 'planner',
        title: 'Planner: plans on an emulated heterogeneous cluster, measured against predictions',
        ...resultHeader(context, started, model, `synthetic preset ${BENCH_PRESET}`),
        options: {
          speeds: PLANNER_BENCH_SPEEDS,
          link: PLANNER_BENCH_LINK,
          outputTokens,
          repeats,
          streams,
          workload,
          profile,
        },
        notes: [
          `Workers run as devices ${PLANNER_BENCH_SPEEDS.join(', ')} times as fast as this machine (they idle after each forward pass); every data link, the coordinator's included, goes through a user-space shaper: ${PLANNER_BENCH_LINK.mbit} Mbit/s, ${PLANNER_BENCH_LINK.delayMs} ms one way.`,
          "Planning time: the planners alone on preset devices (estimates from published figures) for an 80-layer model of Llama-2-7B width; the first call includes JIT warm-up, as a freshly started coordinator pays it. \"Objective vs DP\" is the plan's ms/token (latency) or 1 / tokens/s (throughput) over the exact DP's: 1 is the optimum. Over 64 distinct devices the DP's state space is far past its limit, so only GA and PSO run.",
          `The cluster is profiled once (compute and links, over the shaped links); every prediction comes from that profile. One stream: a ${PROMPT_TOKENS}-token prompt and ${outputTokens} greedy tokens, median gap between tokens over ${repeats} run(s). Throughput: ${streams} concurrent streams (the DP throughput plan's micro-batch size x micro-batches in flight), counting tokens while every stream decodes (the steady state the cost model predicts). Warm-up excluded.`,
        ],
        metrics: Object.fromEntries([
          ...measured.flatMap((m) => [
            [`tpotMs.${m.label}`, { unit: 'ms', summary: summarize([m.tpotMs]) }],
            [`tokensPerS.${m.label}`, { unit: 'tok/s', summary: summarize([m.tokensPerS]) }],
          ]),
          ...planning.map((r) => [
            `planningMs.${r.devices}.${r.cluster.split(' ')[1]}.${r.objective}.${r.planner}`,
            { unit: 'ms', summary: r.warmMs },
          ]),
        ]),
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
              m.plan.stages.map((s) => `${s.device}[${s.layerStart}-${s.layerEnd - 1}]`).join(' '),
              fmt(m.tpotMs),
              fmt(m.predictedTpotMs),
              fmt(m.tokensPerS),
              fmt(m.predictedTokensPerS),
              `${m.plan.microBatchSize}x${m.plan.microBatchesInFlight}`,
            ]),
          },
          {
            title: `Closed loop: the DP throughput plan with the drift loop on, ${streams} streams`,
            head: ['plan', 'stages', 'tokens/s', 'vs best baseline'],
            rows: [
              ['DP throughput, loop off', stagesOf(openLoop.plan), fmt(openLoop.tokensPerS)],
              ['DP throughput, loop on', stagesOf(loop.planAfter), fmt(loop.tokensPerS)],
              [`best baseline (${best.label})`, stagesOf(best.plan), fmt(best.tokensPerS)],
            ].map((row) => [...row, (Number(row[2]) / best.tokensPerS).toFixed(2)]),
          },
          {
            title: 'Drift decisions in the closed-loop run',
            head: ['action', 'reason'],
            rows: loop.decisions.map((e) => [e.action, e.reason]),
          },
          planningTimeTable(planning),
        ],
        checks: [
          ...planChecks(measured, streams),
          check(
            'closed loop vs best baseline',
            loop.tokensPerS / best.tokensPerS,
            1,
            `tokens/s with ${streams} streams: the plan the drift loop settled on from the DP throughput plan / the best of even split, memory share and best single device`,
          ),
          ...planningTimeChecks(planning),
        ],
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
