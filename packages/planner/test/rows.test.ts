/** Plans as rows of strings for tables. */
import t from 'tap';
import {
  comparePlanners,
  comparisonRows,
  formatBytes,
  plan,
  stageRows,
  summaryRows,
} from '../src/index.js';
import { cluster, device, flatModel } from './helpers/fixtures.js';

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

t.test('bytes read like a person would write them', async (t) => {
  t.equal(formatBytes(512), '512 B');
  t.equal(formatBytes(1536), '1.50 KiB');
  t.equal(formatBytes(3 * 1024 ** 3), '3.00 GiB');
  t.equal(formatBytes(150 * 1024 ** 2), '150 MiB');
});
