/** The planner suite's planning-time section: every case planned, heuristics never beat the exact DP. */
import t from 'tap';
import {
  measurePlanningTime,
  planningTimeChecks,
  planningTimeTable,
} from '../src/suites/planning-time.js';

t.test('planning time over 16 and 64 preset devices', async (t) => {
  const lines: string[] = [];
  const rows = measurePlanningTime({ warmRuns: 0, progress: (line) => lines.push(line) });
  t.equal(rows.length, 16, '2 clusters × 2 objectives × 3 planners, and 64 devices × 2 × 2');
  t.equal(lines.length, 6, 'progress once per cluster and objective');
  for (const row of rows) {
    t.ok(row.result.stages.length > 1, `${row.cluster} ${row.objective} ${row.planner}: a plan`);
    t.ok(row.firstMs > 0);
    if (row.devices === 16) {
      // The DP is exact on the cost model: a heuristic can match it, never beat it.
      t.ok(row.gapToDp! >= 1 - 1e-9, `${row.planner} vs DP: ${row.gapToDp}`);
    } else {
      t.equal(row.gapToDp, undefined, 'no DP over 64 distinct devices');
    }
  }
  const checks = planningTimeChecks(rows);
  t.same(
    checks.map((c) => c.name),
    [
      'DP, 80 layers over 16 devices: planning time',
      'GA and PSO, 80 layers over 64 devices: planning time',
    ],
  );
  for (const c of checks) t.ok(Number.isFinite(c.value) && c.value > 0, c.name);
  t.equal(planningTimeTable(rows).rows.length, rows.length);
});
