/** The split arithmetic of tensor-parallel groups: even, uneven, and the splits it refuses. */
import { TensorSplitError } from '@swarmbee/core';
import t from 'tap';
import { apportion, splitTensors, wholeSlice } from '../src/tensor-slice.js';

const STORIES = { nKvHeads: 4, hiddenDim: 172, vocabSize: 512 };

t.test('even splits cover every head and column once, in rank order', async (t) => {
  for (const degree of [1, 2, 4]) {
    const slices = splitTensors(STORIES, { weights: Array(degree).fill(1), columnGranularity: 8 });
    t.equal(slices.length, degree);
    t.equal(slices[0]!.kvHeads.start, 0);
    t.equal(slices[0]!.columns.start, 0);
    t.equal(slices.at(-1)!.kvHeads.end, 4);
    t.equal(slices.at(-1)!.columns.end, 172);
    for (let r = 1; r < degree; r++) {
      t.equal(slices[r]!.kvHeads.start, slices[r - 1]!.kvHeads.end, 'heads are contiguous');
      t.equal(slices[r]!.columns.start, slices[r - 1]!.columns.end, 'columns are contiguous');
      t.equal(slices[r]!.columns.start % 8, 0, 'columns start on a unit');
    }
    for (const s of slices) t.equal(s.kvHeads.end - s.kvHeads.start, 4 / degree);
  }
  t.same(splitTensors(STORIES, { weights: [3] })[0], wholeSlice(STORIES));
});

t.test('speeds 2:1:1 give KV heads 2, 1, 1 and columns in proportion', async (t) => {
  const slices = splitTensors(
    { nKvHeads: 4, hiddenDim: 1024, vocabSize: 1000 },
    { weights: [2, 1, 1], columnGranularity: 32, splitVocab: true },
  );
  t.same(
    slices.map((s) => s.kvHeads),
    [
      { start: 0, end: 2 },
      { start: 2, end: 3 },
      { start: 3, end: 4 },
    ],
  );
  t.same(
    slices.map((s) => s.columns),
    [
      { start: 0, end: 512 },
      { start: 512, end: 768 },
      { start: 768, end: 1024 },
    ],
  );
  t.same(
    slices.map((s) => s.vocab),
    [
      { start: 0, end: 512 },
      { start: 512, end: 768 },
      { start: 768, end: 1000 },
    ],
    'vocabulary rows in proportion, in units of 32, the last unit short',
  );
  t.notOk(
    'vocab' in splitTensors(STORIES, { weights: [1, 1] })[0]!,
    'no vocabulary split unless asked',
  );
});

t.test('apportion: largest remainder, at least one each, ties to the lower rank', async (t) => {
  t.same(apportion(4, [1, 1, 1]), [2, 1, 1]);
  t.same(apportion(6, [2, 1, 1]), [3, 2, 1]);
  t.same(apportion(3, [100, 1, 1]), [1, 1, 1], 'every member gets one');
  t.same(apportion(10, [0.25, 0.25, 0.25, 0.25]), [3, 3, 2, 2]);
  t.same(apportion(5, [9, 1]), [4, 1]);
});

t.test('BAD SPLIT - refused with the numbers named', async (t) => {
  const refused = (weights: number[], message: RegExp, granularity?: number) =>
    t.throws(
      () =>
        splitTensors(STORIES, {
          weights,
          ...(granularity === undefined ? {} : { columnGranularity: granularity }),
        }),
      { code: TensorSplitError.code, message },
    );
  refused([1, 1, 1, 1, 1], /4 KV heads across 5 members/);
  refused([], /at least one member/);
  refused([1, 0], /member 1's weight must be positive/);
  refused([1, Number.NaN], /member 1's weight/);
  refused([1, 1, 1], /172 feed-forward columns in units of 100 \(2 units\) across 3/, 100);
  refused([1, 1], /granularity must be a positive integer, got 0/, 0);
  t.throws(
    () =>
      splitTensors(
        { nKvHeads: 4, hiddenDim: 172, vocabSize: 30 },
        { weights: [1, 1, 1], columnGranularity: 16, splitVocab: true },
      ),
    {
      code: TensorSplitError.code,
      message: /30 vocabulary rows in units of 16 \(2 units\) across 3/,
    },
    'a vocabulary too small to split is refused too',
  );
  t.ok(new TensorSplitError('x') instanceof Error);
});
