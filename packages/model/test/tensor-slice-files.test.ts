/**
 * Written member shards: the manifest records the slice, the id covers it (two slices of
 * one range never share a cache entry), and opening verifies every file and the id.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ShardInvalidError, TensorSplitError } from '@swarmbee/core';
import {
  buildSliceShard,
  openSliceShard,
  SHARD_MANIFEST_FILE,
  SLICE_SEGMENT_FILES,
  SYNTH_PRESETS,
  splitTensors,
  synthesizeModel,
  writeSliceShard,
} from '@swarmbee/model';
import t from 'tap';

t.test('member shards: slice recorded, ids differ per slice, files verified on open', async (t) => {
  const root = t.testdir();
  const { config } = SYNTH_PRESETS.tiny;
  const dir = await synthesizeModel({ config, seed: 1, out: join(root, 'm') });
  const range = { start: 3, end: 5 };
  const [lead, other] = splitTensors(config, { weights: [1, 1] });
  const a = await writeSliceShard(dir, range, lead!, join(root, 'a'));
  const b = await writeSliceShard(dir, range, other!, join(root, 'b'));
  t.same(a.slice, lead);
  t.same(b.slice, other);
  t.not(a.shardId, b.shardId, 'two slices of one range, two ids');
  t.ok(
    a.files.some((f) => f.name === SLICE_SEGMENT_FILES.head),
    'the leader holds the head',
  );
  t.notOk(
    b.files.some((f) => f.name === SLICE_SEGMENT_FILES.head),
    'the other member does not',
  );
  const again = await writeSliceShard(dir, range, lead!, join(root, 'a2'));
  t.equal(again.shardId, a.shardId, 'the same slice writes the same shard');

  const { shard } = await openSliceShard(join(root, 'a'));
  t.equal(shard.layers.length, 2);
  t.same(shard.slice, lead);
  t.ok(shard.head, 'the opened leader shard has its head');
  t.notOk(shard.embedding, 'and no embedding: its range starts at layer 3');

  // A manifest edited to claim the other slice no longer matches its id.
  const manifestPath = join(root, 'a', SHARD_MANIFEST_FILE);
  const original = await readFile(manifestPath, 'utf8');
  await writeFile(manifestPath, JSON.stringify({ ...JSON.parse(original), slice: other }));
  await t.rejects(openSliceShard(join(root, 'a')), {
    code: ShardInvalidError.code,
    message: /does not match its slice/,
  });
  await writeFile(manifestPath, original);
  // A changed segment fails its hash.
  const segment = join(root, 'a', SLICE_SEGMENT_FILES.attention(3));
  const bytes = await readFile(segment);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
  await writeFile(segment, bytes);
  await t.rejects(openSliceShard(join(root, 'a')), {
    code: ShardInvalidError.code,
    message: /layer\.3\.attention\.onnx does not match its hash/,
  });
});

t.test('BAD SLICE - a slice outside the model is refused by code', async (t) => {
  const root = t.testdir();
  const { config } = SYNTH_PRESETS.tiny;
  const dir = await synthesizeModel({ config, seed: 1, out: join(root, 'm') });
  const range = { start: 0, end: 1 };
  const slice = {
    degree: 2,
    rank: 0,
    kvHeads: { start: 0, end: 2 },
    columns: { start: 0, end: 86 },
  };
  await t.rejects(buildSliceShard(dir, range, { ...slice, kvHeads: { start: 2, end: 5 } }), {
    code: TensorSplitError.code,
    message: /KV heads \[2, 5\) are not a non-empty range of the model's 4/,
  });
  await t.rejects(buildSliceShard(dir, range, { ...slice, rank: 2 }), {
    code: TensorSplitError.code,
    message: /rank 2 is not a member of a group of 2/,
  });
  await t.rejects(buildSliceShard(dir, range, slice, { kvDtype: 'float16' }), {
    code: TensorSplitError.code,
    message: /float16/,
  });
});
