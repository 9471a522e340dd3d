/**
 * `swarmbee plan --compare` as a user runs it: the benchmark's scenarios planned as pure
 * pipeline, pure tensor and hybrid, as a table and as JSON; `--parallelism` and the old
 * every-planner table (`--compare-planners`).
 */
import t from 'tap';
import { runCli } from './helpers/cli.js';

t.test('--compare: pipeline, tensor and hybrid side by side, as JSON', async (t) => {
  const run = await runCli(['plan', '--preset', 'tp-x4-1gbit', '--compare', '--json']);
  t.equal(run.code, 0, run.stderr);
  const entries = JSON.parse(run.stdout) as {
    parallelism: string;
    result: { tpotMs: number; stages: { tensor?: { devices: string[]; allReduce: string } }[] };
  }[];
  t.same(
    entries.map((e) => e.parallelism),
    ['pipeline', 'tensor', 'hybrid'],
  );
  const [pipeline, , hybrid] = entries;
  t.equal(hybrid!.result.stages[0]!.tensor?.devices.length, 4, 'latency: a group of 4');
  t.ok(hybrid!.result.tpotMs < pipeline!.result.tpotMs, 'predicted faster than one device');
});

t.test('--compare as a table; --parallelism; --compare-planners', async (t) => {
  const table = await runCli(['plan', '--preset', 'tp-x2-1gbit', '--compare']);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /parallelism .*stages \(devices\[layers\]\).*ms\/token.*bottleneck/);
  t.match(table.stdout, /hybrid +│ dev-1\+dev-2 (ring|star)\[0-11\]/);
  const one = await runCli(['plan', '--preset', 'tp-x2-1gbit', '--parallelism', 'tensor']);
  t.equal(one.code, 0, one.stderr);
  t.match(one.stdout, /parallelism +│ tensor/);
  // The scenario's emulated devices stretch a segment run (0.36 ms): at 100 Mbit/s + 2 ms the
  // group no longer pays, and the hybrid plan is one device.
  const slow = await runCli(['plan', '--preset', 'tp-x2-100mbit', '--compare']);
  t.equal(slow.code, 0, slow.stderr);
  t.match(slow.stdout, /hybrid +│ dev-1\[0-11\] /);
  const planners = await runCli(['plan', '--preset', 'tp-x2-100mbit', '--compare-planners']);
  t.equal(planners.code, 0, planners.stderr);
  t.match(planners.stdout, /│ pso /);
});
