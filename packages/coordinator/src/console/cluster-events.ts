/**
 * The console's live feed: changes of the cluster, per-stage rates and failover, as typed
 * events, derived from what the API already serves — the cluster's description and the
 * metrics registry. Metrics are sampled once a second while someone listens; the
 * description is read then too, and at once whenever the coordinator publishes a lifecycle
 * event (node:diagnostics_channel, events.ts): a worker joined or lost, a re-plan, a
 * deployment, a replay, a change of state. The channels are process-wide and their events
 * name no coordinator, so an event only says "look now": what is told is read from this
 * coordinator's own description, and a process running several coordinators (tests, a
 * local cluster) never shows one's failover in another's feed.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { COORDINATOR_EVENTS } from '../events.js';
import type { Metrics } from '../metrics.js';
import type { ClusterEvent, FailoverKind, MetricsEvent, StageRates } from './feed-types.js';

/** How often the watch samples while someone listens, ms; also the fastest it may. */
export const DEFAULT_EVENT_INTERVAL_MS = 1000;
/** Rates (tokens/s, utilisation, bytes/s) are averaged over this much recent time, ms. */
export const RATE_WINDOW_MS = 5000;

/** Lifecycle events after which the description is read at once, not at the next tick. */
const LIFECYCLE_CHANNELS = [
  COORDINATOR_EVENTS.state,
  COORDINATOR_EVENTS.workerJoined,
  COORDINATOR_EVENTS.workerLost,
  COORDINATOR_EVENTS.replanning,
  COORDINATOR_EVENTS.deployed,
  COORDINATOR_EVENTS.replayed,
];

export interface ClusterWatchSources {
  /** The cluster as `GET /swarmbee/cluster` shows it. */
  cluster: () => Record<string, unknown>;
  metrics: Metrics;
}

/** Counters read from the metrics registry at one instant. */
interface Sample {
  at: number;
  /** The plan's stages (`index/device` …) then: a stage's counters restart with each deployment. */
  plan: string;
  /** Since when (epoch ms) the watch has seen that plan. */
  planSince: number;
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
  #plan = { key: '', since: 0, stages: [] as { stage: number; device: string }[] };
  /**
   * The devices of the last plan that served: the coordinator drops its plan as soon as a
   * stage's worker is lost, often before the description stops listing that worker.
   */
  #served = new Set<string>();
  #samples: Sample[] = [];
  #lastMetrics?: MetricsEvent;
  /** Set while the lifecycle channels are subscribed: reads the description soon. */
  #onLifecycle?: () => void;

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
      this.#notePlan(cluster, Date.now());
      this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
      this.#timer.unref();
      this.#followLifecycle();
      this.#tick();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size > 0) return;
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#unfollowLifecycle();
      this.#samples = [];
      this.#lastMetrics = undefined;
    };
  }

  /**
   * A lifecycle event is published from inside the change it reports (a state machine's
   * transition, a deployment half set up): the description is read once that work is
   * done, on the next turn of the event loop, and once for a burst of events.
   */
  #followLifecycle(): void {
    let pending = false;
    const onLifecycle = () => {
      if (pending) return;
      pending = true;
      setImmediate(() => {
        pending = false;
        if (this.#timer) this.#checkCluster();
      });
    };
    this.#onLifecycle = onLifecycle;
    for (const name of LIFECYCLE_CHANNELS) subscribe(name, onLifecycle);
  }

  #unfollowLifecycle(): void {
    const onLifecycle = this.#onLifecycle;
    if (!onLifecycle) return;
    for (const name of LIFECYCLE_CHANNELS) unsubscribe(name, onLifecycle);
    this.#onLifecycle = undefined;
  }

  /** Remembers the plan's stages, and since when, when they differ from the last seen. */
  #notePlan(cluster: Record<string, unknown>, at: number): void {
    const stages = planStages(cluster);
    const key = stages.map((s) => `${s.stage}/${s.device}`).join(' ');
    if (key !== this.#plan.key) this.#plan = { key, since: at, stages };
    if (stages.length > 0) this.#served = new Set(stages.map((s) => s.device));
  }

  #emit(event: ClusterEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  #tick(): void {
    if (this.#sampling) return;
    this.#checkCluster();
    this.#sampling = true;
    const plan = this.#plan;
    sample(this.#sources.metrics, plan)
      .then((now) => {
        if (!this.#timer) return;
        this.#samples.push(now);
        while (this.#samples.length > 2 && now.at - this.#samples[0]!.at > RATE_WINDOW_MS)
          this.#samples.shift();
        this.#lastMetrics = rates(this.#samples[0]!, now, plan.stages);
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
    const served = this.#served;
    this.#notePlan(value, at);
    if (before)
      for (const change of failovers(before, value, served)) this.#emit({ at, ...change });
    this.#emit({ type: 'cluster', at, cluster: value });
  }
}

/**
 * Failover events that explain the move from one cluster description to the next;
 * `served` are the devices of the last plan that served (by default `before`'s).
 */
export function failovers(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  served: ReadonlySet<string> = planDevices(before),
): { type: 'failover'; kind: FailoverKind; message: string }[] {
  const out: { type: 'failover'; kind: FailoverKind; message: string }[] = [];
  const event = (kind: FailoverKind, message: string) =>
    out.push({ type: 'failover', kind, message });
  const was = new Set(names(before.workers));
  const is = new Set(names(after.workers));
  for (const name of was)
    if (!is.has(name))
      event('worker-lost', `worker ${name} was lost${served.has(name) ? ' (it ran a stage)' : ''}`);
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

/** The devices the plan the description shows runs on. */
function planDevices(cluster: Record<string, unknown>): Set<string> {
  const plan = cluster.plan as { stages?: unknown } | undefined;
  return new Set(
    list(plan?.stages)
      .map((s) => (s as { device?: unknown }).device)
      .filter(isString),
  );
}

/** The stages of the plan the description shows, in order; none without a plan. */
function planStages(cluster: Record<string, unknown>): { stage: number; device: string }[] {
  const plan = cluster.plan as { stages?: unknown } | undefined;
  return list(plan?.stages).flatMap((s) => {
    const { index, device } = s as { index?: unknown; device?: unknown };
    return typeof index === 'number' && isString(device) ? [{ stage: index, device }] : [];
  });
}

async function sample(metrics: Metrics, plan: { key: string; since: number }): Promise<Sample> {
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
  return { at, plan: plan.key, planSince: plan.since, tokens, gauges, stages };
}

/**
 * Rates over the window from `from` to `to`, one row per stage of `plan` (or, without a
 * plan, per stage that reported). A stage's counters count from its loading: a stage of a
 * deployment newer than `from` is measured from zero since that deployment was seen, and
 * a counter that went down (its worker reloaded the stage) from zero as well.
 */
function rates(
  from: Sample,
  to: Sample,
  plan: readonly { stage: number; device: string }[],
): MetricsEvent {
  const rows = plan.length > 0 ? plan : [...to.stages.values()];
  const stages = rows.map(({ stage, device }): StageRates => {
    const now = to.stages.get(`${stage}/${device}`)?.values;
    if (!now)
      return {
        stage,
        device,
        utilisation: null,
        queueDepth: null,
        forwardMs: null,
        bytesPerS: null,
        forwards: null,
      };
    const samePlan = from.plan === to.plan;
    const then = samePlan ? from.stages.get(`${stage}/${device}`)?.values : undefined;
    const since = samePlan ? from.at : Math.max(from.at, to.planSince);
    const seconds = Math.max(to.at - since, 1) / 1000;
    const delta = (name: string) => {
      const value = now.get(name) ?? 0;
      const before = then?.get(name) ?? 0;
      return value >= before ? value - before : value;
    };
    const forwards = delta('swarmbee_stage_forwards_total');
    const forwardS = delta('swarmbee_stage_forward_seconds_total');
    return {
      stage,
      device,
      utilisation: Math.min(1, forwardS / seconds),
      queueDepth: now.get('swarmbee_stage_queue_depth') ?? 0,
      forwardMs: forwards > 0 ? (forwardS * 1000) / forwards : null,
      bytesPerS: delta('swarmbee_stage_bytes_sent_total') / seconds,
      forwards: now.get('swarmbee_stage_forwards_total') ?? 0,
    };
  });
  stages.sort((a, b) => a.stage - b.stage);
  const seconds = Math.max(to.at - from.at, 1) / 1000;
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
