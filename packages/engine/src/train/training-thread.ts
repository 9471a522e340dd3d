/**
 * Worker-thread entry that hosts one `OrtTrainingStage`. Calls are answered in
 * arrival order, one at a time, as the stage needs them (a backward pass after its
 * forward pass); result arrays are transferred, not copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { asSwarmBeeError } from '@swarmbee/core';
import type { TrainingShard } from '@swarmbee/model';
import { OrtTrainingStage } from './ort-training-stage.js';
import type { TrainingStageOptions } from './training-stage.js';
import type { TrainingThreadReply, TrainingThreadRequest } from './training-thread-messages.js';

const port = parentPort!;
const { shard, adapters, options } = workerData as {
  shard: TrainingShard;
  adapters: Record<string, Float32Array>;
  options: TrainingStageOptions;
};

const startup = OrtTrainingStage.create(shard, adapters, options).then(
  (stage) => {
    port.postMessage({ id: 0, ok: true, value: stage.info } satisfies TrainingThreadReply);
    return stage;
  },
  (error) => {
    const wire = asSwarmBeeError(error).toWire();
    port.postMessage({ id: 0, ok: false, error: wire } satisfies TrainingThreadReply);
    return undefined;
  },
);

let queue: Promise<void> = Promise.resolve();
port.on('message', (request: TrainingThreadRequest) => {
  queue = queue.then(() => handle(request));
});

async function handle(request: TrainingThreadRequest): Promise<void> {
  const stage = await startup;
  if (!stage) return;
  try {
    const method = stage[request.op] as (...args: unknown[]) => Promise<unknown>;
    const value = await method.apply(stage, request.args);
    port.postMessage(
      { id: request.id, ok: true, value } satisfies TrainingThreadReply,
      buffersOf(value),
    );
    if (request.op === 'close') port.close();
  } catch (error) {
    port.postMessage({
      id: request.id,
      ok: false,
      error: asSwarmBeeError(error).toWire(),
    } satisfies TrainingThreadReply);
  }
}

/** The ArrayBuffers of every typed array in a result (one level of records deep). */
function buffersOf(value: unknown, depth = 0): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) return value.buffer instanceof ArrayBuffer ? [value.buffer] : [];
  if (typeof value !== 'object' || value === null || depth > 3) return [];
  return [...new Set(Object.values(value).flatMap((v) => buffersOf(v, depth + 1)))];
}
