/**
 * Plans after a worker refused its stage for memory (MEMORY_SHORT with its numbers): the DP
 * plans within the capacity the worker reported, the even split leaves it out, no plan that
 * fits is a PLAN_INFEASIBLE naming the worker and the bytes, and a worker that joins again
 * is planned with what it reports then.
 */
import { PlanInfeasibleError } from '@swarmbee/core';
import type { PlanResult } from '@swarmbee/planner';
import t from 'tap';
import { flatModel } from '../../planner/test/helpers/fixtures.js';
import { syntheticProfile } from './helpers/cluster-profile.js';
import { planChoiceFixture } from './helpers/plan-choice.js';

// 4 layers × (1000 B weights + 640 B of KV for one sequence of 64 tokens) + 200 B embedding
// + 300 B head = 7060 B: more than either 4000 B device holds alone.
const profile = syntheticProfile({ model: flatModel(), memoryBytes: 4000 });

t.test('the DP plans within the capacity a refusing worker reported', async (t) => {
  const { plans } = await planChoiceFixture(t, profile, { planner: 'dp', objective: 'throughput' });
  const stageOn = (plan: PlanResult, name: string) => plan.stages.find((s) => s.device === name);
  const before = (await plans.choose(['a', 'b'], true)) as PlanResult;
  t.ok(stageOn(before, 'a'), 'a holds a stage');
  plans.refused({ worker: 'a', neededBytes: 4500, capacityBytes: 3500 });
  const after = (await plans.choose(['a', 'b'], true)) as PlanResult;
  const onA = stageOn(after, 'a');
  t.ok(onA && onA.memoryBytes <= 3500, `a's stage needs ${onA?.memoryBytes} B of its 3500 B`);
  t.ok(
    after.stages.every((s) => s.memoryBytes <= (s.device === 'a' ? 3500 : 4000)),
    'every stage fits',
  );

  plans.refused({ worker: 'a', neededBytes: 4500, capacityBytes: 0 });
  await t.rejects(plans.choose(['a', 'b'], true), {
    code: PlanInfeasibleError.code,
    message: /short by .*worker a needed 4500 bytes for its stage .* can hold at most 0 bytes/,
  });
  plans.forget('a');
  t.same(
    ((await plans.choose(['a', 'b'], true)) as PlanResult).stages.map((s) => s.device),
    before.stages.map((s) => s.device),
    'joined again, a is planned as before',
  );
});

t.test('the even split leaves a refusing worker out; none left is PLAN_INFEASIBLE', async (t) => {
  const { plans } = await planChoiceFixture(t, profile, { planner: 'even' });
  const devices = async () => (await plans.choose(['a', 'b'], true)).stages.map((s) => s.device);
  t.same(await devices(), ['a', 'b']);
  plans.refused({ worker: 'b', neededBytes: 9000, capacityBytes: 100 });
  t.same(await devices(), ['a'], 'b left out');
  plans.refused({ worker: 'a', neededBytes: 9000, capacityBytes: 0 });
  await t.rejects(devices(), {
    code: PlanInfeasibleError.code,
    message:
      /every worker refused its stage for memory \(MEMORY_SHORT\): worker b needed 9000 bytes .*; worker a needed 9000 bytes .* at most 0 bytes/,
  });
});
