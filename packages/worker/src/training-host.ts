/**
 * Fine-tuning on a worker: the coordinator's `train.load` starts a training stage — LoRA
 * adapters on the layers of the inference shard this worker serves, its frozen weights
 * read from that shard's own `weights.bin` — in a thread of its own, and each
 * `train.call` runs one of its methods. Sessions end with a `close` call, when the
 * worker loads another stage, loses its coordinator or stops. Every request is answered
 * by its reply or by an `error` carrying its requestId.
 */

import { AdapterUnsupportedError, EngineClosedError, InvalidArgumentError } from '@swarmbee/core';
import { ThreadedTrainingStage, type TrainingStage } from '@swarmbee/engine';
import { readShardManifest, type TrainingShard } from '@swarmbee/model';
import {
  arraysFromWire,
  arraysToWire,
  batchFromWire,
  type Channel,
  type ControlMessage,
  type DataMessage,
  readArray,
  stateFromWire,
  stateToWire,
  type TrainCallMessage,
  type TrainingCall,
  type TrainingResult,
  type TrainLoadMessage,
  toWireArray,
} from '@swarmbee/protocol';
import { sendErrorReply } from './error-reply.js';
import { publishWorkerEvent, WORKER_EVENTS } from './events.js';
import { checkMemoryFit } from './memory-fit.js';
import { StageLinks } from './training-links.js';

/** The inference stage a worker has loaded, as training needs it. */
export interface LoadedShard {
  stage: number;
  layerStart: number;
  layerEnd: number;
  shardId: string;
  /** The verified shard directory. */
  path: string;
  /** The shard's bytes (its weights). */
  bytes: number;
}

export interface TrainingHostOptions {
  worker: string;
  /** The loaded stage, if any. */
  loaded: () => LoadedShard | undefined;
  send: (message: ControlMessage) => void;
  /** onnxruntime intra-op threads when the coordinator names none (`--threads`). */
  intraOpThreads?: number | undefined;
  /** Memory already held by the inference stage, bytes. */
  heldBytes: () => number;
  /** The worker's ceiling for weights plus KV cache (`--memory-limit-mib`), when set. */
  memoryLimitBytes?: number | undefined;
  /** Opens a data-plane link to a neighbouring stage's worker. */
  connect: (url: string) => Promise<Channel<'data'>>;
  /** How long a call waits for a neighbour's hand-off, ms. Default {@link DEFAULT_HANDOFF_TIMEOUT_MS}. */
  handOffTimeoutMs?: number;
}

/** How long a training call waits for its neighbour's hidden state or gradient, ms, by default. */
export const DEFAULT_HANDOFF_TIMEOUT_MS = 300_000;

interface Session {
  stage: TrainingStage;
  shard: LoadedShard;
  links: StageLinks;
}

export class TrainingHost {
  readonly #options: TrainingHostOptions;
  readonly #sessions = new Map<string, Session>();

  constructor(options: TrainingHostOptions) {
    this.#options = options;
  }

  /** Open training sessions. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Answers a `train.load` or `train.call`; never throws (a failure is the request's `error`). */
  async handle(message: TrainLoadMessage | TrainCallMessage): Promise<void> {
    try {
      if (message.type === 'train.load') await this.#load(message);
      else await this.#call(message);
    } catch (error) {
      sendErrorReply(
        this.#options.send,
        error,
        { requestId: message.requestId },
        this.#options.loaded()?.stage,
      );
    }
  }

  /** Files a neighbour's hand-off (a data-plane message); false for any other message. */
  route(message: DataMessage): boolean {
    if (message.type !== 'train.hidden' && message.type !== 'train.grad') return false;
    this.#sessions.get(message.session)?.links.deliver(message);
    return true;
  }

  /** Ends every session (the stage they train is going, or the coordinator is). */
  async closeAll(): Promise<void> {
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const s of sessions) s.links.close();
    await Promise.allSettled(sessions.map((s) => s.stage.close()));
  }

  async #load(load: TrainLoadMessage): Promise<void> {
    const { worker } = this.#options;
    const shard = this.#options.loaded();
    if (!shard) throw new EngineClosedError(`worker ${worker} has no stage loaded to train`);
    if (
      shard.stage !== load.stage ||
      shard.layerStart !== load.layerStart ||
      shard.layerEnd !== load.layerEnd
    )
      throw new InvalidArgumentError(
        `worker ${worker} serves stage ${shard.stage}, layers [${shard.layerStart}, ${shard.layerEnd}); ` +
          `train.load asked for stage ${load.stage}, layers [${load.layerStart}, ${load.layerEnd})`,
      );
    await this.#close(load.session);
    // The training sessions hold the stage's weights once more, beside the inference stage.
    const limit = this.#options.memoryLimitBytes;
    checkMemoryFit(
      worker,
      shard.shardId,
      { shardBytes: shard.bytes, kvBudgetBytes: 0 },
      limit === undefined ? {} : { limitBytes: Math.max(0, limit - this.#options.heldBytes()) },
    );
    // The manifest only: the graph (with its inline RoPE tables) is the inference stage's.
    const manifest = await readShardManifest(shard.path);
    if (manifest.kind !== 'llama')
      throw new AdapterUnsupportedError(
        `worker ${worker}'s shard is an imported ONNX decoder: adapters train on SwarmBee's own Llama-family graphs only`,
      );
    const training: TrainingShard = {
      forward: load.graphs.forward,
      ...(load.graphs.backward ? { backward: load.graphs.backward } : {}),
      params: load.graphs.params,
      inputGradient: load.graphs.inputGradient,
      saved: load.graphs.saved,
      modelHash: manifest.modelHash,
      config: manifest.config,
      layerStart: shard.layerStart,
      layerEnd: shard.layerEnd,
      float: 'float32',
      activations: load.activations,
      externalDataDir: shard.path,
    };
    const intraOpThreads = load.options.intraOpThreads ?? this.#options.intraOpThreads;
    const links = await StageLinks.open(
      load.session,
      load,
      this.#options.connect,
      this.#options.handOffTimeoutMs ?? DEFAULT_HANDOFF_TIMEOUT_MS,
    );
    let stage: TrainingStage;
    try {
      stage = await ThreadedTrainingStage.create(training, arraysFromWire(load.adapters), {
        ...(intraOpThreads === undefined ? {} : { intraOpThreads }),
        // Training shares the device with serving: no spinning against its event loop.
        allowSpinning: false,
        optimizer: { weightDecay: load.options.weightDecay ?? 0 },
      });
    } catch (error) {
      links.close();
      throw error;
    }
    this.#sessions.set(load.session, { stage, shard, links });
    publishWorkerEvent(WORKER_EVENTS.trainingStarted, () => ({
      worker,
      session: load.session,
      stage: shard.stage,
      layerStart: shard.layerStart,
      layerEnd: shard.layerEnd,
      links: { prev: links.prev !== undefined, next: links.next !== undefined },
    }));
    this.#options.send({
      type: 'train.ready',
      requestId: load.requestId,
      session: load.session,
      info: stage.info,
    });
  }

  async #call(message: TrainCallMessage): Promise<void> {
    const session = this.#sessions.get(message.session);
    if (!session)
      throw new EngineClosedError(
        `worker ${this.#options.worker} has no training session ${message.session} (it ended, or the worker loaded another stage)`,
      );
    const result = await run(session.stage, message.call, session.links);
    if (message.call.op === 'close') await this.#close(message.session);
    this.#options.send({
      type: 'train.result',
      requestId: message.requestId,
      session: message.session,
      result,
    });
  }

  async #close(id: string): Promise<void> {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    session.links.close();
    await session.stage.close();
    publishWorkerEvent(WORKER_EVENTS.trainingEnded, () => ({
      worker: this.#options.worker,
      session: id,
    }));
  }
}

/**
 * One call on the stage, its result in wire form. With links, an input the call does not
 * carry comes from the neighbour's hand-off, and an output goes to the neighbour instead of
 * into the result.
 */
async function run(
  stage: TrainingStage,
  call: TrainingCall,
  links: StageLinks,
): Promise<TrainingResult> {
  switch (call.op) {
    case 'forward': {
      const batch = batchFromWire(call.batch);
      if (!batch.hidden && links.prev) batch.hidden = await links.take('train.hidden', batch.id);
      const out = await stage.forward(batch, {
        ...(call.evaluate === undefined ? {} : { evaluate: call.evaluate }),
      });
      const handOff = out.hidden && links.next;
      if (handOff) links.send('train.hidden', batch.id, out.hidden!);
      return {
        ...(out.hidden && !handOff ? { hidden: toWireArray(out.hidden) } : {}),
        ...(out.loss === undefined ? {} : { loss: out.loss }),
      };
    }
    case 'backward': {
      let gradOut = call.gradOut && readArray(call.gradOut, 'float32', 'gradOut');
      if (!gradOut && !stage.info.isLast && links.next)
        gradOut = await links.take('train.grad', call.id);
      const out = await stage.backward(call.id, gradOut);
      const handOff = out.gradIn && links.prev;
      if (handOff) links.send('train.grad', call.id, out.gradIn!);
      return {
        ...(out.gradIn && !handOff ? { gradIn: toWireArray(out.gradIn) } : {}),
        ...(out.loss === undefined ? {} : { loss: out.loss }),
      };
    }
    case 'gradientSquaredNorm':
      return { norm: await stage.gradientSquaredNorm() };
    case 'gradients':
      return { gradients: arraysToWire(await stage.gradients()) };
    case 'prepareUpdate':
      await stage.prepareUpdate({
        learningRate: call.learningRate,
        gradientScale: call.gradientScale,
      });
      return {};
    case 'commitUpdate':
      await stage.commitUpdate();
      return {};
    case 'discard':
      await stage.discard();
      links.clear();
      return {};
    case 'state':
      return { state: stateToWire(await stage.state()) };
    case 'loadState':
      await stage.loadState(stateFromWire(call.state));
      return {};
    case 'stats':
      return { stats: { ...(await stage.stats()) } };
    case 'close':
      return {};
  }
}
