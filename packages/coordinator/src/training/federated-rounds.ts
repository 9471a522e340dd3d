/**
 * Federated fine-tuning (`swarmbee finetune --url --federated`): the coordinator holds the
 * global LoRA adapter; each round it sends it to every connected data owner (`fed.round`),
 * each trains it on its own data (which never leaves it) and returns the result
 * (`fed.update`), and the coordinator aggregates — FedAvg weighted by the owners' examples;
 * with `proximalMu` > 0 the owners train FedProx's objective. Per owner, a UCB bandit picks
 * the round's local steps and LoRA rank, rewarded by the loss decrease per second of the
 * owner's time (FedSpine), relative to the other owners' in the same round. An owner that fails or disappears mid-round is left out of that
 * round, which closes with the others.
 */
import {
  AdapterBaseMismatchError,
  asSwarmBeeError,
  ClusterUnavailableError,
  InvalidArgumentError,
} from '@swarmbee/core';
import { learningRateFactor } from '@swarmbee/engine';
import { initLoraAdapter, type LlamaModelDir, type LoraAdapter, loraTensor } from '@swarmbee/model';
import { arraysFromWire, arraysToWire } from '@swarmbee/protocol';
import {
  type FederatedArm,
  type FinetuneSettings,
  federatedAverage,
  type OwnerUpdate,
  roundRelativeRewards,
  truncateRank,
  UcbBandit,
} from '@swarmbee/train';
import type { WorkerLink } from '../cluster/worker-link.js';

/** The longest an owner may take for one round, ms, by default. */
export const DEFAULT_ROUND_TIMEOUT_MS = 600_000;

export interface FederatedRequest {
  /** The adapter's shape and the owners' local training settings (`stages` unused). */
  settings: FinetuneSettings;
  rounds: number;
  /** Local steps per round (the bandit also tries twice as many). */
  localSteps: number;
  /** FedProx's μ; 0 is FedAvg. Default 0. */
  proximalMu?: number;
  /** Choose each owner's local steps and rank per round with a UCB bandit. Default false. */
  bandit?: boolean;
  /** With the bandit: its arms also train without this many (least influential) layers. Default 0. */
  pruneLayers?: number;
  /** Owners a round needs. Default 1. */
  minOwners?: number;
  roundTimeoutMs?: number;
}

export interface OwnerRound {
  owner: string;
  examples: number;
  localSteps: number;
  rank: number;
  prunedLayers: number;
  lossBefore: number;
  lossAfter: number;
  seconds: number;
  /** Loss decrease per second of the owner's time: the bandit's reward. */
  reward: number;
}

export type FederatedEvent =
  | { type: 'federated'; owners: string[]; rounds: number; arms: FederatedArm[] }
  | {
      type: 'round';
      round: number;
      rounds: number;
      learningRate: number;
      owners: OwnerRound[];
      /** Owners left out of the round, and why. */
      dropped: { owner: string; code: string; message: string }[];
      /** Adapter bytes sent to and received from the owners. */
      bytesSent: number;
      bytesReceived: number;
      /** Examples-weighted mean of the owners' losses after the round. */
      loss: number;
    };

export interface FederatedOutcome {
  adapter: LoraAdapter;
  rounds: Extract<FederatedEvent, { type: 'round' }>[];
  bandits: { owner: string; arms: ReturnType<UcbBandit['summary']> }[];
}

export interface FederatedContext {
  model: LlamaModelDir;
  owners: () => WorkerLink[];
}

let nextRequest = 1;

/**
 * The bandit's arms: the local steps and the rank as asked, twice the steps, half the rank,
 * and (with `pruneLayers`) each of those without that many layers.
 */
export function federatedArms(
  localSteps: number,
  rank: number,
  bandit: boolean,
  pruneLayers = 0,
): FederatedArm[] {
  if (!bandit) return [{ localSteps, rank, prunedLayers: 0 }];
  const ranks = [...new Set([rank, Math.max(1, Math.floor(rank / 2))])];
  const pruned = pruneLayers > 0 ? [0, pruneLayers] : [0];
  return [localSteps, 2 * localSteps].flatMap((steps) =>
    ranks.flatMap((r) => pruned.map((p) => ({ localSteps: steps, rank: r, prunedLayers: p }))),
  );
}

export async function runFederated(
  context: FederatedContext,
  request: FederatedRequest,
  onEvent: (event: FederatedEvent) => void,
  signal?: AbortSignal,
): Promise<FederatedOutcome> {
  const { model } = context;
  const { config, modelHash } = model.manifest;
  const { settings } = request;
  for (const [name, value] of [
    ['rounds', request.rounds],
    ['local steps', request.localSteps],
  ] as const)
    if (!Number.isInteger(value) || value < 1)
      throw new InvalidArgumentError(
        `federated ${name} must be an integer of at least 1, got ${value}`,
      );
  const minOwners = request.minOwners ?? 1;
  const owners = context.owners();
  if (owners.length < minOwners)
    throw new ClusterUnavailableError(
      `federated fine-tuning needs ${minOwners} data owner(s) (workers started with --train-data); ${owners.length} connected`,
    );
  const prune = request.pruneLayers ?? 0;
  if (!Number.isInteger(prune) || prune < 0 || prune >= config.nLayers)
    throw new InvalidArgumentError(
      `federated pruneLayers must be an integer from 0 to ${config.nLayers - 1}, got ${prune}`,
    );
  const arms = federatedArms(request.localSteps, settings.rank, request.bandit ?? false, prune);
  const bandits = new Map<string, UcbBandit>();
  const layers = settings.layers ?? Array.from({ length: config.nLayers }, (_, i) => i);
  let global = initLoraAdapter(
    { rank: settings.rank, alpha: settings.alpha, targets: settings.targets, layers },
    model.manifest,
    settings.seed,
  );
  onEvent({ type: 'federated', owners: owners.map((o) => o.name), rounds: request.rounds, arms });
  const rounds: Extract<FederatedEvent, { type: 'round' }>[] = [];
  for (let round = 0; round < request.rounds && !signal?.aborted; round++) {
    const learningRate =
      settings.learningRate *
      learningRateFactor(round, { ...settings, totalSteps: request.rounds });
    const present = context.owners();
    const dropped: Extract<FederatedEvent, { type: 'round' }>['dropped'] = [];
    let bytesSent = 0;
    let bytesReceived = 0;
    const results = await Promise.allSettled(
      present.map(async (link) => {
        // The model itself, or a quantized copy of it (the adapter applies to the same layers).
        const owned = link.dataOwner;
        if (owned?.modelHash !== modelHash && owned?.quantizedFrom !== modelHash)
          throw new AdapterBaseMismatchError(
            `data owner ${link.name} holds model ${link.dataOwner?.modelHash.slice(0, 12)}, not ${modelHash.slice(0, 12)}`,
          );
        // Owners start their first pass over the arms at different arms (see bandit.ts).
        const bandit = bandits.get(link.name) ?? new UcbBandit(arms, { firstArm: bandits.size });
        bandits.set(link.name, bandit);
        const armIndex = bandit.choose();
        const arm = arms[armIndex]!;
        const sent = truncateRank(global, arm.rank, config);
        bytesSent += byteSize(sent);
        const update = await link.channel.request(
          {
            type: 'fed.round',
            requestId: `fed-${nextRequest++}`,
            round,
            modelHash,
            spec: sent.spec,
            tensors: arraysToWire(Object.fromEntries(sent.tensors)),
            settings: {
              steps: arm.localSteps,
              learningRate,
              microBatchSize: settings.microBatchSize,
              accumulation: settings.accumulation,
              seqLen: settings.seqLen,
              truncate: settings.truncate,
              seed: settings.seed,
              weightDecay: settings.weightDecay,
              maxGradNorm: settings.maxGradNorm,
              proximalMu: request.proximalMu ?? 0,
              pruneLayers: arm.prunedLayers,
              activations: settings.activations,
            },
          },
          { timeoutMs: request.roundTimeoutMs ?? DEFAULT_ROUND_TIMEOUT_MS, signal },
        );
        const tensors = new Map(Object.entries(arraysFromWire(update.tensors)));
        // An owner that trained with layers pruned sends no tensors for them.
        const layers = sent.spec.layers.filter((l) =>
          tensors.has(loraTensor.a(l, sent.spec.targets[0]!)),
        );
        const trained: LoraAdapter = { ...sent, spec: { ...sent.spec, layers }, tensors };
        bytesReceived += byteSize(trained);
        const seconds = update.trainMs / 1000;
        const reward = (update.lossBefore - update.lossAfter) / Math.max(seconds, 1e-3);
        const figures: OwnerRound = {
          owner: link.name,
          examples: update.examples,
          localSteps: arm.localSteps,
          rank: arm.rank,
          prunedLayers: arm.prunedLayers,
          lossBefore: update.lossBefore,
          lossAfter: update.lossAfter,
          seconds,
          reward,
        };
        return {
          figures,
          played: { bandit, armIndex },
          update: { adapter: trained, examples: update.examples },
        };
      }),
    );
    const updates: OwnerUpdate[] = [];
    const figures: OwnerRound[] = [];
    const played: { bandit: UcbBandit; armIndex: number }[] = [];
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') {
        updates.push(result.value.update);
        figures.push(result.value.figures);
        played.push(result.value.played);
      } else {
        const error = asSwarmBeeError(result.reason);
        dropped.push({ owner: present[i]!.name, code: error.code, message: error.message });
      }
    });
    if (updates.length < minOwners)
      throw new ClusterUnavailableError(
        `round ${round + 1}: ${updates.length} of the ${minOwners} data owner(s) it needs answered (${dropped.map((d) => `${d.owner}: ${d.code}`).join('; ') || 'none connected'})`,
      );
    // Each bandit learns from its owner's reward relative to the round's (see bandit.ts).
    const relative = roundRelativeRewards(figures.map((f) => f.reward));
    for (const [i, { bandit, armIndex }] of played.entries()) bandit.record(armIndex, relative[i]!);
    global = federatedAverage(global, updates, config);
    const total = figures.reduce((sum, f) => sum + f.examples, 0);
    const event = {
      type: 'round' as const,
      round: round + 1,
      rounds: request.rounds,
      learningRate,
      owners: figures,
      dropped,
      bytesSent,
      bytesReceived,
      loss: figures.reduce((sum, f) => sum + (f.lossAfter * f.examples) / total, 0),
    };
    rounds.push(event);
    onEvent(event);
  }
  return {
    adapter: global,
    rounds,
    bandits: [...bandits].map(([owner, bandit]) => ({ owner, arms: bandit.summary() })),
  };
}

function byteSize(adapter: LoraAdapter): number {
  let bytes = 0;
  for (const t of adapter.tensors.values()) bytes += t.byteLength;
  return bytes;
}
