import t from 'tap';
import { arenaCapacity, KvCache } from '../src/kv-cache.js';

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
