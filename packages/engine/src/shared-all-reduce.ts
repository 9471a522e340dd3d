/**
 * The all-reduce of a tensor-parallel group whose members are threads of one process:
 * each member copies its partial into its own slot of shared memory, counts itself in,
 * waits for the others, and sums every slot in rank order (`sumInOrder`), so all members
 * get the same bits, run after run. Slots come in two sets used by alternate calls: a
 * member can be at most one call ahead of the slowest (it cannot finish call c+1 before
 * everyone has arrived there, after reading call c), so it never overwrites a slot another
 * member is still reading. A partial larger than a slot is summed in slot-sized pieces.
 */
import { AbortedError, type AllReduce, EngineClosedError, sumInOrder } from '@swarmbee/core';

/** Elements of one member's slot when the group is made without a size. */
export const DEFAULT_SLOT_ELEMENTS = 1 << 18;

/**
 * How a member waits for the others: `blocking` parks its thread in `Atomics.wait` (woken
 * directly by the last arrival; for a stage thread, which has nothing else to do meanwhile),
 * `async` awaits `Atomics.waitAsync` (its event loop keeps running; woken through it).
 */
export type AllReduceWait = 'blocking' | 'async';

/** See {@link AllReduceWait}; scripts/tp-costs.ts measures both. */
export const DEFAULT_ALL_REDUCE_WAIT: AllReduceWait = 'blocking';

/** A blocking wait wakes at least this often to see an abort, ms. */
const BLOCKING_WAIT_SLICE_MS = 20;

/** The shared memory of one group: hand the same object to every member (it crosses threads). */
export interface SharedGroup {
  size: number;
  slotElements: number;
  /** How members wait for each other; `blocking` only where each member has a thread of its own. */
  wait: AllReduceWait;
  /** Int32 [arrivals, closed]. */
  control: SharedArrayBuffer;
  /** Float32 [2 sets][size members][slotElements]. */
  slots: SharedArrayBuffer;
}

const ARRIVALS = 0;
const CLOSED = 1;

/** Shared memory for a group of `size` members whose partials are summed `slotElements` at a time. */
export function createSharedGroup(
  size: number,
  slotElements = DEFAULT_SLOT_ELEMENTS,
  wait: AllReduceWait = DEFAULT_ALL_REDUCE_WAIT,
): SharedGroup {
  return {
    size,
    slotElements,
    wait,
    control: new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT),
    slots: new SharedArrayBuffer(2 * size * slotElements * Float32Array.BYTES_PER_ELEMENT),
  };
}

type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
) =>
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };

/** `Atomics.waitAsync` (Node 16+; typed only in ES2024's lib). */
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export class SharedAllReduce implements AllReduce {
  readonly size: number;
  readonly #control: Int32Array;
  readonly #slots: Float32Array[][];
  readonly #slotElements: number;
  #calls = 0;

  readonly #wait: AllReduceWait;

  constructor(
    group: SharedGroup,
    readonly rank: number,
  ) {
    this.size = group.size;
    this.#wait = group.wait;
    this.#slotElements = group.slotElements;
    this.#control = new Int32Array(group.control);
    this.#slots = [0, 1].map((set) =>
      Array.from(
        { length: group.size },
        (_, member) =>
          new Float32Array(
            group.slots,
            (set * group.size + member) * group.slotElements * Float32Array.BYTES_PER_ELEMENT,
            group.slotElements,
          ),
      ),
    );
  }

  async sum(partial: Float32Array, signal?: AbortSignal): Promise<Float32Array> {
    if (this.size === 1) return partial;
    for (let offset = 0; offset < partial.length; offset += this.#slotElements) {
      const piece = partial.subarray(offset, Math.min(partial.length, offset + this.#slotElements));
      const set = this.#slots[this.#calls & 1]!;
      this.#calls++;
      set[this.rank]!.set(piece);
      Atomics.add(this.#control, ARRIVALS, 1);
      Atomics.notify(this.#control, ARRIVALS);
      // Arrivals wrap as int32: compare by difference, so a long-lived group never overflows.
      await this.#arrived((this.#calls * this.size) | 0, signal);
      sumInOrder(
        set.map((slot) => slot.subarray(0, piece.length)),
        piece,
      );
    }
    return partial;
  }

  async close(): Promise<void> {
    Atomics.store(this.#control, CLOSED, 1);
    // Waiters watch the arrivals word: bump it so every one wakes and sees the group closed.
    Atomics.add(this.#control, ARRIVALS, 1);
    Atomics.notify(this.#control, ARRIVALS);
  }

  async #arrived(target: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      const seen = Atomics.load(this.#control, ARRIVALS);
      // Read after the arrivals: close() marks the group before it bumps them.
      if (Atomics.load(this.#control, CLOSED) === 1)
        throw new EngineClosedError('the tensor-parallel group was closed: a member left');
      if (signal?.aborted) {
        // The others would wait for this member's share forever: the group ends here.
        await this.close();
        throw new AbortedError('the all-reduce was aborted; the group is closed');
      }
      if (((seen - target) | 0) >= 0) return;
      if (this.#wait === 'blocking') {
        Atomics.wait(this.#control, ARRIVALS, seen, BLOCKING_WAIT_SLICE_MS);
        continue;
      }
      const wait = waitAsync(this.#control, ARRIVALS, seen);
      if (wait.async) await (signal ? raceAbort(wait.value, signal) : wait.value);
    }
  }
}

/** Resolves with `promise`, or once `signal` aborts (the caller then sees it aborted). */
function raceAbort(promise: Promise<unknown>, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, resolve).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
