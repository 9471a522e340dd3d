/**
 * Worker-thread entry that hosts one stage engine (the factory picks it from
 * the shard's kind). Requests are answered in arrival order, one at a time, so
 * the KV cache sees forwards in sequence.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { asSwarmBeeError } from '@swarmbee/core';
import type { ShardGraph, TensorSliceShard } from '@swarmbee/model';
import type { SegmentEmulation } from './device-emulation.js';
import type { PortGroup } from './port-all-reduce.js';
import type { SharedGroup } from './shared-all-reduce.js';
import type { StageOptions, StageOutput } from './stage-engine.js';
import { createMemberEngine, createStageEngine } from './stage-factory.js';
import type { ThreadReply, ThreadRequest } from './thread-messages.js';

const port = parentPort!;
const { shard, options, group, emulation } = workerData as {
  shard: ShardGraph | TensorSliceShard;
  options: StageOptions;
  /** A tensor-parallel member's group (with a `llama-slice` shard): shared memory, or a port. */
  group?: SharedGroup | PortGroup;
  /** A member's emulated device (benchmarks): its segments are paced in this thread. */
  emulation?: SegmentEmulation;
};

let queue: Promise<void> = Promise.resolve();

const startup = (
  shard.kind === 'llama-slice'
    ? createMemberEngine(shard, group!, options, emulation)
    : createStageEngine(shard, options)
).then(
  (stage) => {
    port.postMessage({ id: 0, ok: true, value: stage.info } satisfies ThreadReply);
    return stage;
  },
  (error) => {
    port.postMessage({
      id: 0,
      ok: false,
      error: asSwarmBeeError(error).toWire(),
    } satisfies ThreadReply);
    return undefined;
  },
);

port.on('message', (request: ThreadRequest) => {
  // handle() answers every request itself; the chain must outlive one that could not.
  queue = queue.then(() => handle(request)).catch(() => {});
});

async function handle(request: ThreadRequest): Promise<void> {
  const stage = await startup;
  if (!stage) return;
  try {
    switch (request.op) {
      case 'forward': {
        const output = await stage.forward(request.batch);
        port.postMessage(
          { id: request.id, ok: true, value: output } satisfies ThreadReply,
          transferables(output),
        );
        return;
      }
      case 'release':
        await stage.release(request.seqIds);
        port.postMessage({ id: request.id, ok: true, value: null } satisfies ThreadReply);
        return;
      case 'stats':
        port.postMessage({
          id: request.id,
          ok: true,
          value: await stage.stats(),
        } satisfies ThreadReply);
        return;
      case 'close':
        await stage.close();
        port.postMessage({ id: request.id, ok: true, value: null } satisfies ThreadReply);
        port.close();
        return;
    }
  } catch (error) {
    port.postMessage({
      id: request.id,
      ok: false,
      error: asSwarmBeeError(error).toWire(),
    } satisfies ThreadReply);
  }
}

function transferables(output: StageOutput): ArrayBuffer[] {
  const arrays =
    output.kind === 'hidden' ? [output.hidden] : [output.tokens, output.logprobs, output.logits];
  const buffers = new Set<ArrayBuffer>();
  for (const array of arrays)
    if (array && array.buffer instanceof ArrayBuffer) buffers.add(array.buffer);
  return [...buffers];
}
