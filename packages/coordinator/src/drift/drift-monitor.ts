/**
 * The closed loop around a deployed plan: every stats poll, each stage's engine time per
 * forward is compared with the cost model's prediction for the micro-batches actually sent
 * (drift-estimate.ts). When stages stay more than `threshold` off for `windows` polls in a
 * row, the same way each time, and their pooled time over those polls (at least
 * MIN_DRIFT_POOLED_FORWARDS forwards: a slow stage's streak runs longer) is off too, their
 * devices' profiles are corrected by that pooled ratio, and the plan is re-planned
 * when the corrected profile predicts a plan better than the running one by the re-plan gain —
 * at most once per `minIntervalMs`. The re-plan goes through the coordinator's own
 * reconfiguration (replaying every live sequence), so no stream loses or changes a token.
 * Each decision is a `swarmbee:coordinator:drift` diagnostics event, a log line, a /metrics
 * gauge and an entry in /swarmbee/cluster.
 */
import { channel } from 'node:diagnostics_channel';
import { type ClusterProfile, InvalidArgumentError, type Plan } from '@swarmbee/core';
import type { MicroBatch } from '@swarmbee/engine';
import type { PlanResult } from '@swarmbee/planner';
import { judgeReplan, type ReplanPolicy, stageKey } from '../cluster/replan-policy.js';
import type { StageMetrics } from '../metrics.js';
import {
  correctedProfile,
  emptyWork,
  recordWork,
  type StageDrift,
  type StageWindow,
  stageDrift,
  type WindowWork,
} from './drift-estimate.js';

/** Diagnostics channel of drift decisions; payload {@link DriftEvent}. */
export const DRIFT_DIAGNOSTIC = 'swarmbee:coordinator:drift';
const driftChannel = channel(DRIFT_DIAGNOSTIC);

export interface DriftOptions {
  /** Share off the prediction that counts as drift, e.g. 0.15 = 15 %; 0 turns the loop off. Default 0.15. */
  threshold?: number;
  /** Consecutive polls a stage must stay off before anything is done (hysteresis). Default 2. */
  windows?: number;
  /** Least time between two drift re-plans, ms. Default 30000. */
  minIntervalMs?: number;
}

/** Throws InvalidArgumentError naming the first drift option out of range (by its CLI flag). */
export function checkDriftOptions(drift: DriftOptions): void {
  if (drift.threshold !== undefined && !(drift.threshold >= 0 && Number.isFinite(drift.threshold)))
    throw new InvalidArgumentError(
      `--drift-threshold must be a fraction of at least 0, got ${drift.threshold}`,
    );
  if (drift.windows !== undefined && !(Number.isInteger(drift.windows) && drift.windows >= 1))
    throw new InvalidArgumentError(
      `--drift-windows must be an integer of at least 1, got ${drift.windows}`,
    );
  if (drift.minIntervalMs !== undefined && !(drift.minIntervalMs >= 0))
    throw new InvalidArgumentError(
      `--drift-min-interval-ms must be at least 0, got ${drift.minIntervalMs}`,
    );
}

export const DEFAULT_DRIFT_THRESHOLD = 0.15;
export const DEFAULT_DRIFT_WINDOWS = 2;
export const DEFAULT_DRIFT_MIN_INTERVAL_MS = 30_000;
/**
 * Fewest forwards a stage must run in a poll window to be judged: fewer are noise. A slow
 * stage (a throttled one above all) runs few forwards per poll, so this stays small.
 */
export const MIN_DRIFT_FORWARDS = 4;
/**
 * Fewest forwards a streak of drifted windows must pool before a device is corrected: one
 * poll's few forwards of a slow stage are noisy, so its streak runs over more polls.
 */
export const MIN_DRIFT_POOLED_FORWARDS = 16;
/** Share of the busiest stage's time per forward a stage needs for its drift to count. */
export const MIN_DRIFT_SHARE = 0.25;
/** Shortest predicted forward judged, ms: below it thread hand-offs and timers dominate. */
export const MIN_DRIFT_PREDICTED_MS = 2;

export interface DriftEvent {
  at: number;
  /** `replanned`: a better plan was deployed; `corrected`: the profile was corrected, the plan kept. */
  action: 'replanned' | 'corrected';
  stages: StageDrift[];
  /** Predicted gain of the new plan over the running one, both on the corrected profile. */
  gain: number;
  reason: string;
}

/** What the monitor needs from the coordinator: small hooks, no state of its own there. */
export interface DriftHooks {
  /** The serving plan, its profile and planning workload, or undefined when none serves. */
  serving(): { plan: Plan | PlanResult; profile: ClusterProfile } | undefined;
  /**
   * The plan the planner would choose on `profile`, with its predicted gain over the serving
   * one and the time its redeploy would stall the streams moving weights (ms), given the
   * stages the devices have served before (`held`, by stageKey).
   */
  candidate(
    profile: ClusterProfile,
    held: ReadonlySet<string>,
  ): { plan: Plan | PlanResult; gain: number; redeployMs: number } | undefined;
  /** Replaces the profile the coordinator plans from; with `replan`, re-plans and redeploys. */
  apply(profile: ClusterProfile, replan: boolean, reason: string): Promise<void>;
  /** The coordinator's rule for re-plans (gain and payback), the same as for a worker joining. */
  policy: ReplanPolicy;
  /**
   * Measures these devices' compute again (they serve no stage) and returns the serving profile
   * with their fresh timings. Without it, a device the loop planned around stays as slow as
   * it was last seen.
   */
  remeasure?: (devices: readonly string[]) => Promise<ClusterProfile>;
  log: (line: string) => void;
}

export class DriftMonitor {
  #threshold = DEFAULT_DRIFT_THRESHOLD;
  #windows = DEFAULT_DRIFT_WINDOWS;
  #minIntervalMs = DEFAULT_DRIFT_MIN_INTERVAL_MS;
  /** Stages (stageKey) the devices have served under any plan seen: their shards are cached. */
  readonly #held = new Set<string>();
  readonly #hooks: DriftHooks;
  #work: WindowWork = emptyWork();
  #previous = new Map<string, StageMetrics>();
  #plan: Plan | PlanResult | undefined;
  /** The drifted stages' windows in a row so far, by device. */
  #streak: Map<string, StageDrift[]> = new Map();
  #lastReplanAt = Number.NEGATIVE_INFINITY;
  /**
   * Devices the loop found slower than their profile: their layer time as first profiled, ms,
   * and when they were last judged. One that then serves no stage has no live metrics to show
   * it recovered, so it is measured again (see #recheck).
   */
  readonly #slowed = new Map<string, { layerMs: number; at: number }>();
  #busy = false;
  readonly events: DriftEvent[] = [];
  /** The last judged window, stage by stage. */
  latest: StageDrift[] = [];
  replans = 0;

  constructor(options: DriftOptions, hooks: DriftHooks) {
    this.#hooks = hooks;
    this.configure(options);
  }

  /**
   * Changes the loop's settings while serving (e.g. turns it on or off); an option left out
   * keeps its current value. The window in progress is judged afresh.
   */
  configure(options: DriftOptions): void {
    checkDriftOptions(options);
    this.#threshold = options.threshold ?? this.#threshold;
    this.#windows = options.windows ?? this.#windows;
    this.#minIntervalMs = options.minIntervalMs ?? this.#minIntervalMs;
    this.#streak.clear();
    this.#plan = undefined;
  }

  get enabled(): boolean {
    return this.#threshold > 0;
  }

  /** A micro-batch the scheduler sent into the serving pipeline. */
  recordBatch(batch: MicroBatch): void {
    recordWork(this.#work, batch.rows);
  }

  /** One poll of the stages' counters: judge the window since the previous one. */
  observe(metrics: readonly StageMetrics[]): void {
    if (!this.enabled) return;
    const serving = this.#hooks.serving();
    const work = this.#work;
    this.#work = emptyWork();
    const previous = this.#previous;
    this.#previous = new Map(metrics.map((m) => [`${m.stage}/${m.device}`, m]));
    if (!serving || serving.plan !== this.#plan) {
      // A new plan: its first window starts now; its devices will hold its stages' shards.
      this.#plan = serving?.plan;
      const stages = serving?.plan.stages ?? [];
      for (const [k, s] of stages.entries()) this.#held.add(stageKey(s, k, stages.length));
      this.#streak.clear();
      this.latest = [];
      return;
    }
    const windows: StageWindow[] = metrics.flatMap((m) => {
      const before = previous.get(`${m.stage}/${m.device}`);
      if (!before || m.busyMsTotal <= 0) return [];
      return [
        {
          stage: m.stage,
          device: m.device,
          forwards: m.forwards - before.forwards,
          busyMs: m.busyMsTotal - before.busyMsTotal,
        },
      ];
    });
    const judged = stageDrift(
      serving.profile,
      workloadOf(serving.plan),
      serving.plan,
      windows,
      work,
    ).filter((d) => d.forwards >= MIN_DRIFT_FORWARDS && d.predictedMs >= MIN_DRIFT_PREDICTED_MS);
    this.latest = judged;
    // A stage far below the busiest one changes no plan: its noise is not drift.
    const busiestMs = Math.max(...judged.map((d) => Math.max(d.measuredMs, d.predictedMs)));
    const drifted = judged.filter(
      (d) =>
        Math.abs(d.ratio - 1) > this.#threshold &&
        Math.max(d.measuredMs, d.predictedMs) >= MIN_DRIFT_SHARE * busiestMs,
    );
    const streak = new Map<string, StageDrift[]>();
    for (const d of drifted) {
      // The streak counts windows off the same way: slower, or faster, every time.
      const before = (this.#streak.get(d.device) ?? []).filter((w) => w.ratio > 1 === d.ratio > 1);
      streak.set(d.device, [...before, d]);
    }
    this.#streak = streak;
    const factors = new Map<string, number>();
    for (const [device, windows] of streak) {
      // Every window is off the same way by more than the threshold, so their pool is too.
      if (
        windows.length >= this.#windows &&
        windows.reduce((n, w) => n + w.forwards, 0) >= MIN_DRIFT_POOLED_FORWARDS
      )
        factors.set(device, pooledRatio(windows));
    }
    if (this.#busy || performance.now() - this.#lastReplanAt < this.#minIntervalMs) return;
    if (factors.size === 0) {
      this.#recheckIdle(serving.plan);
      return;
    }
    this.#streak.clear();
    this.#busy = true;
    void this.#act(serving.profile, factors, drifted).finally(() => {
      this.#busy = false;
    });
  }

  async #act(
    profile: ClusterProfile,
    factors: Map<string, number>,
    stages: StageDrift[],
  ): Promise<void> {
    const now = performance.now();
    for (const [device, factor] of factors) {
      if (factor <= 1) this.#slowed.delete(device);
      else
        this.#slowed.set(device, {
          layerMs: this.#slowed.get(device)?.layerMs ?? layerMsOf(profile, device),
          at: now,
        });
    }
    const corrected = correctedProfile(profile, factors);
    const described = [...factors].map(([device, f]) => `${device} ×${f.toFixed(2)}`).join(', ');
    await this.#decide(corrected, `${described} against the profile`, stages);
  }

  /**
   * Slowed devices that serve no stage, judged no sooner than `minIntervalMs` ago, are
   * measured again: a board that cooled down is taken back when a plan with it pays.
   */
  #recheckIdle(plan: Plan | PlanResult): void {
    const remeasure = this.#hooks.remeasure;
    if (!remeasure) return;
    const now = performance.now();
    const serves = new Set(plan.stages.map((s) => s.device));
    const due = [...this.#slowed]
      .filter(([device, seen]) => !serves.has(device) && now - seen.at >= this.#minIntervalMs)
      .map(([device]) => device);
    if (due.length === 0) return;
    for (const device of due) this.#slowed.get(device)!.at = now;
    this.#busy = true;
    void this.#recheck(remeasure, due).finally(() => {
      this.#busy = false;
    });
  }

  async #recheck(
    remeasure: (devices: readonly string[]) => Promise<ClusterProfile>,
    devices: readonly string[],
  ): Promise<void> {
    let fresh: ClusterProfile;
    try {
      fresh = await remeasure(devices);
    } catch (error) {
      this.#hooks.log(
        `drift: measuring ${devices.join(', ')} again failed: ${(error as Error).message}`,
      );
      return;
    }
    const described = devices
      .map((device) => {
        const first = this.#slowed.get(device)!.layerMs;
        const ratio = layerMsOf(fresh, device) / first;
        // Back within the threshold of its first profile: no longer watched.
        if (ratio <= 1 + this.#threshold) this.#slowed.delete(device);
        return `${device} ×${ratio.toFixed(2)}`;
      })
      .join(', ');
    await this.#decide(fresh, `${described} of its first profile, measured again while idle`, []);
  }

  /** Plans on `profile`, re-plans when that pays (ReplanPolicy), and adopts the profile. */
  async #decide(profile: ClusterProfile, described: string, stages: StageDrift[]): Promise<void> {
    const corrected = profile;
    let candidate: { plan: Plan | PlanResult; gain: number; redeployMs: number } | undefined;
    try {
      candidate = this.#hooks.candidate(corrected, this.#held);
    } catch (error) {
      this.#hooks.log(`drift (${described}): no plan on the profile: ${(error as Error).message}`);
    }
    const gain = candidate?.gain ?? 0;
    const verdict = candidate
      ? judgeReplan(candidate, this.#hooks.policy)
      : judgeReplan({ plan: { stages: [] }, gain: 0, redeployMs: 0 }, this.#hooks.policy);
    const replan = verdict.replan;
    const reason = `drift: ${described}; ${verdict.why}`;
    const event: DriftEvent = {
      at: Date.now(),
      action: replan ? 'replanned' : 'corrected',
      stages,
      gain,
      reason,
    };
    this.events.push(event);
    if (this.events.length > 32) this.events.shift();
    this.#hooks.log(reason);
    if (driftChannel.hasSubscribers) driftChannel.publish(event);
    if (replan) {
      this.#lastReplanAt = performance.now();
      this.replans++;
    }
    await this.#hooks.apply(corrected, replan, reason);
  }

  /** What /swarmbee/cluster shows. */
  status(): Record<string, unknown> {
    return {
      enabled: this.enabled,
      threshold: this.#threshold,
      minIntervalMs: this.#minIntervalMs,
      paybackMs: this.#hooks.policy.paybackMs,
      latest: this.latest,
      replans: this.replans,
      events: this.events,
    };
  }
}

/** A device's decode time of one layer at one row, ms (the first grid point). */
function layerMsOf(profile: ClusterProfile, device: string): number {
  const timing = profile.devices.find((d) => d.name === device)?.timing;
  return timing?.layers[0]?.decode.ms[0]?.[0] ?? Number.NaN;
}

function workloadOf(plan: Plan | PlanResult) {
  return 'workload' in plan ? (plan as PlanResult).workload : undefined;
}

/** Measured / predicted over all the windows' forwards together: a busy window weighs more. */
function pooledRatio(windows: readonly StageDrift[]): number {
  let measured = 0;
  let predicted = 0;
  for (const w of windows) {
    measured += w.measuredMs * w.forwards;
    predicted += w.predictedMs * w.forwards;
  }
  return measured / predicted;
}
