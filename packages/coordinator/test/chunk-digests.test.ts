/**
 * Chunk digests recorded by a shard's writer: the sender takes them instead of hashing the
 * file on its first send, as long as the file is the one they were taken of.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CHUNK_DIGESTS_FILE,
  ChunkedSha256,
  openModelDir,
  SHARD_CHUNK_BYTES,
  SYNTH_PRESETS,
  synthesizeModel,
  writeChunkDigests,
  writeShard,
} from '@swarmbee/model';
import t from 'tap';
import { ChunkDigests } from '../src/cluster/chunk-digests.js';

const CHUNK = 1000;

/** sha256 of `data`'s bytes [0, end). */
const prefix = (data: Uint8Array, end: number) =>
  createHash('sha256').update(data.subarray(0, end)).digest('hex');

t.test(
  'recorded digests are each chunk’s running sha256, taken without hashing again',
  async (t) => {
    const dir = t.testdir();
    const data = randomFillSync(new Uint8Array(5500));
    const hash = new ChunkedSha256(CHUNK);
    // Fed in pieces that straddle the chunk boundaries, as a writer's copy buffer does.
    for (let at = 0; at < data.length; at += 1300) hash.update(data.subarray(at, at + 1300));
    t.equal(hash.digest(), prefix(data, data.length), "the last digest is the file's own");
    const expected = [1000, 2000, 3000, 4000, 5000, 5500].map((end) => prefix(data, end));
    t.same(hash.digests, expected);
    await writeFile(join(dir, 'w.bin'), data);
    await writeChunkDigests(dir, CHUNK, [{ name: 'w.bin', digests: hash.digests }]);

    const recorded = await ChunkDigests.of(join(dir, 'w.bin'), CHUNK);
    t.same(recorded.entry.digests, expected, 'taken from the record, before any chunk is read');
    t.equal(await recorded.through(2000, data.subarray(2000, 3000)), expected[2]);
    const otherSize = await ChunkDigests.of(join(dir, 'w.bin'), 2 * CHUNK);
    t.same(otherSize.entry.digests, [], 'recorded at another chunk size: not used');

    // The file rewritten (same bytes, another mtime): the record no longer vouches for it.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeFile(join(dir, 'w.bin'), data);
    const changed = await ChunkDigests.of(join(dir, 'w.bin'), CHUNK);
    t.same(changed.entry.digests, [], 'a changed file is hashed afresh');
    t.equal(await changed.through(0, data.subarray(0, 1000)), expected[0], 'by reading it');
  },
);

t.test('a written shard records the chunk digests of its files', async (t) => {
  const root = t.testdir();
  await synthesizeModel({ config: SYNTH_PRESETS.tiny.config, seed: 2, out: join(root, 'm') });
  const dir = await openModelDir(join(root, 'm'));
  const manifest = await writeShard(dir, { start: 0, end: 2 }, join(root, 'shard'));
  const recorded = JSON.parse(await readFile(join(root, 'shard', CHUNK_DIGESTS_FILE), 'utf8'));
  t.equal(recorded.chunkBytes, SHARD_CHUNK_BYTES);
  for (const file of manifest.files) {
    const digests = await ChunkDigests.of(join(root, 'shard', file.name), SHARD_CHUNK_BYTES);
    t.equal(digests.entry.digests.length, Math.ceil(file.bytes / SHARD_CHUNK_BYTES), file.name);
    t.equal(digests.entry.digests.at(-1), file.sha256, `${file.name}: the last is its sha256`);
  }
  t.notOk(
    manifest.files.some((f) => f.name === CHUNK_DIGESTS_FILE),
    'not one of the files sent',
  );
});
