/**
 * Whether a worker that joins a serving cluster is taken into a new plan: only when the plan
 * is predicted better by the replan gain and pays back moving its weights in the payback time
 * — the same rule the drift loop follows.
 */
import type { ClusterProfile } from '@swarmbee/core';
import t, { type Test } from 'tap';
import { profileFor } from '../src/cluster/deployment.js';
import { choosePlan } from '../src/cluster/planning.js';
import { DEFAULT_REPLAN_GAIN, type ReplanPolicy } from '../src/cluster/replan-policy.js';
import { syntheticProfile } from './helpers/cluster-profile.js';
import { planChoiceFixture } from './helpers/plan-choice.js';

const PLANNING = {
  objective: 'throughput' as const,
  workload: { contextTokens: 256, promptTokens: 16, decodeContextTokens: 64, streams: 8 },
};

async function choice(t: Test, profile: ClusterProfile, policy: ReplanPolicy) {
  const { plans, log } = await planChoiceFixture(t, profile, PLANNING, policy);
  // Serving on a alone; b, four times as fast, joins.
  const alone = profileFor(profile, new Set(['a']));
  const current = {
    plan: choosePlan(plans.options.model, ['a'], PLANNING, alone),
    candidates: ['a'],
  };
  return { plans, current, log };
}

t.test('a joining worker is taken in when its plan pays back its weights in time', async (t) => {
  const profile = syntheticProfile({ devices: { a: 4, b: 1 } });
  const { plans, current, log } = await choice(t, profile, {
    gain: DEFAULT_REPLAN_GAIN,
    paybackMs: 30_000,
  });
  const next = await plans.decide(current, ['a', 'b'], 'b joined');
  t.ok(next, `a new plan (${log.join('; ')})`);
  t.ok(
    next?.stages.some((s) => s.device === 'b'),
    'b serves',
  );
  t.match(log.at(-1), /b joined: a plan over .* is predicted \d+ % better/);
});

t.test(
  'a plan whose weights take longer to move than its gain pays back is declined',
  async (t) => {
    // 8 MB of layers over a 100 kB/s link: minutes of stall against a 30 s payback.
    const profile = syntheticProfile({ devices: { a: 4, b: 1 }, bandwidthBytesPerS: 1e5 });
    const { plans, current, log } = await choice(t, profile, {
      gain: DEFAULT_REPLAN_GAIN,
      paybackMs: 30_000,
    });
    t.equal(await plans.decide(current, ['a', 'b'], 'b joined'), undefined, 'the plan is kept');
    t.match(log.at(-1), /would stall \d+\.\d s moving weights, more than it gains in 30 s/);
  },
);
