/** A PlanChoice over a synthesized model shaped like a made-up cluster profile, as a coordinator builds it. */
import { join } from 'node:path';
import type { ClusterProfile } from '@swarmbee/core';
import { SYNTH_PRESETS, synthesizeModel } from '@swarmbee/model';
import type { Test } from 'tap';
import { profileFor } from '../../src/cluster/deployment.js';
import { PlanChoice } from '../../src/cluster/plan-choice.js';
import { PlanMemory } from '../../src/cluster/plan-memory.js';
import type { PlanningOptions } from '../../src/cluster/planning.js';
import {
  DEFAULT_REPLAN_GAIN,
  DEFAULT_REPLAN_PAYBACK_MS,
  type ReplanPolicy,
} from '../../src/cluster/replan-policy.js';

export interface PlanChoiceFixture {
  plans: PlanChoice;
  /** What the PlanChoice logged, oldest first. */
  log: string[];
}

/**
 * A PlanChoice that plans from `profile` (restricted to the workers asked about; the even
 * planner, which needs none, gets none) over a tiny model with the profile's layer count.
 */
export async function planChoiceFixture(
  t: Test,
  profile: ClusterProfile,
  planning: PlanningOptions,
  policy: ReplanPolicy = { gain: DEFAULT_REPLAN_GAIN, paybackMs: DEFAULT_REPLAN_PAYBACK_MS },
): Promise<PlanChoiceFixture> {
  const dir = t.testdir();
  const model = await synthesizeModel({
    config: { ...SYNTH_PRESETS.tiny.config, nLayers: profile.model.nLayers },
    seed: 1,
    out: join(dir, 'm'),
  });
  const log: string[] = [];
  const profiled = planning.planner !== 'even';
  const plans = new PlanChoice({
    model,
    memory: new PlanMemory(join(dir, 'cache'), model.manifest.modelHash),
    planning: () => planning,
    profile: (names) => (profiled ? profileFor(profile, new Set(names)) : undefined),
    measure: async () => profile,
    policy,
    log: (line) => log.push(line),
  });
  return { plans, log };
}
