/**
 * Writing a graph's new keys and values into a stage's KV arena: one layer at a time,
 * each row's after its past; on a ring layer, the newest W of them into slots position mod W.
 * And copying a prefix of each row's past out, for a chunk fed less than the arena holds.
 */
import type { KvArena, KvCache, KvElements } from './kv-cache.js';
import type { BatchRow } from './stage-engine.js';

/** Stores layer `l`'s (index within the stage) new keys and values, [B, kvHeads, T, headDim]. */
export function storeLayerRows<T extends KvElements>(
  kv: KvCache<T>,
  arena: KvArena<T>,
  l: number,
  rows: readonly BatchRow[],
  width: number,
  keys: T,
  values: T,
): void {
  const { kvHeads, headDim: hd } = kv;
  const window = kv.window(l);
  const slots = kv.slots(arena, l);
  const keyArena = arena.keys[l]!;
  const valueArena = arena.values[l]!;
  rows.forEach((row, r) => {
    for (let h = 0; h < kvHeads; h++) {
      const from = (r * kvHeads + h) * width * hd;
      const base = (r * kvHeads + h) * slots * hd;
      if (window === undefined) {
        const to = base + row.start * hd;
        keyArena.set(keys.subarray(from, from + row.count * hd), to);
        valueArena.set(values.subarray(from, from + row.count * hd), to);
        continue;
      }
      for (let i = Math.max(0, row.count - window); i < row.count; i++) {
        const to = base + ((row.start + i) % window) * hd;
        const at = from + i * hd;
        keyArena.set(keys.subarray(at, at + hd), to);
        valueArena.set(values.subarray(at, at + hd), to);
      }
    }
  });
}

/**
 * The first `width` positions of each of `lines` (row, head) lines of a cache laid out
 * [lines, capacity, headDim], as a compact [lines, width, headDim] copy.
 */
export function pastPrefix<T extends Float32Array | Uint16Array>(
  data: T,
  lines: number,
  capacity: number,
  headDim: number,
  width: number,
): T {
  const out = (
    data instanceof Float32Array
      ? new Float32Array(lines * width * headDim)
      : new Uint16Array(lines * width * headDim)
  ) as T;
  const span = width * headDim;
  for (let line = 0; line < lines; line++) {
    const from = line * capacity * headDim;
    out.set(data.subarray(from, from + span), line * span);
  }
  return out;
}
