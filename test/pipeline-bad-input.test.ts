import { COORDINATOR_EVENTS, type StrayBatchErrorEvent } from '@swarmbee/coordinator';
import { connect, encode, int64Tensor } from '@swarmbee/protocol';
import { type ServingEvent, WORKER_EVENTS } from '@swarmbee/worker';
import { pack } from 'msgpackr';
import t from 'tap';
import { rawHandshake } from '../packages/protocol/test/helpers/net.js';
import { importStories260k } from './helpers/cli.js';
import { complete, startCluster } from './helpers/cluster.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

t.test(
  'BAD INPUT - frames, tokens, sequences and requests get coded errors; the cluster keeps serving',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    const model = await importStories260k(root);
    const cluster = await startCluster({
      model,
      workers: 2,
      root,
    });
    t.teardown(() => cluster.stop());
    const { dataUrl: stage0Url } = await cluster.workers[0]!.waitForEvent<ServingEvent>(
      WORKER_EVENTS.serving,
    );
    const baseline = (
      await complete(cluster.apiUrl, { prompt: 'The cat', max_tokens: 24, temperature: 0 })
    ).json.choices[0].token_ids;
    const stillServes = async (what: string) => {
      const again = await complete(cluster.apiUrl, {
        prompt: 'The cat',
        max_tokens: 24,
        temperature: 0,
      });
      t.same(again.json.choices[0].token_ids, baseline, `still serving after ${what}`);
    };

    const malformed = await rawHandshake(t, stage0Url, {
      token: cluster.token,
      role: 'coordinator',
    });
    malformed.ws.send(Buffer.from([0xc1, 0xff, 0x00, 0x13]));
    t.equal((await malformed.closed).code, 1007, 'MALFORMED FRAME - closed as invalid data');
    t.match(malformed.received.at(-1), { type: 'error', code: 'SWARMBEE_ERR_FRAME_INVALID' });
    await stillServes('a malformed frame');

    const unknown = await rawHandshake(t, stage0Url, {
      token: cluster.token,
      role: 'coordinator',
    });
    unknown.ws.send(encode({ type: 'no.such.message' } as never));
    t.equal((await unknown.closed).code, 1002, 'UNKNOWN TYPE - closed as a protocol error');
    t.match(unknown.received.at(-1), { type: 'error', code: 'SWARMBEE_ERR_MESSAGE_TYPE_UNKNOWN' });

    const version = await rawHandshake(t, stage0Url, {
      token: cluster.token,
      role: 'coordinator',
    });
    version.ws.send(pack({ v: 99, type: 'release', seqIds: [] }));
    t.equal(
      (await version.closed).code,
      1002,
      'WRONG PROTOCOL VERSION - closed as a protocol error',
    );
    t.match(version.received.at(-1), { type: 'error', code: 'SWARMBEE_ERR_PROTOCOL_VERSION' });

    const oversized = await rawHandshake(t, stage0Url, {
      token: cluster.token,
      role: 'coordinator',
    });
    oversized.ws.send(Buffer.alloc(65 * 1024 * 1024));
    t.equal((await oversized.closed).code, 1009, 'OVERSIZED FRAME - closed with 1009');
    await stillServes('an oversized frame');

    await t.rejects(
      connect(stage0Url, { token: 'wrong-token', role: 'coordinator', name: 'intruder' }),
      { code: 'SWARMBEE_ERR_AUTH_FAILED' },
      'WRONG TOKEN - refused',
    );
    await t.rejects(
      connect(cluster.workersUrl, { token: 'wrong-token', role: 'worker', name: 'intruder' }),
      { code: 'SWARMBEE_ERR_AUTH_FAILED' },
    );

    const stray = await connect(stage0Url, {
      token: cluster.token,
      role: 'coordinator',
      name: 'stray',
    });
    stray.send({
      type: 'forward',
      batchId: 987_654,
      rows: [{ seqId: 'nobody', start: 7, count: 1 }],
      tokens: int64Tensor(BigInt64Array.of(5n), [1, 1]),
    });
    await cluster.coordinator.waitForEvent<StrayBatchErrorEvent>(
      COORDINATOR_EVENTS.strayBatchError,
      { match: (e) => e.batchId === 987_654 && e.code === 'SWARMBEE_ERR_SEQUENCE_UNKNOWN' },
    );
    t.pass('UNKNOWN SEQUENCE - the stage reports a coded error for it');
    stray.close();
    await stillServes('a frame for an unknown sequence');

    const requests: [Record<string, unknown>, number, string][] = [
      [{ prompt: new Array(513).fill(5), max_tokens: 1 }, 400, 'SWARMBEE_ERR_CONTEXT_OVERFLOW'],
      [{ prompt: 'x', temperature: -0.5 }, 400, 'SWARMBEE_ERR_INVALID_ARGUMENT'],
      [{ prompt: 'x', top_p: 0 }, 400, 'SWARMBEE_ERR_INVALID_ARGUMENT'],
      [{ prompt: 'x', top_k: 1.5 }, 400, 'SWARMBEE_ERR_INVALID_ARGUMENT'],
      [{ prompt: [1, 4000] }, 400, 'SWARMBEE_ERR_TOKEN_OUT_OF_VOCAB'],
    ];
    for (const [body, status, code] of requests) {
      const response = await complete(cluster.apiUrl, body);
      t.equal(response.status, status, `BAD REQUEST ${JSON.stringify(body).slice(0, 50)}`);
      t.equal(response.json.error.code, code);
    }
    await stillServes('bad requests');
  },
);
