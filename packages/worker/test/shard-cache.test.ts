import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@swarmbee/model';
import t from 'tap';
import { ShardCache } from '../src/shard-cache.js';

const bytes = (text: string) => new TextEncoder().encode(text);

function offerOf(files: Record<string, string>) {
  const list = Object.entries(files).map(([name, text]) => ({
    name,
    bytes: bytes(text).length,
    sha256: sha256(bytes(text)),
  }));
  return {
    shardId: sha256(list.map((f) => f.sha256).join('')),
    bytes: list.reduce((n, f) => n + f.bytes, 0),
    files: list,
  };
}

t.test('a shard arrives in chunks, is verified, and is found in the cache', async (t) => {
  const cache = new ShardCache(t.testdir());
  const offer = offerOf({ 'model.onnx': 'graph bytes', 'weights.bin': 'weight bytes here' });
  t.notOk(await cache.has(offer));
  await cache.begin(offer);
  await cache.write(offer.shardId, 'weights.bin', 7, bytes('bytes here'));
  await cache.write(offer.shardId, 'weights.bin', 0, bytes('weight '));
  await cache.write(offer.shardId, 'model.onnx', 0, bytes('graph bytes'));
  const path = await cache.finish(offer.shardId);
  t.ok(await cache.has(offer));
  t.same(await cache.list(), [offer.shardId]);
  t.equal(path, cache.pathOf(offer.shardId));
  t.same(await cache.offerOf(offer.shardId), offer);
});

t.test(
  'BAD SHARD - corrupt bytes never reach the cache, and tampering is caught before loading',
  async (t) => {
    const cache = new ShardCache(t.testdir());
    const offer = offerOf({ 'weights.bin': 'honest weights' });
    await cache.begin(offer);
    await cache.write(offer.shardId, 'weights.bin', 0, bytes('HONEST weights'));
    await t.rejects(cache.finish(offer.shardId), { code: 'SWARMBEE_ERR_HASH_MISMATCH' });
    t.same(await cache.list(), [], 'nothing half-verified is left in the cache');
    await cache.begin(offer);
    await cache.write(offer.shardId, 'weights.bin', 0, bytes('honest weights'));
    const path = await cache.finish(offer.shardId);
    await writeFile(join(path, 'weights.bin'), 'tampered weigh');
    await t.rejects(cache.verify(offer), { code: 'SWARMBEE_ERR_HASH_MISMATCH' });
    t.notOk(await cache.has(offer));
  },
);

t.test('BAD SHARD - ids and file names cannot leave the cache dir', async (t) => {
  const cache = new ShardCache(t.testdir());
  t.throws(() => cache.pathOf('../../etc'), { code: 'SWARMBEE_ERR_INVALID_ARGUMENT' });
  t.throws(
    () => cache.pathOf('A'.repeat(64)),
    { code: 'SWARMBEE_ERR_INVALID_ARGUMENT' },
    'upper case is not a sha256 id',
  );
  for (const name of ['../escape', 'sub/dir', '.offer.json', '..', '']) {
    const offer = {
      shardId: 'a'.repeat(64),
      bytes: 1,
      files: [{ name, bytes: 1, sha256: 'b'.repeat(64) }],
    };
    await t.rejects(
      cache.begin(offer),
      { code: 'SWARMBEE_ERR_INVALID_ARGUMENT' },
      `file name ${JSON.stringify(name)}`,
    );
  }
  const offer = offerOf({ 'weights.bin': 'abc' });
  await cache.begin(offer);
  await t.rejects(cache.write(offer.shardId, 'weights.bin', 2, bytes('xyz')), {
    code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
    message: /outside/,
  });
  await cache.begin(offer);
  await t.rejects(cache.write(offer.shardId, 'other.bin', 0, bytes('x')), {
    code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
  });
});

t.test(
  'BAD CHUNK - a failed write fails its shard once; later chunks are dropped quietly and other shards carry on',
  async (t) => {
    const cache = new ShardCache(t.testdir());
    const bad = offerOf({ 'weights.bin': 'abc' });
    const good = offerOf({ 'weights.bin': 'fine weights' });
    await cache.begin(bad);
    await cache.begin(good);
    // Chunks arrive without waiting for each other, as the worker hands them over.
    const writes = [
      cache.write(bad.shardId, 'weights.bin', 2, bytes('xyz')),
      cache.write(bad.shardId, 'weights.bin', 0, bytes('a')),
      cache.write(bad.shardId, 'weights.bin', 1, bytes('b')),
      cache.write(good.shardId, 'weights.bin', 0, bytes('fine weights')),
    ];
    const outcomes = await Promise.allSettled(writes);
    t.same(
      outcomes.map((o) => o.status),
      ['rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
      'one error for the failed shard, none for its later chunks',
    );
    await t.rejects(cache.finish(bad.shardId), { message: /outside/ }, 'finish names the failure');
    t.equal(await cache.finish(good.shardId), cache.pathOf(good.shardId));
    t.same(await cache.list(), [good.shardId], 'the failed shard left nothing behind');
    await cache.begin(bad);
    await cache.write(bad.shardId, 'weights.bin', 0, bytes('abc'));
    await cache.finish(bad.shardId);
    t.ok(await cache.has(bad), 'offered again, the shard arrives whole');
    // shard.done right behind a chunk that will fail: finish reports that chunk's failure.
    const late = offerOf({ 'weights.bin': 'late' });
    await cache.begin(late);
    const failing = cache.write(late.shardId, 'weights.bin', 3, bytes('xy'));
    const finishing = cache.finish(late.shardId);
    await t.rejects(failing, { message: /outside/ });
    await t.rejects(finishing, { message: /outside/ });
    t.notOk(await cache.has(late));
  },
);
