import type { WireError } from '@swarmbee/core';
import type { StageBatch } from './stage-engine.js';

/** Main thread -> stage thread. */
export type ThreadRequest =
  | { id: number; op: 'forward'; batch: StageBatch }
  | { id: number; op: 'release'; seqIds: string[] }
  | { id: number; op: 'stats' }
  | { id: number; op: 'close' };

/** Stage thread -> main thread; id 0 answers the start-up (session created or failed). */
export type ThreadReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WireError };
