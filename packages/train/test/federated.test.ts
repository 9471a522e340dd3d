/**
 * Federated fine-tuning's parts: one owner's round is the same training as `finetune` in
 * one process (its adapter bit for bit), FedAvg of one update is that update, of several the
 * examples-weighted mean, ranks truncate and pad as HetLoRA does, FedProx pulls the local
 * adapter toward the global one, and the UCB bandit tries every arm, then prefers the best.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { initLoraAdapter, readPeftAdapter } from '@swarmbee/model';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { onPrunedLayers, onWholeLayers } from '../src/federated/pruned-round.js';
import {
  FINETUNE_DEFAULTS,
  type FinetuneSettings,
  federatedAverage,
  finetune,
  type LocalRoundSettings,
  roundRelativeRewards,
  trainLocalRound,
  truncateRank,
  UcbBandit,
} from '../src/index.js';
import { STORIES } from './helpers/stories.js';

const ROUND: LocalRoundSettings = {
  steps: 3,
  learningRate: 3e-3,
  microBatchSize: 2,
  accumulation: 2,
  seqLen: 64,
  truncate: false,
  seed: 5,
  weightDecay: 0,
  maxGradNorm: 1,
  proximalMu: 0,
  activations: 'recompute',
  threads: 1,
};

t.test('one owner, one round: the in-process run, and FedAvg keeps it', async (t) => {
  const root = t.testdir();
  const model = await stories260kDir(t, root);
  if (!model) return;
  const data = join(root, 'data.jsonl');
  await writeFile(data, `${STORIES.map((text) => JSON.stringify({ text })).join('\n')}\n`);
  const spec = {
    rank: 4,
    alpha: 8,
    targets: ['q_proj' as const, 'down_proj' as const],
    layers: [0, 2, 4],
  };
  const global = initLoraAdapter(spec, model.manifest, 5);
  const local = await trainLocalRound({ model, data, adapter: global, round: 0, settings: ROUND });
  t.equal(local.examples, STORIES.length);
  t.ok(local.lossAfter < local.lossBefore, `loss ${local.lossBefore} → ${local.lossAfter}`);

  // The same steps as a `finetune` run: constant rate, no warm-up, same seed and order.
  const settings: FinetuneSettings = {
    ...FINETUNE_DEFAULTS,
    ...spec,
    targets: [...spec.targets],
    learningRate: ROUND.learningRate,
    schedule: 'constant',
    warmupSteps: 0,
    steps: ROUND.steps,
    microBatchSize: 2,
    accumulation: 2,
    seqLen: 64,
    seed: 5,
    threads: 1,
    checkpointInterval: 0,
  };
  await finetune({
    model,
    data,
    out: join(root, 'ref'),
    checkpointDir: join(root, 'ref.ckpt'),
    settings,
  });
  const reference = await readPeftAdapter(join(root, 'ref'));
  let worst = 0;
  for (const [name, value] of reference.tensors) {
    const got = local.adapter.tensors.get(name)!;
    for (let i = 0; i < value.length; i++) worst = Math.max(worst, Math.abs(got[i]! - value[i]!));
  }
  t.equal(worst, 0, "the owner's adapter is the in-process run's, bit for bit");

  const averaged = federatedAverage(
    global,
    [{ adapter: local.adapter, examples: 6 }],
    model.manifest.config,
  );
  let drift = 0;
  for (const [name, value] of local.adapter.tensors) {
    const got = averaged.tensors.get(name)!;
    for (let i = 0; i < value.length; i++) drift = Math.max(drift, Math.abs(got[i]! - value[i]!));
  }
  t.ok(drift < 1e-7, `FedAvg of one update is that update (max |Δ| ${drift})`);

  const prox = await trainLocalRound({
    model,
    data,
    adapter: global,
    round: 0,
    settings: { ...ROUND, proximalMu: 50 },
  });
  const distance = (a: typeof local.adapter) => {
    let sum = 0;
    for (const [name, value] of a.tensors) {
      const base = global.tensors.get(name)!;
      for (let i = 0; i < value.length; i++) sum += (value[i]! - base[i]!) ** 2;
    }
    return Math.sqrt(sum);
  };
  t.ok(
    distance(prox.adapter) < distance(local.adapter),
    `FedProx stays nearer the global adapter (${distance(prox.adapter)} < ${distance(local.adapter)})`,
  );
});

/** A model shape small enough to check sums by hand: dim 4, one head, `nLayers` layers. */
function tinyModel(nLayers: number) {
  const config = {
    dim: 4,
    hiddenDim: 8,
    nLayers,
    nHeads: 1,
    nKvHeads: 1,
    vocabSize: 16,
    maxSeqLen: 8,
  } as Parameters<typeof federatedAverage>[2];
  const manifest = { config, modelHash: 'h', name: 'tiny' } as Parameters<
    typeof initLoraAdapter
  >[1];
  return { config, manifest };
}

t.test('FedAvg weighs owners by examples; lower ranks truncate and pad', async (t) => {
  // One layer, q_proj only (dim 4 → A [r, 4], B [4, r]).
  const { config, manifest } = tinyModel(1);
  const global = initLoraAdapter(
    { rank: 2, alpha: 4, targets: ['q_proj'], layers: [0] },
    manifest,
    1,
  );
  const a = 'layers.0.q_proj.lora_A';
  const b = 'layers.0.q_proj.lora_B';
  const shift = (adapter: typeof global, by: number) => ({
    ...adapter,
    tensors: new Map([...adapter.tensors].map(([n, v]) => [n, v.map((x) => x + by)])),
  });
  const mean = federatedAverage(
    global,
    [
      { adapter: shift(global, 1), examples: 1 },
      { adapter: shift(global, 4), examples: 3 },
    ],
    config,
  );
  t.ok(
    [...mean.tensors.get(a)!].every(
      (x, i) => Math.abs(x - (global.tensors.get(a)![i]! + 3.25)) < 1e-6,
    ),
    'weighted by examples: 1·1/4 + 4·3/4',
  );

  const low = truncateRank(global, 1, config);
  t.equal(low.spec.alpha, 2, 'alpha scales with the rank: alpha / r is kept');
  t.same([...low.tensors.get(a)!], [...global.tensors.get(a)!.subarray(0, 4)], 'A: its first row');
  t.equal(low.tensors.get(b)!.length, 4, 'B: its first column');
  const padded = federatedAverage(global, [{ adapter: shift(low, 1), examples: 1 }], config);
  const fullA = global.tensors.get(a)!;
  t.same(
    [...padded.tensors.get(a)!].map((x, i) => Math.round((x - fullA[i]!) * 1e6) / 1e6),
    [1, 1, 1, 1, 0, 0, 0, 0],
    "A's row the owner did not train is unchanged",
  );
  const deltaB = [...padded.tensors.get(b)!].map(
    (x, i) => Math.round((x - global.tensors.get(b)![i]!) * 1e6) / 1e6,
  );
  t.same(deltaB, [1, 0, 1, 0, 1, 0, 1, 0], "B's column the owner did not train is unchanged");
  t.throws(() => truncateRank(global, 3, config), { code: 'SWARMBEE_ERR_INVALID_ARGUMENT' });
});

t.test('UCB: every arm once, then the one with the best reward', async (t) => {
  const bandit = new UcbBandit([
    { localSteps: 5, rank: 8, prunedLayers: 0 },
    { localSteps: 10, rank: 8, prunedLayers: 0 },
    { localSteps: 5, rank: 4, prunedLayers: 0 },
  ]);
  const rewards = [0.1, 1, 0.2];
  const played: number[] = [];
  for (let i = 0; i < 30; i++) {
    const arm = bandit.choose();
    played.push(arm);
    bandit.record(arm, rewards[arm]!);
  }
  t.same(played.slice(0, 3), [0, 1, 2], 'each arm first');
  const counts = bandit.summary().map((s) => s.pulls);
  t.ok(counts[1]! > counts[0]! + counts[2]!, `the best arm is played most: ${counts}`);
  bandit.record(0, Number.NaN);
  t.equal(bandit.summary()[0]!.pulls, counts[0]! + 1, 'a non-finite reward counts as 0');
});

t.test('UCB over rounds whose rewards all fall: relative rewards find the best arm', async (t) => {
  const arms = [4, 8, 16].map((localSteps) => ({ localSteps, rank: 8, prunedLayers: 0 }));
  t.same(
    [0, 1, 2].map((first) => {
      const bandit = new UcbBandit(arms, { firstArm: first });
      const order: number[] = [];
      for (let i = 0; i < 3; i++) {
        const arm = bandit.choose();
        order.push(arm);
        bandit.record(arm, 1);
      }
      return order;
    }),
    [
      [0, 1, 2],
      [1, 2, 0],
      [2, 0, 1],
    ],
    'each owner starts its first pass at its own arm',
  );
  t.same(
    roundRelativeRewards([3, 1, Number.NaN]),
    [3, 1, 0].map((r) => (r - (3 + 1 + 0) / 3) / ((3 + 1 + 0) / 3)),
    'each reward less the round mean, over the mean magnitude; a non-finite one as 0',
  );
  t.same(roundRelativeRewards([5]), [5], 'one owner: its reward as it is');

  // Three owners, one bandit each; arm 1 gains 1.5× the others, and every reward halves
  // each round (the loss falls). Raw rewards favour whatever was played first.
  const simulate = (relative: boolean) => {
    const bandits = [0, 1, 2].map((first) => new UcbBandit(arms, { firstArm: first }));
    for (let round = 0; round < 24; round++) {
      const played = bandits.map((b) => b.choose());
      const rewards = played.map((arm) => (arm === 1 ? 1.5 : 1) * 0.5 ** round);
      const fed = relative ? roundRelativeRewards(rewards) : rewards;
      for (const [i, b] of bandits.entries()) b.record(played[i]!, fed[i]!);
    }
    return bandits.map((b) => b.summary().map((s) => s.pulls));
  };
  const mostPlayed = (pulls: number[]) => pulls.indexOf(Math.max(...pulls));
  for (const pulls of simulate(true))
    t.equal(mostPlayed(pulls), 1, `relative: arm 1 played most (${pulls.join(', ')})`);
  const raw = simulate(false);
  t.notOk(
    raw.every((pulls) => mostPlayed(pulls) === 1),
    `raw falling rewards: not for every owner (${raw.map((p) => p.join(', ')).join('; ')})`,
  );
});

t.test('an owner that pruned a layer has no say in it', async (t) => {
  const { config, manifest } = tinyModel(3);
  const global = initLoraAdapter(
    { rank: 1, alpha: 1, targets: ['q_proj'], layers: [0, 1, 2] },
    manifest,
    1,
  );
  const kept = [0, 2];
  const onPruned = onPrunedLayers(global, kept);
  t.same(onPruned.spec.layers, [0, 1], 'layers renumbered onto the pruned model');
  t.same([...onPruned.tensors.keys()].sort(), [
    'layers.0.q_proj.lora_A',
    'layers.0.q_proj.lora_B',
    'layers.1.q_proj.lora_A',
    'layers.1.q_proj.lora_B',
  ]);
  t.same(
    onPruned.tensors.get('layers.1.q_proj.lora_A'),
    global.tensors.get('layers.2.q_proj.lora_A'),
  );
  const back = onWholeLayers(
    {
      ...onPruned,
      tensors: new Map([...onPruned.tensors].map(([n, v]) => [n, v.map((x) => x + 2)])),
    },
    kept,
    'h',
  );
  t.same(back.spec.layers, [0, 2]);
  const full = {
    ...global,
    tensors: new Map([...global.tensors].map(([n, v]) => [n, v.map((x) => x + 1)])),
  };
  const mean = federatedAverage(
    global,
    [
      { adapter: full, examples: 1 },
      { adapter: back, examples: 1 },
    ],
    config,
  );
  const delta = (name: string) =>
    Math.round((mean.tensors.get(name)![0]! - global.tensors.get(name)![0]!) * 1e5) / 1e5;
  t.equal(delta('layers.0.q_proj.lora_A'), 1.5, 'a layer both trained: their mean');
  t.equal(delta('layers.1.q_proj.lora_A'), 1, 'the pruned layer: only the owner that trained it');
});
