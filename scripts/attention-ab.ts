/**
 * Fused against decomposed attention at decode: the 110M benchmark preset at fp32, int8 or
 * int4, all layers in one session per variant, a 16-token prompt (or `--context`) then greedy
 * steps, in alternating rounds; prints each round's median graph run (session.run) per variant,
 * the per-round ratio decomposed / fused (above 1: fused is faster) and how far the two
 * variants' logits are apart. The fused variant feeds the cache as GroupQueryAttention's past
 * and binds its present outputs to the same buffers (onnxruntime writes the new rows in place);
 * the decomposed one feeds the cache with the attention bias and writes the new rows itself,
 * as OrtStage does. The measurement behind OrtStage refusing fused shards (docs/BENCHMARKS.md).
 *
 *     node --conditions=swarmbee:source --import tsx scripts/attention-ab.ts \
 *       [fp32|int8|int4] [threads] [--context 16] [--capacity 64] [--rounds 7] [--steps 16]
 */
import { parseArgs } from 'node:util';
import { cachedQuantized } from '@swarmbee/bench';
import { headDim } from '@swarmbee/core';
import { stageSessionOptions } from '@swarmbee/engine';
import {
  BENCH_PRESET,
  buildShard,
  cachedSynthModel,
  DEFAULT_SYNTH_SEED,
  MASKED_BIAS,
  requireLlamaDir,
  SHARD_IO,
  type ShardAttention,
} from '@swarmbee/model';
import ort from 'onnxruntime-node';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    context: { type: 'string', default: '16' },
    capacity: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '7' },
    steps: { type: 'string', default: '16' },
  },
});
const precision = positionals[0] ?? 'int4';
const threads = Number(positionals[1] ?? 2);
const context = Number(values.context);
const capacity = Number(values.capacity);
if (!['fp32', 'int8', 'int4'].includes(precision))
  throw new Error(`unknown precision ${precision}`);
if (context + Number(values.steps) + 1 > capacity)
  throw new Error(`--capacity ${capacity} cannot hold the context and the steps`);

const base = requireLlamaDir(await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED), 'ab');
const dir =
  precision === 'fp32' ? base : await cachedQuantized(base, precision === 'int8' ? 8 : 4, 'int8');
const { config } = base.manifest;
const layers = config.nLayers;
const dims = [1, config.nKvHeads, capacity, headDim(config)];

type Feeds = Record<string, ort.Tensor>;
type Fetches = Record<string, ort.Tensor | null>;

function session(attention: ShardAttention): Promise<ort.InferenceSession> {
  const shard = buildShard(dir, { start: 0, end: layers }, { attention });
  return ort.InferenceSession.create(
    shard.onnx,
    stageSessionOptions(shard.externalDataDir, { intraOpThreads: threads }),
  );
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** One variant's cache and how a step feeds it and keeps what the graph returns. */
interface Variant {
  feed(feeds: Feeds, fetches: Fetches, start: number, count: number): void;
  keep(results: ort.InferenceSession.OnnxValueMapType, start: number, count: number): void;
}

function decomposed(): Variant {
  const cache = Array.from({ length: layers }, () => ({
    keys: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b)), dims),
    values: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b)), dims),
  }));
  return {
    feed(feeds, fetches, start, count) {
      // Query i sees the past [0, start) and the new tokens up to itself, as OrtStage's bias.
      const total = capacity + count;
      const bias = new Float32Array(count * total).fill(MASKED_BIAS);
      for (let i = 0; i < count; i++) {
        bias.fill(0, i * total, i * total + start);
        bias.fill(0, i * total + capacity, i * total + capacity + i + 1);
      }
      feeds[SHARD_IO.attentionBias] = new ort.Tensor('float32', bias, [1, 1, count, total]);
      cache.forEach(({ keys, values }, l) => {
        feeds[SHARD_IO.pastKey(l)] = keys;
        feeds[SHARD_IO.pastValue(l)] = values;
        fetches[SHARD_IO.newKey(l)] = null;
        fetches[SHARD_IO.newValue(l)] = null;
      });
    },
    keep(results, start, count) {
      const hd = headDim(config);
      cache.forEach(({ keys, values }, l) => {
        const newKeys = results[SHARD_IO.newKey(l)]!.data as Float32Array;
        const newValues = results[SHARD_IO.newValue(l)]!.data as Float32Array;
        for (let h = 0; h < config.nKvHeads; h++) {
          const from = h * count * hd;
          const to = (h * capacity + start) * hd;
          (keys.data as Float32Array).set(newKeys.subarray(from, from + count * hd), to);
          (values.data as Float32Array).set(newValues.subarray(from, from + count * hd), to);
        }
      });
    },
  };
}

function fused(): Variant {
  const cache = Array.from({ length: layers }, () => ({
    keys: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b)), dims),
    values: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b)), dims),
  }));
  return {
    feed(feeds, fetches, start, count) {
      feeds[SHARD_IO.seqLensK] = new ort.Tensor('int32', Int32Array.of(start + count - 1), [1]);
      feeds[SHARD_IO.totalSequenceLength] = new ort.Tensor(
        'int32',
        Int32Array.of(start + count),
        [],
      );
      cache.forEach(({ keys, values }, l) => {
        feeds[SHARD_IO.pastKey(l)] = keys;
        feeds[SHARD_IO.pastValue(l)] = values;
        fetches[SHARD_IO.presentKey(l)] = keys;
        fetches[SHARD_IO.presentValue(l)] = values;
      });
    },
    keep() {},
  };
}

/** Prefill then `steps` greedy steps; returns each step's session.run time and logits. */
async function decode(s: ort.InferenceSession, variant: Variant, steps: number) {
  let ids = BigInt64Array.from({ length: context }, (_, i) =>
    BigInt(1 + ((i * 7919) % (config.vocabSize - 1))),
  );
  let start = 0;
  const runMs: number[] = [];
  const logits: Float32Array[] = [];
  for (let step = 0; step <= steps; step++) {
    const count = ids.length;
    const feeds: Feeds = {
      [SHARD_IO.inputIds]: new ort.Tensor('int64', ids, [1, count]),
      [SHARD_IO.positionIds]: new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: count }, (_, i) => BigInt(start + i)),
        [1, count],
      ),
      [SHARD_IO.logitIndex]: new ort.Tensor(
        'int64',
        BigInt64Array.of(BigInt(count - 1)),
        [1, 1, 1],
      ),
    };
    const fetches: Fetches = { [SHARD_IO.logits]: null };
    variant.feed(feeds, fetches, start, count);
    const runStart = performance.now();
    const results = await s.run(feeds, fetches);
    if (step > 0) runMs.push(performance.now() - runStart);
    variant.keep(results, start, count);
    const out = results[SHARD_IO.logits]!.data as Float32Array;
    logits.push(out);
    start += count;
    ids = BigInt64Array.of(BigInt(argmax(out)));
  }
  return { runMs, logits };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const sessions = { decomposed: await session('decomposed'), fused: await session('fused') };
const steps = Number(values.steps);
const check = [
  await decode(sessions.decomposed, decomposed(), 8),
  await decode(sessions.fused, fused(), 8),
];
let maxDiff = 0;
let sameArgmax = 0;
check[0]!.logits.forEach((a, i) => {
  const b = check[1]!.logits[i]!;
  for (let j = 0; j < a.length; j++) maxDiff = Math.max(maxDiff, Math.abs(a[j]! - b[j]!));
  if (argmax(a) === argmax(b)) sameArgmax++;
});
console.log(
  `${precision}, ${threads} thread(s), context ${context}, capacity ${capacity}: logits max |decomposed - fused| ${maxDiff.toExponential(2)}, same argmax ${sameArgmax}/${check[0]!.logits.length}`,
);
console.log('| round | decomposed ms | fused ms | decomposed / fused |\n|---|---|---|---|');
const ratios: number[] = [];
for (let round = 1; round <= Number(values.rounds); round++) {
  const d = median((await decode(sessions.decomposed, decomposed(), steps)).runMs);
  const f = median((await decode(sessions.fused, fused(), steps)).runMs);
  ratios.push(d / f);
  console.log(`| ${round} | ${d.toFixed(2)} | ${f.toFixed(2)} | ${(d / f).toFixed(3)} |`);
}
console.log(`median decomposed / fused: ${median(ratios).toFixed(3)}`);
await Promise.all(Object.values(sessions).map((s) => s.release()));
