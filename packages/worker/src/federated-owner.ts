/**
 * A worker that owns training data (`swarmbee worker --train-data FILE --model DIR`): it
 * answers the coordinator's federated rounds (`fed.round`) by training the round's adapter
 * on its own data with the whole model it holds, and sends back only the adapter and a
 * few figures (`fed.update`); the records never leave it. One round at a time.
 */

import { type LlamaManifest, TrainingBusyError } from '@swarmbee/core';
import type { LlamaModelDir, LoraTarget } from '@swarmbee/model';
import {
  arraysFromWire,
  arraysToWire,
  type ControlMessage,
  type FedRoundMessage,
} from '@swarmbee/protocol';
import { sendErrorReply } from './error-reply.js';
import { publishWorkerEvent, WORKER_EVENTS } from './events.js';

export interface DataOwnerOptions {
  /** The whole model, as the coordinator serves it (same modelHash). */
  model: LlamaModelDir;
  /** JSONL training records (text or chat). */
  data: string;
}

export class FederatedOwner {
  #busy = false;

  constructor(
    readonly worker: string,
    readonly options: DataOwnerOptions,
    readonly send: (message: ControlMessage) => void,
    /** Where pruned models are kept between rounds. */
    readonly cacheDir: string,
    readonly threads?: number,
  ) {}

  /** Answers a round; never throws (a failure is the request's `error`). */
  async handle(round: FedRoundMessage): Promise<void> {
    if (this.#busy) {
      this.#fail(round, new TrainingBusyError(`data owner ${this.worker} is in a round already`));
      return;
    }
    this.#busy = true;
    try {
      publishWorkerEvent(WORKER_EVENTS.roundStarted, () => ({
        worker: this.worker,
        round: round.round,
        steps: round.settings.steps,
        rank: round.spec.rank,
        prunedLayers: round.settings.pruneLayers,
      }));
      const { model, data } = this.options;
      // Loaded at the first round: a worker that serves never pays for the training code.
      const { trainLocalRound } = await import('@swarmbee/train');
      const result = await trainLocalRound({
        model,
        data,
        round: round.round,
        adapter: {
          spec: { ...round.spec, targets: round.spec.targets as LoraTarget[] },
          tensors: new Map(Object.entries(arraysFromWire(round.tensors))),
          baseModelHash: round.modelHash,
        },
        settings: { ...round.settings, ...(this.threads ? { threads: this.threads } : {}) },
        cacheDir: this.cacheDir,
      });
      publishWorkerEvent(WORKER_EVENTS.roundTrained, () => ({
        worker: this.worker,
        round: round.round,
        steps: round.settings.steps,
        rank: round.spec.rank,
        lossBefore: result.lossBefore,
        lossAfter: result.lossAfter,
        trainMs: result.trainMs,
      }));
      this.send({
        type: 'fed.update',
        requestId: round.requestId,
        round: round.round,
        examples: result.examples,
        trainedTokens: result.tokens,
        lossBefore: result.lossBefore,
        lossAfter: result.lossAfter,
        trainMs: result.trainMs,
        tensors: arraysToWire(Object.fromEntries(result.adapter.tensors)),
      });
    } catch (error) {
      this.#fail(round, error);
    } finally {
      this.#busy = false;
    }
  }

  /** The round closes without this owner (and without it, if the coordinator is gone). */
  #fail(round: FedRoundMessage, error: unknown): void {
    sendErrorReply(this.send, error, { requestId: round.requestId });
  }
}

/** What a data owner registers of its model: its hash, and the model it was quantized from. */
export function ownedModel(manifest: LlamaManifest): { modelHash: string; quantizedFrom?: string } {
  const origin = manifest.derivedFrom;
  const quantized = origin?.steps.every((step) => step.kind === 'quantize') ?? false;
  return {
    modelHash: manifest.modelHash,
    ...(origin && quantized ? { quantizedFrom: origin.fromModelHash } : {}),
  };
}
