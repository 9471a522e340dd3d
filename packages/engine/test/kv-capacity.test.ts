import t from 'tap';
import { arenaCapacity, KvCache, MAX_SPARE_ARENAS } from '../src/kv-cache.js';

t.test(
  'arenas grow by half, so attention never runs over more than a third of spare positions',
  async (t) => {
    for (let positions = 1; positions <= 4096; positions++) {
      const capacity = arenaCapacity(positions, 4096);
      t.ok(capacity >= positions && capacity <= 4096, `${positions} fits in ${capacity}`);
      if (positions > 32)
        t.ok(capacity * 2 <= positions * 3 + 64, `${positions}: capacity ${capacity}`);
    }
    t.equal(arenaCapacity(5000, 1000), 1000, 'never beyond the context');
  },
);

t.test("the cache's arenas have the capacity admission charges for", async (t) => {
  const kv = new KvCache(2, 2, 4, 1024, 1 << 30, 4);
  let positions = 0;
  for (const count of [16, 17, 40, 100, 200, 300]) {
    const { arena } = kv.prepare([{ seqId: 'a', start: positions, count }]);
    positions += count;
    kv.commit([{ seqId: 'a', start: positions - count, count }]);
    t.equal(arena.capacity, arenaCapacity(positions, 1024), `${positions} positions`);
  }
});

t.test("an emptied arena's buffers serve the next arena of its shape, zeroed", async (t) => {
  const kv = new KvCache(2, 2, 4, 1024, 1 << 30, 4);
  const first = kv.prepare([{ seqId: 'a', start: 0, count: 10 }]).arena;
  first.keys[1]!.fill(3);
  first.values[0]!.fill(-2);
  kv.commit([{ seqId: 'a', start: 0, count: 10 }]);
  kv.release('a');
  t.equal(kv.bytes, 0, 'no live arena');
  t.ok(kv.spareBytes > 0, 'the emptied arena is kept');
  const second = kv.prepare([{ seqId: 'b', start: 0, count: 12 }]).arena;
  t.not(second, first, 'a new arena');
  t.equal(second.keys[1]!.buffer, first.keys[1]!.buffer, "over the spare's buffers");
  t.equal(kv.spareBytes, 0, 'the spare is taken');
  t.ok(
    [...second.keys, ...second.values].every((b) => b.every((x) => x === 0)),
    'written over with zeros, as a fresh arena',
  );
  t.same(second.rows, ['b']);
  // Another shape (two rows) cannot use it: fresh buffers.
  kv.release('b');
  const pair = kv.prepare([
    { seqId: 'c', start: 0, count: 4 },
    { seqId: 'd', start: 0, count: 4 },
  ]).arena;
  t.not(pair.keys[0]!.buffer, first.keys[0]!.buffer, 'a spare of another shape is not reused');
});

t.test('spares stay within the budget and their count', async (t) => {
  // 1 layer, 1 head of 4: an arena of 1 row at 32 positions holds 2 × 32 × 4 × 4 = 1 KiB.
  const arenaBytes = 1024;
  const kv = new KvCache(1, 1, 4, 1024, 3 * arenaBytes, 8);
  for (const id of ['a', 'b', 'c']) kv.prepare([{ seqId: id, start: 0, count: 1 }]);
  t.equal(kv.bytes, 3 * arenaBytes, 'three live arenas fill the budget');
  for (const id of ['a', 'b', 'c']) kv.release(id);
  t.equal(kv.bytes + kv.spareBytes, 3 * arenaBytes, 'all three kept: they fit');
  // An arena of another shape drops spares until it fits beside them.
  kv.prepare([
    { seqId: 'x', start: 0, count: 1 },
    { seqId: 'y', start: 0, count: 1 },
  ]);
  t.equal(kv.bytes, 2 * arenaBytes);
  t.equal(kv.spareBytes, arenaBytes, 'the two oldest spares were dropped');
  t.ok(kv.bytes + kv.spareBytes <= kv.budgetBytes);

  const many = new KvCache(1, 1, 4, 1024, 1 << 30, 16);
  const ids = Array.from({ length: MAX_SPARE_ARENAS + 3 }, (_, i) => `s${i}`);
  for (const id of ids) many.prepare([{ seqId: id, start: 0, count: 1 }]);
  for (const id of ids) many.release(id);
  t.equal(many.spareBytes, MAX_SPARE_ARENAS * arenaBytes, `at most ${MAX_SPARE_ARENAS} spares`);
});
