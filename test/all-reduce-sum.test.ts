import { sumInOrder } from '@swarmbee/core';
import t from 'tap';

t.test('sumInOrder adds the parts in the order given, into out or into the first part', (t) => {
  const a = new Float32Array([1e8, 1, -2]);
  const b = new Float32Array([1, 2, 3]);
  const c = new Float32Array([-1e8, 3, 4]);
  const out = new Float32Array(3);
  t.same(
    [...sumInOrder([a, b, c], out)],
    [0, 6, 5],
    '(1e8 + 1) - 1e8 is 0 in fp32: the order is kept',
  );
  t.same([...sumInOrder([a, c, b], out)], [1, 6, 5], 'another order, another fp32 result');
  t.same([...a], [1e8, 1, -2], 'the parts are untouched when out is apart');
  t.equal(sumInOrder([a, b], a), a, 'out may be the first part');
  t.same([...a], [Math.fround(1e8 + 1), 3, 1], 'the sum, rounded to fp32');
  t.throws(() => sumInOrder([a, b], b), RangeError, 'out may not be a later part');
  t.throws(() => sumInOrder([a, new Float32Array(2)], out), RangeError, 'lengths must agree');
  t.throws(() => sumInOrder([], out), RangeError);
  t.end();
});
