/**
 * The drift loop's decisions on real cost-model predictions: a stage measured slower than
 * its profile is noticed after the hysteresis windows, its device's profile corrected, and
 * a re-plan made when a better plan is predicted, at most once per interval.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  DRIFT_DIAGNOSTIC,
  type DriftEvent,
  type DriftHooks,
  DriftMonitor,
  type DriftOptions,
  type StageMetrics,
} from '@swarmbee/coordinator';
import type { ClusterProfile } from '@swarmbee/core';
import type { MicroBatch } from '@swarmbee/engine';
import { CostModel, type PlanResult, plan as planFor } from '@swarmbee/planner';
import t from 'tap';
import {
  DEFAULT_REPLAN_GAIN,
  DEFAULT_REPLAN_PAYBACK_MS,
  predictedGain,
  redeployMs,
  stageKey,
} from '../src/cluster/replan-policy.js';
import {
  correctedProfile,
  emptyWork,
  recordWork,
  stageDrift,
} from '../src/drift/drift-estimate.js';
import { MIN_DRIFT_POOLED_FORWARDS } from '../src/drift/drift-monitor.js';
import { syntheticProfile } from './helpers/cluster-profile.js';

const profile = (layerMs = 1) => syntheticProfile({ layerMs });

const WORKLOAD = { contextTokens: 256, promptTokens: 16, decodeContextTokens: 64, streams: 8 };

/** A decode micro-batch of `rows` rows, as the scheduler sends it. */
function batch(rows: number): MicroBatch {
  return {
    batchId: 1,
    rows: Array.from({ length: rows }, (_, r) => ({ seqId: `s${r}`, start: 20, count: 1 })),
    tokens: new BigInt64Array(rows),
  };
}

/** Stage counters after `forwards` more forwards at `ms` each. */
function advance(metrics: StageMetrics[], forwards: number, msOf: (stage: number) => number) {
  return metrics.map((m) => ({
    ...m,
    forwards: m.forwards + forwards,
    busyMsTotal: m.busyMsTotal + forwards * msOf(m.stage),
  }));
}

t.test('a stage on prediction has ratio 1; one twice as slow, 2', async (t) => {
  const p = profile();
  const current = planFor(
    { cluster: p, workload: WORKLOAD },
    { planner: 'even', objective: 'throughput' },
  );
  const cost = new CostModel(p, current.workload);
  const work = emptyWork();
  work.decode.set(4, 30);
  const predicted = current.stages.map(
    (s, k) => cost.stageDecodeNs(k, s.layerStart, s.layerEnd, k === 0, k === 1, 4) / 1e6,
  );
  const drift = stageDrift(
    p,
    current.workload,
    current,
    [
      { stage: 0, device: 'a', forwards: 30, busyMs: 30 * predicted[0]! },
      { stage: 1, device: 'b', forwards: 30, busyMs: 30 * 2 * predicted[1]! },
    ],
    work,
  );
  t.equal(drift.length, 2);
  t.ok(Math.abs(drift[0]!.ratio - 1) < 1e-9, 'on prediction');
  t.ok(Math.abs(drift[1]!.ratio - 2) < 1e-9, 'twice as slow');
  const corrected = correctedProfile(p, new Map([['b', 2]]));
  const b = corrected.devices[1]!.timing.layers[0]!.decode.ms[0]![0]!;
  t.equal(b, 2 * p.devices[1]!.timing.layers[0]!.decode.ms[0]![0]!, "b's timings doubled");
  t.equal(corrected.devices[0], p.devices[0], 'a untouched');
});

t.test('prefill chunks are predicted at the width and context they were sent with', async (t) => {
  const p = profile();
  const current = planFor(
    { cluster: p, workload: WORKLOAD },
    { planner: 'even', objective: 'throughput' },
  );
  const cost = new CostModel(p, current.workload);
  const work = emptyWork();
  // Prompts longer than the workload's (16 tokens): 10 decode batches of 4 rows, 5 chunks of 64.
  for (let i = 0; i < 10; i++) recordWork(work, batch(4).rows);
  for (let i = 0; i < 5; i++) recordWork(work, [{ start: 0, count: 64 }]);
  t.same([...work.prefill], [['64/0', 5]], 'chunks kept by shape');
  const stage = current.stages[0]!;
  const decodeMs = cost.stageDecodeNs(0, stage.layerStart, stage.layerEnd, true, false, 4) / 1e6;
  const chunkMs = cost.stagePrefillChunkNs(0, stage.layerStart, stage.layerEnd, true, 64, 0) / 1e6;
  t.ok(
    chunkMs > cost.stagePrefillNs(0, stage.layerStart, stage.layerEnd, true) / 1e6,
    "a 64-token chunk costs more than the workload's 16-token one",
  );
  const [judged] = stageDrift(
    p,
    current.workload,
    current,
    [{ stage: 0, device: stage.device, forwards: 15, busyMs: 10 * decodeMs + 5 * chunkMs }],
    work,
  );
  t.ok(Math.abs(judged!.ratio - 1) < 1e-9, `on prediction (ratio ${judged!.ratio})`);
});

/** The coordinator's defaults: 10 % better, paying back its weights' transfer within 30 s. */
const POLICY = { gain: DEFAULT_REPLAN_GAIN, paybackMs: DEFAULT_REPLAN_PAYBACK_MS };

/** A monitor over a 2-device even split (a, b), fed windows in which b runs `slowB` times its profile. */
function harness(
  options: DriftOptions,
  layerMs = 1,
  policy = POLICY,
  remeasure?: DriftHooks['remeasure'],
) {
  const state = {
    current: planFor(
      { cluster: profile(layerMs), workload: WORKLOAD },
      { planner: 'even', objective: 'throughput' },
    ) as PlanResult,
    served: profile(layerMs),
  };
  const applied: { replan: boolean; reason: string }[] = [];
  const monitor = new DriftMonitor(options, {
    serving: () => ({ plan: state.current, profile: state.served }),
    candidate: (corrected, held) => {
      const plan = planFor({ cluster: corrected, workload: WORKLOAD }, { objective: 'throughput' });
      return {
        plan,
        gain: predictedGain(corrected, WORKLOAD, 'throughput', state.current, plan),
        redeployMs: redeployMs(corrected, plan, held),
      };
    },
    apply: async (corrected, replan, reason) => {
      state.served = corrected;
      applied.push({ replan, reason });
    },
    policy,
    ...(remeasure ? { remeasure } : {}),
    log: () => {},
  });
  const cost = new CostModel(state.served, state.current.workload);
  const stageMs = (k: number, slow: number) => {
    const s = state.current.stages[k]!;
    return (slow * cost.stageDecodeNs(k, s.layerStart, s.layerEnd, k === 0, k === 1, 4)) / 1e6;
  };
  const fresh = (): StageMetrics[] =>
    state.current.stages.map((s) => ({
      stage: s.index,
      device: s.device,
      forwards: 0,
      forwardMsTotal: 0,
      busyMsTotal: 0,
      queueDepth: 0,
      bytesSent: 0,
      idleShare: 0,
    }));
  let metrics = fresh();
  /** One stats poll after `forwards` micro-batches in which b ran `slowB` times its profile. */
  const poll = async (slowB: number, forwards = 40) => {
    for (let i = 0; i < forwards; i++) monitor.recordBatch(batch(4));
    metrics = advance(metrics, forwards, (k) =>
      stageMs(k, state.current.stages[k]!.device === 'b' ? slowB : 1),
    );
    monitor.observe(metrics);
    await new Promise((resolve) => setImmediate(resolve));
  };
  /** Serves a new plan: its counters start afresh. */
  const adopt = (plan: PlanResult) => {
    state.current = plan;
    metrics = fresh();
  };
  return { monitor, state, applied, poll, adopt };
}

t.test(
  'drift is acted on after the hysteresis windows, then not again within the interval',
  async (t) => {
    const events: DriftEvent[] = [];
    const listener = (event: unknown) => events.push(event as DriftEvent);
    subscribe(DRIFT_DIAGNOSTIC, listener);
    t.teardown(() => unsubscribe(DRIFT_DIAGNOSTIC, listener));
    const { monitor, state, applied, poll, adopt } = harness({
      threshold: 0.15,
      windows: 2,
      minIntervalMs: 60_000,
    });
    await poll(1); // the first poll of a plan only starts its window
    await poll(1);
    t.same(
      monitor.latest.map((d) => Number(d.ratio.toFixed(6))),
      [1, 1],
      'on prediction: nothing to do',
    );
    await poll(3); // b throttled to a third of its speed
    t.equal(applied.length, 0, 'one window is not enough (hysteresis)');
    await poll(3);
    t.equal(applied.length, 1, 'two windows in a row: acted on');
    t.equal(applied[0]!.replan, true, 'a plan away from b is predicted better');
    t.match(applied[0]!.reason, /drift: b ×3\.00/);
    t.equal(monitor.replans, 1);
    t.equal(events.length, 1, 'published on the diagnostics channel');
    t.equal(events[0]!.action, 'replanned');
    t.ok(events[0]!.gain >= 0.1);
    t.ok(
      state.served.devices.find((d) => d.name === 'b')!.source?.includes('scaled ×3.00'),
      "b's profile corrected from live metrics",
    );
    // The same drift again soon after: within the interval nothing more happens.
    await poll(3);
    await poll(3);
    await poll(3);
    t.equal(applied.length, 1, 'at most one re-plan per interval');
    // A new plan starts afresh.
    adopt(planFor({ cluster: state.served, workload: WORKLOAD }, { objective: 'throughput' }));
    await poll(1);
    t.same(monitor.latest, [], "a new plan's first poll judges nothing");
  },
);

t.test(
  'a slow stage with few forwards a poll is judged over more polls, by their pool',
  async (t) => {
    const { applied, poll } = harness({ threshold: 0.15, windows: 2, minIntervalMs: 0 });
    await poll(1, 5);
    await poll(2, 5);
    await poll(3, 5);
    t.equal(applied.length, 0, `two windows of 5 forwards pool 10 < ${MIN_DRIFT_POOLED_FORWARDS}`);
    await poll(2, 5);
    await poll(3, 5);
    t.equal(applied.length, 1, 'four windows pool 20 forwards: acted on');
    // Equal forwards a window: the pool of 2, 3, 2 and 3 times the profile is 2.5.
    t.match(applied[0]!.reason, /drift: b ×2\.50/);
  },
);

t.test('a stage far below the busiest one is not judged by its noise', async (t) => {
  // Layers of 2 ms, so that b's one layer is long enough to be judged at all.
  const { applied, state, poll, adopt } = harness(
    { threshold: 0.15, windows: 2, minIntervalMs: 0 },
    2,
  );
  const [a, b] = state.current.stages as [PlanResult['stages'][0], PlanResult['stages'][0]];
  // a runs 7 layers (17.5 ms a forward), b one and the head (3.1 ms).
  adopt({
    ...state.current,
    stages: [
      { ...a, layerEnd: 7 },
      { ...b, layerStart: 7 },
    ],
  });
  await poll(1);
  await poll(1.3);
  await poll(1.3);
  t.same(applied, [], 'b 30 % slow but still under a quarter of a: nothing done');
  await poll(3);
  await poll(3);
  t.equal(applied.length, 1, 'b three times slow, near half of a: acted on');
});

t.test('a re-plan that would stall longer moving weights than it gains is not made', async (t) => {
  // Links of 100 MB/s and 1 MB layers: a new stage of 4 layers moves in 40 ms. Paying back
  // within 1 ms, no gain is worth it; the profile is still corrected.
  const { applied, poll } = harness({ threshold: 0.15, windows: 2, minIntervalMs: 0 }, 1, {
    ...POLICY,
    paybackMs: 1,
  });
  await poll(1);
  await poll(3);
  await poll(3);
  t.equal(applied.length, 1, 'acted on');
  t.equal(applied[0]!.replan, false, 'but kept the plan');
  t.match(applied[0]!.reason, /would stall 0\.\d s moving weights/);
});

t.test('moving weights: only stages a device has not served before, over its link', async (t) => {
  const p = profile();
  const even = planFor(
    { cluster: p, workload: WORKLOAD },
    { planner: 'even', objective: 'throughput' },
  );
  const held = new Set(even.stages.map((s, k) => stageKey(s, k, 2)));
  t.equal(redeployMs(p, even, held), 0, 'the serving plan moves nothing');
  const solo = planFor(
    { cluster: p, workload: WORKLOAD },
    { planner: 'solo', objective: 'latency' },
  );
  // One device, every layer (8 × 1 MB), the embedding and the head (0.1 MB each), at 100 MB/s.
  t.equal(redeployMs(p, solo, held), 82, 'a new stage: its bytes over the link, ms');
});

t.test('windows off in opposite directions are noise, not drift', async (t) => {
  const { applied, poll } = harness({ threshold: 0.15, windows: 2, minIntervalMs: 0 });
  await poll(1);
  for (const slow of [1.5, 0.6, 1.5, 0.6]) await poll(slow);
  t.equal(applied.length, 0, 'b slower, then faster, then slower: nothing done');
  await poll(1.5);
  await poll(1.5);
  t.equal(applied.length, 1, 'two slow windows in a row: acted on');
});

t.test('a threshold of 0 turns the loop off', async (t) => {
  const monitor = new DriftMonitor(
    { threshold: 0 },
    {
      serving: () => {
        throw new Error('never asked');
      },
      candidate: () => undefined,
      apply: async () => {},
      policy: POLICY,
      log: () => {},
    },
  );
  t.equal(monitor.enabled, false);
  monitor.observe([]);
  t.equal(monitor.status().enabled, false);
});

t.test('the loop is turned on and off while serving; bad settings are refused', async (t) => {
  let asked = 0;
  const monitor = new DriftMonitor(
    { threshold: 0 },
    {
      serving: () => {
        asked++;
        return undefined;
      },
      candidate: () => undefined,
      apply: async () => {},
      policy: POLICY,
      log: () => {},
    },
  );
  monitor.configure({ threshold: 0.2, minIntervalMs: 5000 });
  t.equal(monitor.enabled, true, 'on');
  monitor.observe([]);
  t.equal(asked, 1, 'an enabled loop looks at the serving plan');
  t.match(monitor.status(), { threshold: 0.2, minIntervalMs: 5000 }, 'the new settings show');
  monitor.configure({ threshold: 0 });
  t.equal(monitor.enabled, false, 'off again');
  t.match(monitor.status(), { minIntervalMs: 5000 }, 'settings left out are kept');
  for (const bad of [{ threshold: -1 }, { windows: 0 }, { minIntervalMs: Number.NaN }])
    t.throws(() => monitor.configure(bad), { code: 'SWARMBEE_ERR_INVALID_ARGUMENT' });
});

/**
 * b runs ten times slow until the loop plans around it; the new plan is served. Measured again,
 * b shows `remeasuredAs`.
 */
async function plannedAroundB(remeasuredAs: ClusterProfile) {
  const remeasured: string[][] = [];
  const h = harness(
    { threshold: 0.15, windows: 2, minIntervalMs: 0 },
    1,
    POLICY,
    async (devices) => {
      remeasured.push([...devices]);
      return remeasuredAs;
    },
  );
  await h.poll(1);
  await h.poll(10);
  await h.poll(10);
  const plannedAround = h.applied[0]?.replan === true;
  h.adopt(planFor({ cluster: h.state.served, workload: WORKLOAD }, { objective: 'throughput' }));
  return { ...h, remeasured, plannedAround };
}

t.test(
  'a device planned around is measured again while idle, and taken back once recovered',
  async (t) => {
    // b cooled down: back at its first speed.
    const { state, applied, poll, remeasured, plannedAround } = await plannedAroundB(profile());
    t.ok(plannedAround, 'b ten times slow: planned around');
    t.notOk(
      state.current.stages.some((s) => s.device === 'b'),
      'b serves no stage, so no live metrics show it',
    );
    await poll(1); // the new plan's first poll
    t.same(remeasured, [], 'not before the new plan has been judged');
    await poll(1);
    t.same(remeasured, [['b']], 'b measured again');
    t.equal(applied.length, 2);
    t.equal(applied[1]!.replan, true, 'a plan with b again is predicted better, and pays');
    t.match(applied[1]!.reason, /b ×1\.00 of its first profile, measured again while idle/);
    await poll(1);
    t.equal(remeasured.length, 1, 'recovered: no longer watched');
  },
);

t.test('a device still slow when measured again stays planned around, and watched', async (t) => {
  const { applied, poll, remeasured } = await plannedAroundB(
    syntheticProfile({ devices: { a: 1, b: 10 } }),
  );
  await poll(1);
  await poll(1);
  t.same(remeasured, [['b']], 'b measured again');
  t.equal(applied[1]!.replan, false, 'still slow: the plan is kept');
  t.match(applied[1]!.reason, /b ×10\.00 of its first profile/);
  await poll(1);
  t.same(remeasured, [['b'], ['b']], 'and measured again at the next chance');
});
