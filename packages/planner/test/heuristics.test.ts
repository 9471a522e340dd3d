/**
 * GA and PSO never return a plan that does not fit or breaks a pin, on many random
 * instances; the same seed gives the same plan; and their gap to the exact DP is
 * reported (as a test comment, and checked to be small on average).
 */
import t from 'tap';
import {
  CostModel,
  clusterFromPresets,
  type Evaluation,
  LLAMA2_7B_CONFIG,
  llamaModelSummary,
  plan,
  planDp,
  planGa,
  planPso,
  type SearchSpace,
  TINYLLAMA_1B_CONFIG,
} from '../src/index.js';
import { planDefect } from '../src/plan.js';
import { Rng } from '../src/rng.js';
import { randomInstance } from './helpers/random-cluster.js';

const INSTANCES = 250;
const EVALUATIONS = 600;

/** How much worse `e` is than the optimum, as a fraction (0 = optimal). */
function gap(space: SearchSpace, e: Evaluation, best: Evaluation): number {
  if (space.objective === 'latency') return e.tpotNs / best.tpotNs - 1;
  return best.tokensPerS / e.tokensPerS - 1;
}

t.test('GA and PSO return only plans that fit and keep the pins; gap to the DP', async (t) => {
  const gaps = { ga: [] as number[], pso: [] as number[] };
  const problems: string[] = [];
  for (let seed = 1; seed <= INSTANCES; seed++) {
    const instance = randomInstance(seed);
    const cost = new CostModel(instance.cluster, instance.workload);
    const space: SearchSpace = {
      cost,
      objective: instance.objective,
      microBatchCandidates: instance.microBatchCandidates,
      microBatchesInFlight: instance.microBatchesInFlight,
      pinFirst: instance.pinFirst === undefined ? undefined : cost.deviceIndex(instance.pinFirst),
      pinLast: instance.pinLast === undefined ? undefined : cost.deviceIndex(instance.pinLast),
    };
    const exact = planDp(cost, space.objective, space)?.evaluation;
    for (const [name, search] of [
      ['ga', planGa],
      ['pso', planPso],
    ] as const) {
      const found = search(space, { seed, evaluations: EVALUATIONS }).best;
      if (!found) {
        if (exact) gaps[name].push(Number.POSITIVE_INFINITY);
        continue;
      }
      if (!found.feasible) problems.push(`${name} seed ${seed}: returned a plan that does not fit`);
      const defect = planDefect(cost, found, space.pinFirst, space.pinLast);
      if (defect) problems.push(`${name} seed ${seed}: ${defect}`);
      if (!exact) problems.push(`${name} seed ${seed}: found a plan where the DP proves none fits`);
      else gaps[name].push(gap(space, found, exact));
    }
  }
  t.same(problems, [], 'no infeasible or broken plan');
  for (const [name, values] of Object.entries(gaps)) {
    const finite = values.filter(Number.isFinite);
    const mean = finite.reduce((s, g) => s + g, 0) / Math.max(1, finite.length);
    const optimal = values.filter((g) => g <= 1e-12).length;
    const missed = values.length - finite.length;
    t.comment(
      `${name}: ${values.length} feasible instances, optimal on ${optimal}, mean gap ${(mean * 100).toFixed(2)}%, ` +
        `worst ${(Math.max(0, ...finite) * 100).toFixed(1)}%, found nothing on ${missed}`,
    );
    t.ok(mean < 0.05, `${name} stays within 5% of the optimum on average`);
    t.ok(
      missed <= values.length * 0.02,
      `${name} finds a plan on at least 98% of feasible instances`,
    );
  }
});

t.test('the same seed gives the same plan', async (t) => {
  const model = llamaModelSummary(TINYLLAMA_1B_CONFIG, 'tinyllama');
  const presets = [
    'rpi4-4gb',
    'rpi4-8gb',
    'rpi5-8gb',
    'orin-nano-8gb-cpu',
    'orin-nano-8gb-gpu',
    'laptop-16gb',
  ];
  const cluster = clusterFromPresets(
    model,
    Array.from({ length: 24 }, (_, i) => ({
      name: `dev-${i}`,
      preset: presets[i % presets.length]!,
    })),
    undefined,
    '2025-01-01T00:00:00.000Z',
  );
  // Different round trips per link make every device distinct: only the heuristics answer.
  cluster.links = cluster.links.map((link, i) => ({ ...link, rttMs: 0.2 + (i % 5) * 0.1 }));
  for (const planner of ['ga', 'pso'] as const) {
    const options = { planner, objective: 'throughput' as const, seed: 7, searchEvaluations: 1500 };
    const first = plan({ cluster, workload: { contextTokens: 512 } }, options);
    const again = plan({ cluster, workload: { contextTokens: 512 } }, options);
    t.same(again.stages, first.stages, `${planner} repeats its plan`);
    t.equal(first.planner, planner);
  }
});

t.test('gap to the DP on preset clusters of 8 to 14 devices', async (t) => {
  const presets = [
    'rpi4-4gb',
    'rpi4-8gb',
    'rpi5-8gb',
    'orin-nano-8gb-cpu',
    'orin-nano-8gb-gpu',
    'laptop-16gb',
  ];
  const models = [
    llamaModelSummary(TINYLLAMA_1B_CONFIG, 'tinyllama-1.1b'),
    llamaModelSummary(LLAMA2_7B_CONFIG, 'llama2-7b'),
  ];
  const rows: string[] = [];
  for (let seed = 1; seed <= 6; seed++) {
    const rng = new Rng(seed);
    const kinds = presets.filter(() => rng.next() < 0.6).slice(0, 4);
    if (kinds.length < 2) kinds.push('rpi4-8gb', 'rpi5-8gb');
    const n = 8 + rng.int(7);
    const model = models[seed % 2]!;
    const cluster = clusterFromPresets(
      model,
      Array.from({ length: n }, (_, i) => ({ name: `d${i}`, preset: kinds[i % kinds.length]! })),
      { rttMs: 0.2 + rng.next(), bandwidthBytesPerS: 50e6 + rng.next() * 100e6 },
      '2025-01-01T00:00:00.000Z',
    );
    for (const objective of ['latency', 'throughput'] as const) {
      const request = { cluster, workload: { contextTokens: 512 } };
      const dp = plan(request, { objective });
      const cells = [
        `${model.name} ×${n} ${objective}`.padEnd(32),
        `dp ${dp.tpotMs.toFixed(0)} ms ${dp.tokensPerS.toFixed(2)} tok/s`,
      ];
      for (const planner of ['ga', 'pso'] as const) {
        const found = plan(request, { objective, planner, seed, searchEvaluations: 4000 });
        const g =
          objective === 'latency'
            ? found.tpotMs / dp.tpotMs - 1
            : dp.tokensPerS / found.tokensPerS - 1;
        t.ok(g >= -1e-9, `${planner} never beats the exact optimum`);
        cells.push(`${planner} +${(g * 100).toFixed(1)}%`);
      }
      rows.push(cells.join('  '));
    }
  }
  t.comment(`gap to the DP (4000 evaluations each):\n${rows.join('\n')}`);
});
