/**
 * The parallel benchmark's planning scenarios, calibrated to a core measured in the same run:
 * a core twice as fast as the fitted one halves one device's predicted time, and the fixed
 * CPU costs of a segment run and an all-reduce part scale with it.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import t from 'tap';
import { CostModel } from '../src/cost-model.js';
import {
  BENCH_CORE_MS_PER_TOKEN,
  findScenario,
  scenarioCluster,
  scenarioTensorCosts,
} from '../src/scenarios.js';

function oneDeviceMs(coreMsPerToken?: number): number {
  const calibration = coreMsPerToken === undefined ? {} : { coreMsPerToken };
  const id = 'tp-x2-1gbit';
  const cost = new CostModel(
    scenarioCluster(id, undefined, calibration),
    {},
    scenarioTensorCosts(id, calibration),
  );
  return cost.evaluate([{ device: 0, layerStart: 0, layerEnd: cost.nLayers }], 1, 1).tpotNs / 1e6;
}

t.test('a calibrated core scales the devices and the fixed costs', async (t) => {
  const fitted = oneDeviceMs();
  t.equal(oneDeviceMs(BENCH_CORE_MS_PER_TOKEN), fitted, 'calibrated to the fitted core: as fitted');
  const twice = oneDeviceMs(BENCH_CORE_MS_PER_TOKEN / 2);
  t.ok(
    Math.abs(twice / fitted - 0.5) < 0.05,
    `a core twice as fast: ${twice.toFixed(1)} of ${fitted.toFixed(1)} ms`,
  );
  const costs = scenarioTensorCosts('tp-x2-1gbit', { coreMsPerToken: BENCH_CORE_MS_PER_TOKEN / 2 });
  const own = findScenario('tp-x2-1gbit').tensorCosts;
  t.equal(costs.segmentRunMs, own.segmentRunMs / 2);
  t.equal(costs.allReducePartMs, own.allReducePartMs / 2);
  t.same(scenarioTensorCosts('tp-x2-1gbit'), own);
  t.throws(() => scenarioTensorCosts('tp-x2-1gbit', { coreMsPerToken: 0 }), InvalidArgumentError);
});
