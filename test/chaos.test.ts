/**
 * The quick chaos run on real processes (the full one is `npm run bench -- chaos`):
 * kill -9 of two workers at once in decode, SIGSTOP of one past the heartbeat timeout in
 * prefill, SIGTERM of two in prefill and of every worker in decode, kill -9 of one with
 * another stopped, then the
 * coordinator killed and restarted — each under 8 greedy streams of stories260K.
 * Every wait is on observable state (stream events, /swarmbee/cluster), each bounded.
 */
import { chaosFaults, runChaos } from '@swarmbee/bench';
import { openModelDir } from '@swarmbee/model';
import t from 'tap';
import { CLI_BIN, importStories260k } from './helpers/cli.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

const WORKERS = 3;
const STREAMS = 8;

t.test('faults of one, two and all workers, and of the coordinator, under 8 streams', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const model = await openModelDir(await importStories260k(root));
  const result = await runChaos({
    cliBin: CLI_BIN,
    model,
    root,
    workers: WORKERS,
    streams: STREAMS,
    promptTokens: 160,
    outputTokens: 64,
    speedFactor: 0.2,
    // Longer than the bench's 1.5 s: a test shares the machine with other work, and a
    // starved worker must not be taken for a stopped one.
    heartbeatTimeoutMs: 4000,
    faults: chaosFaults(WORKERS, true),
    restartCoordinator: true,
    progress: (line) => t.comment(line),
  });
  for (const r of result.faults) {
    // A busy machine spreads the streams' starts: most, not always all, are in the phase.
    t.ok(
      r.streamsInPhase >= STREAMS / 2,
      `${r.name}: the fault landed in ${r.phase} for ${r.streamsInPhase} of ${STREAMS} streams`,
    );
    t.same(r.failedOther, [], `${r.name}: no stream hung or failed without a retryable code`);
    t.equal(r.tokensLost + r.wrongTokens, 0, `${r.name}: no token lost or changed`);
    if (r.workers.length < WORKERS) {
      t.equal(r.completed, STREAMS, `${r.name}: every stream ends whole`);
      t.ok(r.recoveryMs.length > 0, `${r.name}: the coordinator recovered`);
    } else {
      t.equal(r.failedRetryable + r.completed, STREAMS, `${r.name}: streams fail with a code`);
      t.same(r.failureCodes, ['SWARMBEE_ERR_CLUSTER_UNAVAILABLE']);
    }
    t.ok(r.servesAfterReturn, `${r.name}: the returning workers are used again`);
    t.equal(r.returnTransferredBytes, 0, `${r.name}: taking them back sent no shard`);
  }
  const restart = result.restart!;
  t.ok(restart.samePlan, 'the restarted coordinator deployed the plan the workers had');
  t.equal(restart.transferredBytes, 0, 'and sent no shard');
  t.equal(restart.completedAfter, STREAMS, 'streams after the restart end whole');
  t.same(result.unexpectedExits, [], 'no process died unasked');
  t.same(result.processFaults, [], 'no process survived an unhandled rejection or exception');
});
