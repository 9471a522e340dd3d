/**
 * Liveness of one connection. Both ends ping every interval; the peer counts as alive
 * while *anything* arrives from it (pong, ping, message, or raw bytes of a frame still in
 * flight), because a pong queued behind a 50 MB hidden-state frame on a slow link is late,
 * not missing. Silence past the timeout means a dead or stalled peer.
 */
import { performance } from 'node:perf_hooks';

export class Heartbeat {
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #ping: () => void;
  readonly #onSilence: (silentMs: number) => void;
  #lastSeenMs = performance.now();
  #timer: NodeJS.Timeout | undefined;
  #held = false;

  /** Does nothing when `intervalMs` is 0. */
  constructor(options: {
    intervalMs: number;
    timeoutMs: number;
    ping: () => void;
    onSilence: (silentMs: number) => void;
  }) {
    this.#intervalMs = options.intervalMs;
    this.#timeoutMs = options.timeoutMs;
    this.#ping = options.ping;
    this.#onSilence = options.onSilence;
    if (this.#intervalMs > 0) {
      this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
      // The socket keeps the process alive while it is open; the heartbeat must not.
      this.#timer.unref();
    }
  }

  /** Records that something arrived from the peer. */
  readonly seen = (): void => {
    this.#lastSeenMs = performance.now();
  };

  /**
   * While held, silence is not judged: this end stopped reading on purpose (the peer's
   * pongs wait unread in the socket), so the quiet is ours, not the peer's.
   */
  hold(held: boolean): void {
    this.#held = held;
    this.seen();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (this.#held) this.seen();
    const silentMs = performance.now() - this.#lastSeenMs;
    if (silentMs >= this.#timeoutMs) {
      this.stop();
      this.#onSilence(silentMs);
      return;
    }
    this.#ping();
  }
}
