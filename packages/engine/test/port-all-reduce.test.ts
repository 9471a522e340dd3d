/**
 * The thread hop of a worker's tensor-parallel member: `PortAllReduce` sums through the
 * member `serveAllReduce` answers with on the other end of a MessagePort — the sum comes
 * back, a partial that owns its buffer moves while a view is copied (the caller's buffer
 * stays whole), the member's coded failure arrives as itself, and leaving fails what waits.
 */
import { MessageChannel } from 'node:worker_threads';
import { type AllReduce, EngineClosedError, GroupMemberLostError } from '@swarmbee/core';
import t from 'tap';
import { PortAllReduce, serveAllReduce } from '../src/port-all-reduce.js';

/** A member of a group of two whose other member's partial is all ones. */
function plusOnes(): AllReduce {
  return {
    rank: 0,
    size: 2,
    sum: async (partial) => partial.map((v) => v + 1),
    close: async () => {},
  };
}

t.test('sums cross the port; an owned partial moves, a view is copied', async (t) => {
  const { port1, port2 } = new MessageChannel();
  serveAllReduce(port1, plusOnes());
  const member = new PortAllReduce({ port: port2, rank: 0, size: 2 });
  t.teardown(() => {
    port1.close();
    return member.close();
  });
  const owned = Float32Array.of(1, 2, 3);
  t.same([...(await member.sum(owned))], [2, 3, 4], 'the sum');
  t.equal(owned.byteLength, 0, 'the partial that owned its buffer moved');
  const whole = Float32Array.of(0, 5, 6, 0);
  const view = whole.subarray(1, 3);
  t.same([...(await member.sum(view))], [6, 7], 'the sum of a view');
  t.same([...whole], [0, 5, 6, 0], "the view's buffer is left whole");
});

t.test("the member's failure arrives coded; leaving fails the sums waiting", async (t) => {
  const { port1, port2 } = new MessageChannel();
  let release: (() => void) | undefined;
  const member: AllReduce = {
    rank: 1,
    size: 2,
    sum: (partial) =>
      partial[0] === 0
        ? Promise.reject(new GroupMemberLostError('member 0 of stage 1 was lost', { stage: 1 }))
        : new Promise((resolve) => {
            release = () => resolve(partial);
          }),
    close: async () => {},
  };
  serveAllReduce(port1, member);
  const proxy = new PortAllReduce({ port: port2, rank: 1, size: 2 });
  t.teardown(() => port1.close());
  await t.rejects(proxy.sum(Float32Array.of(0)), {
    code: GroupMemberLostError.code,
    retryable: true,
    message: /member 0 of stage 1/,
  });
  const waiting = proxy.sum(Float32Array.of(1));
  await proxy.close();
  await t.rejects(waiting, { code: EngineClosedError.code }, 'a pending sum fails on close');
  await t.rejects(
    proxy.sum(Float32Array.of(1)),
    { code: EngineClosedError.code },
    'and later ones',
  );
  release?.();
});
