/** Every way a planning request can fail, named for what it breaks, asserting the error code. */
import {
  ContextOverflowError,
  DeviceUnknownError,
  fromWire,
  InvalidArgumentError,
  PlanInfeasibleError,
  PlanTooLargeError,
  ProfileInvalidError,
} from '@swarmbee/core';
import t from 'tap';
import { comparePlanners, findPreset, plan } from '../src/index.js';
import { cluster, device, flatModel, meshLinks } from './helpers/fixtures.js';

// 4 layers × (1000 B weights + 10 B/token × 64 tokens KV) + 200 B embedding + 300 B head = 7060 B for one sequence.
const model = flatModel();
const fits = () => cluster(model, [device('a', 4000), device('b', 4000)]);

t.test('PLAN INFEASIBLE - the model is larger than every device together', async (t) => {
  const small = cluster(model, [device('a', 3000), device('b', 3000)]);
  t.throws(() => plan({ cluster: small }), {
    code: PlanInfeasibleError.code,
    message: /needs 6\.89 KiB .* hold 5\.86 KiB in total: short by 1\.04 KiB/,
  });
});

t.test(
  'PLAN INFEASIBLE - a model that fits with an fp16 KV cache does not with fp32',
  async (t) => {
    // fp32: 4 × (1000 + 640) + 500 = 7060 B; fp16: 4 × (1000 + 320) + 500 = 5780 B, in 2 × 3000 B.
    const small = cluster(model, [device('a', 3000), device('b', 3000)]);
    t.throws(() => plan({ cluster: small, workload: { kvDtype: 'float32' } }), {
      code: PlanInfeasibleError.code,
      message:
        /needs 6\.89 KiB \(weights, embedding, head and fp32 KV cache for 1 sequence × 64 tokens\) .* short by 1\.04 KiB/,
    });
    const result = plan({ cluster: small, workload: { kvDtype: 'float16' } });
    t.same(
      result.stages.map((s) => [s.device, s.layerStart, s.layerEnd]),
      [
        ['a', 0, 2],
        ['b', 2, 4],
      ],
    );
    t.ok(
      result.stages.every((s) => s.memoryBytes <= 3000),
      `stages hold ${result.stages.map((s) => s.memoryBytes).join(' and ')} B`,
    );
    t.throws(() => plan({ cluster: small, workload: { kvDtype: 'int8' as 'float16' } }), {
      code: InvalidArgumentError.code,
      message: /kvDtype must be "float32" or "float16", got "int8"/,
    });
  },
);

t.test('PLAN INFEASIBLE - the KV cache of the smallest micro-batch does not fit', async (t) => {
  const request = { cluster: fits() };
  t.throws(
    () =>
      plan(request, {
        objective: 'throughput',
        microBatchCandidates: [8],
        microBatchesInFlight: 2,
      }),
    {
      code: PlanInfeasibleError.code,
      message: /KV cache for 16 sequences × 64 tokens/,
    },
  );
});

t.test('PLAN INFEASIBLE - the totals fit but no contiguous split does', async (t) => {
  // Three layers of 1000 B on two devices of 1700 B: 3000 B fit in 3400 B, yet one device needs two layers.
  const m = flatModel({
    nLayers: 3,
    embeddingBytes: 0,
    headBytes: 0,
    layers: Array(3).fill({ paramBytes: 1000, kvBytesPerToken: 0 }),
  });
  const c = cluster(m, [device('a', 1700), device('b', 1700)]);
  t.throws(() => plan({ cluster: c }), {
    code: PlanInfeasibleError.code,
    message: /no assignment of contiguous layer ranges/,
  });
});

t.test('DEVICE UNKNOWN - a pinned first device is not in the cluster', async (t) => {
  t.throws(() => plan({ cluster: fits() }, { pinFirst: 'nope' }), {
    code: DeviceUnknownError.code,
    message: /nope/,
  });
});

t.test('DEVICE UNKNOWN - a pinned last device is not in the cluster', async (t) => {
  t.throws(() => plan({ cluster: fits() }, { pinLast: 'gone' }), {
    code: DeviceUnknownError.code,
    message: /gone/,
  });
});

t.test(
  'PLAN INFEASIBLE - the pinned first device cannot hold even the embedding and a layer',
  async (t) => {
    const c = cluster(model, [device('tiny', 500), device('a', 8000)]);
    t.throws(() => plan({ cluster: c }, { pinFirst: 'tiny' }), {
      code: PlanInfeasibleError.code,
      message:
        /pinned first device tiny has 500 B but the embedding plus layer 0 .* short by 1\.31 KiB/,
    });
  },
);

t.test('PLAN INFEASIBLE - the pinned last device cannot hold the head and a layer', async (t) => {
  const c = cluster(model, [device('a', 8000), device('tiny', 1000)]);
  t.throws(() => plan({ cluster: c }, { pinLast: 'tiny' }), {
    code: PlanInfeasibleError.code,
    message: /pinned last device tiny .* the head plus layer 3/,
  });
});

t.test(
  'PLAN INFEASIBLE - one device pinned first and last must hold the whole model',
  async (t) => {
    t.throws(() => plan({ cluster: fits() }, { pinFirst: 'a', pinLast: 'a' }), {
      code: PlanInfeasibleError.code,
      message: /pinned first and last device a/,
    });
  },
);

t.test('PLAN INFEASIBLE - different first and last pins on a one-layer model', async (t) => {
  const one = cluster(flatModel({ nLayers: 1 }), [device('a', 9000), device('b', 9000)]);
  t.throws(() => plan({ cluster: one }, { pinFirst: 'a', pinLast: 'b' }), {
    code: PlanInfeasibleError.code,
    message: /needs two stages/,
  });
});

t.test(
  'PLAN TOO LARGE - the exact planner refuses a state space past its limit; auto falls back',
  async (t) => {
    const c = cluster(model, [device('a', 4000, 1), device('b', 4000, 2), device('c', 4000, 3)]);
    t.throws(() => plan({ cluster: c }, { dpStateLimit: 10 }), {
      code: PlanTooLargeError.code,
      message: /ga/,
    });
    const result = plan({ cluster: c }, { planner: 'auto', dpStateLimit: 10 });
    t.equal(result.planner, 'ga');
    t.equal(plan({ cluster: c }, { planner: 'auto' }).planner, 'dp');
  },
);

t.test('PROFILE INVALID - a link is missing', async (t) => {
  const c = fits();
  c.links = c.links.filter((l) => !(l.from === 'a' && l.to === 'b'));
  t.throws(() => plan({ cluster: c }), {
    code: ProfileInvalidError.code,
    message: /no link between a and b/,
  });
});

t.test('DEVICE UNKNOWN - a link names a device that is not in the profile', async (t) => {
  const c = fits();
  c.links.push({ from: 'a', to: 'ghost', rttMs: 1, bandwidthBytesPerS: 1e6 });
  t.throws(() => plan({ cluster: c }), { code: DeviceUnknownError.code, message: /ghost/ });
});

t.test('PROFILE INVALID - a timing grid axis does not ascend', async (t) => {
  const c = fits();
  c.devices[0]!.timing.layers[0]!.decode = {
    batchSizes: [4, 1],
    contextTokens: [0],
    ms: [[1], [2]],
  };
  t.throws(() => plan({ cluster: c }), { code: ProfileInvalidError.code, message: /ascend/ });
});

t.test('PROFILE INVALID - a grid has the wrong shape', async (t) => {
  const c = fits();
  c.devices[1]!.timing.head.decode = { batchSizes: [1, 2], contextTokens: [0], ms: [[1]] };
  t.throws(() => plan({ cluster: c }), {
    code: ProfileInvalidError.code,
    message: /head decode ms must be 2 × 1/,
  });
});

t.test('PROFILE INVALID - a device times 3 layers of a 4-layer model', async (t) => {
  const c = fits();
  const op = c.devices[0]!.timing.layers[0]!;
  c.devices[0]!.timing = { ...c.devices[0]!.timing, layers: [op, op, op] };
  t.throws(() => plan({ cluster: c }), {
    code: ProfileInvalidError.code,
    message: /times 3 layers/,
  });
});

t.test('PROFILE INVALID - two devices share a name', async (t) => {
  const c = cluster(model, [device('a', 4000), device('a', 4000)], meshLinks(['a']));
  t.throws(() => plan({ cluster: c }), {
    code: ProfileInvalidError.code,
    message: /two devices are named a/,
  });
});

t.test('PROFILE INVALID - a device is named like the coordinator', async (t) => {
  const c = cluster(model, [device('coordinator', 9000)], []);
  t.throws(() => plan({ cluster: c }), { code: ProfileInvalidError.code, message: /coordinator/ });
});

t.test('PROFILE INVALID - a link has no bandwidth', async (t) => {
  const c = fits();
  c.links[0]!.bandwidthBytesPerS = 0;
  t.throws(() => plan({ cluster: c }), { code: ProfileInvalidError.code });
});

t.test('INVALID ARGUMENT - bad options', async (t) => {
  const request = { cluster: fits() };
  t.throws(() => plan(request, { microBatchCandidates: [0] }), {
    code: InvalidArgumentError.code,
    message: /micro-batch/,
  });
  t.throws(() => plan(request, { microBatchCandidates: [] }), { code: InvalidArgumentError.code });
  t.throws(() => plan(request, { microBatchesInFlight: 1.5 }), { code: InvalidArgumentError.code });
  t.throws(() => plan(request, { planner: 'magic' as 'dp' }), {
    code: InvalidArgumentError.code,
    message: /magic/,
  });
  t.throws(() => plan(request, { objective: 'speed' as 'latency' }), {
    code: InvalidArgumentError.code,
  });
  t.throws(() => findPreset('rpi3'), { code: InvalidArgumentError.code, message: /rpi4-4gb/ });
});

t.test('CONTEXT OVERFLOW - the workload does not fit the model', async (t) => {
  const request = (workload: object) => ({ cluster: fits(), workload });
  t.throws(() => plan(request({ contextTokens: 32, promptTokens: 40 })), {
    code: ContextOverflowError.code,
  });
  t.throws(() => plan(request({ contextTokens: 65 })), {
    code: ContextOverflowError.code,
    message: /64 tokens/,
  });
  t.throws(() => plan(request({ prefillChunkTokens: 0 })), { code: InvalidArgumentError.code });
});

t.test(
  'comparePlanners reports each failing planner as a coded error and still plans',
  async (t) => {
    // 'small' cannot take an even share, so the even split fails while the DP routes around it.
    const c = cluster(model, [device('a', 6000), device('small', 1200), device('b', 6000)]);
    const rows = comparePlanners({ cluster: c }, { objective: 'latency' });
    t.same(
      rows.map((r) => r.planner),
      ['dp', 'ga', 'pso', 'solo', 'even', 'memory'],
    );
    const byName = new Map(rows.map((r) => [r.planner, r]));
    t.ok(byName.get('dp')?.result, 'the DP plans');
    t.equal(
      byName.get('solo')?.error?.code,
      PlanInfeasibleError.code,
      'no device holds the model alone',
    );
    t.equal(
      byName.get('even')?.error?.code,
      PlanInfeasibleError.code,
      'an even split overflows small',
    );
    const wire = byName.get('even')!.error!;
    t.type(fromWire(wire), PlanInfeasibleError, 'the error survives the wire as its class');
  },
);
