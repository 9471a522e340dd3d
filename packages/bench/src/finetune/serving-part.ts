/**
 * The serving half of `npm run bench -- finetune` (`--parts serving`): what LoRA adapters cost
 * a model that serves them, in one process on the 15M shape (random weights; the figures are
 * about cost). Eight greedy streams decode side by side over:
 *
 * - the base shards alone;
 * - one adapter merged into the weights (fp32 only: int8 codes take no merge);
 * - four adapters served unmerged beside the base, every stream asking for the base;
 * - the same four, the streams spread over them (each decode micro-batch mixes all four).
 *
 * fp32 and int8 bases, alternating rounds; tokens/s against the base shards of the same
 * precision in the same round. The base streams of the served shards must sample the base
 * shards' ids.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type GenerateRequest, generate, LocalPipeline } from '@swarmbee/engine';
import {
  cachedSynthModel,
  initLoraAdapter,
  type LlamaModelDir,
  LORA_TARGETS,
  type LoraAdapter,
  type NamedAdapter,
  openShard,
  requireLlamaDir,
  type ShardGraph,
  writeShard,
} from '@swarmbee/model';
import { summarize } from '@swarmbee/optimize';
import { type BenchResult, check } from '../report/report.js';
import { barChart } from '../report/svg.js';
import type { SuiteContext } from '../suite.js';
import { cachedQuantized, type SuitePart } from '../suites/optimize-speed.js';
import { formatRatio } from './finetune-process.js';

/** Streams decoding side by side, tokens each samples, and the LoRA rank of every adapter. */
const STREAMS = 8;
const SAMPLED = 256;
const RANK = 8;
/** Adapters served side by side in the served rows. */
const SERVED = 4;
const THREADS = 2;

type Serving = 'base' | 'merged' | 'served, base rows' | 'served, mixed rows';

interface Row {
  precision: 'fp32' | 'int8';
  serving: Serving;
  shard: ShardGraph;
  /** Each stream's adapter slot (0: the base). */
  adapterOf: (stream: number) => number;
}

interface Run {
  tokensPerSecond: number;
  ids: number[][];
}

export async function servingPart(context: SuiteContext, root: string): Promise<SuitePart> {
  const fp32 = requireLlamaDir(await cachedSynthModel('small'), 'finetune bench');
  context.progress('finetune serving: int8 of the 15M shape (cached after the first run)');
  const int8 = requireLlamaDir(await cachedQuantized(fp32, 8, 'int8'), 'finetune bench');
  const adapters: NamedAdapter[] = Array.from({ length: SERVED }, (_, i) => ({
    name: `a${i}`,
    adapter: randomAdapter(fp32, i + 1),
  }));
  const rows: Row[] = [];
  for (const [precision, dir] of [
    ['fp32', fp32],
    ['int8', int8],
  ] as const) {
    const shard = (name: string, options: Parameters<typeof writeShard>[4] = {}) =>
      written(dir, join(root, `${precision}-${name}`), options);
    rows.push({ precision, serving: 'base', shard: await shard('base'), adapterOf: () => 0 });
    if (precision === 'fp32')
      rows.push({
        precision,
        serving: 'merged',
        shard: await shard('merged', { adapter: adapters[0]!.adapter }),
        adapterOf: () => 0,
      });
    const served = await shard('served', { adapters });
    rows.push({ precision, serving: 'served, base rows', shard: served, adapterOf: () => 0 });
    rows.push({
      precision,
      serving: 'served, mixed rows',
      shard: served,
      adapterOf: (stream) => 1 + (stream % SERVED),
    });
  }

  const rounds = context.quick ? 1 : 5;
  const runs = new Map(rows.map((row) => [row, [] as Run[]]));
  for (let round = 0; round < rounds; round++) {
    for (const row of round % 2 === 0 ? rows : [...rows].reverse()) {
      context.progress(
        `finetune serving: ${row.precision}, ${row.serving} (round ${round + 1}/${rounds})`,
      );
      runs.get(row)!.push(await decode(row.precision === 'fp32' ? fp32 : int8, row));
    }
  }
  return assemble(rows, runs, rounds);
}

/** An adapter of rank {@link RANK} on every projection of every layer, B set too (seeded). */
function randomAdapter(dir: LlamaModelDir, seed: number): LoraAdapter {
  const { nLayers } = dir.manifest.config;
  const adapter = initLoraAdapter(
    {
      rank: RANK,
      alpha: 2 * RANK,
      targets: [...LORA_TARGETS],
      layers: Array.from({ length: nLayers }, (_, l) => l),
    },
    dir.manifest,
    seed,
  );
  let state = seed;
  for (const [name, values] of adapter.tensors)
    if (name.endsWith('lora_B'))
      for (let i = 0; i < values.length; i++) {
        state = (state * 1103515245 + 12345) % 2 ** 31;
        values[i] = (state / 2 ** 31 - 0.5) * 0.02;
      }
  return adapter;
}

async function written(
  dir: LlamaModelDir,
  out: string,
  options: Parameters<typeof writeShard>[4],
): Promise<ShardGraph> {
  await mkdir(join(out, '..'), { recursive: true });
  await writeShard(dir, { start: 0, end: dir.manifest.config.nLayers }, out, undefined, options);
  return (await openShard(out)).graph;
}

/** {@link STREAMS} greedy streams side by side over one stage: sampled tokens per second. */
async function decode(dir: LlamaModelDir, row: Row): Promise<Run> {
  const pipeline = await LocalPipeline.create(dir, {
    stages: 1,
    shard: () => row.shard,
    stage: { intraOpThreads: THREADS },
  });
  try {
    const { vocabSize } = dir.manifest.config;
    const requests = (sampled: number): GenerateRequest[] =>
      Array.from({ length: STREAMS }, (_, s) => {
        const adapter = row.adapterOf(s);
        return {
          promptIds: Array.from({ length: 8 }, (_, i) => (1 + s * 31 + i * 7) % vocabSize),
          steps: 8 + sampled - 1,
          sampling: { temperature: 0, topK: 0, topP: 1 },
          ...(adapter > 0 ? { adapter } : {}),
        };
      });
    // onnxruntime's first runs of a session are slow (allocations, kernel choice): not timed.
    await generate(pipeline, requests(4));
    const started = performance.now();
    const results = await generate(pipeline, requests(SAMPLED));
    const seconds = (performance.now() - started) / 1000;
    const sampled = results.reduce((n, r) => n + r.ids.length - r.promptTokens, 0);
    return { tokensPerSecond: sampled / seconds, ids: results.map((r) => r.ids) };
  } finally {
    await pipeline.close();
  }
}

function assemble(rows: Row[], runs: Map<Row, Run[]>, rounds: number): SuitePart {
  const baseOf = (row: Row) =>
    rows.find((r) => r.precision === row.precision && r.serving === 'base')!;
  const ratios = (row: Row) => {
    const base = runs.get(baseOf(row))!;
    const samples = runs.get(row)!.map((run, i) => run.tokensPerSecond / base[i]!.tokensPerSecond);
    const s = summarize(samples);
    return { median: s.median, min: Math.min(...samples), max: Math.max(...samples) };
  };
  const metrics: BenchResult['metrics'] = {};
  for (const row of rows) {
    const samples = runs.get(row)!.map((r) => r.tokensPerSecond);
    metrics[`serving tokens/s, ${row.precision}, ${row.serving}`] = {
      unit: 'tokens/s',
      summary: summarize(samples),
      samples,
    };
  }
  const sameIds = rows
    .filter((row) => row.serving === 'served, base rows')
    .every((row) =>
      runs
        .get(row)!
        .every(
          (run, i) => JSON.stringify(run.ids) === JSON.stringify(runs.get(baseOf(row))![i]!.ids),
        ),
    );
  const servedMixed = rows.filter((row) => row.serving === 'served, mixed rows');
  return {
    metrics,
    tables: [
      {
        title: `Serving adapters: 15M shape (dim 288, 6 layers), ${STREAMS} greedy streams of ${SAMPLED} tokens side by side, 1 stage, ${THREADS} threads, LoRA r=${RANK} on every projection of every layer, ${rounds} round(s)`,
        head: ['base', 'adapters', 'tokens/s (median)', 'vs base shards, per round'],
        rows: rows.map((row) => [
          row.precision,
          row.serving === 'merged'
            ? '1 merged into the weights'
            : row.serving === 'base'
              ? 'none'
              : `${SERVED} served unmerged, ${row.serving === 'served, base rows' ? 'every stream the base' : `streams spread over all ${SERVED}`}`,
          summarize(runs.get(row)!.map((r) => r.tokensPerSecond)).median.toFixed(0),
          row.serving === 'base' ? '1' : formatRatio(ratios(row)),
        ]),
      },
    ],
    checks: [
      check(
        'served shards, base streams: ids equal the base shards',
        sameIds ? 1 : 0,
        1,
        'every round, fp32 and int8: the base rows of shards serving adapters sample the base shards’ ids (slot 0 adds an exact zero)',
      ),
      ...servedMixed.map((row) =>
        check(
          `${row.precision}: mixed adapters / base shards, tokens/s`,
          ratios(row).median,
          0.5,
          `median over rounds: ${SERVED} adapters of rank ${RANK} on all 7 projections, gathered per row each step`,
        ),
      ),
    ],
    charts: [
      {
        file: 'serving-adapters.svg',
        title: 'Serving adapters: decode tokens/s vs the base shards, per round',
        svg: barChart({
          title: `Serving adapters (15M shape, ${STREAMS} streams): tokens/s / base shards`,
          unit: '× base',
          bars: rows
            .filter((row) => row.serving !== 'base')
            .map((row) => {
              const r = ratios(row);
              return {
                label: `${row.precision} ${row.serving.replace('served, ', '')}`,
                value: r.median,
                low: r.min,
                high: r.max,
              };
            }),
        }),
      },
    ],
    notes: [
      `Serving adapters: a shard serving adapters unmerged keeps the base weights as they are and stacks each adapted tensor's A and B after them (slot 0 all zeros for the base); each step gathers every row's slot and adds x·Aᵀ·(scale·B)ᵀ to the base product, so one micro-batch mixes adapters and base rows. Merging costs nothing per token but serves one adapter and needs fp32 weights.`,
    ],
  };
}
