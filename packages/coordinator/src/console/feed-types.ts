/**
 * The console's live feed as it crosses the wire (`GET /swarmbee/events`): the events the
 * coordinator's ClusterWatch sends and the browser console reads. No imports, so the
 * console's browser build can share these types with the server.
 */
/**
 * One stage of the serving plan and its recent work, from its worker's counters. Every
 * stage of the plan has a row; the counters' fields are null until its worker reported
 * (the coordinator polls them every `statsIntervalMs`, so for a moment after a re-plan).
 */
export interface StageRates {
  stage: number;
  device: string;
  /** Share of the window the stage spent in forward passes, 0..1. */
  utilisation: number | null;
  /** Micro-batches waiting at the stage, now. */
  queueDepth: number | null;
  /** Mean forward pass in the window, ms; null when none ran. */
  forwardMs: number | null;
  /** Bytes sent downstream per second in the window. */
  bytesPerS: number | null;
  /** Forward passes since the stage was loaded. */
  forwards: number | null;
}

export type FailoverKind = 'worker-joined' | 'worker-lost' | 'state' | 'replanned';

/** One event of the feed; `Cluster` is the description's shape as its reader types it. */
export type ClusterEvent<Cluster = Record<string, unknown>> =
  | { type: 'cluster'; at: number; cluster: Cluster }
  | {
      type: 'metrics';
      at: number;
      tokensPerS: number;
      activeSequences: number;
      queued: number;
      inFlight: number;
      stages: StageRates[];
    }
  | { type: 'failover'; at: number; kind: FailoverKind; message: string };

export type MetricsEvent = Extract<ClusterEvent, { type: 'metrics' }>;
