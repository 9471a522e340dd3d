/**
 * A daemon's life cycle as a checked state machine: every state names the states it may
 * go to, and any other transition throws {@link IllegalStateError}, so a bug shows up
 * where it happens rather than as a daemon in an impossible state. The worker and the
 * coordinator each declare their table; listeners hear every change (the daemons publish
 * them as lifecycle events).
 */
import { registerErrors, SwarmBeeError } from './errors.js';

/** A daemon was asked to go from one state to another its life cycle does not allow (a bug). */
export class IllegalStateError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_ILLEGAL_STATE';
}

registerErrors(IllegalStateError);

export type StateTransitions<S extends string> = Readonly<Record<S, readonly S[]>>;

export class StateMachine<S extends string> {
  #state: S;
  readonly #listeners: ((from: S, to: S) => void)[] = [];

  /** `what` names the daemon in errors ("worker", "coordinator"). */
  constructor(
    readonly what: string,
    initial: S,
    readonly transitions: StateTransitions<S>,
  ) {
    this.#state = initial;
  }

  get state(): S {
    return this.#state;
  }

  onChange(listener: (from: S, to: S) => void): void {
    this.#listeners.push(listener);
  }

  /** Whether the machine may go from its state to `next`. */
  can(next: S): boolean {
    return this.transitions[this.#state].includes(next);
  }

  /** Goes to `next`, or throws IllegalStateError naming both states. */
  to(next: S): void {
    const from = this.#state;
    if (!this.can(next))
      throw new IllegalStateError(`${this.what} cannot go from ${from} to ${next}`);
    this.#state = next;
    for (const listener of this.#listeners) listener(from, next);
  }

  is(...states: S[]): boolean {
    return states.includes(this.#state);
  }
}
