/**
 * Device emulation for benchmarks and tests: a slower board (or one that throttles) played
 * by this machine. `DeviceEmulation` holds the speed — the share of this machine's speed the
 * emulated device has, in (0, 1] — and may change it at any time (thermal throttling, a power
 * mode); `EmulatedStage` wraps a StageEngine from outside and stretches each forward pass to
 * what the slower device would take: after it, it waits without using the CPU until 1 / speed
 * × the pass's own time has gone by.
 *
 * - The pass's own time is its wall time (basis `wall`, the default), or with basis `cpu` its
 *   process's CPU time when that is less: a core shared with another emulated device (or any
 *   other work) stretches the wall time, which a device of its own would not see. `cpu` suits
 *   passes of milliseconds on one intra-op thread (a core's worth of work); it does not stretch
 *   what a pass waits for without computing (the thread hop), so for passes of a fraction of a
 *   millisecond, where that wait is most of the pass, `wall` is the faithful one.
 * - Timers wait whole milliseconds, and late: each wait settles what the previous ones over- or
 *   under-waited, so the idle time over a run is exact rather than every pass rounding up
 *   (which made a one-layer pass ~1 ms slower than its share of a whole stage and biased
 *   profiles summed layer by layer).
 * - Forwards run one at a time, each starting when the previous one's emulated time is over,
 *   as on a real device that is still busy.
 *
 * A member of a tensor-parallel group is paced segment by segment instead (`paceSegments`, in
 * its stage thread): stretching its whole forward would stretch the waits for the group's
 * sums too, which a slower device does not slow down.
 *
 * Production engines never see it: only the worker's emulation option (the CLI's
 * `--speed-factor`) wraps them.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError } from '@swarmbee/core';
import type {
  StageBatch,
  StageEngine,
  StageInfo,
  StageOutput,
  StageStats,
} from './stage-engine.js';

/** Most over-waiting (ms) a later wait is shortened by: about one timer tick. */
const MAX_CREDIT_MS = 1;
/** Most timers one pass's idle wait takes (a timer that fires early is followed by one more). */
const MAX_WAIT_TURNS = 3;

/** What an emulated pass's own time is: its wall time, or its CPU time when that is less. */
export type SpeedBasis = 'wall' | 'cpu';

/** Checks an emulated device speed: a share of this machine's speed, in (0, 1]. */
export function checkSpeedFactor(speed: number): number {
  if (!(speed > 0 && speed <= 1))
    throw new InvalidArgumentError(`speed factor must be in (0, 1], got ${speed}`);
  return speed;
}

/** The speed of an emulated device, shared by every stage engine it wraps; may change mid-run. */
export class DeviceEmulation {
  #speed: number;
  readonly #listeners = new Set<(speed: number) => void>();

  /** @param basis what a pass's own time is (see the module's comment). Default `wall`. */
  constructor(
    speed = 1,
    readonly basis: SpeedBasis = 'wall',
  ) {
    this.#speed = checkSpeedFactor(speed);
  }

  get speed(): number {
    return this.#speed;
  }

  /** Changes the emulated speed; forwards that start afterwards run at the new one. */
  setSpeed(speed: number): void {
    this.#speed = checkSpeedFactor(speed);
    for (const listener of this.#listeners) listener(this.#speed);
  }

  /** Calls `listener` on every speed change; returns the function that stops it. */
  onChange(listener: (speed: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Names the emulation in cache keys and logs: profiles taken at one speed are not another's. */
  get label(): string {
    return `speed${this.#speed}${this.basis === 'cpu' ? '-cpu' : ''}`;
  }

  wrap(engine: StageEngine): StageEngine {
    return new EmulatedStage(engine, this);
  }

  /** The speed now, as plain data a stage thread can take (later changes do not reach it). */
  snapshot(): SegmentEmulation {
    return { speed: this.#speed, basis: this.basis };
  }
}

/** A tensor-parallel member's emulated device: its speed and what a segment's own time is. */
export interface SegmentEmulation {
  /** Share of this machine's speed, in (0, 1]. */
  speed: number;
  basis: SpeedBasis;
}

/** Runs one segment of a member's forward; the default runs it as it comes. */
export type SegmentPacer = <R>(run: () => Promise<R>) => Promise<R>;

/** Segments run at this machine's speed. */
export const unpaced: SegmentPacer = (run) => run();

/**
 * Paces a tensor-parallel member's segment runs as on a device `speed` times as fast: after
 * each run the stage thread blocks (it has nothing else to do) until 1 / speed × the run's own
 * time has passed — its wall time, or with basis `cpu` its own thread's CPU time when that is
 * less (Linux's per-thread schedstat; the process's CPU time where that is missing), so members
 * sharing this machine's cores are not charged each other's time. Only the segments stretch:
 * the waits for the group's sums between them do not. For a stage thread only.
 */
export function paceSegments(emulation: SegmentEmulation): SegmentPacer {
  const speed = checkSpeedFactor(emulation.speed);
  if (speed === 1) return unpaced;
  const parked = new Int32Array(new SharedArrayBuffer(4));
  const cpuNow = emulation.basis === 'cpu' ? threadCpuClock() : undefined;
  return async (run) => {
    const cpuBefore = cpuNow?.();
    const begun = performance.now();
    const result = await run();
    const wallMs = performance.now() - begun;
    const ownMs = cpuNow ? Math.min(wallMs, cpuNow() - (cpuBefore as number)) : wallMs;
    const idleMs = ownMs / speed - wallMs;
    if (idleMs > 0) Atomics.wait(parked, 0, 0, idleMs);
    return result;
  };
}

/** This thread's CPU time so far, ms: a clock to read before and after a run. */
function threadCpuClock(): () => number {
  const schedstat = '/proc/thread-self/schedstat';
  try {
    readFileSync(schedstat, 'utf8');
    // The first field is the nanoseconds this thread has run on a CPU.
    return () => Number.parseInt(readFileSync(schedstat, 'utf8'), 10) / 1e6;
  } catch {
    return () => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1000;
    };
  }
}

/** A StageEngine run as on a device `emulation.speed` times as fast as this machine. */
export class EmulatedStage implements StageEngine {
  readonly #inner: StageEngine;
  readonly #emulation: DeviceEmulation;
  /** The previous forward, emulated time included: the next one starts after it. */
  #busy: Promise<unknown> = Promise.resolve();
  #idleMsTotal = 0;
  /** Idle time still owed (ms): negative when the last wait overshot, never below one tick's worth. */
  #owedMs = 0;

  constructor(inner: StageEngine, emulation: DeviceEmulation) {
    this.#inner = inner;
    this.#emulation = emulation;
  }

  get info(): StageInfo {
    return this.#inner.info;
  }

  forward(batch: StageBatch): Promise<StageOutput> {
    const run = this.#busy.then(() => this.#forward(batch));
    this.#busy = run.catch(() => {});
    return run;
  }

  async #forward(batch: StageBatch): Promise<StageOutput> {
    // The whole pass as the caller sees it (thread hop included) is what a slower device
    // stretches; with the cpu basis, by CPU time, as this machine runs it without neighbours
    // (other emulated devices sharing its cores stretch its wall time, not its CPU time).
    const cpuBefore = this.#emulation.basis === 'cpu' ? process.cpuUsage() : undefined;
    const begun = performance.now();
    const output = await this.#inner.forward(batch);
    const wallMs = performance.now() - begun;
    let aloneMs = wallMs;
    if (cpuBefore) {
      const cpu = process.cpuUsage(cpuBefore);
      aloneMs = Math.min(wallMs, (cpu.user + cpu.system) / 1000);
    }
    const idleMs = aloneMs / this.#emulation.speed - wallMs;
    if (idleMs <= 0) return output;
    this.#owedMs += idleMs;
    const waitMs = Math.round(this.#owedMs);
    if (waitMs < 1) return output;
    const started = performance.now();
    // A timer counts from the event loop's cached clock, which lags performance.now() when
    // this pass ended late in a busy loop turn, so it can fire before `waitMs` has passed:
    // sleep what is left, a few turns at most.
    let waitedMs = 0;
    for (let turn = 0; turn < MAX_WAIT_TURNS && waitMs - waitedMs >= 1; turn++) {
      await sleep(Math.round(waitMs - waitedMs));
      waitedMs = performance.now() - started;
    }
    // Credit only a timer's lateness: a wait held up by a busy event loop is not paid back later.
    this.#owedMs = Math.max(-MAX_CREDIT_MS, this.#owedMs - waitedMs);
    this.#idleMsTotal += waitedMs;
    // The slower device's forward pass is the whole of it, as its stats would say.
    return {
      ...output,
      timing: { ...output.timing, forwardMs: output.timing.forwardMs + waitedMs },
    };
  }

  /** In order with the forwards, as the engine itself answers requests. */
  release(seqIds: string[]): Promise<void> {
    const run = this.#busy.then(() => this.#inner.release(seqIds));
    this.#busy = run.catch(() => {});
    return run;
  }

  async stats(): Promise<StageStats> {
    const stats = await this.#inner.stats();
    return { ...stats, forwardMsTotal: stats.forwardMsTotal + this.#idleMsTotal };
  }

  async close(): Promise<void> {
    await this.#busy;
    await this.#inner.close();
  }
}
