/**
 * The data plane's all-reduce between members on real sockets: sums equal to the rank-order
 * reference on every member, star and ring bit for bit alike; a lost member, a timeout and
 * a mismatched or malformed part are coded errors on the others, never a silent sum.
 */
import { fork } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import {
  AbortedError,
  AllReducePartMismatchError,
  ChannelClosedError,
  GroupMemberLostError,
  InvalidArgumentError,
  sumInOrder,
  TimeoutError,
} from '@swarmbee/core';
import {
  connect,
  DataPlaneAllReduce,
  float32Tensor,
  GROUP_EVENTS,
  type GroupMemberLostEvent,
  linkedRanks,
  type TensorGroup,
} from '@swarmbee/protocol';
import t, { type Test } from 'tap';
import { groupServers, partials, startGroup } from './helpers/group.js';
import { TOKEN, within } from './helpers/net.js';

const bits = (values: Float32Array) =>
  Buffer.from(values.buffer, values.byteOffset, values.byteLength);

for (const algorithm of ['star', 'ring'] as const) {
  for (const size of [2, 3, 4]) {
    t.test(
      `${algorithm} k=${size}: every member gets the rank-order sum, sum after sum`,
      async (t) => {
        const { members } = await startGroup(t, size, algorithm);
        // Lengths: a hidden state, one not divisible by k, one element, a prefill chunk's.
        for (const [i, length] of [288, 1001, 1, 288, 4 * 768].entries()) {
          const parts = partials(size, length, 100 * size + i);
          const expected = sumInOrder(
            parts.map((p) => p.slice()),
            new Float32Array(length),
          );
          const inputs = parts.map((p) => p.slice());
          const sums = await within(
            Promise.all(members.map((member, rank) => member.sum(inputs[rank]!))),
            5_000,
            'sums',
          );
          sums.forEach((sum, rank) => {
            t.equal(sum, inputs[rank], `member ${rank} gets its partial back, overwritten`);
            t.ok(bits(sum).equals(bits(expected)), `member ${rank}: sum ${i} equals the reference`);
          });
        }
        t.same(
          members.map((m) => m.sums),
          members.map(() => 5),
        );
      },
    );
  }
}

t.test('star and ring give the same bits, and differ from a sum in another order', async (t) => {
  const length = 4096;
  const parts = partials(4, length, 7);
  const results: Buffer[] = [];
  for (const algorithm of ['star', 'ring'] as const) {
    const { members } = await startGroup(t, 4, algorithm);
    const inputs = parts.map((p) => p.slice());
    await Promise.all(members.map((member, rank) => member.sum(inputs[rank]!)));
    results.push(Buffer.from(bits(inputs[0]!)));
    for (const input of inputs.slice(1)) t.ok(bits(input).equals(results.at(-1)!), 'members agree');
  }
  t.ok(results[0]!.equals(results[1]!), 'star and ring: the same bits');
  const reversed = sumInOrder(
    [...parts].reverse().map((p) => p.slice()),
    new Float32Array(length),
  );
  t.notOk(bits(reversed).equals(results[0]!), 'the order matters, so the test could fail');
});

t.test('links: each pair once, dialed by the higher rank', async (t) => {
  const star: TensorGroup = { id: 'g', stage: 0, members: ['a', 'b', 'c', 'd'], algorithm: 'star' };
  t.same(linkedRanks(star, 0), [1, 2, 3]);
  t.same(linkedRanks(star, 2), [0]);
  const ring = { ...star, algorithm: 'ring' as const };
  t.same(linkedRanks(ring, 0), [1, 3]);
  t.same(linkedRanks(ring, 2), [1, 3]);
  t.same(linkedRanks({ ...ring, members: ['a', 'b'] }, 1), [0]);
});

t.test(
  'a member that leaves mid-sum: the others reject with a coded, retryable error',
  async (t) => {
    for (const algorithm of ['star', 'ring'] as const) {
      const { members, group } = await startGroup(t, 3, algorithm, { sumTimeoutMs: 5_000 });
      const lost: GroupMemberLostEvent[] = [];
      const onLost = (event: unknown) => lost.push(event as GroupMemberLostEvent);
      subscribe(GROUP_EVENTS.memberLost, onLost);
      t.teardown(() => unsubscribe(GROUP_EVENTS.memberLost, onLost));
      const pending = [0, 1].map((rank) =>
        members[rank]!.sum(new Float32Array(64)).then(
          () => undefined,
          (error: unknown) => error,
        ),
      );
      await members[2]!.close();
      const errors = await within(Promise.all(pending), 2_000, 'rejections');
      for (const error of errors) {
        t.ok(error instanceof GroupMemberLostError, `${algorithm}: ${String(error)}`);
        t.match(error, { code: GroupMemberLostError.code, retryable: true, stage: group.stage });
        t.match(String((error as Error).message), /member \d/, 'names a member');
      }
      t.ok(lost.length >= 2, `${algorithm}: member-lost events published`);
      await t.rejects(members[0]!.sum(new Float32Array(64)), { code: GroupMemberLostError.code });
    }
  },
);

t.test('a member that never sums: the others time out within their step timeout', async (t) => {
  const { members } = await startGroup(t, 2, 'star', { sumTimeoutMs: 300 });
  const started = performance.now();
  await t.rejects(members[0]!.sum(new Float32Array(8)), {
    code: TimeoutError.code,
    retryable: true,
  });
  const took = performance.now() - started;
  t.ok(took >= 290 && took < 2_000, `timed out after ${took.toFixed(0)} ms`);
  // The timed-out member told its peer why, so the peer fails too, without waiting.
  await t.rejects(within(members[1]!.sum(new Float32Array(8)), 1_000, 'peer'), {
    code: TimeoutError.code,
  });
});

t.test('abort, one sum at a time, close', async (t) => {
  const { members } = await startGroup(t, 2, 'ring');
  await t.rejects(members[0]!.sum(new Float32Array(4), AbortSignal.abort()), {
    code: AbortedError.code,
  });
  const other = await startGroup(t, 2, 'star');
  const first = t.rejects(other.members[0]!.sum(new Float32Array(4)), {
    code: ChannelClosedError.code,
  });
  await t.rejects(other.members[0]!.sum(new Float32Array(4)), { code: InvalidArgumentError.code });
  await other.members[0]!.close();
  await first;
});

/** A group of 2 whose rank 1 is this test, speaking raw parts over its own link. */
async function impostor(t: Test) {
  const { servers, hubs } = await groupServers(t, 2);
  const group: TensorGroup = {
    id: 'g-raw',
    stage: 3,
    members: servers.map((s) => s.url),
    algorithm: 'star',
  };
  const joining = DataPlaneAllReduce.join({ group, rank: 0, token: TOKEN, hub: hubs[0]! });
  const link = await connect(group.members[0]!, {
    token: TOKEN,
    role: 'stage',
    name: 'g-raw/1',
    checkOutgoing: false,
  });
  t.teardown(() => link.close());
  link.send({ type: 'group.join', group: group.id, rank: 1, size: 2 });
  const leader = await joining;
  t.teardown(() => leader.close());
  const part = (fields: Record<string, unknown>) => ({
    type: 'allreduce.part' as const,
    group: group.id,
    seq: 0,
    round: 0,
    from: 1,
    offset: 0,
    length: 4,
    values: float32Tensor(new Float32Array([1, 2, 3, 4]), [4]),
    ...fields,
  });
  return { leader, link, part };
}

t.test('a raw member whose parts are right is summed', async (t) => {
  const { leader, link, part } = await impostor(t);
  link.send(part({}));
  const sum = await within(leader.sum(new Float32Array([0.5, 0.5, 0.5, 0.5])), 2_000, 'sum');
  t.same([...sum], [1.5, 2.5, 3.5, 4.5]);
});

const MISMATCHES: [string, Record<string, unknown>][] = [
  ['a later sum', { seq: 1 }],
  ['another group', { group: 'g-other' }],
  ['another sender rank', { from: 0 }],
  ['a round the leader does not take', { round: 1 }],
  ['another length', { length: 5, values: float32Tensor(new Float32Array(5), [5]) }],
  ['part of the vector', { length: 8 }],
];

for (const [what, fields] of MISMATCHES) {
  t.test(`a part of ${what} is refused with a coded error, never summed`, async (t) => {
    const { leader, link, part } = await impostor(t);
    const errors: unknown[] = [];
    link.on('message', (message) => errors.push(message));
    link.send(part(fields));
    await t.rejects(within(leader.sum(new Float32Array(4)), 2_000, 'sum'), {
      code: AllReducePartMismatchError.code,
      stage: 3,
    });
    await link.closed;
    t.match(errors, [{ type: 'error', code: AllReducePartMismatchError.code }], 'told why');
  });
}

t.test('a malformed part closes its link; the member reports the member lost', async (t) => {
  const { leader, link, part } = await impostor(t);
  // Two dims where a part has one: refused by the frame's structural check on arrival.
  link.send(part({ values: float32Tensor(new Float32Array(4), [2, 2]) }));
  await t.rejects(within(leader.sum(new Float32Array(4)), 2_000, 'sum'), {
    code: /SWARMBEE_ERR_(GROUP_MEMBER_LOST|MESSAGE_SCHEMA)/,
  });
});

t.test('a member process killed mid-sum: the others reject within their timeout', async (t) => {
  const child = fork(new URL('./helpers/group-member-child.ts', import.meta.url), [], {
    // Only what runs TypeScript from source: tap's own loaders stay in the test process.
    execArgv: ['--import=tsx', '--conditions=swarmbee:source'],
    env: { ...process.env, SWARMBEE_TEST_TOKEN: TOKEN },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const reply = async <T>(): Promise<T> => {
    const [message] = await within(once(child, 'message'), 20_000, 'member process');
    return message as T;
  };
  const { url } = await reply<{ url: string }>();
  const { servers, hubs } = await groupServers(t, 2);
  const group: TensorGroup = {
    id: 'g-process',
    stage: 2,
    members: [servers[0]!.url, servers[1]!.url, url],
    algorithm: 'ring',
  };
  child.send({ cmd: 'join', group, rank: 2 });
  const members = await Promise.all(
    [0, 1].map((rank) =>
      DataPlaneAllReduce.join({
        group,
        rank,
        token: TOKEN,
        hub: hubs[rank]!,
        sumTimeoutMs: 10_000,
      }),
    ),
  );
  t.teardown(() => Promise.all(members.map((member) => member.close())));
  t.same(await reply(), { joined: true });

  // One sum with the process taking part: the rank-order sum on every member.
  const parts = partials(3, 100, 11);
  const expected = sumInOrder(
    parts.map((p) => p.slice()),
    new Float32Array(100),
  );
  child.send({ cmd: 'sum', values: [...parts[2]!] });
  const local = await Promise.all([0, 1].map((rank) => members[rank]!.sum(parts[rank]!.slice())));
  const remote = await reply<{ sum: number[] }>();
  for (const sum of [...local, Float32Array.from(remote.sum)])
    t.ok(bits(sum).equals(bits(expected)), 'the sum over processes equals the reference');

  // The next sum waits for the process; it dies instead.
  const started = performance.now();
  const pending = [0, 1].map((rank) =>
    members[rank]!.sum(new Float32Array(100)).then(
      () => undefined,
      (error: unknown) => error,
    ),
  );
  child.kill('SIGKILL');
  const errors = await within(Promise.all(pending), 10_000, 'rejections');
  const took = performance.now() - started;
  for (const error of errors)
    t.match(error, { code: GroupMemberLostError.code, retryable: true, stage: 2 });
  t.ok(took < 5_000, `both rejected after ${took.toFixed(0)} ms, within the 10 s sum timeout`);
});
