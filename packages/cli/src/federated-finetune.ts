/**
 * `swarmbee finetune --url URL --federated`: federated rounds over the cluster's data
 * owners (workers started with `--train-data`). No data is sent: each owner trains on its
 * own records; the coordinator aggregates and streams each round back; the adapter's PEFT
 * files are written to `--out` at the end. Ctrl-C stops after the round in hand.
 */
import type { FinetuneStreamEvent } from '@swarmbee/coordinator';
import type { ApiTarget } from '@swarmbee/coordinator/client';
import { AbortedError, InvalidArgumentError } from '@swarmbee/core';
import type { FinetuneSettings } from '@swarmbee/train';
import type { Options } from 'yargs';
import { assertEmptyOut, streamJob, writeAdapterFiles } from './remote-finetune.js';
import { renderTable } from './ui/table.js';

export const federatedOptions = {
  federated: {
    type: 'boolean',
    default: false,
    describe:
      "With --url: federated rounds over the cluster's data owners (workers with --train-data); no --data is sent",
  },
  rounds: { type: 'number', default: 10, describe: 'Federated rounds' },
  'local-steps': {
    type: 'number',
    default: 10,
    describe:
      'Optimizer steps each data owner runs per round (the bandit also tries twice as many)',
  },
  fedprox: {
    type: 'number',
    default: 0,
    describe: "FedProx's mu: the owners' local objective gains mu/2 ||w - w_global||^2 (0: FedAvg)",
  },
  bandit: {
    type: 'boolean',
    default: false,
    describe:
      "Choose each owner's local steps and rank per round with a UCB bandit (reward: loss decrease per second)",
  },
  'min-owners': { type: 'number', default: 1, describe: 'Data owners a round needs' },
  'bandit-prune': {
    type: 'number',
    default: 0,
    describe:
      "With --bandit: arms that also train without this many layers (each owner's least influential, pruned as swarmbee optimize prune does)",
  },
} as const satisfies Record<string, Options>;

interface FederatedArgs {
  federated: boolean;
  url?: string;
  data?: string;
  steps?: number;
  evalData?: string[];
  pinPrivate: boolean;
  rounds: number;
  localSteps: number;
  fedprox: number;
  bandit: boolean;
  minOwners: number;
  banditPrune: number;
  json: boolean;
}

/** Refuses the options that do not go with --federated (or federated ones without it). */
export function checkFederatedArgs(args: FederatedArgs): void {
  if (!args.federated) return;
  const refused: [string, unknown][] = [
    ['--data', args.data],
    ['--steps', args.steps],
    ['--eval-data', args.evalData?.length ? args.evalData : undefined],
    ['--pin-private', args.pinPrivate || undefined],
  ];
  if (args.url === undefined)
    throw new InvalidArgumentError('--federated trains over a cluster: give its --url');
  for (const [flag, value] of refused)
    if (value !== undefined)
      throw new InvalidArgumentError(
        `${flag} does not go with --federated: the data owners train on their own data (--rounds, --local-steps)`,
      );
}

/** What `POST /swarmbee/finetune` streams for federated rounds. */
type FederatedStreamEvent = Extract<
  FinetuneStreamEvent,
  { type: 'federated' | 'round' | 'federated-result' }
>;
type ResultEvent = Extract<FederatedStreamEvent, { type: 'federated-result' }>;

export async function federatedRemote(run: {
  target: ApiTarget;
  out: string;
  settings: FinetuneSettings;
  args: FederatedArgs;
  signal: AbortSignal;
}): Promise<void> {
  const { args } = run;
  await assertEmptyOut(run.out);
  let result: ResultEvent | undefined;
  await streamJob<FederatedStreamEvent>(
    run.target,
    {
      settings: run.settings,
      federated: {
        rounds: args.rounds,
        local_steps: args.localSteps,
        proximal_mu: args.fedprox,
        bandit: args.bandit,
        min_owners: args.minOwners,
        prune_layers: args.banditPrune,
      },
    },
    (event) => {
      if (event.type === 'federated-result') result = event;
      else if (event.type === 'round')
        process.stderr.write(
          `round ${event.round}/${event.rounds}: loss ${event.loss.toFixed(4)} over ${event.owners.length} owner(s)${event.dropped.length ? `, without ${event.dropped.map((d) => `${d.owner} (${d.code})`).join(', ')}` : ''}\n`,
        );
    },
    run.signal,
    'the coordinator ends the run after its round',
  );
  if (!result) throw new AbortedError('the coordinator ended the stream without a result');
  await writeAdapterFiles(run.out, result.adapter);
  if (args.json) {
    const { adapter: _files, type: _type, ...figures } = result;
    process.stdout.write(`${JSON.stringify({ ...figures, adapterDir: run.out })}\n`);
    return;
  }
  process.stdout.write(
    `${renderTable(
      ['round', 'owners', 'left out', 'loss after (weighted)', 'KiB sent / received'],
      result.rounds.map((r) => [
        r.round,
        r.owners
          .map(
            (o) =>
              `${o.owner} (${o.localSteps} steps, r=${o.rank}${o.prunedLayers ? `, ${o.prunedLayers} layer(s) pruned` : ''})`,
          )
          .join(', '),
        r.dropped.map((d) => d.owner).join(', ') || '-',
        r.loss.toFixed(4),
        `${(r.bytesSent / 1024).toFixed(0)} / ${(r.bytesReceived / 1024).toFixed(0)}`,
      ]),
    )}\n`,
  );
  if (args.bandit)
    process.stdout.write(
      `${renderTable(
        ['owner', 'arm (steps, rank, layers pruned)', 'rounds played', 'mean reward (loss / s)'],
        result.bandits.flatMap((b) =>
          b.arms.map((a) => [
            b.owner,
            `${a.arm.localSteps}, ${a.arm.rank}, ${a.arm.prunedLayers}`,
            a.pulls,
            a.meanReward.toFixed(4),
          ]),
        ),
      )}\n`,
    );
  process.stdout.write(`adapter: ${run.out}${result.stopped ? ' (stopped early)' : ''}\n`);
}
