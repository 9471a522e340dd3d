/** Reconfigurations run one at a time and merge; plans are remembered per worker set. */

import type { Plan } from '@swarmbee/core';
import t from 'tap';
import { PlanMemory, samePlan } from '../src/cluster/plan-memory.js';
import { ReconfigurationQueue } from '../src/cluster/reconfigurations.js';

t.test(
  'requests made while one reconfiguration runs merge into the next, strongest mode kept',
  async (t) => {
    const runs: { mode: string; reasons: string[] }[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const queue = new ReconfigurationQueue(
      async (job) => {
        runs.push({ mode: job.mode, reasons: [...job.reasons] });
        if (runs.length === 1) await gate;
        if (job.reasons.includes('boom')) throw new Error('boom');
      },
      () => {},
    );
    const first = queue.request('consider', 'w1 joined');
    // While the first runs, two workers are lost and one joins: one job covers them all.
    const second = queue.request('repair', 'w2 lost');
    const third = queue.request('repair', 'w3 lost');
    const fourth = queue.request('consider', 'w4 joined');
    t.equal(second, third, 'merged into one job');
    t.equal(third, fourth);
    release();
    await Promise.all([first, second]);
    t.same(runs, [
      { mode: 'consider', reasons: ['w1 joined'] },
      { mode: 'repair', reasons: ['w2 lost', 'w3 lost', 'w4 joined'] },
    ]);
    // A job that throws settles its waiters anyway, and the queue keeps working.
    await queue.request('replan', 'boom');
    await queue.request('consider', 'after');
    t.same(runs.at(-1), { mode: 'consider', reasons: ['after'] });
  },
);

t.test('plans are remembered per set of workers and planning options, on disk', async (t) => {
  const dir = t.testdir();
  const plan = (devices: string[]): Plan => ({
    modelHash: 'm',
    nLayers: 4,
    stages: devices.map((device, index) => ({
      index,
      device,
      layerStart: (index * 4) / devices.length,
      layerEnd: ((index + 1) * 4) / devices.length,
    })),
  });
  const memory = new PlanMemory(dir, 'm');
  await memory.remember(['b', 'a'], { planner: 'dp' }, plan(['a', 'b']));
  await memory.remember(['a'], { planner: 'dp' }, plan(['a']));
  const again = new PlanMemory(dir, 'm');
  const recalled = await again.recall(['a', 'b'], { planner: 'dp' });
  t.ok(recalled && samePlan(recalled, plan(['a', 'b'])), 'the same workers, in any order');
  t.ok(samePlan((await again.recall(['a'], { planner: 'dp' }))!, plan(['a'])));
  t.equal(await again.recall(['a', 'b'], { planner: 'even' }), undefined, 'other options');
  t.equal(await again.recall(['a', 'b', 'c'], { planner: 'dp' }), undefined, 'other workers');
  t.equal(await new PlanMemory(dir, 'other-model').recall(['a'], { planner: 'dp' }), undefined);
});
