/**
 * The all-reduce cost model: each term where the algorithm puts it. The benchmark
 * (`npm run bench -- parallel --parts allreduce`) checks it against measured sums.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import { type AllReduceCostInput, fasterAllReduce, predictAllReduceMs } from '@swarmbee/planner';
import t, { type Test } from 'tap';

const base: AllReduceCostInput = {
  algorithm: 'star',
  members: 2,
  elements: 0,
  oneWayMs: 0,
  bytesPerSecond: Number.POSITIVE_INFINITY,
  perPartMs: 0,
};
const near = (t: Test, got: number, want: number, what: string) =>
  t.ok(Math.abs(got - want) < 1e-9, `${what}: ${got} ≈ ${want}`);

t.test('latency: star pays 2 one-way trips, a pair exchange 1, a ring 2(k − 1)', async (t) => {
  const latency = { ...base, oneWayMs: 1 };
  for (const k of [2, 3, 4, 8])
    near(t, predictAllReduceMs({ ...latency, members: k }), 2, `star k=${k}`);
  near(t, predictAllReduceMs({ ...latency, algorithm: 'ring' }), 1, 'ring k=2');
  for (const k of [3, 4, 8])
    near(
      t,
      predictAllReduceMs({ ...latency, algorithm: 'ring', members: k }),
      2 * (k - 1),
      `ring k=${k}`,
    );
});

t.test(
  'bandwidth: the vector crosses twice (star), once (exchange), ~3 − 3/k times (ring)',
  async (t) => {
    // 1 MB/s and 250,000 fp32 elements: 1 s per vector, framing aside.
    const wire = { ...base, elements: 250_000, bytesPerSecond: 1e6 };
    const framing = 128 / 1e3;
    near(t, predictAllReduceMs({ ...wire, members: 4 }), 2 * (1000 + framing), 'star, own links');
    near(
      t,
      predictAllReduceMs({ ...wire, members: 4, sharedPort: true }),
      6 * (1000 + framing),
      'star, one port at rank 0',
    );
    near(t, predictAllReduceMs({ ...wire, algorithm: 'ring' }), 1000 + framing, 'exchange');
    // k = 4: 4 chunks onto the first link, then 5 crossings: 9 chunk times of 250 ms.
    near(
      t,
      predictAllReduceMs({ ...wire, algorithm: 'ring', members: 4 }),
      9 * (250 + framing),
      'ring k=4',
    );
  },
);

t.test('CPU per part: rank 0 of a star handles 2(k − 1) parts', async (t) => {
  const cpu = { ...base, perPartMs: 0.01 };
  near(t, predictAllReduceMs({ ...cpu, members: 4 }), 0.08, 'star k=4');
  near(t, predictAllReduceMs({ ...cpu, algorithm: 'ring' }), 0.02, 'exchange');
  near(t, predictAllReduceMs({ ...cpu, algorithm: 'ring', members: 3 }), 0.1, 'ring k=3');
});

t.test('the faster algorithm: star on slow-latency links, ring when bandwidth rules', async (t) => {
  const edge = { members: 4, oneWayMs: 2, bytesPerSecond: 12.5e6, perPartMs: 0.02 };
  t.equal(fasterAllReduce({ ...edge, elements: 2048 }).algorithm, 'star', 'a hidden state');
  t.equal(
    fasterAllReduce({ ...edge, elements: 2048 * 4096, sharedPort: true }).algorithm,
    'ring',
    'a long prefill through one port',
  );
});

t.test('refused inputs', async (t) => {
  t.throws(() => predictAllReduceMs({ ...base, members: 1 }), { code: InvalidArgumentError.code });
  t.throws(() => predictAllReduceMs({ ...base, bytesPerSecond: 0 }), {
    code: InvalidArgumentError.code,
  });
  t.throws(() => predictAllReduceMs({ ...base, oneWayMs: -1 }), {
    code: InvalidArgumentError.code,
  });
});
