/**
 * How long the planners take at the sizes that matter, with no cluster: an 80-layer model
 * (Llama-2-7B's width, 67 GB at fp32, so most of the devices are needed) over 16 preset
 * devices of 5 kinds and of one kind (the exact DP and the GA and PSO), and over 64
 * devices whose links all differ (GA and PSO: the DP's state space is far too large there).
 * GA and PSO report their gap to the DP's objective on the same cost model. Part of the
 * planner suite.
 */
import type { ClusterProfile } from '@swarmbee/core';
import { type Summary, summarize } from '@swarmbee/optimize';
import {
  clusterFromPresets,
  DEVICE_PRESETS,
  LLAMA2_7B_CONFIG,
  llamaModelSummary,
  type Objective,
  type PlannerName,
  type PlanResult,
  plan,
} from '@swarmbee/planner';
import { type BenchCheck, check } from '../report/report.js';

/** The planning times the brief sets: the DP over 16 devices, GA/PSO over 64. */
export const DP_16_DEVICES_BUDGET_MS = 1000;
export const HEURISTIC_64_DEVICES_BUDGET_MS = 5000;

const MODEL_80 = llamaModelSummary({ ...LLAMA2_7B_CONFIG, nLayers: 80 }, 'llama-80L-4096');
const WORKLOAD = { contextTokens: 512, promptTokens: 128 };
/** Every device preset, in turn: Pis, Jetsons (CPU and GPU), a laptop. */
const PRESETS_64 = DEVICE_PRESETS.map((preset) => preset.id);

function mixed16(): ClusterProfile {
  const kinds = [
    ...Array<string>(6).fill('rpi4-4gb'),
    ...Array<string>(4).fill('rpi4-8gb'),
    ...Array<string>(3).fill('rpi5-8gb'),
    ...Array<string>(2).fill('orin-nano-8gb-gpu'),
    'laptop-16gb',
  ];
  return clusterFromPresets(
    MODEL_80,
    kinds.map((preset, i) => ({ name: `${preset}-${i}`, preset })),
  );
}

function identical16(): ClusterProfile {
  return clusterFromPresets(
    MODEL_80,
    Array.from({ length: 16 }, (_, i) => ({ name: `pi5-${i}`, preset: 'rpi5-8gb' })),
  );
}

/** 64 devices of 6 kinds behind links that differ per pair, so no two devices are alike. */
function varied64(): ClusterProfile {
  const cluster = clusterFromPresets(
    MODEL_80,
    Array.from({ length: 64 }, (_, i) => ({
      name: `dev-${i}`,
      preset: PRESETS_64[i % PRESETS_64.length]!,
    })),
  );
  cluster.links = cluster.links.map((link, i) => ({ ...link, rttMs: 0.2 + (i % 7) * 0.1 }));
  return cluster;
}

export interface PlanningTimeRow {
  cluster: string;
  devices: number;
  objective: Objective;
  planner: PlannerName;
  /** The first call, JIT included, as a freshly started coordinator pays it. */
  firstMs: number;
  /** The calls after it. */
  warmMs: Summary;
  result: PlanResult;
  /** Objective relative to the DP's on the same cluster (1 = as good; > 1 worse), if the DP ran. */
  gapToDp?: number;
}

/** The objective's figure, oriented so that lower is better. */
const cost = (result: PlanResult, objective: Objective) =>
  objective === 'latency' ? result.tpotMs : 1 / result.tokensPerS;

export function measurePlanningTime(options: {
  warmRuns: number;
  progress: (line: string) => void;
}): PlanningTimeRow[] {
  const cases: [string, ClusterProfile, PlannerName[]][] = [
    ['16 mixed (5 kinds)', mixed16(), ['dp', 'ga', 'pso']],
    ['16 identical Pi 5', identical16(), ['dp', 'ga', 'pso']],
    ['64 varied (links differ)', varied64(), ['ga', 'pso']],
  ];
  const rows: PlanningTimeRow[] = [];
  for (const [name, cluster, planners] of cases) {
    for (const objective of ['latency', 'throughput'] as Objective[]) {
      options.progress(`planner: planning time, 80 layers over ${name}, ${objective}`);
      let dp: PlanResult | undefined;
      for (const planner of planners) {
        const run = () => plan({ cluster, workload: WORKLOAD }, { planner, objective });
        let started = performance.now();
        const result = run();
        const firstMs = performance.now() - started;
        const warm: number[] = [];
        for (let i = 0; i < options.warmRuns; i++) {
          started = performance.now();
          run();
          warm.push(performance.now() - started);
        }
        if (planner === 'dp') dp = result;
        rows.push({
          cluster: name,
          devices: cluster.devices.length,
          objective,
          planner,
          firstMs,
          warmMs: summarize(warm),
          result,
          ...(dp ? { gapToDp: cost(result, objective) / cost(dp, objective) } : {}),
        });
      }
    }
  }
  return rows;
}

export function planningTimeChecks(rows: readonly PlanningTimeRow[]): BenchCheck[] {
  const worst = (pick: (r: PlanningTimeRow) => boolean) =>
    Math.max(
      ...rows
        .filter(pick)
        .map((r) => (r.warmMs.n > 0 ? Math.max(r.firstMs, r.warmMs.max) : r.firstMs)),
    );
  return [
    check(
      'DP, 80 layers over 16 devices: planning time',
      worst((r) => r.planner === 'dp' && r.devices === 16) / DP_16_DEVICES_BUDGET_MS,
      1,
      `slowest DP call (first or warm, both objectives, both clusters) / ${DP_16_DEVICES_BUDGET_MS} ms`,
      '<=',
    ),
    check(
      'GA and PSO, 80 layers over 64 devices: planning time',
      worst((r) => r.planner !== 'dp' && r.devices === 64) / HEURISTIC_64_DEVICES_BUDGET_MS,
      1,
      `slowest GA or PSO call / ${HEURISTIC_64_DEVICES_BUDGET_MS} ms`,
      '<=',
    ),
  ];
}

export function planningTimeTable(rows: readonly PlanningTimeRow[]) {
  const fmt = (v: number) => (!Number.isFinite(v) ? '-' : v < 10 ? v.toFixed(1) : v.toFixed(0));
  return {
    title: 'Planning time: 80 layers (Llama-2-7B width), preset devices, no cluster',
    head: [
      'devices',
      'objective',
      'planner',
      'first call ms',
      'then ms (median)',
      'predicted',
      'objective vs DP',
    ],
    rows: rows.map((r) => [
      r.cluster,
      r.objective,
      r.planner,
      fmt(r.firstMs),
      fmt(r.warmMs.median),
      r.objective === 'latency'
        ? `${fmt(r.result.tpotMs)} ms/token`
        : `${r.result.tokensPerS.toFixed(2)} tok/s`,
      r.gapToDp === undefined ? '-' : r.gapToDp.toFixed(3),
    ]),
  };
}
