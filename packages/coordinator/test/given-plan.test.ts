/**
 * A plan given to the coordinator (`--plan`): checked against the model (and how the
 * coordinator builds shards) before anything starts, each refusal a PLAN_INVALID naming what
 * is wrong; deployed while every device it
 * names is connected, the planner's plan otherwise, and restored when they are back.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Plan, PlanInvalidError, type StagePlan } from '@swarmbee/core';
import { SYNTH_PRESETS, synthesizeModel } from '@swarmbee/model';
import t from 'tap';
import { checkGivenPlan, readGivenPlan } from '../src/cluster/given-plan.js';
import { samePlan } from '../src/cluster/plan-memory.js';
import { syntheticProfile } from './helpers/cluster-profile.js';
import { planChoiceFixture } from './helpers/plan-choice.js';

// The tiny preset: stories260K's shape (5 layers, 4 KV heads, 172 feed-forward columns).
const model = await synthesizeModel({
  config: SYNTH_PRESETS.tiny.config,
  seed: 1,
  out: join(t.testdir(), 'm'),
});
const { modelHash } = model.manifest;

const tp = (devices: string[], weights = devices.map(() => 1)) => ({
  devices,
  weights,
  allReduce: 'star' as const,
});
/** One worker on [0, 2), then a TP2 group on [2, 5). */
const good = (): Plan => ({
  modelHash,
  nLayers: 5,
  stages: [
    { index: 0, device: 'a', layerStart: 0, layerEnd: 2 },
    { index: 1, device: 'b', layerStart: 2, layerEnd: 5, tensor: tp(['b', 'c']) },
  ],
});

t.test('a pipeline of one worker and a TP2 group fits the model', async (t) => {
  t.doesNotThrow(() => checkGivenPlan(good(), model));
  const uneven = {
    modelHash,
    nLayers: 5,
    stages: [stageOf(0, 0, 5, tp(['a', 'b', 'c'], [2, 1, 1]))],
  };
  t.doesNotThrow(() => checkGivenPlan(uneven, model), 'TP3 2:1:1 over 4 KV heads');
});

function stageOf(
  index: number,
  start: number,
  end: number,
  tensor?: StagePlan['tensor'],
): StagePlan {
  return {
    index,
    device: tensor?.devices[0] ?? 'a',
    layerStart: start,
    layerEnd: end,
    ...(tensor ? { tensor } : {}),
  };
}

t.test('BAD PLAN - each refusal is PLAN_INVALID and names what is wrong', async (t) => {
  const cases: [string, (p: Plan) => void, RegExp][] = [
    ['another model', (p) => (p.modelHash = 'f'.repeat(64)), /is for model f+, not/],
    ['a layer count', (p) => (p.nLayers = 6), /6 layers, the model 5/],
    ['a gap', (p) => (p.stages[1]!.layerStart = 3), /stage 1 starts at layer 3, where layer 2/],
    ['layers left over', (p) => (p.stages[1]!.layerEnd = 4), /end at layer 4, the model has 5/],
    ['an index', (p) => (p.stages[1]!.index = 3), /stage 1 has index 3/],
    [
      'a device twice',
      (p) => (p.stages[1]!.tensor!.devices = ['b', 'a']),
      /must lead|device a runs more/,
    ],
    ['a member twice', (p) => (p.stages[0]!.device = 'c'), /device c runs more than one/],
    [
      'a leader not first',
      (p) => (p.stages[1]!.device = 'c'),
      /device c must lead its tensor group/,
    ],
    ['weights short', (p) => (p.stages[1]!.tensor!.weights = [1]), /2 devices and 1 weights/],
    [
      'an unknown all-reduce',
      (p) => ((p.stages[1]!.tensor as { allReduce: string }).allReduce = 'tree'),
      /all-reduce "tree" is not star or ring/,
    ],
    [
      'an unknown head placement',
      (p) => ((p.stages[1]!.tensor as { head?: string }).head = 'middle'),
      /head "middle" is not leader or split/,
    ],
    [
      'more members than KV heads',
      (p) => {
        p.stages[1]!.tensor = tp(['b', 'c', 'd', 'e', 'f']);
      },
      /cannot be split by weights 1:1:1:1:1: cannot split 4 KV heads across 5 members/,
    ],
    ['no stages', (p) => (p.stages = []), /it has no stages/],
  ];
  for (const [name, spoil, why] of cases) {
    const plan = good();
    spoil(plan);
    t.throws(
      () => checkGivenPlan(plan, model),
      { code: PlanInvalidError.code, message: why },
      name,
    );
  }
  t.throws(
    () => checkGivenPlan(good(), model, { kvDtype: 'float16' }),
    { code: PlanInvalidError.code, message: /stage 1 .*members keep a float32 KV cache/ },
    'an fp16 cache (--kv-dtype float16)',
  );
  t.throws(
    () => checkGivenPlan(good(), model, { adapter: true }),
    {
      code: PlanInvalidError.code,
      message: /stage 1 is a tensor group, .*cannot serve an adapter/,
    },
    'an adapter',
  );
  t.doesNotThrow(
    () => checkGivenPlan({ ...good(), stages: [stageOf(0, 0, 5)] }, model, { adapter: true }),
    'an adapter for a plan without groups',
  );
  const file = join(t.testdir(), 'bad.json');
  await writeFile(file, '{"stages": [');
  await t.rejects(readGivenPlan(file, model), {
    code: PlanInvalidError.code,
    message: /not a readable JSON/,
  });
});

t.test(
  "the given plan is deployed while its devices are connected, else the planner's",
  async (t) => {
    const given = good();
    const { plans, log } = await planChoiceFixture(
      t,
      syntheticProfile({ devices: { a: 1, b: 1, c: 1 } }),
      {
        planner: 'even',
      },
    );
    (plans.options as { given?: Plan }).given = given;
    t.equal(await plans.choose(['a', 'b', 'c'], true), given, 'all connected: the given plan');
    const without = await plans.choose(['a', 'b'], true);
    t.same(
      without.stages.map((s) => [s.device, s.tensor]),
      [
        ['a', undefined],
        ['b', undefined],
      ],
      'c lost: an even plan over the others',
    );
    const back = await plans.decide(
      { plan: without, candidates: ['a', 'b'] },
      ['a', 'b', 'c'],
      'c joined',
    );
    t.equal(back, given, 'c back: the given plan again');
    t.match(log.at(-1), /every device of the given plan is connected/);
    t.equal(
      await plans.decide({ plan: given, candidates: ['a', 'b'] }, ['a', 'b', 'c'], 'c joined'),
      undefined,
      'already serving it: kept',
    );
    plans.refused({ worker: 'c', neededBytes: 2e9, capacityBytes: 1e9 });
    t.not(
      await plans.choose(['a', 'b', 'c'], true),
      given,
      'c refused its part for memory: planned',
    );
    plans.forget('c');
    t.equal(await plans.choose(['a', 'b', 'c'], true), given, 'c joined again: the given plan');
    const split = good();
    split.stages[1]!.tensor!.weights = [2, 1];
    t.notOk(samePlan(given, split), 'plans that split a group otherwise are not the same');
  },
);
