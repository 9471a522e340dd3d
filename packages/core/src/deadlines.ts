/**
 * Time limits as AbortSignals. A step gets its own deadline (`AbortSignal.timeout`,
 * joined with the caller's signal by `AbortSignal.any`); a transfer gets a deadline that
 * moves with progress, so a large shard on a slow link never times out while bytes flow.
 * Either way an aborted wait ends in a coded error: {@link TimeoutError} when a deadline
 * passed, {@link AbortedError} when someone cancelled, the reason itself when it is coded.
 */
import { AbortedError, SwarmBeeError, TimeoutError } from './errors.js';

/** A deadline of `timeoutMs` for one step, also ended by `parent` when given. */
export function stepSignal(timeoutMs: number, parent?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return parent ? AbortSignal.any([parent, timeout]) : timeout;
}

/** Whether an abort reason is a passed deadline (`AbortSignal.timeout`'s DOMException or ours). */
export function isTimeout(reason: unknown): boolean {
  return (
    reason instanceof TimeoutError ||
    (reason instanceof Error &&
      reason.name === 'TimeoutError' &&
      !(reason instanceof SwarmBeeError))
  );
}

/**
 * The coded error for a wait on `what` that `signal` ended: `what` reads as the thing
 * waited for, e.g. "shard.need from worker-1 (60000 ms)".
 */
export function abortError(signal: AbortSignal, what: string): SwarmBeeError {
  const reason: unknown = signal.reason;
  if (reason instanceof SwarmBeeError) return reason;
  if (isTimeout(reason))
    return new TimeoutError(`timed out waiting for ${what}`, { cause: reason });
  return new AbortedError(`cancelled while waiting for ${what}`, { cause: reason });
}

/**
 * A deadline that moves with progress: it passes when nothing happened for `idleMs`
 * (call {@link kick} on every chunk), not when the whole job takes long. Dispose of it
 * when the job ends.
 */
export class ProgressDeadline {
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #what: string;

  constructor(
    readonly idleMs: number,
    what: string,
    parent?: AbortSignal,
  ) {
    this.#what = what;
    this.#timer = setTimeout(() => {
      this.#controller.abort(new TimeoutError(`no progress on ${what} for ${idleMs} ms`));
    }, idleMs);
    // A deadline must never be what keeps a process alive.
    this.#timer.unref();
    this.signal = parent
      ? AbortSignal.any([parent, this.#controller.signal])
      : this.#controller.signal;
  }

  /** Progress: the deadline moves `idleMs` ahead of now. */
  kick(): void {
    if (!this.#controller.signal.aborted) this.#timer.refresh();
  }

  /** Ends the job early with this reason (a coded error the peer reported, say). */
  abort(reason: SwarmBeeError): void {
    this.#controller.abort(reason);
  }

  /** Throws the coded reason once the deadline passed or the job was aborted. */
  check(): void {
    if (this.signal.aborted) throw abortError(this.signal, this.#what);
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }
}

/**
 * Waits for `work` to settle, at most `ms`: never rejects (a failure or a timeout both end
 * the wait). For shutdown steps that must not keep a process alive.
 */
export async function settleWithin(work: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!work) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
