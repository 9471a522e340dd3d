/**
 * The federated half of `npm run bench -- finetune`: four data owners with different data —
 * two with halves of the lighthouse stories, two with halves of the bundled corpus (another
 * style) — train stories260K's adapter in rounds (`finetune --url --federated`) over a local
 * cluster (one serving worker, four `--train-data` workers). Reported per setting (FedAvg
 * with fixed local steps and rank, FedProx, and the UCB bandit): the owners' loss after each
 * round, bytes per round and the owners' time; against it, one site training on all the
 * records for as many steps as an owner runs in all rounds, its loss on the same records the
 * owners measure on, and the first round whose loss reaches it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError } from '@swarmbee/core';
import { LocalCluster } from '@swarmbee/local-cluster';
import type { LlamaModelDir } from '@swarmbee/model';
import { DEFAULT_CORPUS_FILE, summarize } from '@swarmbee/optimize';
import type { BenchResult } from '../report/report.js';
import { lineChart } from '../report/svg.js';
import type { SuiteContext } from '../suite.js';
import type { SuitePart } from '../suites/optimize-speed.js';
import { runCliJson, words } from './finetune-process.js';
import { FINETUNE_CORPUS, RUN_TIMEOUT_MS } from './pipeline-part.js';

const OWNERS = 4;
/** Records each owner measures its loss on (the owners' `ROUND_PROBE_RECORDS`). */
const PROBE = 16;
const OWNER_WAIT_MS = 60_000;

interface FederatedRow {
  label: string;
  flags: string;
}

const ROWS: FederatedRow[] = [
  { label: 'FedAvg', flags: '' },
  { label: 'FedProx (mu 0.01)', flags: '--fedprox 0.01' },
  { label: 'FedAvg + UCB bandit', flags: '--bandit' },
  { label: 'FedAvg + UCB bandit with pruning', flags: '--bandit --bandit-prune 1' },
];

interface RoundJson {
  round: number;
  loss: number;
  bytesSent: number;
  bytesReceived: number;
  owners: {
    owner: string;
    localSteps: number;
    rank: number;
    prunedLayers: number;
    seconds: number;
  }[];
}

interface FederatedJson {
  rounds: RoundJson[];
  bandits: {
    owner: string;
    arms: { arm: { localSteps: number; rank: number }; pulls: number }[];
  }[];
}

/** The owners' data: halves of the lighthouse stories, halves of the bundled corpus. */
async function ownerData(root: string): Promise<string[]> {
  const lighthouse = (await readFile(FINETUNE_CORPUS, 'utf8')).trim().split('\n');
  const original = (await readFile(DEFAULT_CORPUS_FILE, 'utf8'))
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((text) => JSON.stringify({ text }));
  const half = (records: string[], i: number) =>
    records.slice((i * records.length) / 2, ((i + 1) * records.length) / 2);
  const sets = [half(lighthouse, 0), half(lighthouse, 1), half(original, 0), half(original, 1)];
  const files: string[] = [];
  for (const [i, set] of sets.entries()) {
    const file = join(root, `owner-${i}.jsonl`);
    await writeFile(file, `${set.join('\n')}\n`);
    files.push(file);
  }
  return files;
}

export async function federatedPart(
  context: SuiteContext,
  root: string,
  model: LlamaModelDir,
): Promise<SuitePart> {
  // 16 rounds: past the bandit's first pass over its arms (4, or 8 with pruning arms).
  const rounds = context.quick ? 3 : 16;
  const localSteps = 4;
  const files = await ownerData(root);
  const settings = words(
    '--targets all --lr 2e-3 --threads 1 --micro-batch-size 2 --accumulation 2',
  );
  context.progress(`finetune: starting a local cluster with ${OWNERS} data owners`);
  const cluster = await LocalCluster.start({
    model,
    workers: 1 + OWNERS,
    cliBin: context.cliBin,
    cacheDir: join(root, 'federated'),
    threads: 1,
    workerOutput: 'ignore',
    workerArgs: (i) => (i === 0 ? [] : ['--train-data', files[i - 1]!, '--model', model.path]),
    coordinator: { minWorkers: 1 },
  });
  try {
    const deadline = Date.now() + OWNER_WAIT_MS;
    while ((cluster.coordinator.describe().dataOwners as string[]).length < OWNERS) {
      if (Date.now() > deadline)
        throw new InvalidArgumentError(`only some of the ${OWNERS} data owners joined in time`);
      await sleep(100);
    }
    const results = new Map<FederatedRow, FederatedJson>();
    for (const row of ROWS) {
      context.progress(
        `finetune: federated, ${row.label}, ${rounds} rounds of ${localSteps} steps`,
      );
      results.set(
        row,
        await runCliJson<FederatedJson>(
          context.cliBin,
          [
            'finetune',
            ...['--url', cluster.apiUrl, '--federated', '--min-owners', String(OWNERS)],
            ...words(`--rounds ${rounds} --local-steps ${localSteps} ${row.flags}`),
            ...['--out', join(root, `federated-${ROWS.indexOf(row)}`), ...settings, '--json'],
          ],
          RUN_TIMEOUT_MS,
        ),
      );
    }
    // One site with all the records, as many steps as an owner runs in all rounds, its loss
    // on the records the owners measure on.
    const union = join(root, 'all-owners.jsonl');
    const probes = join(root, 'owner-probes.jsonl');
    const sets = await Promise.all(
      files.map(async (f) => (await readFile(f, 'utf8')).trim().split('\n')),
    );
    await writeFile(union, `${sets.flat().join('\n')}\n`);
    await writeFile(probes, `${sets.flatMap((s) => s.slice(0, PROBE)).join('\n')}\n`);
    context.progress('finetune: one site with every owner’s records');
    const single = await runCliJson<{ eval: { after: { loss: number } }[]; trainingMs: number }>(
      context.cliBin,
      [
        'finetune',
        ...['--model', model.path, '--data', union, '--eval-data', probes],
        ...words(
          `--steps ${rounds * localSteps} --lr-schedule cosine --warmup-steps 0 --checkpoint-interval 0`,
        ),
        ...['--out', join(root, 'single-site'), ...settings, '--json'],
      ],
      RUN_TIMEOUT_MS,
    );
    return assemble(results, single.eval[0]!.after.loss, rounds, localSteps);
  } finally {
    await cluster.stop();
  }
}

function assemble(
  results: Map<FederatedRow, FederatedJson>,
  singleSiteLoss: number,
  rounds: number,
  localSteps: number,
): SuitePart {
  const metrics: BenchResult['metrics'] = {};
  const rows = ROWS.map((row) => {
    const result = results.get(row)!;
    const losses = result.rounds.map((r) => r.loss);
    const reached = result.rounds.find((r) => r.loss <= singleSiteLoss)?.round;
    const bytes = result.rounds.map((r) => r.bytesSent + r.bytesReceived);
    const ownerSeconds = result.rounds.flatMap((r) => r.owners.map((o) => o.seconds));
    metrics[`owners' loss after the last round, ${row.label}`] = {
      unit: 'nats',
      summary: summarize([losses.at(-1)!]),
    };
    const arms = new Map<string, number>();
    for (const r of result.rounds)
      for (const o of r.owners) {
        const key = `${o.localSteps} steps, r=${o.rank}${o.prunedLayers ? `, -${o.prunedLayers} layer` : ''}`;
        arms.set(key, (arms.get(key) ?? 0) + 1);
      }
    return {
      row,
      losses,
      cells: [
        row.label,
        losses[0]!.toFixed(4),
        losses.at(-1)!.toFixed(4),
        reached === undefined ? `not in ${rounds}` : String(reached),
        (summarize(bytes).median / 1024).toFixed(0),
        summarize(ownerSeconds).median.toFixed(2),
        [...arms].map(([arm, n]) => `${arm} ×${n}`).join('; '),
      ],
    };
  });
  return {
    metrics,
    tables: [
      {
        title: `Federated rounds: stories260K, ${OWNERS} data owners (2 × lighthouse stories, 2 × bundled corpus), LoRA r=8 on all projections, ${rounds} rounds of ${localSteps} local steps; one site with every record: loss ${singleSiteLoss.toFixed(4)} after ${rounds * localSteps} steps`,
        head: [
          'aggregation',
          'owners’ loss after round 1',
          `after round ${rounds}`,
          'first round at the one-site loss',
          'KiB per round (both ways)',
          'owner s per round (median)',
          'arms played (owner-rounds)',
        ],
        rows: rows.map((r) => r.cells),
      },
    ],
    checks: [],
    charts: [
      {
        file: 'finetune-federated.svg',
        title: 'Owners’ loss by round',
        svg: lineChart({
          title: `Owners' loss after each round (examples-weighted; one site: ${singleSiteLoss.toFixed(3)})`,
          xLabel: 'round',
          yLabel: 'loss (nats)',
          series: rows.map((r) => ({
            name: r.row.label,
            points: r.losses.map((loss, i): [number, number] => [i + 1, loss]),
          })),
        }),
      },
    ],
    notes: [
      'Owners are `swarmbee worker --train-data FILE --model DIR` processes of a `LocalCluster`; each round is every owner training on its own records (one stage, 1 thread), then FedAvg (weighted by records) on the coordinator. The owners’ loss is each owner’s mean loss on its first 16 records after the round, weighted by its records; the one-site loss is the same records’ loss (token-weighted) after a `finetune --model` run on all records for rounds × local steps steps with a cosine schedule.',
      'The bandit’s arms are (local steps 4 or 8) × (rank 8 or 4), × (no layer or the least influential one pruned) in the last row; its reward is the loss decrease per second of the owner’s round, which includes loading the tokenizer and creating the training sessions each round (most of a round at this size).',
    ],
  };
}
