/**
 * The swarm search over deployments (layer drops, per-layer precision, partition):
 * reproducible with a seed, never over the fidelity budget, never over a device's memory,
 * and never worse than the plain fp32 DP plan when that fits.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import t from 'tap';
import { configKey, deploymentCluster, top1MissCoefficient } from '../src/deployment/config.js';
import {
  CostModel,
  clusterFromPresets,
  type DeploymentSearchRequest,
  type DeploymentSearchResult,
  type FidelityTable,
  type LayerChoice,
  llamaModelSummary,
  predictFidelity,
  searchDeployments,
  TINYLLAMA_1B_CONFIG,
} from '../src/index.js';
import { Rng } from '../src/rng.js';

const MODEL = llamaModelSummary(TINYLLAMA_1B_CONFIG, 'tinyllama');
const N = MODEL.nLayers;

/** A fidelity table shaped like measured ones: int8 nearly free, int4 costly, drops costlier, the edges worst. */
function fidelityTable(seed: number): FidelityTable {
  const rng = new Rng(seed);
  const edge = (l: number) => (l === 0 || l === N - 1 ? 4 : 1);
  const entry = (scale: number, l: number) => {
    const kl = scale * edge(l) * (0.5 + rng.next());
    return { kl, top1: Math.max(0, 1 - 2 * kl) };
  };
  return {
    quantized: {
      int8: Array.from({ length: N }, (_, l) => entry(0.0005, l)),
      int4: Array.from({ length: N }, (_, l) => entry(0.01, l)),
    },
    dropped: Array.from({ length: N }, (_, l) => entry(0.08, l)),
  };
}

function request(devices: { name: string; preset: string }[], seed = 1): DeploymentSearchRequest {
  const fp32 = MODEL.layers.map((l) => l.paramBytes);
  return {
    cluster: clusterFromPresets(MODEL, devices, undefined, '2025-01-01T00:00:00.000Z'),
    fidelity: fidelityTable(seed),
    costs: {
      layerBytes: {
        int8: fp32.map((b) => Math.round(b * 0.29)),
        int4: fp32.map((b) => Math.round(b * 0.16)),
      },
      timeScale: { int8: { decode: 0.5, prefill: 1 }, int4: { decode: 0.45, prefill: 1 } },
    },
  };
}

/** 3 GiB for the model: TinyLlama's 4.4 GB of fp32 weights do not fit. */
const ONE_PI = [{ name: 'pi', preset: 'rpi4-4gb' }];
const MIXED = [
  { name: 'pi4', preset: 'rpi4-4gb' },
  { name: 'pi5', preset: 'rpi5-8gb' },
  { name: 'orin', preset: 'orin-nano-8gb-cpu' },
];

/** Everything a result says, without wall-clock times. */
function stable(result: DeploymentSearchResult): unknown {
  return JSON.parse(
    JSON.stringify({ ...result, runs: result.runs.map(({ elapsedMs: _, ...run }) => run) }),
  );
}

t.test('the additive fidelity model and the configured profile', async (t) => {
  const table = fidelityTable(7);
  const config: LayerChoice[] = Array.from({ length: N }, () => 'fp32');
  config[2] = 'int8';
  config[3] = 'int4';
  config[5] = 'drop';
  const p = predictFidelity(table, config);
  const kl = table.quantized.int8![2]!.kl + table.quantized.int4![3]!.kl + table.dropped![5]!.kl;
  t.ok(Math.abs(p.kl - kl) < 1e-15);
  // 1 − top-1 ≈ c·√KL, c fitted to the table: the entries here have miss = 2·KL exactly.
  const c = top1MissCoefficient(table);
  t.ok(c > 0);
  t.ok(Math.abs(p.top1 - (1 - c * Math.sqrt(kl))) < 1e-12);
  const exact = {
    quantized: { int8: Array.from({ length: N }, () => ({ kl: 0.01, top1: 1 - 0.6 * 0.1 })) },
  };
  t.ok(Math.abs(top1MissCoefficient(exact) - 0.6) < 1e-12, 'c recovered from the table');
  t.equal(configKey(config).slice(0, 7), 'ff84f-f');

  const req = request(MIXED);
  const cluster = deploymentCluster(req.cluster, config, req.costs);
  t.equal(cluster.model.nLayers, N - 1);
  t.equal(cluster.model.layers[2]!.paramBytes, req.costs.layerBytes.int8![2]);
  t.equal(cluster.model.layers[5]!.paramBytes, MODEL.layers[6]!.paramBytes, 'layer 6 moved up');
  t.equal(cluster.devices[0]!.timing.layers.length, N - 1);
  const base = req.cluster.devices[0]!.timing.layers[0]!.decode.ms[0]![0]!;
  t.ok(Math.abs(cluster.devices[0]!.timing.layers[3]!.decode.ms[0]![0]! - base * 0.45) < 1e-12);
  t.equal(
    cluster.devices[0]!.timing.layers[4]!.decode.ms[0]![0]!,
    base,
    'fp32 layers keep their time',
  );
});

t.test('the same seed gives the same deployments; another seed may not', async (t) => {
  const req = request(MIXED);
  const options = { klBudget: 0.1, seed: 5, evaluations: 300 };
  const a = searchDeployments(req, options);
  const b = searchDeployments(req, options);
  t.same(stable(a), stable(b));
  t.equal(a.runs.length, 3);
  for (const run of a.runs) t.ok(run.best, `${run.algorithm} found a deployment`);
});

t.test('fp32 does not fit a 4 GB Pi; quantized deployments do, within the budget', async (t) => {
  const result = searchDeployments(request(ONE_PI), { klBudget: 0.05, evaluations: 300 });
  t.notOk(result.baseline, 'no fp32 plan');
  t.equal(result.baselineError?.code, 'SWARMBEE_ERR_PLAN_INFEASIBLE');
  for (const run of result.runs) {
    t.ok(run.best, run.algorithm);
    t.ok(run.best!.config.some((c) => c === 'int8' || c === 'int4'));
  }
});

t.test('never over the budget or a device memory, on many random problems', async (t) => {
  const rng = new Rng(99);
  const presets = ['rpi4-4gb', 'rpi4-8gb', 'rpi5-8gb', 'orin-nano-8gb-cpu', 'laptop-16gb'];
  let found = 0;
  for (let instance = 0; instance < 12; instance++) {
    const devices = Array.from({ length: 1 + rng.int(3) }, (_, i) => ({
      name: `d${i}`,
      preset: presets[rng.int(presets.length)]!,
    }));
    const req = request(devices, instance + 1);
    const klBudget = [0, 0.005, 0.03, 0.2, 1][rng.int(5)]!;
    const minTop1 = rng.next() < 0.5 ? 0 : 0.9;
    const objective = rng.next() < 0.5 ? ('latency' as const) : ('throughput' as const);
    const result = searchDeployments(req, {
      klBudget,
      minTop1,
      objective,
      seed: instance,
      evaluations: 150,
    });
    for (const candidate of [result.baseline, ...result.runs.map((r) => r.best)]) {
      if (!candidate) continue;
      found++;
      const predicted = predictFidelity(req.fidelity, candidate.config);
      t.ok(predicted.kl <= klBudget + 1e-12, `KL ${predicted.kl} <= ${klBudget}`);
      t.ok(predicted.top1 >= minTop1 - 1e-12, `top-1 ${predicted.top1} >= ${minTop1}`);
      t.ok(candidate.config.filter((c) => c === 'drop').length <= Math.floor(N / 4));
      // Re-check the plan against the cost model of the configured model.
      const cost = new CostModel(deploymentCluster(req.cluster, candidate.config, req.costs));
      const stages = candidate.plan.stages.map((s) => ({
        device: cost.deviceIndex(s.device),
        layerStart: s.layerStart,
        layerEnd: s.layerEnd,
      }));
      const e = cost.evaluate(
        stages,
        candidate.plan.microBatchSize,
        candidate.plan.microBatchesInFlight,
      );
      t.ok(e.feasible, `${configKey(candidate.config)} fits every device's memory`);
      for (const s of candidate.plan.stages) t.ok(s.memoryBytes <= s.deviceMemoryBytes);
    }
    if (result.baseline) {
      for (const run of result.runs) {
        const better =
          objective === 'latency'
            ? run.best!.plan.tpotMs <= result.baseline.plan.tpotMs + 1e-9
            : run.best!.plan.tokensPerS >= result.baseline.plan.tokensPerS - 1e-9;
        t.ok(better, `${run.algorithm} is never worse than the fp32 plan`);
      }
    }
  }
  t.ok(found > 12, `${found} deployments checked`);
});

t.test('a zero budget allows only fp32: the result is the fp32 plan', async (t) => {
  const result = searchDeployments(request(MIXED), { klBudget: 0, evaluations: 100 });
  for (const run of result.runs) {
    t.same(run.best?.config, result.baseline?.config);
    t.equal(run.best?.plan.tpotMs, result.baseline?.plan.tpotMs);
  }
});

t.test('BAD OPTIONS - budgets, floors and choices are checked', async (t) => {
  const req = request(MIXED);
  t.throws(() => searchDeployments(req, { klBudget: -1 }), { code: InvalidArgumentError.code });
  t.throws(() => searchDeployments(req, { klBudget: 0.1, minTop1: 2 }), {
    code: InvalidArgumentError.code,
  });
  const noDrops = { ...req, fidelity: { quantized: req.fidelity.quantized } };
  t.throws(() => searchDeployments(noDrops, { klBudget: 0.1, choices: ['fp32', 'drop'] }), {
    code: InvalidArgumentError.code,
    message: /cannot search over "drop"/,
  });
  t.throws(() => searchDeployments(req, { klBudget: 0.1, evaluations: 10 }), {
    code: InvalidArgumentError.code,
  });
});
