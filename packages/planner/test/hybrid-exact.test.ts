/**
 * The hybrid planner is exact: on small clusters it finds what trying every pipeline of
 * stages — each a single device or a group, any leader, any cut, every micro-batch run —
 * finds, judged by the cost model alone (the oracle shares none of the search's code).
 */
import { PlanTooLargeError } from '@swarmbee/core';
import t from 'tap';
import {
  CostModel,
  compareEvaluations,
  type Evaluation,
  type Objective,
  type PlanResult,
  plan,
  planHybrid,
  type StageAssignment,
} from '../src/index.js';
import { cluster, flatModel, flatTiming, meshLinks } from './helpers/fixtures.js';

function* stagings(
  free: readonly number[],
  start: number,
  nLayers: number,
  maxDegree: number,
): Generator<StageAssignment[]> {
  if (start === nLayers) {
    yield [];
    return;
  }
  const n = free.length;
  for (let mask = 1; mask < 1 << n; mask++) {
    const members = free.filter((_, i) => mask & (1 << i));
    if (members.length > 1 && members.length > maxDegree) continue;
    const rest = free.filter((_, i) => !(mask & (1 << i)));
    for (const leader of members) {
      const group = [leader, ...members.filter((d) => d !== leader)];
      for (let end = start + 1; end <= nLayers; end++) {
        const stage: StageAssignment =
          group.length === 1
            ? { device: leader, layerStart: start, layerEnd: end }
            : { device: leader, layerStart: start, layerEnd: end, group };
        for (const tail of stagings(rest, end, nLayers, maxDegree)) yield [stage, ...tail];
      }
    }
  }
}

function bruteForce(
  cost: CostModel,
  objective: Objective,
  batches: readonly number[],
  pins: { first?: number; last?: number } = {},
): Evaluation | undefined {
  const devices = cost.devices.map((_, i) => i);
  const most = 2 * Math.min(devices.length, cost.nLayers) + 1;
  const inFlight = objective === 'latency' ? [1] : Array.from({ length: most }, (_, i) => i + 1);
  let best: Evaluation | undefined;
  for (const stages of stagings(devices, 0, cost.nLayers, cost.groups.maxDegree)) {
    // A pinned device leads its stage (and is in no other).
    if (pins.first !== undefined && stages[0]!.device !== pins.first) continue;
    if (pins.last !== undefined && stages.at(-1)!.device !== pins.last) continue;
    for (const b of objective === 'latency' ? [1] : batches) {
      for (const m of inFlight) {
        const e = cost.evaluate(stages, b, m);
        if (e.feasible && (!best || compareEvaluations(objective, e, best) < 0)) best = e;
      }
    }
  }
  return best;
}

/** Three devices of different speeds and memories, links of different latencies. */
function instance(seed: number) {
  const rand = (() => {
    let x = seed;
    return () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x / 2 ** 31;
    };
  })();
  const m = flatModel({
    nLayers: 4,
    tensorShape: { nHeads: 4, nKvHeads: 2 + Math.floor(rand() * 2), headDim: 2, hiddenDim: 96 },
  });
  const names = ['a', 'b', 'c'];
  const devices = names.map((name) => ({
    name,
    memoryBytes: 1800 + Math.floor(rand() * 3000),
    timing: flatTiming(2 + rand() * 20, 0.1, 0.5),
    estimate: false,
  }));
  const links = meshLinks(names, 0.05 + rand() * 2, 1e6).map((l) => ({
    ...l,
    rttMs: l.rttMs * (0.5 + rand()),
  }));
  return cluster(m, devices, links);
}

t.test('hybrid = the best of every staging, both objectives', async (t) => {
  let groupsChosen = 0;
  for (let seed = 1; seed <= 8; seed++) {
    const c = instance(seed);
    for (const objective of ['latency', 'throughput'] as const) {
      const batches = [1, 2];
      const cost = new CostModel(c, { contextTokens: 16 });
      const oracle = bruteForce(cost, objective, batches);
      const found = plan(
        { cluster: c, workload: { contextTokens: 16 } },
        { objective, parallelism: 'hybrid', microBatchCandidates: batches },
      );
      const what = `seed ${seed} ${objective}`;
      if (objective === 'latency') {
        t.equal(Math.round(found.tpotMs * 1e6), oracle!.tpotNs, `${what}: TPOT`);
        t.equal(Math.round(found.ttftMs * 1e6), oracle!.ttftNs, `${what}: TTFT`);
      } else {
        t.ok(
          Math.abs(found.tokensPerS / oracle!.tokensPerS - 1) < 1e-9,
          `${what}: tokens/s ${found.tokensPerS}`,
        );
      }
      if (found.stages.some((s) => s.tensor)) groupsChosen++;
    }
  }
  t.ok(groupsChosen > 0, `the instances include plans with groups (${groupsChosen})`);
});

t.test(
  'hybrid with pins = the best staging whose pinned devices lead the first and last stages',
  async (t) => {
    const cases = [
      { pinFirst: 'b' },
      { pinLast: 'c' },
      { pinFirst: 'c', pinLast: 'a' },
      { pinFirst: 'a', pinLast: 'a' },
    ];
    for (let seed = 11; seed <= 14; seed++) {
      const c = instance(seed);
      const workload = { contextTokens: 16 };
      const cost = new CostModel(c, workload);
      for (const pins of cases) {
        for (const objective of ['latency', 'throughput'] as const) {
          const index = (name?: string) => (name ? cost.deviceIndex(name) : undefined);
          const oracle = bruteForce(cost, objective, [1, 2], {
            first: index(pins.pinFirst),
            last: index(pins.pinLast),
          });
          const what = `seed ${seed} ${JSON.stringify(pins)} ${objective}`;
          let found: PlanResult | undefined;
          try {
            found = plan(
              { cluster: c, workload },
              { objective, parallelism: 'hybrid', microBatchCandidates: [1, 2], ...pins },
            );
          } catch (error) {
            t.notOk(oracle, `${what}: no plan, as brute force says (${(error as Error).message})`);
            continue;
          }
          t.ok(oracle, `${what}: brute force finds one too`);
          if (objective === 'latency')
            t.equal(Math.round(found.tpotMs * 1e6), oracle!.tpotNs, `${what}: TPOT`);
          else t.ok(Math.abs(found.tokensPerS / oracle!.tokensPerS - 1) < 1e-9, `${what}: rate`);
          if (pins.pinFirst) t.equal(found.stages[0]!.device, pins.pinFirst, `${what}: first`);
          if (pins.pinLast) t.equal(found.stages.at(-1)!.device, pins.pinLast, `${what}: last`);
        }
      }
    }
  },
);

t.test('the hybrid search gives up past its step limit, with a coded error', async (t) => {
  const cost = new CostModel(instance(3), { contextTokens: 16 });
  const options = { microBatchCandidates: [1, 2] };
  const full = planHybrid(cost, 'throughput', options);
  t.ok(full.steps > 20, `${full.steps} stage evaluations unbounded`);
  t.throws(() => planHybrid(cost, 'throughput', { ...options, stepLimit: 20 }), {
    code: PlanTooLargeError.code,
  });
  t.equal(planHybrid(cost, 'throughput', { ...options, stepLimit: full.steps }).steps, full.steps);
});
