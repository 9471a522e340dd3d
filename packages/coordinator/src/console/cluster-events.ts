/**
 * The console's live feed: changes of the cluster, per-stage rates and failover, as typed
 * events. For now they are derived from what the API already serves — the cluster's
 * description and the metrics registry — sampled once a second while someone listens;
 * this adapter is the one place to switch to the coordinator's lifecycle channels
 * (node:diagnostics_channel) once they exist, without changing the events' shape.
 */
import type { Metrics } from '../metrics.js';

/** How often the watch samples while someone listens, ms; also the fastest it may. */
export const DEFAULT_EVENT_INTERVAL_MS = 1000;
/** Rates (tokens/s, utilisation, bytes/s) are averaged over this much recent time, ms. */
export const RATE_WINDOW_MS = 5000;

/** One stage's recent work, from its worker's counters. */
export interface StageRates {
  stage: number;
  device: string;
  /** Share of the window the stage spent in forward passes, 0..1. */
  utilisation: number;
  /** Micro-batches waiting at the stage, now. */
  queueDepth: number;
  /** Mean forward pass in the window, ms; null when none ran. */
  forwardMs: number | null;
  /** Bytes sent downstream per second in the window. */
  bytesPerS: number;
  forwards: number;
}

export type FailoverKind = 'worker-joined' | 'worker-lost' | 'state' | 'replanned';

export type ClusterEvent =
  | { type: 'cluster'; at: number; cluster: Record<string, unknown> }
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

export interface ClusterWatchSources {
  /** The cluster as `GET /swarmbee/cluster` shows it. */
  cluster: () => Record<string, unknown>;
  metrics: Metrics;
}

/** Counters read from the metrics registry at one instant. */
interface Sample {
  at: number;
  tokens: number;
  gauges: Map<string, number>;
  stages: Map<string, { stage: number; device: string; values: Map<string, number> }>;
}

const STAGE_METRICS = [
  'swarmbee_stage_forward_seconds_total',
  'swarmbee_stage_forwards_total',
  'swarmbee_stage_queue_depth',
  'swarmbee_stage_bytes_sent_total',
];

/**
 * Samples the cluster every interval while it has listeners, and tells them what changed.
 * A listener added late first hears the cluster as it is and the last metrics.
 */
export class ClusterWatch {
  readonly #sources: ClusterWatchSources;
  readonly #intervalMs: number;
  readonly #listeners = new Set<(event: ClusterEvent) => void>();
  #timer?: NodeJS.Timeout;
  #sampling = false;
  #cluster?: { json: string; value: Record<string, unknown> };
  #samples: Sample[] = [];
  #lastMetrics?: MetricsEvent;

  constructor(sources: ClusterWatchSources, intervalMs = DEFAULT_EVENT_INTERVAL_MS) {
    this.#sources = sources;
    this.#intervalMs = Math.max(DEFAULT_EVENT_INTERVAL_MS, intervalMs);
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  /** Starts telling `listener` about the cluster; call the returned function to stop. */
  subscribe(listener: (event: ClusterEvent) => void): () => void {
    this.#listeners.add(listener);
    const json = JSON.stringify(this.#sources.cluster());
    const cluster = JSON.parse(json) as Record<string, unknown>;
    listener({ type: 'cluster', at: Date.now(), cluster });
    if (this.#lastMetrics) listener(this.#lastMetrics);
    if (!this.#timer) {
      this.#cluster = { json, value: cluster };
      this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
      this.#timer.unref();
      this.#tick();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size > 0) return;
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#samples = [];
      this.#lastMetrics = undefined;
    };
  }

  #emit(event: ClusterEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  #tick(): void {
    if (this.#sampling) return;
    this.#sampling = true;
    this.#checkCluster();
    sample(this.#sources.metrics)
      .then((now) => {
        if (!this.#timer) return;
        this.#samples.push(now);
        while (this.#samples.length > 2 && now.at - this.#samples[0]!.at > RATE_WINDOW_MS)
          this.#samples.shift();
        this.#lastMetrics = rates(this.#samples[0]!, now);
        this.#emit(this.#lastMetrics);
      })
      .catch(() => {})
      .finally(() => {
        this.#sampling = false;
      });
  }

  #checkCluster(): void {
    const json = JSON.stringify(this.#sources.cluster());
    const before = this.#cluster?.value;
    if (before && json === this.#cluster?.json) return;
    // A copy: the description may share arrays the coordinator goes on changing in place.
    const value = JSON.parse(json) as Record<string, unknown>;
    this.#cluster = { json, value };
    const at = Date.now();
    if (before) for (const change of failovers(before, value)) this.#emit({ at, ...change });
    this.#emit({ type: 'cluster', at, cluster: value });
  }
}

/** Failover events that explain the move from one cluster description to the next. */
export function failovers(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): { type: 'failover'; kind: FailoverKind; message: string }[] {
  const out: { type: 'failover'; kind: FailoverKind; message: string }[] = [];
  const event = (kind: FailoverKind, message: string) =>
    out.push({ type: 'failover', kind, message });
  const was = new Set(names(before.workers));
  const is = new Set(names(after.workers));
  const plan = before.plan as { stages?: unknown } | undefined;
  const running = new Set(
    list(plan?.stages)
      .map((s) => (s as { device?: unknown }).device)
      .filter(isString),
  );
  for (const name of was)
    if (!is.has(name))
      event(
        'worker-lost',
        `worker ${name} was lost${running.has(name) ? ' (it ran a stage)' : ''}`,
      );
  for (const name of is) if (!was.has(name)) event('worker-joined', `worker ${name} joined`);
  if (before.state !== after.state)
    event('state', `cluster ${String(before.state)} → ${String(after.state)}`);
  for (const r of list(after.recoveries).slice(list(before.recoveries).length)) {
    const { reason, workers, durationMs, replayed } = r as Record<string, unknown>;
    event(
      'replanned',
      `re-planned onto ${names(workers).join(', ')} in ${Math.round(Number(durationMs))} ms ` +
        `(${String(reason)}); replayed ${Number(replayed)} sequence${replayed === 1 ? '' : 's'}`,
    );
  }
  return out;
}

async function sample(metrics: Metrics): Promise<Sample> {
  const at = Date.now();
  const gauges = new Map<string, number>();
  const stages: Sample['stages'] = new Map();
  let tokens = 0;
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    if (metric.name === 'swarmbee_generated_tokens_total') tokens = metric.values[0]?.value ?? 0;
    else if (STAGE_METRICS.includes(metric.name))
      for (const { labels, value } of metric.values) {
        const key = `${labels.stage}/${labels.device}`;
        const entry = stages.get(key) ?? {
          stage: Number(labels.stage),
          device: String(labels.device),
          values: new Map<string, number>(),
        };
        entry.values.set(metric.name, value);
        stages.set(key, entry);
      }
    else if (metric.values.length === 1 && metric.name.startsWith('swarmbee_'))
      gauges.set(metric.name, metric.values[0]?.value ?? 0);
  }
  return { at, tokens, gauges, stages };
}

function rates(from: Sample, to: Sample): MetricsEvent {
  const seconds = Math.max(to.at - from.at, 1) / 1000;
  const stages: StageRates[] = [];
  for (const [key, now] of to.stages) {
    const then = from.stages.get(key)?.values;
    // A stage new in the window started from zero: its counters count from its loading.
    const delta = (name: string) =>
      Math.max(0, (now.values.get(name) ?? 0) - (then?.get(name) ?? 0));
    const forwards = delta('swarmbee_stage_forwards_total');
    const forwardS = delta('swarmbee_stage_forward_seconds_total');
    stages.push({
      stage: now.stage,
      device: now.device,
      utilisation: Math.min(1, forwardS / seconds),
      queueDepth: now.values.get('swarmbee_stage_queue_depth') ?? 0,
      forwardMs: forwards > 0 ? (forwardS * 1000) / forwards : null,
      bytesPerS: delta('swarmbee_stage_bytes_sent_total') / seconds,
      forwards: now.values.get('swarmbee_stage_forwards_total') ?? 0,
    });
  }
  stages.sort((a, b) => a.stage - b.stage);
  return {
    type: 'metrics',
    at: to.at,
    tokensPerS: Math.max(0, to.tokens - from.tokens) / seconds,
    activeSequences: to.gauges.get('swarmbee_active_sequences') ?? 0,
    queued: to.gauges.get('swarmbee_queue_depth') ?? 0,
    inFlight: to.gauges.get('swarmbee_inflight_microbatches') ?? 0,
    stages,
  };
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function names(value: unknown): string[] {
  return list(value).filter(isString);
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}
