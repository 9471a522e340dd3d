/** The scheduler's own step time: a running mean per row count, reported once it has enough samples. */
import t from 'tap';
import { MIN_STEP_SAMPLES, StepCostMeter } from '../src/scheduler/step-cost.js';

t.test('means by row count, only counts with enough samples, ascending', async (t) => {
  const meter = new StepCostMeter();
  t.equal(meter.timing(), undefined, 'nothing before any step');
  for (let i = 0; i < MIN_STEP_SAMPLES; i++) {
    meter.record(4, 2 + (i % 2)); // mean 2.5
    meter.record(1, 1);
  }
  meter.record(8, 100); // one sample: not reported
  t.same(meter.timing(), { batchSizes: [1, 4], stepMs: [1, 2.5] });
});

t.test('recent steps weigh more once many are in', async (t) => {
  const meter = new StepCostMeter();
  for (let i = 0; i < 1000; i++) meter.record(2, 1);
  for (let i = 0; i < 200; i++) meter.record(2, 3);
  const ms = meter.timing()!.stepMs[0]!;
  t.ok(ms > 2.9, `a slowdown shows within a few hundred steps (${ms.toFixed(2)} ms)`);
});
