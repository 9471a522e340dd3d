/**
 * The worker daemon's life cycle. Illegal transitions throw IllegalStateError
 * (SWARMBEE_ERR_ILLEGAL_STATE), so a bug shows up where it happens rather than as
 * a worker in an impossible state.
 *
 *   starting ─▶ joining ─▶ idle ─▶ loading ─▶ ready
 *                  ▲        │  ▲      │  │      │
 *                  └────────┴──┼──────┘  └─▶ idle (load failed)
 *                  (coordinator lost: rejoin) ◀─┘
 *   any but stopped ─▶ draining ─▶ stopped;  any ─▶ stopped
 */
import { StateMachine, type StateTransitions } from '@swarmbee/core';

export type WorkerState =
  | 'starting'
  | 'joining'
  | 'idle'
  | 'loading'
  | 'ready'
  | 'draining'
  | 'stopped';

export const WORKER_TRANSITIONS: StateTransitions<WorkerState> = {
  starting: ['joining', 'stopped'],
  joining: ['idle', 'joining', 'draining', 'stopped'],
  idle: ['loading', 'joining', 'draining', 'stopped'],
  loading: ['ready', 'idle', 'loading', 'joining', 'draining', 'stopped'],
  ready: ['loading', 'idle', 'joining', 'draining', 'stopped'],
  draining: ['stopped'],
  stopped: [],
};

/** The worker's machine; an illegal transition throws IllegalStateError. */
export class WorkerStateMachine extends StateMachine<WorkerState> {
  constructor() {
    super('worker', 'starting', WORKER_TRANSITIONS);
  }
}
