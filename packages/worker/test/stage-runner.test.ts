/**
 * One stage's data plane on its own: a StageRunner over a real engine (stories260K whole,
 * so it samples) sending to a real downstream WebSocket on loopback. Frames given at once
 * leave in arrival order with run.c's greedy token; a frame the engine refuses is reported
 * with its batch id and coded error while the next still runs; a release goes downstream
 * after the batches before it; the stats count what happened; close ends the link.
 */
import { InvalidArgumentError, type SwarmBeeError } from '@swarmbee/core';
import { ThreadedStage } from '@swarmbee/engine';
import { buildShard } from '@swarmbee/model';
import { connect, type DataMessage, int64Tensor, listen } from '@swarmbee/protocol';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { StageRunner } from '../src/stage-runner.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

t.test(
  'frames out in arrival order, failures reported by batch, releases after the work',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    // In its own thread, as a worker runs it: the thread takes frames in order.
    const engine = await ThreadedStage.create(
      buildShard(dir, { start: 0, end: dir.manifest.config.nLayers }),
      { intraOpThreads: 1 },
    );
    const token = `runner-${process.pid}`;
    const received: DataMessage[] = [];
    let arrived: (() => void) | undefined;
    const server = await listen({ token, roles: ['stage'] }, (channel) => {
      channel.on('message', (message) => {
        received.push(message as DataMessage);
        arrived?.();
      });
    });
    t.teardown(() => server.close());
    const downstream = await connect(server.url, { token, role: 'stage', name: 'stage-0' });
    const failures: { batchId: number; error: SwarmBeeError }[] = [];
    const runner = new StageRunner({
      stage: 0,
      engine,
      downstream,
      reportFailure: (batchId, error) => failures.push({ batchId, error }),
    });
    const until = (count: number) =>
      new Promise<void>((resolve) => {
        arrived = () => {
          if (received.length >= count) resolve();
        };
        arrived();
      });

    // "Once upon a time" as run.c encodes it, in two chunks; run.c's greedy next token is 378.
    const chunk = (batchId: number, start: number, ids: number[], sample: boolean) =>
      runner.accept({
        type: 'forward',
        batchId,
        rows: [{ seqId: 's', start, count: ids.length, ...(sample ? { sampling: GREEDY } : {}) }],
        tokens: int64Tensor(BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      });
    chunk(1, 0, [1, 403], false);
    chunk(2, 2, [407, 261], true);
    // A row that starts past what the cache holds: refused, reported, and the next still runs.
    chunk(3, 9, [5], true);
    chunk(4, 4, [378], true);
    runner.accept({ type: 'release', seqIds: ['s'] });
    await until(4);
    await runner.idle();

    t.same(
      received.map((m) => m.type === 'tokens' && m.batchId),
      [1, 2, 4, false],
      'three batches in arrival order, then the release',
    );
    const tokens = received.filter((m) => m.type === 'tokens');
    t.same(tokens[0]!.rows, [], 'a chunk that does not sample sends no token');
    t.same(
      tokens[1]!.rows.map((r) => r.tokenId),
      [378],
      "run.c's greedy token after the prompt",
    );
    t.equal(received[3]!.type, 'release', 'the release went on after the work before it');
    t.same(
      failures.map((f) => [f.batchId, f.error.code]),
      [[3, InvalidArgumentError.code]],
      'the refused batch is reported with its id and code',
    );
    const stats = runner.stats();
    t.equal(stats.forwards, 3);
    t.equal(stats.failedBatches, 1);
    t.equal(stats.queueDepth, 0);
    t.ok(stats.bytesSent > 0);
    t.equal(runner.timeline.since(0).length, 3, 'the timeline holds the three batches sent');

    const closed = new Promise<void>((resolve) => downstream.once('close', () => resolve()));
    await runner.close();
    await closed;
    t.pass('closing the runner closes its downstream link');
  },
);
