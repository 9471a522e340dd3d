/**
 * A daemon's log, written from its lifecycle events (node:diagnostics_channel): the
 * coordinator and the worker publish what happens, and subscribers turn it into the lines
 * an operator reads (or, with --log-format json, into event lines a tool reads):
 * coordinator-log.ts and worker-log.ts, apart so that a worker process does not load the
 * coordinator's package, nor the coordinator the worker's.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { DaemonLog } from './log.js';

/** The line each event of a map prints, or undefined for none. */
export type Lines<M> = { [N in keyof M]: (event: M[N]) => string | undefined };

/** Subscribes `log` to every event `lines` names; returns the function that unsubscribes it. */
export function subscribeAll<M>(
  lines: Lines<M>,
  log: DaemonLog,
  accept: (event: M[keyof M]) => boolean = () => true,
): () => void {
  const handlers = Object.entries(lines).map(([name, line]) => {
    const handler = (message: unknown) => {
      const event = message as M[keyof M];
      if (!accept(event)) return;
      log.event(name, event as object, (line as (e: M[keyof M]) => string | undefined)(event));
    };
    subscribe(name, handler);
    return () => unsubscribe(name, handler);
  });
  return () => {
    for (const off of handlers) off();
  };
}
