/**
 * The thread hop's copies: a received frame's buffer moves to the stage thread whole when
 * the batch says it may (no copy), a view into a buffer that is not the batch's to give is
 * copied and left intact; both give the same hidden state.
 */
import { join } from 'node:path';
import { ThreadedStage } from '@swarmbee/engine';
import { buildShard, importLlama2c } from '@swarmbee/model';
import t from 'tap';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';

t.test('a movable view moves to the stage thread with its buffer; others are copied', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const dir = await importLlama2c({
    checkpoint: STORIES260K.checkpoint,
    tokenizer: STORIES260K.tokenizer,
    out: join(t.testdir(), 'm'),
  });
  const first = await ThreadedStage.create(buildShard(dir, { start: 0, end: 2 }), {
    intraOpThreads: 1,
  });
  t.teardown(() => first.close());
  const rows = (seqId: string) => [{ seqId, start: 0, count: 1 }];
  /** Token id 1 (BOS) at offset 8 of a 24-byte "frame". */
  const frame = () => {
    const buffer = new ArrayBuffer(24);
    const tokens = new BigInt64Array(buffer, 8, 1);
    tokens[0] = 1n;
    return tokens;
  };
  const kept = frame();
  const copied = await first.forward({ rows: rows('a'), tokens: kept });
  t.equal(kept.buffer.byteLength, 24, 'a view not marked movable is copied, its buffer intact');
  const moved = frame();
  const handed = await first.forward({ rows: rows('b'), tokens: moved, buffersMovable: true });
  t.equal(moved.buffer.byteLength, 0, 'a movable view went to the thread with its buffer');
  if (copied.kind !== 'hidden' || handed.kind !== 'hidden') throw new Error('not hidden');
  t.same(Array.from(handed.hidden), Array.from(copied.hidden), 'the same hidden state');
});
