/**
 * The DP is exact for the cost model: on 1000 random instances small enough for brute
 * force, its plan scores exactly what the best of all plans scores, respects every
 * device's memory and the pins, and it reports infeasible exactly when nothing fits.
 */
import { PlanInfeasibleError } from '@swarmbee/core';
import t from 'tap';
import { CostModel, compareEvaluations, type Evaluation, plan, planDp } from '../src/index.js';
import { bruteForce } from './helpers/brute-force.js';
import { type Instance, randomInstance } from './helpers/random-cluster.js';

const INSTANCES = 1000;

function options(cost: CostModel, instance: Instance) {
  const o = {
    objective: instance.objective,
    microBatchCandidates: instance.microBatchCandidates,
    microBatchesInFlight: instance.microBatchesInFlight,
    pinFirst: instance.pinFirst === undefined ? undefined : cost.deviceIndex(instance.pinFirst),
    pinLast: instance.pinLast === undefined ? undefined : cost.deviceIndex(instance.pinLast),
  };
  return o;
}

function describe(e: Evaluation): string {
  const stages = e.stages.map((s) => `d${s.device}[${s.layerStart},${s.layerEnd})`).join(' ');
  return `${stages} b=${e.microBatchSize} M=${e.microBatchesInFlight} tpot=${e.tpotNs} ttft=${e.ttftNs} rate=${e.tokensPerS}`;
}

/** Memory, pins, one range per device, contiguous cover of every layer. */
export function checkPlan(
  cost: CostModel,
  e: Evaluation,
  pinFirst?: number,
  pinLast?: number,
): string | undefined {
  const devices = new Set<number>();
  let next = 0;
  for (const s of e.stages) {
    if (s.memoryBytes > cost.devices[s.device]!.memoryBytes)
      return `stage on d${s.device} overflows memory`;
    if (devices.has(s.device)) return `d${s.device} runs two stages`;
    devices.add(s.device);
    if (s.layerStart !== next || s.layerEnd <= s.layerStart)
      return `layers not contiguous at ${s.layerStart}`;
    next = s.layerEnd;
  }
  if (next !== cost.nLayers) return 'not every layer is placed';
  if (pinFirst !== undefined && e.stages[0]!.device !== pinFirst) return 'first pin broken';
  if (pinLast !== undefined && e.stages[e.stages.length - 1]!.device !== pinLast)
    return 'last pin broken';
  return undefined;
}

t.test('DP equals brute force on random instances', async (t) => {
  let feasible = 0;
  let plans = 0;
  const failures: string[] = [];
  for (let seed = 1; seed <= INSTANCES; seed++) {
    const instance = randomInstance(seed);
    const cost = new CostModel(instance.cluster, instance.workload);
    const o = options(cost, instance);
    const truth = bruteForce(cost, o);
    plans += truth.plans;
    const found = planDp(cost, instance.objective, o)?.evaluation;
    if (!truth.best) {
      if (found) failures.push(`seed ${seed}: DP found ${describe(found)} but nothing fits`);
      continue;
    }
    feasible++;
    if (!found) {
      failures.push(`seed ${seed}: DP found nothing, brute force ${describe(truth.best)}`);
      continue;
    }
    const problem = checkPlan(cost, found, o.pinFirst, o.pinLast);
    if (problem) failures.push(`seed ${seed}: ${problem}: ${describe(found)}`);
    if (compareEvaluations(instance.objective, found, truth.best) !== 0) {
      failures.push(
        `seed ${seed} (${instance.objective}): DP ${describe(found)} vs best ${describe(truth.best)}`,
      );
    }
  }
  t.same(failures.slice(0, 10), [], 'no instance where the DP misses the optimum');
  t.ok(feasible > INSTANCES / 3, `enough instances fit (${feasible} of ${INSTANCES})`);
  t.comment(`${feasible} feasible instances, ${plans} plans enumerated by brute force`);
});

t.test(
  'plan() agrees with the DP and reports infeasible instances with a coded error',
  async (t) => {
    for (let seed = 1; seed <= 200; seed++) {
      const instance = randomInstance(seed);
      const cost = new CostModel(instance.cluster, instance.workload);
      const o = options(cost, instance);
      const truth = bruteForce(cost, o).best;
      const request = { cluster: instance.cluster, workload: instance.workload };
      const planOptions = {
        objective: instance.objective,
        microBatchCandidates: instance.microBatchCandidates,
        microBatchesInFlight: instance.microBatchesInFlight,
        pinFirst: instance.pinFirst,
        pinLast: instance.pinLast,
      };
      if (!truth) {
        t.throws(
          () => plan(request, planOptions),
          { code: PlanInfeasibleError.code },
          `seed ${seed} infeasible`,
        );
        continue;
      }
      const result = plan(request, planOptions);
      t.equal(result.planner, 'dp');
      t.equal(result.tpotMs, truth.tpotNs / 1e6, `seed ${seed} tpot`);
      if (instance.objective === 'throughput') {
        t.ok(
          Math.abs(result.tokensPerS - truth.tokensPerS) <= 1e-9 * truth.tokensPerS,
          `seed ${seed} rate`,
        );
      } else {
        t.equal(result.ttftMs, truth.ttftNs / 1e6, `seed ${seed} ttft`);
      }
    }
  },
);
