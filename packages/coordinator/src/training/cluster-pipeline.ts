/**
 * A training pipeline over the deployed cluster: one training stage per deployed stage,
 * on the worker that serves it, training LoRA adapters on the layers of the shard it
 * holds (the graphs are built here from the model dir and read the frozen weights from
 * the worker's own copy of the shard). The coordinator runs the pipeline schedule; hidden
 * states go forward and gradients back worker to worker over the data plane where both
 * neighbours are workers, and through the coordinator where one trains here.
 *
 * With `pinPrivate`, the first and the last stage train here, in this process, on the
 * model dir's weights: token ids and targets never leave the coordinator's device, and
 * the workers see only hidden states and their gradients.
 */
import { availableParallelism } from 'node:os';
import { ClusterUnavailableError, TensorSplitError } from '@swarmbee/core';
import {
  type PipelineScheduleKind,
  ThreadedTrainingStage,
  TrainingPipeline,
  type TrainingStage,
} from '@swarmbee/engine';
import {
  type ActivationPolicy,
  adapterModules,
  buildTrainingShard,
  type LlamaModelDir,
  type LoraAdapter,
} from '@swarmbee/model';
import type { DeployedStage } from '../cluster/deployer.js';
import type { WorkerLink } from '../cluster/worker-link.js';
import { RemoteTrainingStage } from './remote-training-stage.js';

export interface ClusterPipelineOptions {
  model: LlamaModelDir;
  /** The deployed stages, in order. */
  stages: readonly DeployedStage[];
  workers: ReadonlyMap<string, WorkerLink>;
  schedule: PipelineScheduleKind;
  activations: ActivationPolicy;
  /** AdamW's decoupled weight decay. */
  weightDecay: number;
  /** onnxruntime intra-op threads per training stage; default each worker's own (`--threads`). */
  threads?: number | undefined;
  /** Train the first and last stage in this process (see the module comment). Default false. */
  pinPrivate?: boolean;
  /** Names the stages' sessions on their workers. */
  session: string;
  /** Deadline of one call on a worker, ms. */
  callTimeoutMs?: number | undefined;
}

/** Where each stage trains: `local` (this process) or the worker that serves it. */
export function trainingPlacement(
  stages: readonly DeployedStage[],
  pinPrivate: boolean,
): ('local' | string)[] {
  return stages.map((s, i) =>
    pinPrivate && (i === 0 || i === stages.length - 1) ? 'local' : s.worker,
  );
}

/** Opens the stages (all at once) and the pipeline over them; nothing stays open if one fails. */
export async function openClusterPipeline(
  adapter: LoraAdapter,
  options: ClusterPipelineOptions,
): Promise<TrainingPipeline> {
  const { model, stages } = options;
  const grouped = stages.find((s) => s.members);
  if (grouped)
    throw new TensorSplitError(
      `stage ${grouped.stage} runs on a tensor-parallel group (${grouped.members!.join(', ')}); ` +
        'fine-tuning trains pipeline stages only: re-plan with --parallelism pipeline',
    );
  const modules = adapterModules(adapter, model.manifest.config);
  const placement = trainingPlacement(stages, options.pinPrivate ?? false);
  const opened = await Promise.allSettled(
    stages.map(async (stage, i): Promise<TrainingStage> => {
      const range = { start: stage.layerStart, end: stage.layerEnd };
      const local = placement[i] === 'local';
      const shard = await buildTrainingShard(model, range, modules, {
        activations: options.activations,
        weights: local ? 'model' : 'shard',
      });
      const values = Object.fromEntries(
        shard.params.map(({ name }) => [name, adapter.tensors.get(name)!]),
      );
      if (local)
        return ThreadedTrainingStage.create(shard, values, {
          intraOpThreads: options.threads ?? availableParallelism(),
          allowSpinning: false,
          optimizer: { weightDecay: options.weightDecay },
        });
      const link = options.workers.get(stage.worker);
      if (!link?.open)
        throw new ClusterUnavailableError(
          `worker ${stage.worker} of stage ${stage.stage} is not connected`,
        );
      // A neighbour on a worker too hands activations and gradients over directly.
      const neighbour = (j: number) =>
        j >= 0 && j < stages.length && placement[j] !== 'local'
          ? options.workers.get(stages[j]!.worker)?.dataUrl
          : undefined;
      return RemoteTrainingStage.load(link, {
        prevUrl: neighbour(i - 1),
        nextUrl: neighbour(i + 1),
        session: options.session,
        stage: stage.stage,
        layerStart: stage.layerStart,
        layerEnd: stage.layerEnd,
        graphs: shard,
        activations: options.activations,
        adapters: values,
        intraOpThreads: options.threads,
        weightDecay: options.weightDecay,
        callTimeoutMs: options.callTimeoutMs,
      });
    }),
  );
  const ready = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed) {
    await Promise.allSettled(ready.map((s) => s.close()));
    throw failed.reason;
  }
  return new TrainingPipeline(ready, options.schedule);
}
