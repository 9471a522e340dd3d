/**
 * The KV cache of one stage, kept in *arenas*: one buffer per layer for keys
 * and one for values, laid out [rows, kvHeads, capacity, headDim] — exactly the
 * `past_key` / `past_value` inputs of a micro-batch whose rows are the arena's
 * rows. The scheduler keeps micro-batches stable from step to step, so a batch
 * almost always finds its arena ready and onnxruntime reads the cache where it
 * lies; only the new tokens' rows are written. When a batch's rows differ (a
 * sequence joined or left) its sequences move into a fresh arena once, and
 * capacity grows by half (an amortised copy) as sequences grow. No step copies the
 * cache as such. A decode step attends over the whole capacity (masked), so growing by
 * half rather than doubling keeps that waste to a third of the positions at worst; a chunk
 * of several tokens is fed its rows' pasts copied up to the longest (see OrtStage).
 *
 * An emptied arena's buffers are kept as a *spare* (at most {@link MAX_SPARE_ARENAS}, and
 * within the budget with the live arenas) and handed, zeroed, to the next arena of the same
 * rows and capacity: writing into fresh memory costs a page fault per page, which on small
 * boards and virtual machines costs more than the forward pass that fills it (a new
 * sequence's 64-token prefill on the 110M preset spent 14 ms faulting in 4.7 MB).
 *
 * A sliding-window layer keeps a *ring* instead: W slots per row whatever the
 * context, position p in slot p mod W (keys are stored after RoPE, so slot order
 * does not matter; the attention bias masks what lies outside the window).
 */
import {
  arenaCapacity,
  ContextOverflowError,
  InvalidArgumentError,
  KvBudgetExceededError,
  KvHistoryLostError,
  SequenceUnknownError,
} from '@swarmbee/core';
import { pastPrefix } from './kv-rows.js';

/** Arena capacities grow as `arenaCapacity` (@swarmbee/core) says: the planner and admission size by it. */
export { arenaCapacity };

/** Element arrays a cache holds: float32, or float16 kept as raw 16-bit words. */
export type KvElements = Float32Array | Uint16Array;

/** How a cache lays out its arenas. SwarmBee's own shards use the defaults. */
export interface KvCacheLayout {
  /** Element type. Default float32. */
  dtype?: 'float32' | 'float16';
  /**
   * Keep a layer's keys and values in one buffer, [2, rows, kvHeads, capacity, headDim],
   * so a graph that takes them stacked (GPT-2's `past_L`) reads the arena as it lies.
   * Default false.
   */
  stacked?: boolean;
  /**
   * Per layer: the sliding window in positions for a layer kept as a ring of that many
   * slots, or undefined for a layer that keeps every position. Default: none are rings.
   */
  windows?: readonly (number | undefined)[];
}

/** Emptied arenas kept for reuse, at most; beyond, the oldest is dropped. */
export const MAX_SPARE_ARENAS = 4;

export interface KvArena<T extends KvElements = Float32Array> {
  /** Sequence id of each row; undefined once the row's sequence moved or was released. */
  rows: (string | undefined)[];
  /** Positions each row has room for in full-context layers. */
  capacity: number;
  /** Per layer: [rows, kvHeads, capacity (ring layers: their window), headDim]. */
  keys: T[];
  values: T[];
  /** Per layer, when stacked: the keys then the values as one array. */
  stacked?: T[];
}

interface Home<T extends KvElements> {
  arena: KvArena<T>;
  row: number;
  /** Positions stored. */
  length: number;
}

/** What a micro-batch needs from the cache: its arena, rows in batch order. */
export interface BatchCache<T extends KvElements = Float32Array> {
  arena: KvArena<T>;
}

/** A layer's past as a micro-batch is fed it (see {@link KvCache.fedPast}). */
export interface FedPast<T extends KvElements> {
  keys: T;
  values: T;
  /** Positions per (row, head) line: the dims are [rows, kvHeads, positions, headDim]. */
  positions: number;
  /** Whether keys and values are the arena's own buffers, as they lie (else compact copies). */
  inPlace: boolean;
}

export interface KvRequest {
  seqId: string;
  start: number;
  count: number;
}

export class KvCache<T extends KvElements = Float32Array> {
  readonly kvDim: number;
  readonly #homes = new Map<string, Home<T>>();
  readonly #arenas = new Set<KvArena<T>>();
  readonly #layout: Required<Omit<KvCacheLayout, 'windows'>>;
  /** Per layer: ring size, or undefined for a full-context layer. */
  readonly #windows: readonly (number | undefined)[];
  /** Smallest window of a ring layer (rewinds must keep it), if any layer is a ring. */
  readonly #ringWindow: number | undefined;
  /** Whether some layer keeps every position (then arenas grow with the context). */
  readonly #hasFullLayers: boolean;
  #bytes = 0;
  /** Emptied arenas whose buffers the next arena of their shape reuses, oldest first. */
  readonly #spares: KvArena<T>[] = [];
  #spareBytes = 0;

  constructor(
    readonly layers: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly maxSeqLen: number,
    readonly budgetBytes: number,
    readonly maxSequences: number,
    layout: KvCacheLayout = {},
  ) {
    this.kvDim = kvHeads * headDim;
    this.#layout = { dtype: layout.dtype ?? 'float32', stacked: layout.stacked ?? false };
    this.#windows = Array.from({ length: layers }, (_, l) => layout.windows?.[l]);
    const rings = this.#windows.filter((w): w is number => w !== undefined);
    if (rings.length > 0 && this.#layout.stacked)
      throw new InvalidArgumentError('a stacked KV layout cannot hold sliding-window rings');
    this.#ringWindow = rings.length > 0 ? Math.min(...rings) : undefined;
    this.#hasFullLayers = rings.length < layers;
  }

  /** Slots a row of layer `layer` has in `arena`: the ring's window, or the arena's capacity. */
  slots(arena: KvArena<T>, layer: number): number {
    return this.#windows[layer] ?? arena.capacity;
  }

  /** The ring size of layer `layer`, or undefined when it keeps every position. */
  window(layer: number): number | undefined {
    return this.#windows[layer];
  }

  /**
   * Layer `layer`'s past as a micro-batch over `arena` is fed it, when `pastWidth` positions
   * are fed (see `fedPastWidth`): a ring as it lies (a ring is its window's size); a layer that
   * keeps every position, as it lies when `pastWidth` is the arena's capacity, else the first
   * `pastWidth` positions of each row copied out.
   */
  fedPast(arena: KvArena<T>, layer: number, pastWidth: number): FedPast<T> {
    const slots = this.slots(arena, layer);
    const positions = this.#windows[layer] === undefined ? pastWidth : slots;
    const keys = arena.keys[layer]!;
    const values = arena.values[layer]!;
    if (positions === slots) return { keys, values, positions, inPlace: true };
    const lines = arena.rows.length * this.kvHeads;
    return {
      keys: pastPrefix(keys, lines, slots, this.headDim, positions),
      values: pastPrefix(values, lines, slots, this.headDim, positions),
      positions,
      inPlace: false,
    };
  }

  /** Bytes one row takes per position of its capacity: keys and values of every layer that grows with it. */
  get bytesPerPosition(): number {
    return this.#arenaBytes(1, 1) - this.bytesPerRow;
  }

  /** Bytes one row takes whatever its length: the sliding-window layers' rings (0 without them). */
  get bytesPerRow(): number {
    return this.#arenaBytes(1, 0);
  }

  /** Bytes held by arenas (spare capacity included). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes of emptied arenas kept for reuse: with {@link bytes}, never above the budget. */
  get spareBytes(): number {
    return this.#spareBytes;
  }

  /** Sequences cached. */
  get size(): number {
    return this.#homes.size;
  }

  /** Cached positions of a sequence, or undefined when it is not cached here. */
  length(seqId: string): number | undefined {
    return this.#homes.get(seqId)?.length;
  }

  /**
   * Makes room for every row of a micro-batch and returns the arena whose rows are
   * the batch's rows, in order. Anything a row stored at or after its `start` is
   * discarded (a replay rewrites history from there). Checks every row before
   * changing anything, so a refused batch leaves the cache as it was.
   */
  prepare(requests: readonly KvRequest[]): BatchCache<T> {
    let newSequences = 0;
    for (const { seqId, start, count } of requests) {
      if (start + count > this.maxSeqLen) {
        throw new ContextOverflowError(
          `sequence ${seqId} would reach position ${start + count}, beyond the model's context of ${this.maxSeqLen}`,
        );
      }
      const home = this.#homes.get(seqId);
      if (!home && start !== 0) {
        throw new SequenceUnknownError(
          `sequence ${seqId} is not cached here, so it must start at position 0, not ${start}`,
        );
      }
      if (home && start > home.length) {
        throw new InvalidArgumentError(
          `sequence ${seqId} has ${home.length} cached positions; a row cannot start at ${start}`,
        );
      }
      // A ring lost positions [start - W + 1, start) once positions from start + 1 on overwrote them.
      if (home && this.#ringWindow !== undefined && start > 0 && home.length > start + 1) {
        throw new KvHistoryLostError(
          `sequence ${seqId} cannot rewind from ${home.length} to position ${start}: its sliding-window layers keep only the newest ${this.#ringWindow} positions; replay it from position 0`,
        );
      }
      if (!home) newSequences++;
    }
    if (this.#homes.size + newSequences > this.maxSequences) {
      throw new KvBudgetExceededError(
        `this stage already holds the most sequences it may (${this.maxSequences})`,
      );
    }
    const needed = Math.max(...requests.map((r) => r.start + r.count));
    let arena = this.#arenaOf(requests);
    if (!arena || (this.#hasFullLayers && arena.capacity < needed))
      arena = this.#rebuild(requests, needed, arena);
    requests.forEach(({ seqId, start }, row) => {
      const home = this.#homes.get(seqId);
      if (home) home.length = start;
      else this.#homes.set(seqId, { arena: arena, row, length: start });
    });
    return { arena };
  }

  /** Records that each row now holds its new tokens. */
  commit(requests: readonly KvRequest[]): void {
    for (const { seqId, start, count } of requests) {
      const home = this.#homes.get(seqId);
      if (home) home.length = start + count;
    }
  }

  release(seqId: string): void {
    const home = this.#homes.get(seqId);
    if (!home) return;
    this.#homes.delete(seqId);
    this.#vacate(home);
  }

  /** The arena already holding exactly these sequences in this order, if any. */
  #arenaOf(requests: readonly KvRequest[]): KvArena<T> | undefined {
    const first = this.#homes.get(requests[0]!.seqId);
    if (!first || first.arena.rows.length !== requests.length) return undefined;
    const arena = first.arena;
    return requests.every((r, i) => arena.rows[i] === r.seqId) ? arena : undefined;
  }

  /** A fresh arena for these rows, with each known sequence's cache moved into it. */
  #rebuild(
    requests: readonly KvRequest[],
    needed: number,
    replacing: KvArena<T> | undefined,
  ): KvArena<T> {
    // Rings never grow; an arena of rings alone records no capacity.
    const capacity = this.#hasFullLayers
      ? Math.min(arenaCapacity(needed, this.maxSeqLen, replacing?.capacity), this.maxSeqLen)
      : 0;
    const bytes = this.#arenaBytes(requests.length, capacity);
    // Arenas about to empty are freed by the move, so they do not count against the budget.
    const freed = this.#bytesFreedBy(requests);
    if (this.#bytes - freed + bytes > this.budgetBytes) {
      throw new KvBudgetExceededError(
        `the KV cache needs ${bytes} bytes for a batch of ${requests.length} at ${capacity} positions; ${this.#bytes} of ${this.budgetBytes} are in use`,
      );
    }
    const arena = this.#allocate(
      requests.map((r) => r.seqId),
      capacity,
      bytes,
    );
    this.#arenas.add(arena);
    this.#bytes += bytes;
    requests.forEach(({ seqId, start }, row) => {
      const home = this.#homes.get(seqId);
      if (!home) return;
      this.#copyRow(home, arena, row, Math.min(home.length, start));
      this.#vacate(home);
      home.arena = arena;
      home.row = row;
    });
    return arena;
  }

  /**
   * An arena's buffers: per layer one for keys and one for values, or one holding both when
   * stacked. A spare of the same shape is reused, zeroed; otherwise spares are dropped, oldest
   * first, until the live arenas, the spares and this one fit the budget.
   */
  #allocate(rows: string[], capacity: number, bytes: number): KvArena<T> {
    const match = this.#spares.findIndex(
      (s) => s.rows.length === rows.length && s.capacity === capacity,
    );
    if (match >= 0) {
      const [spare] = this.#spares.splice(match, 1) as [KvArena<T>];
      this.#spareBytes -= bytes;
      for (const buffer of spare.stacked ?? [...spare.keys, ...spare.values]) buffer.fill(0);
      return { ...spare, rows };
    }
    while (this.#spares.length > 0 && this.#bytes + this.#spareBytes + bytes > this.budgetBytes)
      this.#dropOldestSpare();
    const size = rows.length * this.kvHeads * capacity * this.headDim;
    const make = (n: number) =>
      (this.#layout.dtype === 'float16' ? new Uint16Array(n) : new Float32Array(n)) as T;
    if (!this.#layout.stacked) {
      const sizes = this.#windows.map((w) =>
        w === undefined ? size : rows.length * this.kvHeads * w * this.headDim,
      );
      return {
        rows,
        capacity,
        keys: sizes.map((n) => make(n)),
        values: sizes.map((n) => make(n)),
      };
    }
    const stacked = Array.from({ length: this.layers }, () => make(2 * size));
    return {
      rows,
      capacity,
      stacked,
      keys: stacked.map((both) => both.subarray(0, size) as T),
      values: stacked.map((both) => both.subarray(size) as T),
    };
  }

  #copyRow(from: Home<T>, to: KvArena<T>, toRow: number, positions: number): void {
    const { kvHeads, headDim } = this;
    for (let l = 0; l < this.layers; l++) {
      // A ring's slots are copied whole: slot = position mod W in both arenas.
      const window = this.#windows[l];
      const span = Math.min(positions, window ?? positions) * headDim;
      const fromSlots = window ?? from.arena.capacity;
      const toSlots = window ?? to.capacity;
      for (let h = 0; h < kvHeads; h++) {
        const source = (from.row * kvHeads + h) * fromSlots * headDim;
        const target = (toRow * kvHeads + h) * toSlots * headDim;
        to.keys[l]!.set(from.arena.keys[l]!.subarray(source, source + span), target);
        to.values[l]!.set(from.arena.values[l]!.subarray(source, source + span), target);
      }
    }
  }

  /** Marks a sequence's row empty; an arena left with no row becomes a spare. */
  #vacate(home: Home<T>): void {
    const { arena } = home;
    arena.rows[home.row] = undefined;
    if (!arena.rows.every((id) => id === undefined) || !this.#arenas.delete(arena)) return;
    const bytes = this.#arenaBytes(arena.rows.length, arena.capacity);
    this.#bytes -= bytes;
    if (this.#bytes + this.#spareBytes + bytes > this.budgetBytes) return;
    this.#spares.push(arena);
    this.#spareBytes += bytes;
    if (this.#spares.length > MAX_SPARE_ARENAS) this.#dropOldestSpare();
  }

  #dropOldestSpare(): void {
    const spare = this.#spares.shift()!;
    this.#spareBytes -= this.#arenaBytes(spare.rows.length, spare.capacity);
  }

  #bytesFreedBy(requests: readonly KvRequest[]): number {
    const moving = new Set(requests.map((r) => r.seqId));
    let freed = 0;
    for (const arena of this.#arenas) {
      if (arena.rows.every((id) => id === undefined || moving.has(id)))
        freed += this.#arenaBytes(arena.rows.length, arena.capacity);
    }
    return freed;
  }

  #arenaBytes(rows: number, capacity: number): number {
    const elementBytes = this.#layout.dtype === 'float16' ? 2 : 4;
    let slots = 0;
    for (const window of this.#windows) slots += window ?? capacity;
    return rows * slots * this.kvDim * elementBytes * 2;
  }
}
