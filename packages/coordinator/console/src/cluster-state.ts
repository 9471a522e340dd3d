/**
 * What the console knows about the cluster, kept from `GET /swarmbee/events`: the last
 * description, recent metrics, and failover events as they happened. Views re-render on
 * each change through {@link useClusterState}.
 */
import { useEffect, useState } from 'preact/hooks';
import type {
  ClusterEvent as FeedEvent,
  MetricsEvent,
  StageRates,
} from '../../src/console/feed-types.js';
import { readEvents } from './api.js';

export interface Device {
  name: string;
  arch?: string;
  platform?: string;
  cpus?: number;
  memoryBytes?: number;
  freeMemoryBytes?: number;
  ortVersion?: string;
  executionProvider?: string;
}

export interface PlannedStage {
  index: number;
  device: string;
  layerStart: number;
  layerEnd: number;
  memoryBytes?: number;
  deviceMemoryBytes?: number;
  computeMs?: number;
}

export interface PlanView {
  nLayers: number;
  stages: PlannedStage[];
  planner?: string;
  objective?: string;
  tpotMs?: number;
  ttftMs?: number;
  tokensPerS?: number;
  bottleneck?: string;
  microBatchSize?: number;
  microBatchesInFlight?: number;
  hops?: { from: string; to: string; bytes: number; transferMs: number }[];
}

export interface Recovery {
  reason: string;
  at: number;
  workers: string[];
  durationMs: number;
  replayed: number;
}

export interface ClusterView {
  state?: string;
  model?: string;
  workers?: string[];
  devices?: Device[];
  plan?: PlanView;
  recoveries?: Recovery[];
  measured?: {
    createdAt: string;
    devices: {
      name: string;
      memoryBytes: number;
      layerDecodeMs: number | null;
      estimate: boolean;
    }[];
    links: { from: string; to: string; rttMs: number; bandwidthBytesPerS: number }[];
  };
}

/** The feed's events, typed by the server's own module (`src/console/feed-types.ts`). */
type ClusterEvent = FeedEvent<ClusterView>;
export type FailoverEvent = Extract<ClusterEvent, { type: 'failover' }>;
export type { MetricsEvent, StageRates };

/** Metrics kept for the charts: two minutes at one a second. */
const HISTORY_LENGTH = 120;
/** Failover events kept for the list. */
const FAILOVER_LENGTH = 200;
/** Wait before reconnecting a stream that broke, ms. */
const RECONNECT_MS = 2000;

export class ClusterState {
  cluster: ClusterView = {};
  metrics: MetricsEvent[] = [];
  failovers: FailoverEvent[] = [];
  /** Every worker seen since the page opened: one no longer connected is shown as lost. */
  readonly known = new Set<string>();
  connection: 'connecting' | 'live' | 'lost' = 'connecting';
  error = '';
  readonly #listeners = new Set<() => void>();
  #abort?: AbortController;

  /** Calls `listener` after every change; the returned function stops it. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Follows the event stream until {@link stop}, reconnecting after a break. */
  start(onUnauthorized: () => void): void {
    this.stop();
    const abort = new AbortController();
    this.#abort = abort;
    const follow = async () => {
      while (!abort.signal.aborted) {
        this.connection = 'connecting';
        this.#changed();
        try {
          await readEvents('/swarmbee/events', { signal: abort.signal }, (data) => {
            this.connection = 'live';
            this.#take(data as ClusterEvent);
          });
        } catch (error) {
          if (abort.signal.aborted) return;
          if ((error as { status?: number }).status === 401) return onUnauthorized();
          this.error = (error as Error).message;
        }
        this.connection = 'lost';
        this.#changed();
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
      }
    };
    void follow();
  }

  stop(): void {
    this.#abort?.abort();
  }

  #take(event: ClusterEvent): void {
    if (event.type === 'cluster') {
      if (!this.cluster.state) this.#history(event.cluster.recoveries ?? []);
      this.cluster = event.cluster;
      for (const name of event.cluster.workers ?? []) this.known.add(name);
    } else if (event.type === 'metrics') {
      this.metrics.push(event);
      if (this.metrics.length > HISTORY_LENGTH) this.metrics.shift();
    } else if (event.type === 'failover') {
      this.failovers.unshift(event);
      this.failovers.length = Math.min(this.failovers.length, FAILOVER_LENGTH);
    }
    this.#changed();
  }

  /** Re-plans that happened before the page opened, from the first description. */
  #history(recoveries: Recovery[]): void {
    for (const r of recoveries)
      this.failovers.unshift({
        type: 'failover',
        at: r.at,
        kind: 'replanned',
        message: `re-planned onto ${r.workers.join(', ')} in ${Math.round(r.durationMs)} ms (${r.reason}); replayed ${r.replayed}`,
      });
  }
}

/** Re-renders the calling component whenever `state` changes. */
export function useClusterState(state: ClusterState): void {
  const [, setVersion] = useState(0);
  useEffect(() => state.onChange(() => setVersion((n) => n + 1)), [state]);
}
