/**
 * Live drift end to end: a coordinator in this process and two worker processes, each an
 * emulated device of the same speed read from its speed file, serving stories260K on the
 * DP's latency plan. While a stream decodes, a device of the plan slows to a fifth of its
 * speed (thermal throttling: its speed file changes). The coordinator must notice it from its
 * stage metrics, correct the profile, re-plan away from that device and replay the live
 * stream — every stream's ids equal to an unthrottled run's — and show the decision as a
 * diagnostics event, in /swarmbee/cluster and in /metrics. The slowdown starts on a stream's
 * first token, not after a sleep.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DRIFT_DIAGNOSTIC, type DriftEvent } from '@swarmbee/coordinator';
import { LocalCluster } from '@swarmbee/local-cluster';
import t from 'tap';
import { CLI_BIN } from './helpers/cli.js';
import { stories260kDir } from './helpers/stories260k.js';

/** Speed of both emulated devices: a stories260K step then takes a few ms, enough to judge. */
const DEVICE_SPEED = 0.25;
/** Speed of the throttled device. */
const THROTTLED_SPEED = 0.05;
/** Longest the coordinator may take to re-plan after the slowdown, ms. */
const REPLAN_DEADLINE_MS = 60_000;
/** Most completions the stream loop runs while it waits for the re-plan. */
const MAX_COMPLETIONS = 60;

t.test('a device slowing down mid-stream is noticed, re-planned around and replayed', async (t) => {
  const root = t.testdir();
  const model = await stories260kDir(t, root);
  if (!model) return;
  const speedFile = (i: number) => join(root, `worker-${i}.speed`);
  for (const i of [0, 1]) writeFileSync(speedFile(i), String(DEVICE_SPEED));
  const cluster = await LocalCluster.start({
    model,
    workers: 2,
    cliBin: CLI_BIN,
    cacheDir: join(root, 'cache'),
    workerOutput: 'ignore',
    workerArgs: (i) => ['--speed-file', speedFile(i)],
    coordinator: {
      planning: { planner: 'dp', objective: 'latency' },
      statsIntervalMs: 1000,
      drift: { threshold: 0.15, windows: 2, minIntervalMs: 0 },
    },
  });
  t.teardown(() => cluster.stop());
  const { coordinator } = cluster;
  const before = coordinator.plan!;
  // Throttle the device of the plan's last stage: with one stage, the only one.
  const serving = before.stages.at(-1)!.device;
  const throttledFile = speedFile(Number(serving.replace('worker-', '')));

  const request = {
    prompt: 'Once upon a time',
    maxTokens: 120,
    sampling: { temperature: 0, topK: 0, topP: 1 },
  };
  const reference = await coordinator.service.complete(request);

  let replanned: DriftEvent | undefined;
  const onDrift = (event: unknown) => {
    if ((event as DriftEvent).action === 'replanned') replanned ??= event as DriftEvent;
  };
  subscribe(DRIFT_DIAGNOSTIC, onDrift);
  t.teardown(() => unsubscribe(DRIFT_DIAGNOSTIC, onDrift));

  // Stream until the re-plan has happened and one more stream ran wholly after it.
  const started = performance.now();
  const deadline = started + REPLAN_DEADLINE_MS;
  const runs: number[][] = [];
  let throttled = false;
  let afterReplan = 0;
  for (let i = 0; i < MAX_COMPLETIONS && afterReplan < 2 && performance.now() < deadline; i++) {
    if (replanned) afterReplan++;
    const result = await coordinator.service.complete(request, {
      onToken: () => {
        if (throttled) return;
        throttled = true;
        writeFileSync(throttledFile, String(THROTTLED_SPEED));
      },
    });
    runs.push(result.tokenIds);
  }
  if (!replanned) {
    // Say what the monitor saw instead: the windows it judged and what it did with them.
    const { drift } = coordinator.describe() as { drift: { events: DriftEvent[] } };
    t.fail(`the coordinator re-planned within ${REPLAN_DEADLINE_MS / 1000} s`, {
      streams: runs.length,
      driftEvents: drift.events.slice(-6),
    });
    return;
  }
  t.pass(`the coordinator re-planned within ${REPLAN_DEADLINE_MS / 1000} s`);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  t.comment(`re-planned and replayed over ${runs.length} streams in ${seconds} s`);
  const slowed = replanned.stages.find((s) => s.device === serving);
  t.ok(
    slowed && slowed.ratio > 1.15,
    `the throttled device was measured slow (×${slowed?.ratio.toFixed(2)})`,
  );
  t.notOk(
    coordinator.plan!.stages.some((s) => s.device === serving),
    `the new plan (${coordinator.plan!.stages.map((s) => s.device).join(', ')}) leaves ${serving} out`,
  );
  t.ok(
    runs.every((ids) => JSON.stringify(ids) === JSON.stringify(reference.tokenIds)),
    `all ${runs.length} streams, across the re-plan, have the unthrottled ids`,
  );

  const described = coordinator.describe() as { drift: { replans: number; events: DriftEvent[] } };
  t.ok(described.drift.replans >= 1, '/swarmbee/cluster counts the drift re-plan');
  t.ok(
    described.drift.events.some((e) => e.action === 'replanned' && e.reason.includes(serving)),
    'and says why',
  );
  const metrics = await fetch(`${cluster.apiUrl}/metrics`).then((r) => r.text());
  t.match(metrics, /swarmbee_drift_replans [1-9]/, '/metrics counts it too');
});
