/**
 * `swarmbee finetune --url URL --federated`: federated rounds over the cluster's data
 * owners (workers started with `--train-data`). No data is sent: each owner trains on its
 * own records; the coordinator aggregates and streams each round back; the adapter's PEFT
 * files are written to `--out` at the end. Ctrl-C stops after the round in hand.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type ApiTarget, postEvents } from '@swarmbee/coordinator/client';
import { AbortedError, InvalidArgumentError, OutputExistsError } from '@swarmbee/core';
import type { FinetuneSettings } from '@swarmbee/train';
import type { Options } from 'yargs';
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

interface RoundEvent {
  type: 'round';
  round: number;
  rounds: number;
  loss: number;
  owners: {
    owner: string;
    localSteps: number;
    rank: number;
    prunedLayers: number;
    lossBefore: number;
    lossAfter: number;
    seconds: number;
  }[];
  dropped: { owner: string; code: string }[];
  bytesSent: number;
  bytesReceived: number;
}

interface ResultEvent {
  type: 'federated-result';
  rounds: RoundEvent[];
  bandits: {
    owner: string;
    arms: {
      arm: { localSteps: number; rank: number; prunedLayers: number };
      pulls: number;
      meanReward: number;
    }[];
  }[];
  stopped: boolean;
  adapter: { name: string; base64: string }[];
}

export async function federatedRemote(run: {
  target: ApiTarget;
  out: string;
  settings: FinetuneSettings;
  args: FederatedArgs;
  signal: AbortSignal;
}): Promise<void> {
  const { args } = run;
  if ((await readdir(run.out).catch(() => [] as string[])).length > 0)
    throw new OutputExistsError(`${run.out} is not empty: choose another --out`);
  let result: ResultEvent | undefined;
  try {
    await postEvents<RoundEvent | ResultEvent | { type: 'federated' }>(
      run.target,
      '/swarmbee/finetune',
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
      { signal: run.signal },
    );
  } catch (error) {
    if (run.signal.aborted)
      throw new AbortedError('stopped: the coordinator ends the run after its round');
    throw error;
  }
  if (!result) throw new AbortedError('the coordinator ended the stream without a result');
  await mkdir(run.out, { recursive: true });
  for (const file of result.adapter)
    await writeFile(join(run.out, basename(file.name)), Buffer.from(file.base64, 'base64'));
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
