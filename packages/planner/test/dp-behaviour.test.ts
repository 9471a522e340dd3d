/** What the DP does on clusters whose best plan is obvious, and what PlanResult carries. */
import t from 'tap';
import { CostModel, dpTypes, groupDeviceTypes, plan } from '../src/index.js';
import { cluster, device, flatModel, meshLinks } from './helpers/fixtures.js';

const model = flatModel({ nLayers: 8 });

t.test('identical devices on a uniform network form one type; a pin splits one off', async (t) => {
  const names = Array.from({ length: 16 }, (_, i) => `pi-${i}`);
  const cost = new CostModel(
    cluster(
      model,
      names.map((n) => device(n, 9000)),
    ),
  );
  t.same(
    groupDeviceTypes(cost).map((type) => type.members.length),
    [16],
  );
  t.same(
    dpTypes(cost, 3).map((type) => type.members),
    [names.map((_, i) => i).filter((i) => i !== 3), [3]],
  );
});

t.test('a device behind a slower link is a type of its own', async (t) => {
  const names = ['a', 'b', 'c'];
  const links = meshLinks(names).map((l) =>
    l.to === 'c' || l.from === 'c' ? { ...l, rttMs: 9 } : l,
  );
  const cost = new CostModel(
    cluster(
      model,
      names.map((n) => device(n, 9000)),
      links,
    ),
  );
  t.same(
    groupDeviceTypes(cost).map((type) => type.members),
    [[0, 1], [2]],
  );
});

t.test('latency: equal TPOT splits are broken by TTFT, which favours balance', async (t) => {
  // Two identical devices, each able to hold 5 of 8 layers: every split 3/5, 4/4, 5/3 costs the same TPOT,
  // but prefill chunks pipeline best when the stages are even.
  const c = cluster(model, [
    device('a', 5 * 1000 + 5 * 640 + 300),
    device('b', 5 * 1000 + 5 * 640 + 300),
  ]);
  const result = plan(
    { cluster: c, workload: { contextTokens: 64, promptTokens: 64, prefillChunkTokens: 8 } },
    { objective: 'latency' },
  );
  t.same(
    result.stages.map((s) => s.layerEnd - s.layerStart),
    [4, 4],
  );
});

t.test('latency: a slow link keeps the model on one device when it fits', async (t) => {
  const c = cluster(
    model,
    [device('fast', 99_999, 1), device('faster', 99_999, 0.5)],
    meshLinks(['fast', 'faster'], 50),
  );
  const result = plan({ cluster: c }, { objective: 'latency' });
  t.same(
    result.stages.map((s) => s.device),
    ['faster'],
  );
});

t.test(
  'throughput: pipelining beats one device, and the micro-batch grows while memory allows',
  async (t) => {
    const names = ['a', 'b', 'c', 'd'];
    const c = cluster(
      model,
      names.map((n) => device(n, 40_000)),
      meshLinks(names, 0.1, 1e9),
    );
    const result = plan(
      { cluster: c, workload: { contextTokens: 64 } },
      { objective: 'throughput', microBatchCandidates: [1, 2, 4, 8] },
    );
    t.equal(result.stages.length, 4, 'all four devices take part');
    t.ok(
      result.microBatchSize * result.microBatchesInFlight > 1,
      'more than one sequence in flight',
    );
    for (const s of result.stages) t.ok(s.memoryBytes <= s.deviceMemoryBytes, `${s.device} fits`);
  },
);

t.test('pins hold: first and last stages on the named devices', async (t) => {
  const names = ['a', 'b', 'c', 'd'];
  const c = cluster(
    model,
    names.map((n, i) => device(n, 9000, 1 + i)),
  );
  for (const objective of ['latency', 'throughput'] as const) {
    const result = plan({ cluster: c }, { objective, pinFirst: 'd', pinLast: 'c' });
    t.equal(result.stages[0]!.device, 'd', `${objective}: first`);
    t.equal(result.stages.at(-1)!.device, 'c', `${objective}: last`);
  }
});

t.test('PlanResult is a deployable Plan with its predictions', async (t) => {
  const c = cluster(model, [device('a', 9000), device('b', 9000)]);
  const result = plan({ cluster: c, workload: { contextTokens: 32 } }, { objective: 'throughput' });
  t.equal(result.modelHash, model.modelHash);
  t.equal(result.nLayers, 8);
  t.equal(result.planner, 'dp');
  t.equal(result.objective, 'throughput');
  t.same(
    result.stages.map((s) => s.index),
    result.stages.map((_, i) => i),
  );
  t.equal(result.stages[0]!.layerStart, 0);
  t.equal(result.stages.at(-1)!.layerEnd, 8);
  t.equal(result.hops.length, result.stages.length + 1);
  t.equal(result.hops[0]!.from, 'coordinator');
  t.equal(result.hops.at(-1)!.to, 'coordinator');
  t.same(result.workload, {
    contextTokens: 32,
    promptTokens: 32,
    prefillChunkTokens: 128,
    decodeContextTokens: 32,
    risk: 'p50',
    kvDtype: 'float32',
  });
  t.ok(result.ttftMs > 0 && result.tpotMs > 0 && result.tokensPerS > 0);
  t.ok(result.searchSteps > 0);
});
