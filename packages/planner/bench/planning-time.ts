/**
 * How long planning takes at the sizes the brief names. A plain script, not a test:
 *   npm run build && node --import=tsx packages/planner/bench/planning-time.ts
 * (add --conditions=swarmbee:source to time the TypeScript sources through tsx instead).
 */
import type { ClusterProfile } from '@swarmbee/core';
import {
  clusterFromPresets,
  comparePlanners,
  comparisonRows,
  LLAMA2_7B_CONFIG,
  llamaModelSummary,
  type Objective,
  type PlannerName,
  plan,
} from '@swarmbee/planner';

// An 80-layer model of Llama-2-7B's width: 67 GB at fp32, so it needs most of the cluster.
const model80 = llamaModelSummary({ ...LLAMA2_7B_CONFIG, nLayers: 80 }, 'llama-80L-4096');

function mixed16(): ClusterProfile {
  const kinds = [
    ...Array(6).fill('rpi4-4gb'),
    ...Array(4).fill('rpi4-8gb'),
    ...Array(3).fill('rpi5-8gb'),
    ...Array(2).fill('orin-nano-8gb-gpu'),
    'laptop-16gb',
  ] as string[];
  return clusterFromPresets(
    model80,
    kinds.map((preset, i) => ({ name: `${preset}-${i}`, preset })),
  );
}

function identical16(): ClusterProfile {
  return clusterFromPresets(
    model80,
    Array.from({ length: 16 }, (_, i) => ({ name: `pi5-${i}`, preset: 'rpi5-8gb' })),
  );
}

function timed(label: string, f: () => unknown): void {
  let started = performance.now();
  f(); // the first call pays for the JIT, as a freshly started coordinator would
  const coldMs = performance.now() - started;
  const runs = 3;
  started = performance.now();
  for (let i = 0; i < runs; i++) f();
  const warmMs = (performance.now() - started) / runs;
  console.log(
    `${label.padEnd(58)} first ${coldMs.toFixed(0).padStart(5)} ms, then ${warmMs.toFixed(0).padStart(5)} ms`,
  );
}

const workload = { contextTokens: 512, promptTokens: 128 };
for (const [name, cluster] of [
  ['16 mixed (5 kinds)', mixed16()],
  ['16 identical Pi 5', identical16()],
] as const) {
  for (const objective of ['latency', 'throughput'] as Objective[]) {
    for (const planner of ['dp', 'ga', 'pso'] as PlannerName[]) {
      timed(`80 layers, ${name}, ${objective}, ${planner}`, () =>
        plan({ cluster, workload }, { planner, objective }),
      );
    }
  }
}

// 64 devices: 16 kinds × 4, and links that differ per pair (two switches), so the DP's
// state space explodes and the heuristics answer.
const presets = [
  'rpi4-4gb',
  'rpi4-8gb',
  'rpi5-8gb',
  'orin-nano-8gb-cpu',
  'orin-nano-8gb-gpu',
  'laptop-16gb',
];
const cluster64 = clusterFromPresets(
  model80,
  Array.from({ length: 64 }, (_, i) => ({
    name: `dev-${i}`,
    preset: presets[i % presets.length]!,
  })),
);
cluster64.links = cluster64.links.map((link, i) => ({ ...link, rttMs: 0.2 + (i % 7) * 0.1 }));
for (const objective of ['latency', 'throughput'] as Objective[]) {
  for (const planner of ['ga', 'pso'] as PlannerName[]) {
    timed(`80 layers, 64 devices (all links differ), ${objective}, ${planner}`, () =>
      plan({ cluster: cluster64, workload }, { planner, objective }),
    );
  }
}

for (const objective of ['latency', 'throughput'] as Objective[]) {
  console.log(`\n16 mixed devices, ${objective}:`);
  for (const row of comparisonRows(
    comparePlanners({ cluster: mixed16(), workload }, { objective }),
  )) {
    console.log(row.join(' | '));
  }
}
