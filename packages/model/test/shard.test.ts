import { join } from 'node:path';
import { StageLayoutError } from '@swarmbee/core';
import { evenRanges, openShard, SYNTH_PRESETS, synthesizeModel, writeShard } from '@swarmbee/model';
import t from 'tap';
import { shardTensorNames } from '../src/shard.js';

t.test('even ranges cover every layer with sizes differing by at most one', async (t) => {
  for (let layers = 1; layers <= 13; layers++) {
    for (let stages = 1; stages <= layers; stages++) {
      const ranges = evenRanges(layers, stages);
      t.equal(ranges.length, stages);
      t.equal(ranges[0]!.start, 0);
      t.equal(ranges.at(-1)!.end, layers);
      const sizes = ranges.map((r) => r.end - r.start);
      t.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
      for (let i = 1; i < ranges.length; i++) t.equal(ranges[i]!.start, ranges[i - 1]!.end);
    }
  }
  t.throws(() => evenRanges(5, 6), { code: StageLayoutError.code, message: /between 1 and 5/ });
  t.throws(() => evenRanges(5, 0), { code: StageLayoutError.code });
});

t.test(
  'shards carry the embedding first, the head last, and a tied head on a later stage',
  async (t) => {
    const config = SYNTH_PRESETS.tiny.config;
    t.same(shardTensorNames(config, { start: 0, end: 1 }).slice(0, 2), [
      'tok_embeddings',
      'layers.0.attn_norm',
    ]);
    t.same(
      shardTensorNames(config, { start: 3, end: 5 }).slice(0, 1),
      ['tok_embeddings'],
      'the tied head needs the embedding',
    );
    t.ok(shardTensorNames(config, { start: 3, end: 5 }).includes('norm'));
    t.notOk(
      shardTensorNames(config, { start: 1, end: 3 }).some(
        (n) => n === 'norm' || n === 'tok_embeddings',
      ),
    );
  },
);

t.test('a written shard holds only its own weights and records its hashes', async (t) => {
  const root = t.testdir();
  const dir = await synthesizeModel({
    config: SYNTH_PRESETS.tiny.config,
    seed: 1,
    out: join(root, 'm'),
  });
  const manifest = await writeShard(dir, { start: 1, end: 3 }, join(root, 'shard'));
  t.equal(manifest.layerStart, 1);
  t.equal(manifest.layerEnd, 3);
  t.equal(
    manifest.files.find((f) => f.name === 'weights.bin')?.bytes,
    dir.manifest.layers[1]!.paramBytes + dir.manifest.layers[2]!.paramBytes,
  );
  t.match(manifest.shardId, /^[0-9a-f]{64}$/);
  const again = await openShard(join(root, 'shard'));
  t.equal(again.manifest.shardId, manifest.shardId);
  await t.rejects(writeShard(dir, { start: 3, end: 3 }, join(root, 'empty')), {
    code: StageLayoutError.code,
  });
  await t.rejects(writeShard(dir, { start: 0, end: 6 }, join(root, 'beyond')), {
    code: StageLayoutError.code,
  });
});
