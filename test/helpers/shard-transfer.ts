/**
 * The coordinator's side of shard transfers without a model, for tests: a control server
 * on 127.0.0.1:0 whose workers register through the coordinator's own WorkerRegistry, and
 * shards of random bytes written to a test dir. Everything started is stopped in teardown.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type TransferableShard,
  type TransferServer,
  transferServer,
} from '@swarmbee/coordinator/transfer';
import { sha256 } from '@swarmbee/model';
import type { Test } from 'tap';

export const TOKEN = 'shard-transfer-test-token';

/** A transfer server on 127.0.0.1:0 for this test, closed in teardown. */
export async function shardServer(t: Test): Promise<TransferServer> {
  const server = await transferServer({ token: TOKEN });
  t.teardown(() => server.close());
  return server;
}

/** A directory of its own (t.testdir() is one per test), removed in teardown. */
export async function freshDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'swarmbee-shard-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A shard of one file of `bytes` random bytes (with `marker` written at `markerAt`, if given). */
export async function randomShard(
  t: Test,
  bytes: number,
  marker?: { at: number; bytes: Uint8Array },
): Promise<TransferableShard> {
  const dir = await freshDir(t);
  const data = randomBytes(bytes);
  if (marker) data.set(marker.bytes, marker.at);
  await writeFile(join(dir, 'weights.bin'), data);
  const file = { name: 'weights.bin', bytes, sha256: sha256(data) };
  return { path: dir, manifest: { shardId: sha256(Buffer.from(file.sha256)) }, files: [file] };
}

/**
 * A TCP proxy on 127.0.0.1:0 to `port` that flips the last byte of the first occurrence
 * of `marker` in what the server sends: a bit flipped on the wire, inside a shard chunk.
 */
export async function corruptingProxy(
  t: Test,
  port: number,
  marker: Uint8Array,
): Promise<{ port: number; flipped: () => boolean }> {
  let flipped = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    let tail = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      if (!flipped) {
        const window = Buffer.concat([tail, chunk]);
        const found = window.indexOf(marker);
        if (found >= 0) {
          // The marker's last byte is always in this chunk (else it was found before).
          const at = found + marker.length - 1 - tail.length;
          chunk[at] = (chunk[at] ?? 0) ^ 0xff;
          flipped = true;
        }
        tail = window.subarray(Math.max(0, window.length - marker.length + 1));
      }
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    flipped: () => flipped,
  };
}
