import type { WireError } from '@swarmbee/core';
import type { TrainingStage } from './training-stage.js';

/** The stage methods a training thread answers. */
export type TrainingThreadOp = Exclude<keyof TrainingStage, 'info'>;

/** Main thread -> training thread: a method call with its arguments. */
export interface TrainingThreadRequest {
  id: number;
  op: TrainingThreadOp;
  args: unknown[];
}

/** Training thread -> main thread; id 0 answers the start-up (sessions created or failed). */
export type TrainingThreadReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WireError };
