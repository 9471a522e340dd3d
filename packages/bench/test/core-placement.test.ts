/** Where local-cluster workers are pinned when their speeds are emulated. */
import t from 'tap';
import { coresBySpeed } from '../src/core-placement.js';

t.test(
  'coresBySpeed gives the busiest workers their own cores and packs the slow ones',
  async (t) => {
    const place = (speeds: number[], cores: number) =>
      speeds.map((_, i) => coresBySpeed(speeds)(i, cores));
    t.same(place([1, 0.5, 0.25], 2), [0, 1, 1], 'the planner bench on 2 cores');
    t.same(place([0.25, 1, 0.5], 2), [1, 0, 1], 'by speed, not by index');
    t.same(place([1, 0.5, 0.25], 4), [0, 1, 2], 'enough cores: one each');
    t.same(place([1, 1, 1, 1], 2), [0, 1, 0, 1], 'equal speeds alternate');
    t.same(place([0.5, 0.5, 0.5], 1), [0, 0, 0], 'one core holds everyone');
  },
);
