/**
 * The training graphs' gradients against finite differences, in float64: for a stage,
 * J = loss (last stage) or Σ hidden_out · G for a fixed random G (the gradient the next
 * stage would send), and every adapter tensor's and the stage input's analytic gradient
 * from the backward graph is compared with (J(θ + h) − J(θ − h)) / 2h at sampled
 * coordinates. The finite differences are the oracle; nothing else is assumed.
 */
import { join } from 'node:path';
import type { LlamaConfig } from '@swarmbee/core';
import type { TrainingMicroBatch } from '@swarmbee/engine';
import {
  type ActivationPolicy,
  buildTrainingShard,
  type LayerRange,
  type LlamaModelDir,
  LORA_TARGETS,
  type LoraSpec,
  loraModules,
  quantizeModel,
  requireLlamaDir,
  synthesizeModel,
  TRAIN_IO,
  type TrainingShard,
} from '@swarmbee/model';
import ort from 'onnxruntime-node';
import t from 'tap';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import { trainingFeeds } from '../src/train/training-batch.js';

const STEP = 1e-5;
/** Largest |analytic − finite difference| allowed, relative to the tensor's largest gradient. */
const TOLERANCE = 2e-6;

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

interface Harness {
  shard: TrainingShard;
  forward: ort.InferenceSession;
  backward: ort.InferenceSession;
  base: Record<string, ort.Tensor>;
  params: Map<string, Float64Array>;
  hidden?: Float64Array;
  gradOut?: Float64Array;
}

const ROWS = [5, 3];
const WIDTH = 5;

async function harness(
  dir: LlamaModelDir,
  range: LayerRange,
  spec: LoraSpec,
  activations: ActivationPolicy = 'recompute',
  seed = 7,
): Promise<Harness> {
  const { config } = dir.manifest;
  const modules = loraModules(spec, config);
  const shard = await buildTrainingShard(dir, range, modules, { float: 'float64', activations });
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'basic',
    logSeverityLevel: 3,
    extra: { session: { model_external_initializers_file_folder_path: shard.externalDataDir } },
  };
  const forward = await ort.InferenceSession.create(shard.forward, options);
  const backward = await ort.InferenceSession.create(shard.backward!, options);
  const rnd = random(seed);
  const place = {
    isFirst: range.start === 0,
    isLast: range.end === config.nLayers,
    dim: config.dim,
    vocabSize: config.vocabSize,
    maxSeqLen: config.maxSeqLen,
  };
  const cells = ROWS.length * WIDTH;
  const batch: TrainingMicroBatch = { id: 1, lengths: Int32Array.from(ROWS), width: WIDTH };
  let hidden: Float64Array | undefined;
  if (place.isFirst)
    batch.tokens = BigInt64Array.from({ length: cells }, () =>
      BigInt(3 + Math.floor((rnd() + 0.5) * 200)),
    );
  else {
    hidden = Float64Array.from({ length: cells * config.dim }, () => rnd() * 2);
    batch.hidden = hidden;
  }
  if (place.isLast) {
    // Row 0 ignores its first two targets (a prompt), row 1 its padding.
    batch.targets = BigInt64Array.from({ length: cells }, (_, i) => {
      const [r, p] = [Math.floor(i / WIDTH), i % WIDTH];
      if ((r === 0 && p < 2) || p >= ROWS[r]!) return -100n;
      return BigInt(3 + Math.floor((rnd() + 0.5) * 200));
    });
    batch.lossScale = 1 / 6;
  }
  const base = trainingFeeds(batch, place, 'float64');
  const params = new Map(
    shard.params.map((p) => [
      p.name,
      Float64Array.from({ length: p.dims[0] * p.dims[1] }, () => rnd() * 0.4),
    ]),
  );
  const gradOut = place.isLast
    ? undefined
    : Float64Array.from({ length: cells * config.dim }, () => rnd());
  return { shard, forward, backward, base, params, hidden, gradOut };
}

function feeds(h: Harness): Record<string, ort.Tensor> {
  const all: Record<string, ort.Tensor> = { ...h.base };
  for (const p of h.shard.params)
    all[p.name] = new ort.Tensor('float64', h.params.get(p.name)!, p.dims);
  if (h.hidden)
    all[TRAIN_IO.hiddenIn] = new ort.Tensor('float64', h.hidden, h.base[TRAIN_IO.hiddenIn]!.dims);
  return all;
}

function pick(session: ort.InferenceSession, all: Record<string, ort.Tensor>) {
  return Object.fromEntries(session.inputNames.map((n) => [n, all[n]!]));
}

async function objective(h: Harness): Promise<number> {
  const out = await h.forward.run(pick(h.forward, feeds(h)));
  if (!h.gradOut) return (out[TRAIN_IO.loss]!.data as Float64Array)[0]!;
  const hidden = out[TRAIN_IO.hiddenOut]!.data as Float64Array;
  let j = 0;
  for (let i = 0; i < hidden.length; i++) j += hidden[i]! * h.gradOut[i]!;
  return j;
}

async function analytic(h: Harness): Promise<Map<string, Float64Array>> {
  const all = feeds(h);
  if (h.shard.saved.length > 0) {
    const out = await h.forward.run(pick(h.forward, all));
    for (const s of h.shard.saved) all[s.name] = out[s.name]!;
  }
  if (h.gradOut)
    all[TRAIN_IO.gradHiddenOut] = new ort.Tensor(
      'float64',
      h.gradOut,
      h.base[TRAIN_IO.hiddenIn]?.dims ?? [
        ROWS.length,
        WIDTH,
        h.gradOut.length / ROWS.length / WIDTH,
      ],
    );
  const res = await h.backward.run(pick(h.backward, all));
  const grads = new Map<string, Float64Array>();
  for (const p of h.shard.params)
    grads.set(p.name, res[TRAIN_IO.grad(p.name)]!.data as Float64Array);
  if (h.shard.inputGradient)
    grads.set(TRAIN_IO.hiddenIn, res[TRAIN_IO.gradHiddenIn]!.data as Float64Array);
  return grads;
}

/** The worst |analytic − finite difference| / max|analytic| over sampled coordinates of every tensor. */
async function worstError(
  h: Harness,
  samplesPerTensor = 3,
): Promise<{ worst: number; where: string; checked: number }> {
  const grads = await analytic(h);
  const rnd = random(99);
  let worst = 0;
  let where = '';
  let checked = 0;
  for (const [name, grad] of grads) {
    const values = name === TRAIN_IO.hiddenIn ? h.hidden! : h.params.get(name)!;
    let scale = 0;
    let argmax = 0;
    grad.forEach((g, i) => {
      if (Math.abs(g) > scale) [scale, argmax] = [Math.abs(g), i];
    });
    const coords = [
      argmax,
      ...Array.from({ length: samplesPerTensor - 1 }, () =>
        Math.floor((rnd() + 0.5) * values.length),
      ),
    ];
    for (const i of coords) {
      const saved = values[i]!;
      values[i] = saved + STEP;
      const plus = await objective(h);
      values[i] = saved - STEP;
      const minus = await objective(h);
      values[i] = saved;
      const fd = (plus - minus) / (2 * STEP);
      const error = Math.abs(fd - grad[i]!) / Math.max(scale, 1e-12);
      checked++;
      if (error > worst) [worst, where] = [error, `${name}[${i}]: analytic ${grad[i]} fd ${fd}`];
    }
  }
  return { worst, where, checked };
}

const ALL: LoraSpec = { rank: 3, alpha: 6, targets: [...LORA_TARGETS], layers: [0, 1, 2, 3, 4] };

t.test(
  'stories260K: every adapter gradient and the stage input gradient match finite differences',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    for (const range of [
      { start: 0, end: 2 },
      { start: 2, end: 5 },
      { start: 0, end: 5 },
    ]) {
      const h = await harness(dir, range, ALL);
      const { worst, where, checked } = await worstError(h);
      t.ok(
        worst < TOLERANCE,
        `layers [${range.start}, ${range.end}): worst relative error ${worst.toExponential(2)} over ${checked} coordinates (${where})`,
      );
    }
  },
);

t.test('stashed activations give the same gradients as recomputing them', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  for (const range of [
    { start: 0, end: 3 },
    { start: 3, end: 5 },
  ]) {
    const recompute = await analytic(await harness(dir, range, ALL, 'recompute'));
    const stash = await analytic(await harness(dir, range, ALL, 'stash'));
    let worst = 0;
    for (const [name, grad] of recompute) {
      const other = stash.get(name)!;
      grad.forEach((g, i) => {
        worst = Math.max(worst, Math.abs(g - other[i]!));
      });
    }
    t.ok(worst < 1e-12, `layers [${range.start}, ${range.end}): largest difference ${worst}`);
  }
});

t.test(
  'grouped-query attention, an untied head and q/k/v biases: gradients match finite differences',
  async (t) => {
    const config: LlamaConfig = {
      dim: 48,
      hiddenDim: 80,
      nLayers: 4,
      nHeads: 6,
      nKvHeads: 2,
      vocabSize: 400,
      maxSeqLen: 64,
      normEps: 1e-5,
      ropeTheta: 10000,
      sharedClassifier: false,
      qkvBias: true,
    };
    const dir = await synthesizeModel({ config, seed: 3, out: join(t.testdir(), 'gqa') });
    for (const range of [
      { start: 0, end: 1 },
      { start: 1, end: 3 },
      { start: 3, end: 4 },
    ]) {
      const h = await harness(
        dir,
        range,
        { ...ALL, layers: [0, 1, 2, 3], rsLora: true },
        'recompute',
        11,
      );
      const { worst, where, checked } = await worstError(h);
      t.ok(
        worst < TOLERANCE,
        `layers [${range.start}, ${range.end}): worst ${worst.toExponential(2)} over ${checked} (${where})`,
      );
    }
  },
);

t.test(
  'scaled RoPE (llama3 bands, longrope with an attention factor) and a head size apart from dim / heads',
  async (t) => {
    const shape = {
      dim: 48,
      hiddenDim: 64,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 2,
      vocabSize: 400,
      maxSeqLen: 64,
      normEps: 1e-5,
      ropeTheta: 10000,
      sharedClassifier: true,
    };
    const scalings: LlamaConfig[] = [
      {
        ...shape,
        ropeScaling: {
          type: 'llama3',
          factor: 8,
          lowFreqFactor: 1,
          highFreqFactor: 4,
          originalContext: 16,
        },
      },
      {
        ...shape,
        headDim: 16,
        ropeScaling: {
          type: 'longrope',
          shortFactor: [1, 1.5, 2, 3, 4, 5, 6, 8],
          longFactor: [1, 1, 1, 1, 1, 1, 1, 1],
          originalContext: 64,
          attentionFactor: 1.2,
        },
      },
    ];
    for (const [i, config] of scalings.entries()) {
      const dir = await synthesizeModel({ config, seed: 4, out: join(t.testdir(), `r${i}`) });
      const h = await harness(
        dir,
        { start: 0, end: 2 },
        { ...ALL, layers: [0, 1] },
        'recompute',
        5,
      );
      const { worst, where, checked } = await worstError(h);
      t.ok(
        worst < TOLERANCE,
        `${config.ropeScaling!.type}: worst ${worst.toExponential(2)} over ${checked} (${where})`,
      );
    }
  },
);

t.test('some targets on some layers: the backward pass stops at the lowest adapter', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const spec: LoraSpec = { rank: 2, alpha: 4, targets: ['v_proj', 'down_proj'], layers: [3] };
  const h = await harness(dir, { start: 2, end: 5 }, spec);
  t.equal(h.shard.inputGradient, false, 'no adapter below the stage: no input gradient');
  t.same(
    h.shard.params.map((p) => p.name),
    [
      'layers.3.v_proj.lora_A',
      'layers.3.v_proj.lora_B',
      'layers.3.down_proj.lora_A',
      'layers.3.down_proj.lora_B',
    ],
  );
  const { worst, where } = await worstError(h, 4);
  t.ok(worst < TOLERANCE, `worst ${worst.toExponential(2)} (${where})`);
  const first = await buildTrainingShard(
    dir,
    { start: 0, end: 2 },
    loraModules(spec, dir.manifest.config),
  );
  t.equal(first.backward, undefined, 'a first stage below every adapter has no backward graph');
});

t.test(
  'int8 and int4 bases: gradients through the dequantized weights match finite differences',
  async (t) => {
    const root = t.testdir();
    const dir = await stories260kDir(t, root);
    if (!dir) return;
    for (const bits of [8, 4]) {
      const quantized = requireLlamaDir(
        await quantizeModel(dir, { bits, out: join(root, `int${bits}`), head: true }),
        'test',
      );
      const h = await harness(quantized, { start: 0, end: 5 }, ALL);
      const { worst, where, checked } = await worstError(h, 2);
      t.ok(
        worst < TOLERANCE,
        `int${bits}: worst ${worst.toExponential(2)} over ${checked} (${where})`,
      );
    }
  },
);
