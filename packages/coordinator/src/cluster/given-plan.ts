/**
 * A plan the user gives the coordinator to deploy (`swarmbee coordinator --plan FILE`): a
 * JSON `Plan`, checked against the model before anything starts — its hash, its layers
 * covered once and in order, every device named once, each tensor-parallel group's split
 * one `splitTensors` can make, over weights its members can serve. It is deployed whenever every device it names is connected;
 * without one of them the coordinator plans as its planner says (and a worker that
 * returns brings the given plan back).
 */
import { readFile } from 'node:fs/promises';
import {
  asSwarmBeeError,
  type KvDtype,
  type LlamaConfig,
  type Plan,
  PlanInvalidError,
  type StagePlan,
  stageDevices,
} from '@swarmbee/core';
import { checkSliceShard, type ModelDir, splitTensors } from '@swarmbee/model';

/** Reads and checks the plan at `path` for `model`; throws PlanInvalidError naming what is wrong. */
export async function readGivenPlan(path: string, model: ModelDir): Promise<Plan> {
  let plan: unknown;
  try {
    plan = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new PlanInvalidError(
      `--plan ${path} is not a readable JSON file: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  checkGivenPlan(plan as Plan, model);
  return plan as Plan;
}

/** How the coordinator builds its shards, as far as tensor-parallel members care. */
export interface ServedShards {
  /** KV-cache element type (members keep float32). Default float32. */
  kvDtype?: KvDtype;
  /** LoRA adapters are merged into the shards or served beside them (members serve base weights only). */
  adapter?: boolean;
}

/** Throws PlanInvalidError naming the first thing about `plan` that does not fit `model`. */
export function checkGivenPlan(plan: Plan, model: ModelDir, served: ServedShards = {}): void {
  const { manifest } = model;
  const fail = (why: string): never => {
    throw new PlanInvalidError(`the plan does not fit ${manifest.name}: ${why}`);
  };
  if (typeof plan !== 'object' || plan === null || !Array.isArray(plan.stages))
    fail('it is not a plan (an object with `modelHash`, `nLayers` and `stages`)');
  if (plan.modelHash !== manifest.modelHash)
    fail(`it is for model ${plan.modelHash}, not ${manifest.modelHash}`);
  const { nLayers } = manifest.config;
  if (plan.nLayers !== nLayers) fail(`it has ${plan.nLayers} layers, the model ${nLayers}`);
  if (plan.stages.length === 0) fail('it has no stages');
  const seen = new Set<string>();
  let next = 0;
  for (const [i, stage] of plan.stages.entries()) {
    const at = `stage ${i}`;
    if (stage.index !== i) fail(`${at} has index ${stage.index}`);
    if (stage.layerStart !== next)
      fail(`${at} starts at layer ${stage.layerStart}, where layer ${next} comes next`);
    if (!(Number.isInteger(stage.layerEnd) && stage.layerEnd > stage.layerStart))
      fail(`${at} ends at layer ${stage.layerEnd}, not after its start ${stage.layerStart}`);
    next = stage.layerEnd;
    if (typeof stage.device !== 'string' || stage.device.length === 0)
      fail(`${at} names no device`);
    if (stage.tensor) checkGroup(stage, at, model, served, fail);
    for (const device of stageDevices(stage)) {
      if (seen.has(device)) fail(`device ${device} runs more than one stage or member`);
      seen.add(device);
    }
  }
  if (next !== nLayers) fail(`its stages end at layer ${next}, the model has ${nLayers}`);
}

function checkGroup(
  stage: StagePlan,
  at: string,
  model: ModelDir,
  served: ServedShards,
  fail: (why: string) => never,
): void {
  if (model.manifest.architecture === 'onnx-decoder')
    fail('an imported ONNX decoder cannot be split by tensor parallelism');
  if (served.adapter)
    fail(
      `${at} is a tensor group, and its members cannot serve an adapter (--adapter, --merge-adapter)`,
    );
  const config = model.manifest.config as LlamaConfig;
  const { devices, weights, allReduce, head } = stage.tensor!;
  if (!Array.isArray(devices) || devices.length < 2)
    fail(`${at}'s tensor group needs 2 or more devices`);
  if (devices[0] !== stage.device)
    fail(`${at}'s device ${stage.device} must lead its tensor group (devices[0] is ${devices[0]})`);
  if (!Array.isArray(weights) || weights.length !== devices.length)
    fail(`${at}'s tensor group has ${devices.length} devices and ${weights?.length} weights`);
  if (allReduce !== 'star' && allReduce !== 'ring')
    fail(`${at}'s all-reduce ${JSON.stringify(allReduce)} is not star or ring`);
  if (head !== undefined && head !== 'leader' && head !== 'split')
    fail(`${at}'s head ${JSON.stringify(head)} is not leader or split`);
  try {
    const [slice] = splitTensors(config, {
      weights,
      ...(head === 'split' ? { splitVocab: true } : {}),
    });
    // What members cannot serve (quantized weights, an fp16 cache, post-norms), refused now.
    checkSliceShard(model, { start: stage.layerStart, end: stage.layerEnd }, slice!, {
      kvDtype: served.kvDtype ?? 'float32',
    });
  } catch (error) {
    fail(
      `${at} cannot be split by weights ${weights.join(':')}: ${asSwarmBeeError(error).message}`,
    );
  }
}

/** Whether every device `plan` names is among `names` (connected). */
export function devicesConnected(plan: Plan, names: readonly string[]): boolean {
  return plan.stages.every((s) => stageDevices(s).every((d) => names.includes(d)));
}
