import { appendFile, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
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

/**
 * Writes `text` at `offset` as one chunk, sent with the sha256 of its file through it:
 * of `before` (the file's bytes before it, `offset` of them) and `text` — or `claimed`.
 */
function chunk(
  cache: ShardCache,
  shardId: string,
  file: string,
  offset: number,
  text: string,
  before = '',
  claimed = sha256(bytes(before + text)),
) {
  if (bytes(before).length !== offset && claimed === sha256(bytes(before + text)))
    throw new Error(`the test gave ${bytes(before).length} bytes before a chunk at ${offset}`);
  return cache.write(shardId, file, offset, bytes(text), claimed);
}

/** A journal line per chunk (the default is one per 4 MiB): each chunk is a resume point. */
const PER_CHUNK = { journalLineBytes: 1 };

t.test('a shard arrives in chunks, is verified, and is found in the cache', async (t) => {
  const cache = new ShardCache(t.testdir());
  const offer = offerOf({ 'model.onnx': 'graph bytes', 'weights.bin': 'weight bytes here' });
  t.notOk(await cache.has(offer));
  t.same(await cache.begin(offer), [], 'nothing held: send everything');
  await chunk(cache, offer.shardId, 'weights.bin', 0, 'weight ');
  await chunk(cache, offer.shardId, 'weights.bin', 7, 'bytes here', 'weight ');
  await chunk(cache, offer.shardId, 'model.onnx', 0, 'graph bytes');
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
    // Each chunk matches the hash it came with, but the whole is not the shard offered.
    await chunk(cache, offer.shardId, 'weights.bin', 0, 'HONEST weights');
    await t.rejects(cache.finish(offer.shardId), { code: 'SWARMBEE_ERR_HASH_MISMATCH' });
    t.same(await cache.list(), [], 'nothing half-verified is left in the cache');
    t.same(await cache.begin(offer), [], 'a shard that failed whole resumes nothing');
    await chunk(cache, offer.shardId, 'weights.bin', 0, 'honest weights');
    const path = await cache.finish(offer.shardId);
    t.ok(await cache.has(offer), 'verified as it arrived, and remembered');
    // Same size, and the modification time put back: its change time still tells.
    const { mtime } = await stat(join(path, 'weights.bin'));
    await writeFile(join(path, 'weights.bin'), 'tampered weigh');
    await utimes(join(path, 'weights.bin'), mtime, mtime);
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
  await t.rejects(chunk(cache, offer.shardId, 'weights.bin', 2, 'xyz', 'ab'), {
    code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
    message: /out of order/,
  });
  await cache.begin(offer);
  await t.rejects(chunk(cache, offer.shardId, 'other.bin', 0, 'x'), {
    code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
  });
});

t.test(
  'BAD CHUNK - a refused chunk fails its shard once; later chunks are dropped quietly and other shards carry on',
  async (t) => {
    const cache = new ShardCache(t.testdir());
    const bad = offerOf({ 'weights.bin': 'abc' });
    const good = offerOf({ 'weights.bin': 'fine weights' });
    await cache.begin(bad);
    await cache.begin(good);
    // Chunks arrive without waiting for each other, as the worker hands them over.
    const writes = [
      chunk(cache, bad.shardId, 'weights.bin', 0, 'a'),
      chunk(cache, bad.shardId, 'weights.bin', 1, 'X', 'a', sha256(bytes('ab'))),
      chunk(cache, bad.shardId, 'weights.bin', 2, 'c', 'ab'),
      chunk(cache, good.shardId, 'weights.bin', 0, 'fine weights'),
    ];
    const outcomes = await Promise.allSettled(writes);
    t.same(
      outcomes.map((o) => o.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
      'one error for the failed shard, none for its later chunks',
    );
    t.match((outcomes[1] as PromiseRejectedResult).reason, {
      code: 'SWARMBEE_ERR_SHARD_CHUNK_CORRUPT',
      retryable: true,
      message: /chunk \[1, 2\) of weights.bin .* resend from byte 1/,
    });
    t.ok(cache.failed(bad.shardId));
    await t.rejects(
      cache.finish(bad.shardId),
      { code: 'SWARMBEE_ERR_SHARD_CHUNK_CORRUPT' },
      'finish names the failure',
    );
    t.equal(await cache.finish(good.shardId), cache.pathOf(good.shardId));
    t.same(await cache.list(), [good.shardId], 'the refused shard is not in the cache');
    t.same(
      await cache.begin(bad),
      [{ file: 'weights.bin', bytes: 1 }],
      'offered again, it resumes at the refused chunk',
    );
    await chunk(cache, bad.shardId, 'weights.bin', 1, 'bc', 'a');
    await cache.finish(bad.shardId);
    t.ok(await cache.has(bad), 'the shard arrives whole');
  },
);

t.test(
  'a transfer cut short resumes from its last verified chunk, here or after a restart',
  async (t) => {
    const dir = t.testdir();
    const offer = offerOf({ 'a.bin': 'aaaabbbbcc', 'b.bin': 'dddd' });
    let cache = new ShardCache(dir, PER_CHUNK);
    await cache.begin(offer);
    await chunk(cache, offer.shardId, 'a.bin', 0, 'aaaa');
    await chunk(cache, offer.shardId, 'a.bin', 4, 'bbbb', 'aaaa');
    // The connection drops: the worker keeps what it verified.
    await cache.suspendAll();
    t.same(await cache.begin(offer), [{ file: 'a.bin', bytes: 8 }], 'resumed on the same cache');
    await cache.suspendAll();

    // The worker restarts; a crash cut the journal's last line short.
    const incoming = join(dir, 'shards', `.incoming-${offer.shardId}`);
    await appendFile(join(incoming, '.journal'), 'a.bin\t8\t2');
    cache = new ShardCache(dir, PER_CHUNK);
    t.same(await cache.begin(offer), [{ file: 'a.bin', bytes: 8 }], 'resumed after a restart');
    await chunk(cache, offer.shardId, 'a.bin', 8, 'cc', 'aaaabbbb');
    await cache.suspendAll();

    // The last chunk's bytes on disk do not match its journal line (lost in a crash): it goes.
    await writeFile(join(incoming, 'a.bin'), 'aaaabbbbXX');
    cache = new ShardCache(dir, PER_CHUNK);
    t.same(
      await cache.begin(offer),
      [{ file: 'a.bin', bytes: 8 }],
      'the damaged last chunk is not trusted',
    );
    await t.rejects(chunk(cache, offer.shardId, 'a.bin', 0, 'aaaa'), {
      code: 'SWARMBEE_ERR_INVALID_ARGUMENT',
      message: /next chunk starts at 8/,
    });
    t.same(await cache.begin(offer), [{ file: 'a.bin', bytes: 8 }]);
    await chunk(cache, offer.shardId, 'a.bin', 8, 'cc', 'aaaabbbb');
    await chunk(cache, offer.shardId, 'b.bin', 0, 'dddd');
    await cache.finish(offer.shardId);
    t.ok(await cache.has(offer), 'whole and verified');
    t.same(
      await readdir(cache.pathOf(offer.shardId)),
      ['.offer.json', '.verified.json', 'a.bin', 'b.bin'].sort(),
      'no journal in the cache; what was verified, by each file stat',
    );

    // A damaged chunk before the journal's last: the prefix ends where the disk stops matching.
    await cache.abort(offer.shardId);
    await cache.begin(offer);
    await chunk(cache, offer.shardId, 'a.bin', 0, 'aaaa');
    await chunk(cache, offer.shardId, 'a.bin', 4, 'bbbb', 'aaaa');
    await chunk(cache, offer.shardId, 'a.bin', 8, 'cc', 'aaaabbbb');
    await cache.suspendAll();
    await writeFile(join(incoming, 'a.bin'), 'aaaaBXbbcc');
    cache = new ShardCache(dir, PER_CHUNK);
    t.same(
      await cache.begin(offer),
      [{ file: 'a.bin', bytes: 4 }],
      'every chunk is checked on resume, not only the last',
    );
    await chunk(cache, offer.shardId, 'a.bin', 4, 'bbbbcc', 'aaaa');
    await chunk(cache, offer.shardId, 'b.bin', 0, 'dddd');
    await cache.finish(offer.shardId);
    t.ok(await cache.has(offer), 'whole after resuming from the damage');

    // The same shard offered differently (another file list) starts afresh.
    const other = { ...offerOf({ 'c.bin': 'eeee' }), shardId: offer.shardId };
    await cache.abort(offer.shardId);
    await cache.begin(offer);
    await chunk(cache, offer.shardId, 'a.bin', 0, 'aaaa');
    await cache.suspendAll();
    t.same(await cache.begin(other), [], 'another offer under the same id resumes nothing');
  },
);

t.test(
  'partial transfers left untouched past their age are evicted; active ones are not',
  async (t) => {
    const dir = t.testdir();
    const cache = new ShardCache(dir, { partialMaxAgeMs: 60_000 });
    const stale = offerOf({ 'a.bin': 'stale' });
    const active = offerOf({ 'a.bin': 'active' });
    await cache.begin(stale);
    await chunk(cache, stale.shardId, 'a.bin', 0, 'st');
    await cache.suspendAll();
    await cache.begin(active);
    const old = new Date(Date.now() - 120_000);
    for (const offer of [stale, active]) {
      const incoming = join(dir, 'shards', `.incoming-${offer.shardId}`);
      await utimes(join(incoming, '.journal'), old, old);
    }
    t.same(await cache.evictPartials(), [stale.shardId], 'only the one not in progress');
    const left = await readdir(join(dir, 'shards'));
    t.same(left, [`.incoming-${active.shardId}`]);
    await cache.list();
    t.same(await cache.begin(stale), [], 'the evicted transfer starts from zero');
  },
);

t.test(
  'the journal has a line per journalLineBytes of a file, at its end, and on suspend',
  async (t) => {
    const dir = t.testdir();
    const offer = offerOf({ 'a.bin': 'aaaabbbbcc' });
    const journal = join(dir, 'shards', `.incoming-${offer.shardId}`, '.journal');
    const lines = async () =>
      (await readFile(journal, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t').slice(0, 3).join(' '));
    let cache = new ShardCache(dir, { journalLineBytes: 6 });
    await cache.begin(offer);
    await chunk(cache, offer.shardId, 'a.bin', 0, 'aaaa');
    await chunk(cache, offer.shardId, 'a.bin', 4, 'bbbb', 'aaaa');
    await cache.suspendAll();
    t.same(await lines(), ['a.bin 0 8'], 'one line for two chunks (8 bytes >= 6)');
    cache = new ShardCache(dir, { journalLineBytes: 6 });
    t.same(await cache.begin(offer), [{ file: 'a.bin', bytes: 8 }], 'resumed from the line');
    await cache.suspendAll();

    await cache.abort(offer.shardId);
    cache = new ShardCache(dir, { journalLineBytes: 6 });
    await cache.begin(offer);
    await chunk(cache, offer.shardId, 'a.bin', 0, 'aaaa');
    await cache.suspendAll();
    t.same(await lines(), ['a.bin 0 4'], 'a suspended transfer journals what it wrote since');
    cache = new ShardCache(dir, { journalLineBytes: 6 });
    t.same(await cache.begin(offer), [{ file: 'a.bin', bytes: 4 }]);
    await chunk(cache, offer.shardId, 'a.bin', 4, 'bbbb', 'aaaa');
    await chunk(cache, offer.shardId, 'a.bin', 8, 'cc', 'aaaabbbb');
    await cache.suspendAll();
    t.same(await lines(), ['a.bin 0 4', 'a.bin 4 6'], "the file's end closes a line");
    cache = new ShardCache(dir, { journalLineBytes: 6 });
    t.same(await cache.begin(offer), [{ file: 'a.bin', bytes: 10 }], 'all of it held');
    await cache.finish(offer.shardId);
    t.ok(await cache.has(offer));
  },
);
