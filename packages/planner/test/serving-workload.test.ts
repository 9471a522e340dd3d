/**
 * Plans judged on what serving runs: the micro-batches a number of streams makes, and the
 * profile's spread (plan at p50 or p90, and the predicted range of every plan).
 */
import type { DeviceProfile, DeviceTiming } from '@swarmbee/core';
import t from 'tap';
import { batchRuns, CostModel, plan } from '../src/index.js';
import { cluster, device, flatModel } from './helpers/fixtures.js';

/** A layer whose decode step costs `fixedMs` plus `perRowMs` per row, measured at 1..32 rows. */
function batchedTiming(fixedMs: number, perRowMs: number, p90Factor = 1): DeviceTiming {
  const batchSizes = [1, 2, 4, 8, 16, 32];
  const ms = batchSizes.map((b) => [fixedMs + perRowMs * b]);
  const decode = {
    batchSizes,
    contextTokens: [0],
    ms,
    p10Ms: ms.map((row) => row.map((v) => v * 0.95)),
    p90Ms: ms.map((row) => row.map((v) => v * p90Factor)),
  };
  const chunk = { chunkTokens: [1], contextTokens: [0], ms: [[fixedMs]] };
  const small = { batchSizes: [1], contextTokens: [0], ms: [[0.01]] };
  return {
    layers: [{ decode, prefill: chunk }],
    embedding: { decode: small, prefill: { ...chunk, ms: [[0.01]] } },
    head: { decode: small },
  };
}

function batched(name: string, fixedMs: number, perRowMs: number, p90Factor = 1): DeviceProfile {
  return {
    name,
    memoryBytes: 1e9,
    timing: batchedTiming(fixedMs, perRowMs, p90Factor),
    estimate: false,
  };
}

t.test('with streams, each count in flight carries the rows the scheduler gives it', async (t) => {
  const cost = new CostModel(cluster(flatModel(), [batched('a', 4, 0.05)]), { streams: 32 });
  const runs = batchRuns(cost, 'throughput', [1, 2, 4, 8, 16, 32]);
  t.same(
    runs.map((r) => [r.batch, r.inFlight]),
    [
      [32, 1],
      [16, 2],
      [11, 3],
    ],
    'one device: at most 2·1 + 1 in flight, ⌈32 / M⌉ rows each',
  );
  const capped = batchRuns(cost, 'throughput', [1, 2, 4, 8, 16]);
  t.same(
    capped.map((r) => r.batch),
    [16, 16, 11],
    'never more rows than the largest candidate',
  );
  t.same(batchRuns(cost, 'latency', [1, 2, 4, 8]), [{ batch: 1, inFlight: 1 }]);
  const free = new CostModel(cluster(flatModel(), [batched('a', 4, 0.05)]));
  t.equal(batchRuns(free, 'throughput', [1, 8]).length, 2 * 3, 'without streams: every pair');
});

t.test('large micro-batches are chosen when the profile says they pay', async (t) => {
  // A fixed cost per step dominates: 32 rows cost little more than 8.
  const c = cluster(flatModel(), [batched('a', 4, 0.05), batched('b', 4, 0.05)]);
  const result = plan(
    { cluster: c, workload: { streams: 32 } },
    { objective: 'throughput', microBatchCandidates: [1, 2, 4, 8, 16, 32] },
  );
  t.ok(result.microBatchSize > 8, `micro-batches of ${result.microBatchSize} rows`);
  t.ok(
    result.microBatchSize * result.microBatchesInFlight >= 32,
    'every stream has a row in some micro-batch',
  );
  // The same streams planned from the candidates alone stop at 8 rows and predict less.
  const eight = plan(
    { cluster: c, workload: { streams: 32 } },
    { objective: 'throughput', microBatchCandidates: [1, 2, 4, 8] },
  );
  t.ok(eight.microBatchSize <= 8);
  t.ok(result.tokensPerS > eight.tokensPerS * 1.2, 'larger batches predict more tokens/s');
});

t.test('plans carry a predicted range, and p90 plans avoid a device that varies', async (t) => {
  // Two devices alike at the median; b's 90th percentile is twice its median.
  const steady = batched('a', 4, 0.05, 1.05);
  const jumpy = batched('b', 3.6, 0.045, 2);
  const c = cluster(flatModel(), [steady, jumpy]);
  const p50 = plan({ cluster: c, workload: { risk: 'p50' } }, { objective: 'latency' });
  const p90 = plan({ cluster: c, workload: { risk: 'p90' } }, { objective: 'latency' });
  t.same(
    p50.stages.map((s) => s.device),
    ['b'],
    'on medians the faster device alone',
  );
  t.same(
    p90.stages.map((s) => s.device),
    ['a'],
    'at p90 the steady one',
  );
  t.equal(p50.workload.risk, 'p50');
  t.equal(p90.workload.risk, 'p90');
  t.equal(p50.range.p50.tpotMs, p50.tpotMs, "the plan's own figures are its risk's");
  t.ok(p50.range.p90.tpotMs > 1.6 * p50.range.p50.tpotMs, 'b alone: p90 well above the median');
  t.equal(p90.range.p90.tpotMs, p90.tpotMs);
  t.ok(p90.range.p90.tpotMs < p50.range.p90.tpotMs, 'the p90 plan is better at p90');
  // A profile without spread (a preset) gives one number for both.
  const flat = plan(
    { cluster: cluster(flatModel(), [device('x', 1e9)]) },
    { objective: 'latency' },
  );
  t.equal(flat.range.p50.tpotMs, flat.range.p90.tpotMs);
  t.throws(() => plan({ cluster: c, workload: { risk: 'p99' as 'p90' } }), {
    code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
  });
  t.throws(() => plan({ cluster: c, workload: { streams: 0 } }), {
    code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
  });
});
