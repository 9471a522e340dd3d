/**
 * A worker's TrainingHost on a real stories260K shard: a training stage loaded from the
 * shard's own weights computes what the same stage over the model dir computes; bad
 * requests are answered by an `error` with their requestId and a stable code.
 */
import { join } from 'node:path';
import { EngineClosedError, InvalidArgumentError } from '@swarmbee/core';
import { ThreadedTrainingStage } from '@swarmbee/engine';
import {
  adapterModules,
  buildTrainingShard,
  DEFAULT_LORA_TARGETS,
  initLoraAdapter,
  writeShard,
} from '@swarmbee/model';
import {
  type ControlMessage,
  decode,
  encode,
  graphsToWire,
  readArray,
  type TrainCallMessage,
  type TrainLoadMessage,
  toWireArray,
} from '@swarmbee/protocol';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { TrainingHost } from '../src/training-host.js';

t.test('a training session on the shard a worker holds', async (t) => {
  const root = t.testdir();
  const model = await stories260kDir(t, root);
  if (!model) return;
  const range = { start: 2, end: 5 };
  const shardDir = join(root, 'shard');
  const manifest = await writeShard(model, range, shardDir);
  const adapter = initLoraAdapter(
    { rank: 4, alpha: 8, targets: [...DEFAULT_LORA_TARGETS], layers: [0, 1, 2, 3, 4] },
    model.manifest,
    7,
  );
  const modules = adapterModules(adapter, model.manifest.config);
  const graphs = await buildTrainingShard(model, range, modules, { weights: 'shard' });
  const adapters = Object.fromEntries(
    graphs.params.map(({ name }) => [name, toWireArray(adapter.tensors.get(name)!)]),
  );
  const sent: ControlMessage[] = [];
  const host = new TrainingHost({
    worker: 'w',
    loaded: () => ({
      stage: 1,
      layerStart: 2,
      layerEnd: 5,
      shardId: manifest.shardId,
      path: shardDir,
      bytes: manifest.files.reduce((sum, f) => sum + f.bytes, 0),
    }),
    // Every message crosses the codec, as on the wire.
    send: (message) => sent.push(decode(encode(message), { plane: 'control' }) as ControlMessage),
    intraOpThreads: 1,
    heldBytes: () => 0,
    // Its neighbours train on the coordinator here: no links are asked for.
    connect: () => Promise.reject(new Error('no neighbour links in this test')),
  });
  t.teardown(() => host.closeAll());
  const reply = async (message: TrainLoadMessage | TrainCallMessage) => {
    await host.handle(decode(encode(message), { plane: 'control' }) as typeof message);
    return sent.pop()!;
  };
  const load: TrainLoadMessage = {
    type: 'train.load',
    requestId: 'r1',
    session: 's',
    stage: 1,
    layerStart: 2,
    layerEnd: 5,
    graphs: graphsToWire(graphs),
    activations: graphs.activations,
    adapters,
    options: {},
  };

  const wrongRange = await reply({ ...load, requestId: 'r0', layerStart: 1 });
  t.match(wrongRange, { type: 'error', requestId: 'r0', code: InvalidArgumentError.code });
  const ready = await reply(load);
  t.match(ready, { type: 'train.ready', requestId: 'r1', info: { layerStart: 2, isLast: true } });

  // The reference: the same stage over the model dir's weights, in this thread.
  const reference = await ThreadedTrainingStage.create(
    await buildTrainingShard(model, range, modules),
    Object.fromEntries(graphs.params.map(({ name }) => [name, adapter.tensors.get(name)!])),
    { intraOpThreads: 1 },
  );
  t.teardown(() => reference.close());
  const dim = model.manifest.config.dim;
  const width = 6;
  const hidden = Float32Array.from({ length: 2 * width * dim }, (_, i) => Math.sin(i) * 0.5);
  const lengths = Int32Array.from([6, 4]);
  const targets = BigInt64Array.from({ length: 2 * width }, (_, i) => BigInt((i * 37) % 512));
  const batch = { id: 1, lengths, width, hidden, targets, lossScale: 1 / 10 };
  const forward = await reply({
    type: 'train.call',
    requestId: 'r2',
    session: 's',
    call: {
      op: 'forward',
      batch: {
        id: 1,
        lengths: toWireArray(lengths),
        width,
        hidden: toWireArray(hidden),
        targets: toWireArray(targets),
        lossScale: 1 / 10,
      },
    },
  });
  t.match(forward, { type: 'train.result', requestId: 'r2' });
  await reference.forward({
    ...batch,
    lengths: lengths.slice(),
    hidden: hidden.slice(),
    targets: targets.slice(),
  });
  const backward = await reply({
    type: 'train.call',
    requestId: 'r3',
    session: 's',
    call: { op: 'backward', id: 1 },
  });
  const expected = await reference.backward(1);
  if (backward.type !== 'train.result') throw new Error(`backward: ${JSON.stringify(backward)}`);
  t.equal(backward.result.loss, expected.loss, 'the loss equals the model-dir stage’s');
  const gradIn = readArray(backward.result.gradIn!, 'float32', 'gradIn');
  t.same([...gradIn], [...expected.gradIn!], 'so does the gradient at its input');

  const badDtype = await reply({
    type: 'train.call',
    requestId: 'r4',
    session: 's',
    call: { op: 'backward', id: 2, gradOut: toWireArray(new Int32Array(4)) },
  });
  t.match(badDtype, { type: 'error', requestId: 'r4', code: InvalidArgumentError.code });
  const closed = await reply({
    type: 'train.call',
    requestId: 'r5',
    session: 's',
    call: { op: 'close' },
  });
  t.match(closed, { type: 'train.result', requestId: 'r5' });
  const gone = await reply({
    type: 'train.call',
    requestId: 'r6',
    session: 's',
    call: { op: 'state' },
  });
  t.match(gone, { type: 'error', requestId: 'r6', code: EngineClosedError.code });
  t.equal(host.sessions, 0);
});

t.test('a wire array must hold whole elements of its dtype', async (t) => {
  const message = {
    type: 'train.call',
    requestId: 'r',
    session: 's',
    call: {
      op: 'backward',
      id: 1,
      gradOut: { dtype: 'float32', dims: [2], data: new Uint8Array(6) },
    },
  };
  t.throws(() => decode(encode(message as TrainCallMessage), { plane: 'control' }), {
    code: 'SWARMBEE_ERR_MESSAGE_SCHEMA',
  });
});
