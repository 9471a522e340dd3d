/**
 * Why a request has no plan, in words a user can act on: what is short, and by how much.
 * Cheap checks run before any search so the common mistakes fail fast and clearly.
 */
import { PlanInfeasibleError } from '@swarmbee/core';
import type { CostModel } from './cost-model.js';
import type { Evaluation } from './plan-evaluation.js';
import { formatBytes } from './units.js';

export interface FeasibilityInput {
  pinFirst?: number;
  pinLast?: number;
  /** Fewest sequences any plan keeps KV for (smallest micro-batch × in-flight count). */
  minSequences: number;
  /**
   * Only single-device stages are planned (default true): a pinned device must then hold its
   * stage's layers whole. A group's leader holds a share, so with groups only the total is checked.
   */
  pipelineOnly?: boolean;
}

function kvNote(cost: CostModel, sequences: number): string {
  const s = sequences === 1 ? '1 sequence' : `${sequences} sequences`;
  const dtype = cost.workload.kvDtype === 'float16' ? 'fp16' : 'fp32';
  return `${dtype} KV cache for ${s} × ${cost.workload.contextTokens} tokens`;
}

/** Throws PlanInfeasibleError when no plan can exist, whatever the planner. */
export function checkFeasible(cost: CostModel, input: FeasibilityInput): void {
  const L = cost.nLayers;
  const { minSequences } = input;
  const pinned = (device: number, role: string, need: number, holds: string) => {
    const have = cost.devices[device]!.memoryBytes;
    if (need > have) {
      throw new PlanInfeasibleError(
        `pinned ${role} device ${cost.devices[device]!.name} has ${formatBytes(have)} but ${holds} ` +
          `needs at least ${formatBytes(need)}: short by ${formatBytes(need - have)}`,
      );
    }
  };
  const { pinFirst, pinLast } = input;
  if (input.pipelineOnly === false) {
    checkTotal(cost, minSequences);
    return;
  }
  if (pinFirst !== undefined && pinLast !== undefined && pinFirst !== pinLast && L < 2) {
    throw new PlanInfeasibleError(
      `pinning ${cost.devices[pinFirst]!.name} first and ${cost.devices[pinLast]!.name} last needs ` +
        `two stages, but ${cost.model.name} has a single layer`,
    );
  }
  if (pinFirst !== undefined && pinFirst === pinLast) {
    pinned(
      pinFirst,
      'first and last',
      cost.stageMemoryBytes(0, L, true, true, minSequences),
      `the whole model with ${kvNote(cost, minSequences)}`,
    );
  } else {
    if (pinFirst !== undefined) {
      pinned(
        pinFirst,
        'first',
        cost.stageMemoryBytes(0, 1, true, L === 1, minSequences),
        `the embedding plus layer 0 with ${kvNote(cost, minSequences)}`,
      );
    }
    if (pinLast !== undefined) {
      pinned(
        pinLast,
        'last',
        cost.stageMemoryBytes(L - 1, L, L === 1, true, minSequences),
        `the head plus layer ${L - 1} with ${kvNote(cost, minSequences)}`,
      );
    }
  }
  checkTotal(cost, minSequences);
}

/** Throws PlanInfeasibleError when all the devices together cannot hold the model. */
function checkTotal(cost: CostModel, minSequences: number): void {
  const need = cost.stageMemoryBytes(0, cost.nLayers, true, true, minSequences);
  const have = cost.devices.reduce((sum, d) => sum + d.memoryBytes, 0);
  if (need > have) {
    throw new PlanInfeasibleError(
      `${cost.model.name} needs ${formatBytes(need)} (weights, embedding, head and ` +
        `${kvNote(cost, minSequences)}) but the ${cost.devices.length} devices hold ` +
        `${formatBytes(have)} in total: short by ${formatBytes(need - have)}`,
    );
  }
}

/** The error for a search that found nothing although the totals fit. */
export function noPlanError(
  cost: CostModel,
  planner: string,
  closest?: Evaluation,
): PlanInfeasibleError {
  const total = cost.devices.reduce((sum, d) => sum + d.memoryBytes, 0);
  let detail = '';
  if (closest && !closest.feasible) {
    const worst = closest.stages.reduce(
      (w, s) => {
        const over = s.memoryBytes - cost.devices[s.device]!.memoryBytes;
        return over > w.over ? { over, stage: s } : w;
      },
      { over: Number.NEGATIVE_INFINITY, stage: closest.stages[0]! },
    );
    const s = worst.stage;
    detail =
      `; closest plan: layers [${s.layerStart}, ${s.layerEnd}) on ${cost.devices[s.device]!.name} ` +
      `need ${formatBytes(s.memoryBytes)} of ${formatBytes(cost.devices[s.device]!.memoryBytes)}, ` +
      `short by ${formatBytes(worst.over)}`;
  }
  return new PlanInfeasibleError(
    `planner ${planner} found no plan that fits: the ${cost.devices.length} devices hold ` +
      `${formatBytes(total)} in total, but no assignment of contiguous layer ranges ` +
      `(with ${kvNote(cost, 1)} or more per micro-batch) fits every device${detail}`,
  );
}
