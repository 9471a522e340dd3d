/**
 * `npm run bench -- drift`: thermal throttling on the planner suite's emulated devices
 * (speeds 0.5, 0.25, 0.125) behind gigabit links, serving the DP's throughput plan under a
 * steady load. Mid-run the device with the most layers slows to a quarter of its speed
 * (its speed file changes), and later recovers. Run twice on the same cluster and profile:
 * with the drift loop off, then on. Reported: tokens/s before, in the first seconds of the
 * slowdown, once it settled, and after recovery; when the loop noticed; what it re-planned.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DriftEvent, postJson } from '@swarmbee/coordinator';
import type { Plan } from '@swarmbee/core';
import { BENCH_PRESET, cachedSynthModel, cacheRoot, DEFAULT_SYNTH_SEED } from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import type { PlanResult } from '@swarmbee/planner';
import { startEmulatedCluster } from '../cluster-bench/emulated-cluster.js';
import { rateBetween, steadyLoad, windowRates } from '../cluster-bench/steady-load.js';
import { type BenchCheck, check } from '../report/report.js';
import { lineChart } from '../report/svg.js';
import { resultHeader, type Suite } from '../suite.js';
import { PLANNER_BENCH_SPEEDS } from './planner.js';

/** How many times slower the throttled device runs. */
const THROTTLE_FACTOR = 4;
const STREAMS = 16;
const PROMPT_TOKENS = 16;
const OUTPUT_TOKENS = 48;
/** The loop's settings in the run with it on. */
const LOOP = { threshold: 0.15, windows: 2, minIntervalMs: 30_000 };
/** Width of the windows of the throughput-over-time chart, ms. */
const CHART_WINDOW_MS = 2000;
/**
 * Gigabit links (a Pi 5's or a Jetson's Ethernet): the planner suite's 100 Mbit/s would make
 * every re-plan of the 110M preset's 326 MB move for half a minute, longer than the slowdown
 * this suite watches — the loop would rightly stay put and show nothing.
 */
const LINK = { delayMs: 0.5, mbit: 1000 };
/** The first part of the slowdown, s: the loop's reaction time falls in it. */
const REACTION_S = 12;

interface Phases {
  warmS: number;
  beforeS: number;
  throttledS: number;
  restoredS: number;
}
const FULL: Phases = { warmS: 8, beforeS: 20, throttledS: 45, restoredS: 35 };
const QUICK: Phases = { warmS: 4, beforeS: 10, throttledS: 30, restoredS: 25 };

interface RunResult {
  loop: 'off' | 'on';
  planBefore: string;
  planAfter: string;
  throttledDevice: string;
  before: number;
  reaction: number;
  settled: number;
  restored: number;
  /** Seconds from the slowdown to the loop's first decision finding the throttled device slower; undefined: none. */
  noticedS: number | undefined;
  events: DriftEvent[];
  /** Date.now() of the slowdown. */
  throttledAt: number;
  series: [number, number][];
  shortCompletions: number;
}

const describePlan = (plan: Plan) =>
  plan.stages.map((s) => `${s.device}[${s.layerStart}-${s.layerEnd - 1}]`).join(' ');

export const driftSuite: Suite = {
  name: 'drift',
  describe: `a device throttled to 1/${THROTTLE_FACTOR} of its speed mid-run and recovered, with the drift loop off and on: tokens/s before, during and after`,
  async run(context) {
    const started = Date.now();
    const phases = context.quick ? QUICK : FULL;
    const model = await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED);
    const speedDir = await mkdtemp(join(tmpdir(), 'swarmbee-bench-drift-'));
    const speedFile = (i: number) => join(speedDir, `worker-${i}.speed`);
    const setSpeed = (i: number, speed: number) => writeFile(speedFile(i), String(speed));
    await Promise.all(PLANNER_BENCH_SPEEDS.map((s, i) => setSpeed(i, s)));
    context.progress(
      `drift: starting 3 workers (speeds ${PLANNER_BENCH_SPEEDS.join(', ')}) behind ${LINK.mbit} Mbit/s, ${LINK.delayMs} ms links`,
    );
    const cluster = await startEmulatedCluster(context, {
      model,
      speeds: PLANNER_BENCH_SPEEDS,
      link: LINK,
      speedFile,
      cacheDir: join(cacheRoot(), 'bench', 'planner'),
      coordinator: {
        planning: {
          planner: 'dp',
          objective: 'throughput',
          microBatchCandidates: [1, 2, 4, 8, 16],
        },
        drift: { ...LOOP, threshold: 0 },
      },
    });
    const target = { url: cluster.apiUrl };
    const vocab = model.manifest.config.vocabSize;
    const runs: RunResult[] = [];
    try {
      for (const loop of ['off', 'on'] as const) {
        await Promise.all(PLANNER_BENCH_SPEEDS.map((s, i) => setSpeed(i, s)));
        // The loop-off run leaves the profile as measured, so both runs start from one plan.
        const { plan } = await postJson<{ plan: PlanResult }>(target, '/swarmbee/replan', {
          planner: 'dp',
          objective: 'throughput',
          // Judged on the traffic the load sends.
          context_tokens: PROMPT_TOKENS + OUTPUT_TOKENS,
          prompt_tokens: PROMPT_TOKENS,
          decode_context_tokens: PROMPT_TOKENS + OUTPUT_TOKENS / 2,
          streams: STREAMS,
          micro_batch_candidates: [1, 2, 4, 8, 16],
        });
        cluster.coordinator.configureDrift(loop === 'on' ? LOOP : { threshold: 0 });
        const widest = [...plan.stages].sort(
          (a, b) => b.layerEnd - b.layerStart - (a.layerEnd - a.layerStart),
        )[0]!;
        const index = Number(widest.device.replace('worker-', ''));
        context.progress(
          `drift: loop ${loop}: ${describePlan(plan)}; ${STREAMS} streams; ${widest.device} slows ${THROTTLE_FACTOR}x after ${phases.warmS + phases.beforeS} s`,
        );
        const stop = new AbortController();
        const t0 = performance.now();
        const wallStart = Date.now();
        const marks = { tThrottle: 0, wallThrottle: 0, tRestore: 0, tEnd: 0 };
        let planDuring: Plan | undefined;
        // The phases run beside the load and end it: slowdown, recovery, stop.
        const phasesRun = async () => {
          try {
            await sleep((phases.warmS + phases.beforeS) * 1000);
            marks.tThrottle = performance.now();
            marks.wallThrottle = Date.now();
            await setSpeed(index, PLANNER_BENCH_SPEEDS[index]! / THROTTLE_FACTOR);
            await sleep(phases.throttledS * 1000);
            planDuring = cluster.coordinator.plan;
            marks.tRestore = performance.now();
            await setSpeed(index, PLANNER_BENCH_SPEEDS[index]!);
            await sleep(phases.restoredS * 1000);
            marks.tEnd = performance.now();
          } finally {
            stop.abort();
          }
        };
        const [{ arrivals, shortCompletions }] = await Promise.all([
          steadyLoad(target, {
            streams: STREAMS,
            vocab,
            promptTokens: PROMPT_TOKENS,
            outputTokens: OUTPUT_TOKENS,
            signal: stop.signal,
          }),
          phasesRun(),
        ]);
        const { tThrottle, wallThrottle, tRestore, tEnd } = marks;
        const events = (
          cluster.coordinator.describe() as { drift: { events: DriftEvent[] } }
        ).drift.events.filter((e) => e.at >= wallStart);
        // Noticed: the first decision that finds the throttled device slower, not a noise correction of another.
        const first = events.find(
          (e) =>
            e.at >= wallThrottle && e.stages.some((d) => d.device === widest.device && d.ratio > 1),
        );
        runs.push({
          loop,
          planBefore: describePlan(plan),
          planAfter: planDuring ? describePlan(planDuring) : '–',
          throttledDevice: widest.device,
          before: rateBetween(arrivals, t0 + phases.warmS * 1000, tThrottle),
          reaction: rateBetween(arrivals, tThrottle, tThrottle + REACTION_S * 1000),
          settled: rateBetween(arrivals, tThrottle + REACTION_S * 1000, tRestore),
          // Recovery, like the slowdown, takes the loop a few polls: judged after REACTION_S.
          restored: rateBetween(arrivals, tRestore + REACTION_S * 1000, tEnd),
          noticedS: first ? (first.at - wallThrottle) / 1000 : undefined,
          events,
          throttledAt: wallThrottle,
          series: windowRates(arrivals, t0, tEnd, CHART_WINDOW_MS).map((r, w) => [
            (w * CHART_WINDOW_MS) / 1000,
            r,
          ]),
          shortCompletions,
        });
      }
    } finally {
      await cluster.stop();
      await rm(speedDir, { recursive: true, force: true });
    }
    const off = runs.find((r) => r.loop === 'off')!;
    const on = runs.find((r) => r.loop === 'on')!;
    const fmt = (v: number) => v.toFixed(1);
    const checks: BenchCheck[] = [
      check(
        'loop on / off, tokens/s once the slowdown settled',
        on.settled / off.settled,
        1.3,
        'the drift loop re-plans around the throttled device',
      ),
      check(
        'loop on: tokens/s after recovery / before',
        on.restored / on.before,
        0.85,
        'the loop takes the recovered device back',
      ),
      check(
        'loop on: seconds from the slowdown to its first decision on the throttled device',
        on.noticedS ?? Number.POSITIVE_INFINITY,
        REACTION_S,
        'noticed from stage metrics within seconds',
        '<=',
      ),
      check(
        'completions cut short',
        off.shortCompletions + on.shortCompletions,
        0,
        'every stream got all its tokens across the re-plans',
        '<=',
      ),
    ];
    return {
      suite: 'drift',
      title: 'Drift: a device throttled mid-run, with the closed loop off and on',
      ...resultHeader(context, started, model, `synthetic preset ${BENCH_PRESET}`),
      options: { speeds: PLANNER_BENCH_SPEEDS, link: LINK, phases, loop: LOOP },
      notes: [
        `The planner suite's emulated devices behind gigabit links (${LINK.mbit} Mbit/s, ${LINK.delayMs} ms one way); the DP throughput plan for ${STREAMS} streams of ${PROMPT_TOKENS}-token prompts and ${OUTPUT_TOKENS} greedy tokens, sent back to back. After ${phases.warmS} s of warm-up (excluded) and ${phases.beforeS} s, the device with the most layers runs ${THROTTLE_FACTOR}x slower for ${phases.throttledS} s (its --speed-file changes), then recovers for ${phases.restoredS} s.`,
        `"reaction" is the first ${REACTION_S} s of the slowdown (the loop needs ${LOOP.windows} stats polls to act, then a redeploy), "settled" the rest of it; "restored" is the recovery after its first ${REACTION_S} s. The loop-off run goes first, so both start from the same measured profile and plan.`,
        "Loop on: the defaults — threshold 15 %, 2 polls of hysteresis, at most one re-plan per 30 s, and only one that pays back its weights' transfer within 30 s.",
      ],
      metrics: Object.fromEntries(
        runs.flatMap((r) =>
          (['before', 'reaction', 'settled', 'restored'] as const).map((phase) => [
            `tokensPerS.loop-${r.loop}.${phase}`,
            { unit: 'tok/s', summary: summarize([r[phase]]) },
          ]),
        ),
      ),
      tables: [
        {
          title: 'Tokens/s through a slowdown',
          head: ['loop', 'before', 'reaction', 'settled', 'restored', 'noticed (s)', 'decisions'],
          rows: runs.map((r) => [
            r.loop,
            fmt(r.before),
            fmt(r.reaction),
            fmt(r.settled),
            fmt(r.restored),
            r.noticedS === undefined ? '–' : r.noticedS.toFixed(1),
            String(r.events.length),
          ]),
        },
        {
          title: 'Plans',
          head: ['loop', 'throttled', 'plan before', 'plan at the end of the slowdown'],
          rows: runs.map((r) => [r.loop, r.throttledDevice, r.planBefore, r.planAfter]),
        },
        {
          title: 'Drift decisions (loop on)',
          head: ['s after the slowdown', 'action', 'reason'],
          rows: on.events.map((e) => [
            ((e.at - on.throttledAt) / 1000).toFixed(1),
            e.action,
            e.reason,
          ]),
        },
      ],
      checks,
      charts: [
        {
          file: 'drift-throughput.svg',
          title: 'Tokens/s over time',
          svg: lineChart({
            title: `Tokens/s, ${STREAMS} streams; throttled from ${phases.warmS + phases.beforeS} s to ${phases.warmS + phases.beforeS + phases.throttledS} s`,
            xLabel: 's',
            yLabel: 'tokens/s',
            series: runs.map((r) => ({ name: `loop ${r.loop}`, points: r.series })),
          }),
        },
      ],
    };
  },
};
