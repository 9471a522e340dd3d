/**
 * The worker daemon's life cycle. Illegal transitions throw, so a bug shows
 * up where it happens rather than as a worker in an impossible state.
 *
 *   starting ─▶ joining ─▶ idle ─▶ loading ─▶ ready
 *                  ▲        │  ▲      │  │      │
 *                  └────────┴──┼──────┘  └─▶ idle (load failed)
 *                  (coordinator lost: rejoin) ◀─┘
 *   any but stopped ─▶ draining ─▶ stopped;  any ─▶ stopped
 */
import { InvalidArgumentError } from '@swarmbee/core';

export type WorkerState =
  | 'starting'
  | 'joining'
  | 'idle'
  | 'loading'
  | 'ready'
  | 'draining'
  | 'stopped';

const ALLOWED: Readonly<Record<WorkerState, readonly WorkerState[]>> = {
  starting: ['joining', 'stopped'],
  joining: ['idle', 'joining', 'draining', 'stopped'],
  idle: ['loading', 'joining', 'draining', 'stopped'],
  loading: ['ready', 'idle', 'loading', 'joining', 'draining', 'stopped'],
  ready: ['loading', 'idle', 'joining', 'draining', 'stopped'],
  draining: ['stopped'],
  stopped: [],
};

export class WorkerStateMachine {
  #state: WorkerState = 'starting';
  readonly #listeners: ((from: WorkerState, to: WorkerState) => void)[] = [];

  get state(): WorkerState {
    return this.#state;
  }

  onChange(listener: (from: WorkerState, to: WorkerState) => void): void {
    this.#listeners.push(listener);
  }

  to(next: WorkerState): void {
    const from = this.#state;
    if (!ALLOWED[from].includes(next))
      throw new InvalidArgumentError(`worker cannot go from ${from} to ${next}`);
    this.#state = next;
    for (const listener of this.#listeners) listener(from, next);
  }

  is(...states: WorkerState[]): boolean {
    return states.includes(this.#state);
  }
}
