/**
 * Reconfigurations of the cluster run one at a time, in order. A request that comes while
 * another waits to start is merged into it (its reason added, the stronger mode kept), so
 * two workers lost together cost one re-plan, not two.
 */

/** `consider` a plan over the workers connected now; `repair` a broken deployment; `replan` afresh. */
export type ReconfigurationMode = 'consider' | 'repair' | 'replan';
const STRENGTH: Record<ReconfigurationMode, number> = { consider: 0, repair: 1, replan: 2 };

export interface Reconfiguration {
  mode: ReconfigurationMode;
  reasons: string[];
  /** When the first request for it came (the loss, the join), performance.now(). */
  requestedAt: number;
}

export class ReconfigurationQueue {
  #next?: Reconfiguration & { done: Promise<void>; finish: () => void };
  #running = false;

  /** `run` does one reconfiguration; a failure it throws is passed to `onError`. */
  constructor(
    readonly run: (job: Reconfiguration) => Promise<void>,
    readonly onError: (error: unknown) => void,
  ) {}

  /** Asks for a reconfiguration; resolves (never rejects) once one including it has run. */
  request(mode: ReconfigurationMode, reason: string): Promise<void> {
    let job = this.#next;
    if (!job) {
      let finish!: () => void;
      const done = new Promise<void>((resolve) => {
        finish = resolve;
      });
      job = { mode, reasons: [], requestedAt: performance.now(), done, finish };
      this.#next = job;
    }
    if (!job.reasons.includes(reason)) job.reasons.push(reason);
    if (STRENGTH[mode] > STRENGTH[job.mode]) job.mode = mode;
    if (!this.#running) void this.#drain();
    return job.done;
  }

  async #drain(): Promise<void> {
    this.#running = true;
    while (this.#next) {
      const job = this.#next;
      this.#next = undefined;
      try {
        await this.run(job);
      } catch (error) {
        this.onError(error);
      } finally {
        job.finish();
      }
    }
    this.#running = false;
  }
}
