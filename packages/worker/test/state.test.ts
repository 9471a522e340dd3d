/**
 * The daemons' checked state machines, exhaustively: every (from, to) pair of the worker's
 * and the coordinator's tables either moves and is heard by listeners, or throws
 * SWARMBEE_ERR_ILLEGAL_STATE naming both states and leaves the state as it was.
 */
import { CoordinatorStateMachine } from '@swarmbee/coordinator';
import { IllegalStateError, type StateMachine } from '@swarmbee/core';
import t from 'tap';
import { WorkerStateMachine } from '../src/state.js';

/** A machine of `make()` brought to `state` along allowed transitions (breadth first). */
function reach<S extends string>(make: () => StateMachine<S>, state: S): StateMachine<S> {
  const start = make();
  const paths = new Map<S, S[]>([[start.state, []]]);
  const queue: S[] = [start.state];
  while (queue.length > 0) {
    const from = queue.shift()!;
    for (const to of start.transitions[from]) {
      if (paths.has(to)) continue;
      paths.set(to, [...paths.get(from)!, to]);
      queue.push(to);
    }
  }
  const path = paths.get(state);
  if (!path) throw new Error(`${state} cannot be reached`);
  const machine = make();
  for (const step of path) machine.to(step);
  return machine;
}

for (const [what, make] of [
  ['worker', () => new WorkerStateMachine()],
  ['coordinator', () => new CoordinatorStateMachine()],
] as const) {
  t.test(`${what}: every transition is allowed or throws ILLEGAL_STATE`, (t) => {
    const states = Object.keys(make().transitions) as string[];
    for (const from of states) {
      for (const to of states) {
        const machine = reach(make as () => StateMachine<string>, from);
        const heard: string[] = [];
        machine.onChange((a, b) => heard.push(`${a}->${b}`));
        if (machine.transitions[from]!.includes(to)) {
          machine.to(to);
          t.equal(machine.state, to);
          t.same(heard, [`${from}->${to}`], `${from} -> ${to} is heard`);
        } else {
          t.throws(
            () => machine.to(to),
            {
              code: IllegalStateError.code,
              name: 'IllegalStateError',
              message: `${what} cannot go from ${from} to ${to}`,
            },
            `${from} -> ${to} is illegal`,
          );
          t.equal(machine.state, from, 'and the state stays');
          t.same(heard, []);
        }
      }
    }
    t.same(make().transitions.stopped, [], 'stopped is final');
    t.end();
  });
}
