/**
 * The planner's tensor-parallel stages (issue 19, item 4): when a group is predicted to pay,
 * for which objective, how it splits, what it must fit, and one case worked out by hand.
 */
import { PlanInfeasibleError, TensorSplitError, tensorShares } from '@swarmbee/core';
import t from 'tap';
import {
  benchCorePreset,
  CostModel,
  clusterFromPresets,
  compareParallelism,
  type LinkSpec,
  llamaModelSummary,
  type PlanResult,
  plan,
  STORIES110M_PRESET_CONFIG,
  stageAssignments,
} from '../src/index.js';
import { cluster, device, flatModel, flatTiming, meshLinks } from './helpers/fixtures.js';

const GBIT: LinkSpec = { rttMs: 0.4, bandwidthBytesPerS: 125e6 };
const MBIT100: LinkSpec = { rttMs: 4, bandwidthBytesPerS: 12.5e6 };
const model110m = llamaModelSummary(STORIES110M_PRESET_CONFIG, '110m');

/** `n` devices of the 110M preset, each at `speed` of one bench core, on one kind of link. */
function equalDevices(n: number, speed: number, link: LinkSpec) {
  const preset = benchCorePreset(speed);
  const devices = Array.from({ length: n }, (_, i) => ({ name: `d${i}`, preset }));
  return clusterFromPresets(model110m, devices, link, '2026-12-04T00:00:00.000Z');
}

const groups = (r: PlanResult) => r.stages.filter((s) => s.tensor);

t.test('latency on 1 Gbit/s + 0.2 ms: a group, faster than one device', async (t) => {
  const c = equalDevices(4, 0.5, GBIT);
  const alone = plan({ cluster: c }, { objective: 'latency', planner: 'solo' });
  const hybrid = plan({ cluster: c }, { objective: 'latency', parallelism: 'hybrid' });
  t.equal(groups(hybrid).length, 1, 'one tensor-parallel stage');
  t.ok(hybrid.tpotMs < 0.8 * alone.tpotMs, `${hybrid.tpotMs} ms/token < 0.8 × ${alone.tpotMs}`);
  t.equal(hybrid.parallelism, 'hybrid');
  const pipeline = plan({ cluster: c }, { objective: 'latency' });
  t.equal(pipeline.tpotMs, alone.tpotMs, 'pipelines alone do no better than one device');
  t.notOk(
    pipeline.stages.some((s) => s.tensor),
    'the default (pipeline) plans no group',
  );
});

t.test('latency on 100 Mbit/s + 2 ms: no group pays, one device is planned', async (t) => {
  const c = equalDevices(4, 0.5, MBIT100);
  const hybrid = plan({ cluster: c }, { objective: 'latency', parallelism: 'hybrid' });
  const pipeline = plan({ cluster: c }, { objective: 'latency' });
  t.equal(groups(hybrid).length, 0, 'no tensor-parallel stage');
  t.same(hybrid.stages, pipeline.stages, 'the pipeline plan, unchanged');
  const tensor = plan({ cluster: c }, { objective: 'latency', parallelism: 'tensor' });
  t.ok(tensor.tpotMs > hybrid.tpotMs, `forced, a group is slower: ${tensor.tpotMs} ms/token`);
});

t.test('throughput picks a pipeline, also where a group wins on latency', async (t) => {
  const c = equalDevices(4, 0.25, GBIT);
  const [pipeline, tensor, hybrid] = compareParallelism(
    { cluster: c },
    { objective: 'throughput' },
  );
  t.equal(groups(hybrid!.result!).length, 0, 'no group');
  t.equal(hybrid!.result!.stages.length, 4, 'four stages');
  t.equal(hybrid!.result!.tokensPerS, pipeline!.result!.tokensPerS);
  t.ok(tensor!.result!.tokensPerS < pipeline!.result!.tokensPerS, 'pure tensor predicts less');
  const latency = plan({ cluster: c }, { objective: 'latency', parallelism: 'hybrid' });
  t.equal(groups(latency).length, 1, 'the same cluster, latency: a group');
});

t.test('a heterogeneous group splits unevenly, by speed', async (t) => {
  const fast = benchCorePreset(0.5);
  const slow = benchCorePreset(0.25);
  const c = clusterFromPresets(
    model110m,
    [
      { name: 'fast', preset: fast },
      { name: 'slow', preset: slow },
    ],
    GBIT,
    '2026-12-04T00:00:00.000Z',
  );
  const r = plan({ cluster: c }, { objective: 'latency', parallelism: 'tensor' });
  const stage = r.stages[0]!;
  t.same(stage.tensor?.devices, ['fast', 'slow'], 'the faster device leads');
  const [wFast, wSlow] = stage.tensor!.weights;
  t.ok(Math.abs(wFast! / wSlow! - 2) < 0.05, `weights about 2:1 (${wFast} : ${wSlow})`);
  const shares = tensorShares(model110m.tensorShape!, stage.tensor!.weights);
  t.same(
    shares?.map((s) => s.kvHeads),
    [8, 4],
    'KV heads 8 and 4 of 12, as splitTensors deals them',
  );
  const [memFast, memSlow] = stage.memberMemoryBytes!;
  t.ok(memFast! > 1.8 * memSlow!, 'the faster member holds about twice the layers');
});

t.test('degree never exceeds the KV heads', async (t) => {
  // 2 KV heads: on fast links more members would pay, but a split needs a head each.
  const shape = { nHeads: 4, nKvHeads: 2, headDim: 2, hiddenDim: 256 };
  const m = flatModel({ nLayers: 4, tensorShape: shape });
  const names = ['a', 'b', 'c', 'd', 'e'];
  const c = cluster(
    m,
    names.map((n) => device(n, 1e6, 40)),
    meshLinks(names, 0.01, 1e9),
  );
  for (const parallelism of ['tensor', 'hybrid'] as const) {
    const r = plan({ cluster: c }, { objective: 'latency', parallelism });
    const degrees = r.stages.map((s) => s.tensor?.devices.length ?? 1);
    t.ok(Math.max(...degrees) === 2, `${parallelism}: groups of at most 2 (${degrees})`);
  }
  const flat = cluster(flatModel(), [device('a', 1e6), device('b', 1e6)]);
  t.throws(
    () => plan({ cluster: flat }, { objective: 'latency', parallelism: 'tensor' }),
    { code: 'SWARMBEE_ERR_INVALID_ARGUMENT' },
    'a model without a tensor shape is never split',
  );
  t.equal(
    groups(plan({ cluster: flat }, { objective: 'latency', parallelism: 'hybrid' })).length,
    0,
    'hybrid plans it as pipelines',
  );
});

/**
 * Two equal devices, 2 flat layers of 10 ms, embedding 0.1 ms, head 0.5 ms; links 1 ms round
 * trip, 1 MB/s; dim 8, 2 KV heads, 64 feed-forward columns; default tensor costs (segment run
 * 0.09 ms, 0.12 ms CPU per all-reduce part).
 */
function handCase(memoryBytes: number) {
  const m = flatModel({
    nLayers: 2,
    tensorShape: { nHeads: 2, nKvHeads: 2, headDim: 4, hiddenDim: 64 },
  });
  const d = (name: string) => ({
    name,
    memoryBytes,
    timing: flatTiming(10, 0.1, 0.5),
    estimate: false,
  });
  return cluster(m, [d('a'), d('b')], meshLinks(['a', 'b'], 1, 1e6));
}

t.test('a group stage predicted as worked out by hand', async (t) => {
  const r = plan({ cluster: handCase(1e6) }, { objective: 'latency', parallelism: 'hybrid' });
  const stage = r.stages[0]!;
  t.same(stage.tensor, { devices: ['a', 'b'], weights: stage.tensor!.weights, allReduce: 'ring' });
  // All-reduce of 8 fp32 (32 B + 128 B framing = 0.16 ms at 1 MB/s): the exchange of two is
  // α + 0.16 + 2 × 0.12 = 0.5 + 0.16 + 0.24 = 0.90 ms; a star would be 2 × 0.66 + 4 × 0.12 = 1.80.
  // A layer: half of 10 ms each + 2 segment runs (0.18) + 2 all-reduces (1.80) = 6.98 ms.
  // The stage: 2 layers + embedding 0.1 + head 0.5 = 14.56 ms.
  t.equal(stage.computeMs, 14.56);
  // Token frames of 264 B: 0.5 + 0.264 ms each way. TPOT = 0.764 + 14.56 + 0.764.
  t.equal(r.tpotMs, 16.088);
  // One device alone: 20 + 0.1 + 0.5 + 2 × 0.764 = 22.128 ms (the pipeline plan).
  t.equal(plan({ cluster: handCase(1e6) }, { objective: 'latency' }).tpotMs, 22.128);
  // Memory: half of each layer's 1000 B of weights and of its KV (10 B/token × 64 tokens),
  // and the embedding (200 B) and head (300 B) on the leader.
  t.same(stage.memberMemoryBytes, [1000 + 640 + 500, 1000 + 640]);
});

t.test('a model no device holds alone: a group or a pipeline that fits', async (t) => {
  // One device needs 2000 + 1280 + 500 = 3780 B; each has 2200.
  const c = handCase(2200);
  t.throws(() => plan({ cluster: c }, { objective: 'latency', planner: 'solo' }), {
    code: PlanInfeasibleError.code,
  });
  const pipeline = plan({ cluster: c }, { objective: 'latency' });
  t.equal(pipeline.stages.length, 2, 'pipelines: two stages');
  const hybrid = plan({ cluster: c }, { objective: 'latency', parallelism: 'hybrid' });
  t.equal(groups(hybrid).length, 1, 'hybrid: one group, which is faster');
  for (const s of hybrid.stages)
    s.memberMemoryBytes!.forEach((held, rank) => {
      t.ok(held <= s.memberDeviceMemoryBytes![rank]!, `rank ${rank} holds ${held} B of 2200`);
    });
  // With 1900 B a member holds its 1640 but the leader not its 2140: no group fits.
  t.throws(
    () => plan({ cluster: handCase(1900) }, { objective: 'latency', parallelism: 'tensor' }),
    {
      code: PlanInfeasibleError.code,
      message: /no tensor-parallel group of 2 to 2 of the 2 devices/,
    },
  );
  // At 2100 B the leader's 2140 no longer fits: the pipeline is the plan.
  const tight = plan({ cluster: handCase(2100) }, { objective: 'latency', parallelism: 'hybrid' });
  t.equal(groups(tight).length, 0, 'too small for a leader: the pipeline');
});

t.test('a plan with a group, predicted again from its stages by name', async (t) => {
  const c = handCase(1e6);
  const made = plan({ cluster: c }, { objective: 'latency', parallelism: 'hybrid' });
  const cost = new CostModel(c);
  const stages = stageAssignments(cost, made);
  const how = { weights: made.stages[0]!.tensor!.weights, allReduce: 'ring' };
  t.same(stages, [{ device: 0, layerStart: 0, layerEnd: 2, group: [0, 1], how }]);
  t.equal(cost.evaluate(stages, 1, 1).tpotNs, 16_088_000, 'the group, as planned');
  // Run with a star instead (as a plan made elsewhere may say): 2 × (0.5 + 0.16) + 4 × 0.12
  // = 1.80 ms per all-reduce; a layer 5 + 0.18 + 3.6 = 8.78; the stage 17.56 + 0.6 = 18.16.
  const star = stageAssignments(cost, {
    stages: [{ ...made.stages[0]!, tensor: { ...made.stages[0]!.tensor!, allReduce: 'star' } }],
  });
  t.equal(cost.evaluate(star, 1, 1).tpotNs, 19_688_000, 'the plan’s star, priced as a star');
  t.equal(cost.evaluate(star, 1, 1).stages[0]!.allReduce, 'star');
  const badWeights = stageAssignments(cost, {
    stages: [{ ...made.stages[0]!, tensor: { ...made.stages[0]!.tensor!, weights: [1] } }],
  });
  t.throws(() => cost.evaluate(badWeights, 1, 1), { code: TensorSplitError.code });
  const alone = stageAssignments(cost, { stages: [{ ...made.stages[0]!, tensor: undefined }] });
  t.equal(cost.evaluate(alone, 1, 1).tpotNs, 22_128_000, 'without its group: one device');
});

t.test('the LM head split by vocabulary where that is faster, as worked out by hand', async (t) => {
  // The hand case with a 64-row vocabulary (2 units of 32) and an 8 ms head.
  const m = flatModel({
    nLayers: 2,
    vocabSize: 64,
    tensorShape: { nHeads: 2, nKvHeads: 2, headDim: 4, hiddenDim: 64 },
  });
  const d = (name: string) => ({
    name,
    memoryBytes: 1e6,
    timing: flatTiming(10, 0.1, 8),
    estimate: false,
  });
  const c = cluster(m, [d('a'), d('b')], meshLinks(['a', 'b'], 1, 1e6));
  const r = plan({ cluster: c }, { objective: 'latency', parallelism: 'tensor' });
  const stage = r.stages[0]!;
  t.equal(stage.tensor?.head, 'split');
  // Split: half the head each (4 ms), then the logits' sum of 64 fp32 (256 B + 128 B framing,
  // 0.384 ms at 1 MB/s) by the exchange of two: 0.5 + 0.384 + 0.24 = 1.124 ms; 5.124 ms in all,
  // against 8 on the leader. The stage: 2 layers (13.96) + embedding 0.1 + 5.124 = 19.184 ms.
  t.equal(stage.computeMs, 19.184);
  t.equal(r.tpotMs, 20.712);
  // Each member holds its half of the head (300 B); the leader also the embedding (200 B).
  t.same(stage.memberMemoryBytes, [1000 + 640 + 200 + 150, 1000 + 640 + 150]);
  // The same plan with the head on the leader: 13.96 + 0.1 + 8 + 1.528 = 23.588 ms.
  const cost = new CostModel(c);
  const onLeader = stageAssignments(cost, {
    stages: [{ ...stage, tensor: { ...stage.tensor!, head: 'leader' } }],
  });
  t.equal(cost.evaluate(onLeader, 1, 1).tpotNs, 23_588_000);
  // TTFT has the head once after the last chunk: the split one, 5.124 ms, not the leader's 8.
  const leaderPlan = cost.evaluate(onLeader, 1, 1);
  t.equal(leaderPlan.ttftNs - Math.round(r.ttftMs * 1e6), 8_000_000 - 5_124_000);
});

t.test('options are checked', async (t) => {
  const c = handCase(1e6);
  t.throws(() => plan({ cluster: c }, { parallelism: 'hybrid', planner: 'ga' }), {
    code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
  });
  t.throws(() => plan({ cluster: c }, { parallelism: 'both' as never }), {
    code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
  });
  t.throws(() => plan({ cluster: c }, { tensorCosts: { segmentRunMs: -1 } }), {
    code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
  });
});
