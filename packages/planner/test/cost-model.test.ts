/** The cost model on a pipeline small enough to work out by hand (numbers in the comments). */
import { arenaCapacity } from '@swarmbee/core';
import t from 'tap';
import { CostModel, interpolateAxis, interpolateGrid, plan as planFor } from '../src/index.js';
import { cluster, device, flatModel } from './helpers/fixtures.js';

// 4 layers of 1000 B weights and 10 B/token of KV, dim 8, embedding 200 B, head 300 B.
// Device a: 1 ms per layer, b: 2 ms; embedding 0.1 ms, head 0.5 ms at batch 1.
// Every link: 2 ms round trip (1 ms each way), 1 MB/s.
const model = flatModel();
const twoDevices = cluster(model, [device('a', 10_000, 1), device('b', 20_000, 2)]);
const workload = { contextTokens: 64, promptTokens: 10, prefillChunkTokens: 4 };
const plan = [
  { device: 0, layerStart: 0, layerEnd: 1 },
  { device: 1, layerStart: 1, layerEnd: 4 },
];

t.test('decode: stage compute, hops and TPOT', async (t) => {
  const cost = new CostModel(twoDevices, workload);
  const e = cost.evaluate(plan, 1, 1);
  // Stage a: 1 layer + embedding = 1.1 ms. Stage b: 3 layers × 2 ms + head 0.5 ms = 6.5 ms.
  t.same(
    e.stages.map((s) => s.decodeNs),
    [1_100_000, 6_500_000],
  );
  // Token frames: 1 × 8 B + 256 B framing; activations: 1 × 8 dim × 4 B + 256 B.
  t.same(
    e.hops.map((h) => h.bytes),
    [264, 288, 264],
  );
  // Each hop: 1 ms delay + bytes / 1 MB/s.
  t.same(
    e.hops.map((h) => h.latencyNs + h.occupancyNs),
    [1_264_000, 1_288_000, 1_264_000],
  );
  t.equal(e.tpotNs, 1_264_000 + 1_100_000 + 1_288_000 + 6_500_000 + 1_264_000, 'TPOT = 11.416 ms');
  t.equal(e.maxOccupancyNs, 6_500_000, 'stage b is the busiest resource');
});

t.test(
  'throughput: the round trip bounds one micro-batch, the slowest stage bounds two',
  async (t) => {
    const cost = new CostModel(twoDevices, workload);
    const one = cost.evaluate(plan, 1, 1);
    t.equal(one.cycleNs, 11_416_000);
    t.ok(Math.abs(one.tokensPerS - 1000 / 11.416) < 1e-9);
    t.same(one.bottleneck, { kind: 'round-trip' });
    const two = cost.evaluate(plan, 1, 2);
    t.equal(two.cycleNs, 13_000_000, '2 × 6.5 ms > 11.416 ms');
    t.ok(Math.abs(two.tokensPerS - 2000 / 13) < 1e-9);
    t.same(two.bottleneck, { kind: 'stage', index: 1 });
    // A micro-batch of 2 doubles every time that grows with batch (one-sample grids grow in proportion).
    const batched = cost.evaluate(plan, 2, 1);
    t.same(
      batched.stages.map((s) => s.decodeNs),
      [2_200_000, 13_000_000],
    );
  },
);

t.test('TTFT: chunks pipeline through the stages', async (t) => {
  const cost = new CostModel(twoDevices, workload);
  // 10 tokens in chunks of ≤ 4: K = 3 chunks of 4 tokens.
  t.equal(cost.prefillChunks, 3);
  t.equal(cost.prefillChunkLength, 4);
  const e = cost.evaluate(plan, 1, 1);
  // Per chunk: in-hop 1 + 0.288 ms, stage a 4 × (1 + 0.1) = 4.4 ms, hop 1 + 0.384 ms, stage b 4 × 6 = 24 ms.
  t.same(
    e.stages.map((s) => s.prefillNs),
    [4_400_000, 24_000_000],
  );
  // Every resource once (31.072) + 2 more chunks × busiest (24) + head 0.5 + return 1.264.
  t.equal(e.ttftNs, 31_072_000 + 48_000_000 + 500_000 + 1_264_000);
});

t.test(
  'memory: weights, KV for every sequence in flight, embedding first, head last',
  async (t) => {
    const cost = new CostModel(twoDevices, workload);
    const e = cost.evaluate(plan, 2, 3);
    // 6 sequences × 64 tokens × 10 B per layer.
    t.same(
      e.stages.map((s) => s.memoryBytes),
      [1000 + 3840 + 200, 3000 + 3 * 3840 + 300],
    );
    t.ok(e.feasible);
    const tight = new CostModel(
      cluster(model, [device('a', 5039, 1), device('b', 20_000, 2)]),
      workload,
    );
    const over = tight.evaluate(plan, 2, 3);
    t.notOk(over.feasible);
    t.equal(over.overBytes, 1);
  },
);

t.test('memory: a tied head costs a copy only on a device without the embedding', async (t) => {
  const tied = flatModel({ tiedEmbedding: true, embeddingBytes: 200, headBytes: 300 });
  const cost = new CostModel(cluster(tied, [device('a', 99_999)]), workload);
  // One device: the shared 200 B matrix once, plus the 100 B that is the head's own (final norm).
  t.equal(cost.stageMemoryBytes(0, 4, true, true, 1), 4000 + 2560 + 200 + 100);
  // Split: stage 0 holds the embedding, the last stage its own full copy with the norm.
  t.equal(cost.stageMemoryBytes(0, 2, true, false, 1), 2000 + 1280 + 200);
  t.equal(cost.stageMemoryBytes(2, 4, false, true, 1), 2000 + 1280 + 300);
});

t.test(
  "a stage's KV budget holds each sequence's context in the arena capacity the engine grows to",
  async (t) => {
    // 1000 tokens of context sit in an arena of arenaCapacity(1000) positions (1,312), not 1000.
    const long = cluster(flatModel({ maxSeqLen: 4096 }), [
      device('a', 10_000_000, 1),
      device('b', 20_000_000, 2),
    ]);
    const positions = arenaCapacity(1000, 4096);
    t.ok(positions > 1000, `the arena for 1000 positions holds ${positions}`);
    const result = planFor(
      { cluster: long, workload: { ...workload, contextTokens: 1000 } },
      { planner: 'dp', objective: 'throughput', microBatchCandidates: [1, 2] },
    );
    const sequences = result.microBatchSize * result.microBatchesInFlight;
    for (const s of result.stages)
      t.equal(
        s.kvBudgetBytes,
        (s.layerEnd - s.layerStart) * 10 * positions * sequences,
        `stage ${s.index}: ${s.layerEnd - s.layerStart} layers × 10 B × ${positions} positions × ${sequences}`,
      );
  },
);

t.test(
  "a plan's stages carry their KV budget: KV bytes per token × context × the sequences it keeps",
  async (t) => {
    for (const kvDtype of ['float32', 'float16'] as const) {
      const result = planFor(
        { cluster: twoDevices, workload: { ...workload, kvDtype } },
        { planner: 'dp', objective: 'throughput', microBatchCandidates: [1, 2] },
      );
      const sequences = result.microBatchSize * result.microBatchesInFlight;
      // 10 B/token per layer in fp32, half that in fp16; 64 tokens of context.
      const perToken = kvDtype === 'float32' ? 10 : 5;
      for (const s of result.stages) {
        const layers = s.layerEnd - s.layerStart;
        t.equal(
          s.kvBudgetBytes,
          layers * perToken * 64 * sequences,
          `${kvDtype} stage ${s.index}: ${layers} layers × ${perToken} B × 64 tokens × ${sequences} sequences`,
        );
        t.ok(s.kvBudgetBytes! < s.memoryBytes, 'within the memory the plan charged the stage');
      }
    }
  },
);

t.test('grid interpolation: linear inside, clamped below, extrapolated above', async (t) => {
  t.equal(interpolateAxis([1, 4], [10, 40], 2, 'proportional'), 20);
  t.equal(
    interpolateAxis([2, 4], [10, 40], 1, 'proportional'),
    10,
    'never faster than the first sample',
  );
  t.equal(interpolateAxis([1, 4], [10, 40], 8, 'proportional'), 80, 'the last slope continues');
  t.equal(interpolateAxis([1, 4], [40, 10], 8, 'proportional'), 10, 'a falling slope is floored');
  t.equal(interpolateAxis([2], [10], 8, 'proportional'), 40, 'one work sample grows in proportion');
  t.equal(interpolateAxis([0], [10], 8000, 'flat'), 10, 'one context sample stays flat');
  const g = interpolateGrid(
    [1, 4],
    [0, 100],
    [
      [1, 2],
      [4, 8],
    ],
    2,
    50,
  );
  t.equal(g, 3, 'bilinear: 1.5 and 6 along context, then a third of the way along batch');
});

t.test("the coordinator's own step work sits on its hop to stage 0", async (t) => {
  const measured = {
    ...twoDevices,
    coordinator: { batchSizes: [1, 4], stepMs: [0.5, 2] },
  };
  const cost = new CostModel(measured, workload);
  t.equal(cost.coordinatorStepNs(1), 500_000, 'measured at 1 row');
  t.equal(cost.coordinatorStepNs(2), 1_000_000, 'linear between measured sizes');
  t.equal(cost.coordinatorStepNs(8), 4_000_000, 'extended by the last slope');
  t.equal(new CostModel(twoDevices, workload).coordinatorStepNs(4), 0, 'not profiled: 0');
  const without = new CostModel(twoDevices, workload).evaluate(plan, 1, 1);
  const e = cost.evaluate(plan, 1, 1);
  t.equal(e.tpotNs, without.tpotNs + 500_000, 'TPOT pays it once per token');
  t.equal(e.hops[0]!.occupancyNs, without.hops[0]!.occupancyNs + 500_000, 'on the first hop');
  // At 8 rows it takes 4 ms + frame: less than stage b's 8 × 6.5 ms, so b stays the bottleneck;
  // with a slow coordinator (40 ms at 8 rows) the coordinator's hop is.
  const slow = new CostModel(
    { ...twoDevices, coordinator: { batchSizes: [1, 8], stepMs: [5, 60] } },
    workload,
  );
  const busy = slow.evaluate(plan, 8, 3);
  t.same(busy.bottleneck, { kind: 'link', index: 0 }, "the coordinator's hop bounds throughput");
  t.ok(busy.maxOccupancyNs >= 60_000_000, 'its busy time is the step time at 8 rows');
});

t.test('a coordinator timing out of shape is refused with PROFILE_INVALID', async (t) => {
  const bad = [
    { batchSizes: [1, 2], stepMs: [1] },
    { batchSizes: [2, 1], stepMs: [1, 1] },
    { batchSizes: [1], stepMs: [Number.NaN] },
    { batchSizes: [0], stepMs: [1] },
  ];
  for (const coordinator of bad)
    t.throws(() => new CostModel({ ...twoDevices, coordinator }, workload), {
      code: 'SWARMBEE_ERR_PROFILE_INVALID',
    });
});

t.test("a prefill chunk at the workload's own shape costs what the TTFT model says", async (t) => {
  const cost = new CostModel(twoDevices, workload);
  const chunk = cost.prefillChunkLength;
  const context = (chunk * (cost.prefillChunks - 1)) / 2;
  for (const [device, start, end, first] of [
    [0, 0, 1, true],
    [1, 1, 4, false],
  ] as const)
    t.equal(
      cost.stagePrefillChunkNs(device, start, end, first, chunk, context),
      cost.stagePrefillNs(device, start, end, first),
      `stage on device ${device}`,
    );
});
