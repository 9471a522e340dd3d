/**
 * `GET /swarmbee/events`: the cluster's live feed (cluster-events.ts) as server-sent
 * events, guarded like every /swarmbee route. Each stream lasts until its client goes
 * away or the server closes (then it ends with `data: [DONE]`); a client that stops
 * reading is cut off once its unread events pass a bound, so nobody's backlog grows
 * without end; and there are at most so many streams at once.
 */
import { QueueFullError } from '@swarmbee/core';
import type { FastifyInstance } from 'fastify';
import { EventStream } from '../api/sse.js';
import { ClusterWatch, type ClusterWatchSources } from './cluster-events.js';

/** Event streams served at once; one more is refused with QUEUE_FULL (429). */
export const DEFAULT_MAX_EVENT_STREAMS = 16;
/** Unread bytes a stream may hold for a client before it is ended. */
export const MAX_UNREAD_EVENT_BYTES = 1024 * 1024;

export interface EventRouteOptions extends ClusterWatchSources {
  maxStreams?: number;
  intervalMs?: number;
}

const watches = new WeakMap<FastifyInstance, ClusterWatch>();

/** The watch behind an API's event streams (its listener count is the open streams). */
export function clusterWatchOf(app: FastifyInstance): ClusterWatch | undefined {
  return watches.get(app);
}

export function eventRoutes(app: FastifyInstance, options: EventRouteOptions): void {
  const watch = new ClusterWatch(options, options.intervalMs);
  watches.set(app, watch);
  const maxStreams = options.maxStreams ?? DEFAULT_MAX_EVENT_STREAMS;
  const open = new Set<EventStream>();
  // Fastify's close waits for open responses: end the streams first.
  app.addHook('preClose', async () => {
    for (const stream of open) stream.end();
  });

  app.get('/swarmbee/events', { config: { access: 'guarded' } }, async (_request, reply) => {
    if (open.size >= maxStreams)
      throw new QueueFullError(`${maxStreams} event streams are open already; retry later`);
    reply.hijack();
    const stream = new EventStream(reply.raw);
    open.add(stream);
    let unsubscribe = (): void => {};
    const close = () => {
      unsubscribe();
      open.delete(stream);
    };
    reply.raw.once('close', close);
    unsubscribe = watch.subscribe((event) => {
      if (reply.raw.writableLength > MAX_UNREAD_EVENT_BYTES) {
        stream.end();
        close();
      } else stream.send(event);
    });
    if (!stream.open) close();
    return reply;
  });
}
