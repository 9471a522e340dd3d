/**
 * Measures this device for the planner: forward times of a decoder layer, the
 * embedding and the LM head on timing grids (decode: micro-batch size × context;
 * prefill: chunk × context), run exactly as serving runs them (same engine,
 * threads, execution provider and device emulation). Small shards keep it to seconds:
 * a layer = (a span of k middle layers − one middle layer) / (k − 1), so the engine's fixed
 * cost per pass (feeds, the run call, the thread hop) is charged once per stage — as serving
 * pays it — not once per layer; embedding = first − middle; head = last − middle.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DecodeTimingGrid, DeviceTiming, OpTiming, PrefillTimingGrid } from '@swarmbee/core';
import {
  type DeviceEmulation,
  type StageEngine,
  type StageOptions,
  ThreadedStage,
} from '@swarmbee/engine';
import type { ShardGraph } from '@swarmbee/model';

export interface ProfileGrid {
  batchSizes: number[];
  decodeContexts: number[];
  prefillChunks: number[];
  prefillContexts: number[];
  /** Decode steps timed per grid point (their median counts). */
  repeats: number;
}

/**
 * Batch sizes reach 32 because serving batches that many rows when streams outnumber the
 * micro-batches in flight (a single device with 32 streams runs batches of 32): past the last
 * sample the cost model extrapolates the last segment's slope, and from 4 → 8 alone a little
 * noise made batch 32 look as cheap as batch 8.
 */
export const DEFAULT_PROFILE_GRID: ProfileGrid = {
  batchSizes: [1, 2, 4, 8, 16, 32],
  decodeContexts: [16, 256],
  prefillChunks: [16, 128],
  prefillContexts: [0, 128],
  repeats: 5,
};

/** Shards to measure: embedding + layer, one layer alone, layer + head. */
export interface ProfileShards {
  first: ShardGraph;
  middle?: ShardGraph;
  /** Two or more middle layers from the middle shard's first: tells a layer from the pass's fixed cost. */
  span?: ShardGraph;
  last: ShardGraph;
}

const GREEDY = { temperature: 0, topK: 0, topP: 1 };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** The q-quantile of the samples, linear between order statistics. */
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return (sorted[lo] ?? 0) + (at - lo) * ((sorted[hi] ?? 0) - (sorted[lo] ?? 0));
}

/** A grid point's samples as the profile keeps them: the median and the spread. */
function record(
  grid: { ms: number[][]; p10Ms?: number[][]; p90Ms?: number[][] },
  row: number,
  samples: number[],
): void {
  grid.ms[row]!.push(median(samples));
  grid.p10Ms![row]!.push(quantile(samples, 0.1));
  grid.p90Ms![row]!.push(quantile(samples, 0.9));
}

/** Inputs a shard takes: token ids on a first stage, hidden states elsewhere. */
function inputs(
  stage: StageEngine,
  rows: number,
  width: number,
): { tokens?: BigInt64Array; hidden?: Float32Array } {
  if (stage.info.isFirst) return { tokens: new BigInt64Array(rows * width).fill(5n) };
  return { hidden: new Float32Array(rows * width * stage.info.dim).fill(0.01) };
}

interface ShardTiming extends OpTiming {
  /** Per batch size: median wall time of a decode step minus the engine's own time. */
  overheadMs: number[];
}

async function timeShard(
  graph: ShardGraph,
  options: StageOptions,
  how: { grid: ProfileGrid; onStep: () => void; emulation: DeviceEmulation | undefined },
): Promise<ShardTiming> {
  const { grid, onStep, emulation } = how;
  const threaded = await ThreadedStage.create(graph, options);
  const stage = emulation ? emulation.wrap(threaded) : threaded;
  const limit = stage.info.maxSeqLen;
  const fits = (n: number) => n < limit;
  const decodeContexts = grid.decodeContexts.filter(fits);
  const prefillContexts = grid.prefillContexts.filter((c) =>
    fits(c + Math.max(...grid.prefillChunks)),
  );
  try {
    const decode: DecodeTimingGrid = {
      batchSizes: grid.batchSizes,
      contextTokens: decodeContexts,
      // Per batch size, a row of times per context (filled below).
      ms: grid.batchSizes.map(() => []),
      p10Ms: grid.batchSizes.map(() => []),
      p90Ms: grid.batchSizes.map(() => []),
    };
    // Every batch size is timed on the first rows of one set of sequences, grown to each
    // context once: filling the cache (untimed, batch × context tokens) was most of the
    // profile's time when each batch size filled its own. A timed step writes the position
    // after the context and the next one writes it again, so the context stays put.
    const widest = Math.max(...grid.batchSizes);
    const ids = Array.from({ length: widest }, (_, r) => `profile-${r}`);
    const overheads: number[][] = grid.batchSizes.map(() => []);
    let cached = 0;
    for (const context of decodeContexts) {
      const width = context - cached;
      const rows = ids.map((seqId) => ({ seqId, start: cached, count: width }));
      // Filling the cache is not timed: an emulated slow device need not idle through it.
      await threaded.forward({ rows, ...inputs(stage, widest, width) });
      cached = context;
      for (const [b, batch] of grid.batchSizes.entries()) {
        const times: number[] = [];
        for (let i = 0; i < grid.repeats; i++) {
          const step = ids
            .slice(0, batch)
            .map((seqId) => ({ seqId, start: cached, count: 1, sampling: GREEDY }));
          const started = performance.now();
          const out = await stage.forward({ rows: step, ...inputs(stage, batch, 1) });
          const engineMs = out.timing.forwardMs + out.timing.kvMs;
          times.push(engineMs);
          overheads[b]!.push(Math.max(0, performance.now() - started - engineMs));
          onStep();
        }
        record(decode, b, times);
      }
    }
    await stage.release(ids);
    const overheadMs = overheads.map(median);
    const prefill: PrefillTimingGrid = {
      chunkTokens: grid.prefillChunks,
      contextTokens: prefillContexts,
      ms: [],
      p10Ms: [],
      p90Ms: [],
    };
    for (const [c, chunk] of grid.prefillChunks.entries()) {
      prefill.ms.push([]);
      prefill.p10Ms!.push([]);
      prefill.p90Ms!.push([]);
      for (const context of prefillContexts) {
        const times: number[] = [];
        for (let i = 0; i < Math.max(1, Math.floor(grid.repeats / 2)); i++) {
          const seqId = `prefill-${c}-${context}-${i}`;
          if (context > 0)
            await threaded.forward({
              rows: [{ seqId, start: 0, count: context }],
              ...inputs(stage, 1, context),
            });
          const out = await stage.forward({
            rows: [{ seqId, start: context, count: chunk, sampling: GREEDY }],
            ...inputs(stage, 1, chunk),
          });
          times.push(out.timing.forwardMs + out.timing.kvMs);
          await stage.release([seqId]);
          onStep();
        }
        record(prefill, c, times);
      }
    }
    return { decode, prefill, overheadMs };
  } finally {
    await stage.close();
  }
}

/**
 * `a - b` point by point, never below zero (noise can make a difference negative); the
 * percentiles likewise, an approximation good enough for a spread.
 */
function minus<T extends { ms: number[][]; p10Ms?: number[][]; p90Ms?: number[][] }>(
  a: T,
  b: T,
): T {
  const diff = (x: number[][] | undefined, y: number[][] | undefined) =>
    x?.map((row, i) => row.map((v, j) => Math.max(0, v - (y?.[i]?.[j] ?? 0))));
  const out: T = { ...a, ms: diff(a.ms, b.ms)! };
  const p10 = diff(a.p10Ms, b.p10Ms);
  const p90 = diff(a.p90Ms, b.p90Ms);
  if (p10) out.p10Ms = p10;
  if (p90) out.p90Ms = p90;
  return out;
}

/** Every figure of a grid times `factor`. */
function scaled<T extends { ms: number[][]; p10Ms?: number[][]; p90Ms?: number[][] }>(
  grid: T,
  factor: number,
): T {
  const times = (x: number[][] | undefined) => x?.map((row) => row.map((v) => v * factor));
  const out: T = { ...grid, ms: times(grid.ms)! };
  if (grid.p10Ms) out.p10Ms = times(grid.p10Ms)!;
  if (grid.p90Ms) out.p90Ms = times(grid.p90Ms)!;
  return out;
}

/**
 * The runtime's per-step overhead as a timing grid (one context column, the first): the wall
 * time around the engine, plus the engine's own fixed cost per pass where it was told apart.
 */
function overheadGrid(timing: ShardTiming, fixed?: DecodeTimingGrid): { decode: DecodeTimingGrid } {
  return {
    decode: {
      batchSizes: timing.decode.batchSizes,
      contextTokens: [timing.decode.contextTokens[0] ?? 0],
      ms: timing.overheadMs.map((ms, b) => [ms + (fixed?.ms[b]?.[0] ?? 0)]),
    },
  };
}

/**
 * One layer's time from a one-layer and a k-layer shard: (span − one) / (k − 1); what the
 * one-layer shard took beyond it is the pass's fixed cost.
 */
export function perLayer(one: OpTiming, span: OpTiming, layers: number) {
  const layer: OpTiming = {
    decode: scaled(minus(span.decode, one.decode), 1 / (layers - 1)),
    prefill: scaled(minus(span.prefill, one.prefill), 1 / (layers - 1)),
  };
  return { layer, fixed: minus(one.decode, layer.decode) };
}

/** Only the engine's time per layer: the overhead is charged once per stage, not per layer. */
function engineOnly(timing: ShardTiming): OpTiming {
  return { decode: timing.decode, prefill: timing.prefill };
}

export interface ProfileRun {
  /** Default {@link DEFAULT_PROFILE_GRID}. */
  grid?: ProfileGrid;
  /** Called after every timed step (progress). */
  onStep?: () => void;
  /** Benchmarks and tests only: the device emulation serving runs under. Default none. */
  emulation?: DeviceEmulation | undefined;
}

export async function profileDevice(
  shards: ProfileShards,
  options: StageOptions,
  run: ProfileRun = {},
): Promise<DeviceTiming> {
  const how = {
    grid: run.grid ?? DEFAULT_PROFILE_GRID,
    onStep: run.onStep ?? (() => {}),
    emulation: run.emulation,
  };
  const first = await timeShard(shards.first, options, how);
  const last = await timeShard(shards.last, options, how);
  const middle = shards.middle ? await timeShard(shards.middle, options, how) : undefined;
  const span = middle && shards.span ? await timeShard(shards.span, options, how) : undefined;
  if (!middle) {
    // Too few layers to tell the layer from the embedding and the head: charge it all to the layer.
    const zero = (t: OpTiming): OpTiming => ({
      decode: minus(t.decode, t.decode),
      prefill: minus(t.prefill, t.prefill),
    });
    return {
      layers: [engineOnly(first)],
      embedding: zero(first),
      head: { decode: minus(last.decode, first.decode) },
      stageOverhead: overheadGrid(first),
    };
  }
  const split =
    span && shards.span
      ? perLayer(middle, span, shards.span.layerEnd - shards.span.layerStart)
      : undefined;
  return {
    layers: [split?.layer ?? engineOnly(middle)],
    stageOverhead: overheadGrid(middle, split?.fixed),
    embedding: {
      decode: minus(first.decode, middle.decode),
      prefill: minus(first.prefill, middle.prefill),
    },
    head: { decode: minus(last.decode, middle.decode) },
  };
}

/** Device profiles cached on disk per (model, runtime, engine settings); --reprofile ignores them. */
export class ProfileCache {
  constructor(private readonly dir: string) {}

  #path(key: string): string {
    return join(this.dir, 'profiles', `${key.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
  }

  async get(key: string): Promise<DeviceTiming | undefined> {
    try {
      return JSON.parse(await readFile(this.#path(key), 'utf8')) as DeviceTiming;
    } catch {
      return undefined;
    }
  }

  async put(key: string, timing: DeviceTiming): Promise<void> {
    await mkdir(join(this.dir, 'profiles'), { recursive: true });
    await writeFile(this.#path(key), JSON.stringify(timing));
  }
}
