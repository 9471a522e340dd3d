/**
 * The in-process all-reduce: every member gets the rank-ordered sum (`sumInOrder`), bit for
 * bit, including partials larger than a slot; a closed group rejects a pending sum. Members
 * share this test's thread, so they wait `async` (a blocking wait would park the thread they
 * all need; tensor-parallel.test.ts runs the blocking default across stage threads).
 */
import { EngineClosedError, sumInOrder } from '@swarmbee/core';
import { createSharedGroup, SharedAllReduce } from '@swarmbee/engine';
import t from 'tap';

/** Values whose fp32 sums depend on the order they are added in. */
function partial(rank: number, length: number, call: number): Float32Array {
  return Float32Array.from(
    { length },
    (_, i) => Math.sin(i * 0.7 + rank * 1.3 + call) * 10 ** ((i + rank) % 7),
  );
}

t.test(
  'three members sum in rank order, over pieces larger than a slot, call after call',
  async (t) => {
    const size = 3;
    const group = createSharedGroup(size, 100, 'async');
    const members = Array.from({ length: size }, (_, rank) => new SharedAllReduce(group, rank));
    for (const [call, length] of [257, 3, 100, 1000].entries()) {
      const parts = members.map((m) => partial(m.rank, length, call));
      const expected = sumInOrder(parts, new Float32Array(length));
      // Members arrive in reverse order: the result must not depend on arrival.
      const sums = await Promise.all(
        [...members].reverse().map((m) => m.sum(parts[m.rank]!.slice())),
      );
      for (const sum of sums)
        t.same(Array.from(sum), Array.from(expected), `call ${call}: ${length} elements`);
    }
  },
);

t.test('closing the group rejects a member waiting for the others', async (t) => {
  const group = createSharedGroup(2, 16, 'async');
  const [a, b] = [new SharedAllReduce(group, 0), new SharedAllReduce(group, 1)];
  const waiting = a.sum(new Float32Array(8));
  await b.close();
  await t.rejects(waiting, { code: EngineClosedError.code });
});

t.test('an aborted sum rejects and closes the group', async (t) => {
  const group = createSharedGroup(2, 16, 'async');
  const [a, b] = [new SharedAllReduce(group, 0), new SharedAllReduce(group, 1)];
  const controller = new AbortController();
  const waiting = a.sum(new Float32Array(8), controller.signal);
  controller.abort();
  await t.rejects(waiting, { code: 'SWARMBEE_ERR_ABORTED' });
  await t.rejects(b.sum(new Float32Array(8)), { code: EngineClosedError.code });
});
