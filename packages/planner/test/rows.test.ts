/** Plans as rows of strings for tables. */
import t from 'tap';
import {
  compareParallelism,
  comparePlanners,
  comparisonRows,
  formatBytes,
  parallelismRows,
  plan,
  stageRows,
  summaryRows,
} from '../src/index.js';
import { cluster, device, flatModel, meshLinks } from './helpers/fixtures.js';

const c = cluster(flatModel(), [device('a', 6000), device('b', 6000)]);

t.test('stage rows: a header, then one row per stage', async (t) => {
  const result = plan({ cluster: c }, { objective: 'latency' });
  const rows = stageRows(result);
  t.same(rows[0], ['stage', 'device', 'layers', 'memory', 'of', 'decode ms', 'prefill chunk ms']);
  t.equal(rows.length, result.stages.length + 1);
  t.equal(rows[1]![0], '0');
  t.match(rows[1]![2], /^0-\d$/);
  t.equal(rows[1]![4], '5.86 KiB');
  t.same(
    summaryRows(result).map((r) => r[0]),
    [
      'planner',
      'objective',
      'parallelism',
      'stages',
      'micro-batch',
      'timings at',
      'TTFT ms',
      'TPOT ms',
      'tokens/s',
      'bottleneck',
    ],
  );
});

t.test('comparison rows: one per planner, errors by code', async (t) => {
  const rows = comparisonRows(comparePlanners({ cluster: c }, { objective: 'latency' }));
  t.equal(rows.length, 7);
  t.equal(rows[0]![0], 'planner');
  const solo = rows.find((r) => r[0] === 'solo')!;
  t.equal(solo[7], 'SWARMBEE_ERR_PLAN_INFEASIBLE');
  t.ok(rows.every((r) => r.length === rows[0]!.length));
});

t.test('parallelism rows: pipeline, tensor and hybrid, groups by their members', async (t) => {
  const m = flatModel({ tensorShape: { nHeads: 2, nKvHeads: 2, headDim: 4, hiddenDim: 64 } });
  const fast = cluster(
    m,
    [device('a', 6000, 20), device('b', 6000, 20)],
    meshLinks(['a', 'b'], 0.1, 1e9),
  );
  const rows = parallelismRows(compareParallelism({ cluster: fast }, { objective: 'latency' }));
  t.same(
    rows.map((r) => r[0]),
    ['parallelism', 'pipeline', 'tensor', 'hybrid'],
  );
  t.match(rows[2]![1], /^a\+b (ring|star)\[0-3\]$/, 'the group, its all-reduce and its layers');
  t.equal(rows[3]![1], rows[2]![1], 'hybrid: the group pays on these links');
  const flat = parallelismRows(compareParallelism({ cluster: c }, { objective: 'latency' }));
  t.equal(flat[2]![6], 'SWARMBEE_ERR_INVALID_ARGUMENT', 'a model that cannot be split');
  t.ok(rows.every((r) => r.length === rows[0]!.length));
});

t.test('bytes read like a person would write them', async (t) => {
  t.equal(formatBytes(512), '512 B');
  t.equal(formatBytes(1536), '1.50 KiB');
  t.equal(formatBytes(3 * 1024 ** 3), '3.00 GiB');
  t.equal(formatBytes(150 * 1024 ** 2), '150 MiB');
});
