/**
 * How long onnxruntime's intra-op threads should spin: decode steps of the 110M benchmark
 * preset (fp32, int8 or int4) on one in-process stage per setting, in alternating rounds;
 * prints each setting's median step per round and its per-round ratio against the first
 * setting (above 1: faster). Settings: `off` (threads sleep when out of work) or a spin bound
 * in microseconds. Load the machine as the case needs (other work, `nice`, busy loops) and
 * say so with the figures: spinning helps when cores are free and costs when they are not.
 *
 *     node --conditions=swarmbee:source --import tsx scripts/spin-ab.ts \
 *       [fp32|int8|int4] [threads] [settings, default off,20,100] [--rounds 5] [--steps 24]
 */
import { parseArgs } from 'node:util';
import { cachedQuantized } from '@swarmbee/bench';
import { createStageEngine, type StageEngine, type StageOptions } from '@swarmbee/engine';
import {
  BENCH_PRESET,
  buildShard,
  cachedSynthModel,
  DEFAULT_SYNTH_SEED,
  requireLlamaDir,
} from '@swarmbee/model';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '5' },
    steps: { type: 'string', default: '24' },
  },
});
const precision = positionals[0] ?? 'int4';
const threads = Number(positionals[1] ?? 2);
const settings = (positionals[2] ?? 'off,20,100').split(',');
if (!['fp32', 'int8', 'int4'].includes(precision))
  throw new Error(`unknown precision ${precision}`);

function spinning(setting: string): StageOptions {
  if (setting === 'off') return { allowSpinning: false };
  const spinDurationUs = Number(setting);
  if (!Number.isInteger(spinDurationUs)) throw new Error(`unknown setting ${setting}`);
  return { allowSpinning: true, spinDurationUs };
}

const base = requireLlamaDir(await cachedSynthModel(BENCH_PRESET, DEFAULT_SYNTH_SEED), 'spin');
const dir =
  precision === 'fp32' ? base : await cachedQuantized(base, precision === 'int8' ? 8 : 4, 'int8');
const { nLayers, vocabSize } = base.manifest.config;
const stages = new Map<string, StageEngine>();
for (const setting of settings) {
  const shard = buildShard(dir, { start: 0, end: nLayers });
  stages.set(
    setting,
    await createStageEngine(shard, { intraOpThreads: threads, ...spinning(setting) }),
  );
}

const greedy = { temperature: 0, topK: 0, topP: 1 };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Median decode step (ms) after a 16-token prompt. */
async function decode(stage: StageEngine, steps: number): Promise<number> {
  const seqId = `spin-${Math.random().toString(36).slice(2)}`;
  const prompt = BigInt64Array.from({ length: 16 }, (_, i) =>
    BigInt(1 + ((i * 7919) % (vocabSize - 1))),
  );
  let out = await stage.forward({
    rows: [{ seqId, start: 0, count: 16, sampling: greedy }],
    tokens: prompt,
  });
  const stepMs: number[] = [];
  for (let i = 0; i < steps; i++) {
    if (out.kind !== 'tokens') throw new Error('expected tokens');
    const start = performance.now();
    out = await stage.forward({
      rows: [{ seqId, start: 16 + i, count: 1, sampling: greedy }],
      tokens: BigInt64Array.of(BigInt(out.tokens[0]!)),
    });
    stepMs.push(performance.now() - start);
  }
  await stage.release([seqId]);
  return median(stepMs);
}

const medians = new Map<string, number[]>(settings.map((s) => [s, []]));
for (const stage of stages.values()) await decode(stage, 4); // warm-up
for (let round = 0; round < Number(values.rounds); round++)
  for (const [setting, stage] of stages)
    medians.get(setting)!.push(await decode(stage, Number(values.steps)));
const first = medians.get(settings[0]!)!;
console.log(`${precision}, ${threads} thread(s): median decode step (ms) per round`);
console.log(`| spinning | steps (ms) | ${settings[0]} / this, median of rounds |\n|---|---|---|`);
for (const [setting, ms] of medians) {
  const ratio = median(ms.map((m, i) => first[i]! / m));
  console.log(`| ${setting} | ${ms.map((m) => m.toFixed(2)).join(', ')} | ${ratio.toFixed(3)} |`);
}
await Promise.all([...stages.values()].map((s) => s.close()));
