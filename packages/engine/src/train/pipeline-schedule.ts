/**
 * The order in which each stage of a training pipeline runs its micro-batches' forward
 * and backward passes during one optimizer step.
 *
 * - `1f1b` (PipeDream-Flush): stage s of K first runs min(K − s − 1, M) forward passes,
 *   then alternates one forward and one backward, then drains the remaining backward
 *   passes. A stage holds at most K − s micro-batches between their two passes.
 * - `gpipe`: every forward pass, then every backward pass. Same bubble, but a stage
 *   holds all M micro-batches at once.
 *
 * Pure: a schedule is data, so an in-process driver and a distributed one run the same.
 */
import { InvalidArgumentError } from '@swarmbee/core';

export type PipelineScheduleKind = '1f1b' | 'gpipe';
export const PIPELINE_SCHEDULES: readonly PipelineScheduleKind[] = ['1f1b', 'gpipe'];
export const DEFAULT_PIPELINE_SCHEDULE: PipelineScheduleKind = '1f1b';

export interface ScheduleOp {
  pass: 'forward' | 'backward';
  /** Index of the micro-batch within the step. */
  microBatch: number;
}

/** Each stage's operations, in order. */
export function pipelineSchedule(
  kind: PipelineScheduleKind,
  stages: number,
  microBatches: number,
): ScheduleOp[][] {
  if (!PIPELINE_SCHEDULES.includes(kind))
    throw new InvalidArgumentError(
      `schedule must be one of ${PIPELINE_SCHEDULES.join(', ')}, got ${kind}`,
    );
  if (
    !Number.isInteger(stages) ||
    stages < 1 ||
    !Number.isInteger(microBatches) ||
    microBatches < 1
  )
    throw new InvalidArgumentError(
      `a schedule needs at least one stage and one micro-batch, got ${stages} and ${microBatches}`,
    );
  const forward = (microBatch: number): ScheduleOp => ({ pass: 'forward', microBatch });
  const backward = (microBatch: number): ScheduleOp => ({ pass: 'backward', microBatch });
  return Array.from({ length: stages }, (_, s) => {
    const ops: ScheduleOp[] = [];
    if (kind === 'gpipe') {
      for (let i = 0; i < microBatches; i++) ops.push(forward(i));
      for (let i = 0; i < microBatches; i++) ops.push(backward(i));
      return ops;
    }
    const warmup = Math.min(stages - s - 1, microBatches);
    for (let i = 0; i < warmup; i++) ops.push(forward(i));
    for (let i = warmup; i < microBatches; i++) ops.push(forward(i), backward(i - warmup));
    for (let i = microBatches - warmup; i < microBatches; i++) ops.push(backward(i));
    return ops;
  });
}
