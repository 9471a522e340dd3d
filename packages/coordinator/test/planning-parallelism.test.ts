/**
 * The coordinator's planning with --parallelism: hybrid plans a tensor-parallel group where
 * it pays for one stream (slow devices, fast links), pipeline never does, and a parallelism
 * the chosen planner cannot plan is refused before anything starts.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import t from 'tap';
import { flatModel } from '../../planner/test/helpers/fixtures.js';
import { checkPlanning, choosePlan } from '../src/cluster/planning.js';
import { syntheticProfile } from './helpers/cluster-profile.js';

const LAYERS = 8;
const profile = syntheticProfile({
  // 20 ms a layer: the compute a group halves dwarfs 16 sums over 1 ms links.
  devices: { a: 20, b: 20 },
  model: {
    ...flatModel({
      nLayers: LAYERS,
      dim: 64,
      vocabSize: 512,
      maxSeqLen: 512,
      layers: Array.from({ length: LAYERS }, () => ({ paramBytes: 1e6, kvBytesPerToken: 512 })),
      embeddingBytes: 1e5,
      headBytes: 1e5,
    }),
    tensorShape: { nHeads: 8, nKvHeads: 4, headDim: 8, hiddenDim: 172 },
  },
});
const model = { manifest: { modelHash: 'm', config: { nLayers: LAYERS } } } as never;

t.test('hybrid plans a group for one stream on slow devices; pipeline never does', async (t) => {
  const plan = (parallelism: 'pipeline' | 'hybrid') =>
    choosePlan(model, ['a', 'b'], { objective: 'latency', parallelism }, profile);
  const hybrid = plan('hybrid');
  const group = hybrid.stages.find((s) => s.tensor);
  t.ok(group, `a tensor-parallel stage: ${JSON.stringify(hybrid.stages)}`);
  t.same([...(group?.tensor?.devices ?? [])].sort(), ['a', 'b']);
  t.notOk(
    plan('pipeline').stages.some((s) => s.tensor),
    'pipeline: one worker per stage',
  );
});

t.test('BAD OPTION - a parallelism the planner cannot plan', async (t) => {
  t.throws(() => checkPlanning({ parallelism: 'hybrid', planner: 'even' }), {
    code: InvalidArgumentError.code,
    message: /--parallelism hybrid plans tensor-parallel groups with the dp planner/,
  });
  t.throws(() => checkPlanning({ parallelism: 'diagonal' as never }), {
    code: InvalidArgumentError.code,
    message: /unknown parallelism "diagonal"/,
  });
  t.doesNotThrow(() => checkPlanning({ parallelism: 'tensor', planner: 'auto' }));
  t.doesNotThrow(() => checkPlanning({}));
});
