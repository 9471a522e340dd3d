/**
 * The coordinator's life cycle, checked like the worker's: an illegal transition throws
 * IllegalStateError (SWARMBEE_ERR_ILLEGAL_STATE).
 *
 *   waiting ─▶ deploying ─▶ ready ─▶ recovering ─▶ ready
 *      ▲           │                     │
 *      └───────────┴─────────────────────┘  (no plan could be deployed)
 *   any ─▶ stopped
 */
import { StateMachine, type StateTransitions } from '@swarmbee/core';

/** `waiting` for workers, `deploying` the first plan, `ready`, `recovering` (re-planning with requests held), `stopped`. */
export type CoordinatorState = 'waiting' | 'deploying' | 'ready' | 'recovering' | 'stopped';

export const COORDINATOR_TRANSITIONS: StateTransitions<CoordinatorState> = {
  waiting: ['deploying', 'stopped'],
  deploying: ['ready', 'waiting', 'stopped'],
  ready: ['recovering', 'stopped'],
  recovering: ['ready', 'waiting', 'stopped'],
  stopped: [],
};

export class CoordinatorStateMachine extends StateMachine<CoordinatorState> {
  constructor() {
    super('coordinator', 'waiting', COORDINATOR_TRANSITIONS);
  }
}
