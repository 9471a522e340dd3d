/**
 * The parallel suite's tp part: every layout it deploys is a plan the coordinator accepts
 * (`--plan`'s check against the model), with the head placement each setup asks for.
 */
import { checkGivenPlan } from '@swarmbee/coordinator';
import { cachedSynthModel, DEFAULT_SYNTH_SEED } from '@swarmbee/model';
import t from 'tap';
import { TP_LINKS, tpSetups } from '../src/parallel/tp-runs.js';

t.test('each setup layout is a valid plan over worker-0 … worker-k', async (t) => {
  const model = await cachedSynthModel('tiny', DEFAULT_SYNTH_SEED, { root: t.testdir() });
  const setups = tpSetups();
  t.same(
    setups.map((s) => s.layouts.map((l) => l.label)),
    [['one device', 'TP2'], ...TP_LINKS.map(() => ['one device', 'PP2', 'TP2', 'TP4'])],
  );
  for (const setup of setups)
    for (const layout of setup.layouts) {
      const plan = layout.plan(model);
      t.doesNotThrow(() => checkGivenPlan(plan, model), `${setup.label}: ${layout.label}`);
      const devices = new Set(plan.stages.flatMap((s) => s.tensor?.devices ?? [s.device]));
      t.equal(devices.size, layout.workers, `${setup.label}: ${layout.label} uses its workers`);
      const head = plan.stages.at(-1)!.tensor?.head;
      if (layout.label.startsWith('TP'))
        t.equal(head, setup.link?.head ?? 'split', `${setup.label}: ${layout.label}'s head`);
    }
});
