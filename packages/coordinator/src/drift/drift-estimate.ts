/**
 * How far each stage of a running plan is from its prediction, from live stage metrics
 * alone (no extra traffic): over a window, the engine time a stage reported per forward
 * against the cost model's time for the micro-batches the scheduler sent in that window.
 * And the profile corrected by what was seen: a drifted device's timings scaled by its
 * ratio — a re-profile from serving's own measurements, taken without stopping it.
 */
import type { ClusterProfile, DeviceTiming, Plan } from '@swarmbee/core';
import { CostModel, type Workload } from '@swarmbee/planner';

/** The micro-batches sent in a window: decode batches by rows, and prefill chunks as they were. */
export interface WindowWork {
  /** Rows → decode micro-batches of that many rows. */
  decode: Map<number, number>;
  /** `${tokens}/${context}` → prefill chunks of that many tokens after that many cached ones. */
  prefill: Map<string, number>;
}

/** Prefill chunks a window keeps apart; beyond, chunks of a shape not yet seen are not judged. */
export const MAX_PREFILL_SHAPES = 256;

/** One stage's engine counters over a window. */
export interface StageWindow {
  stage: number;
  device: string;
  forwards: number;
  busyMs: number;
}

export interface StageDrift {
  stage: number;
  device: string;
  forwards: number;
  /** Measured engine time per forward, ms. */
  measuredMs: number;
  /** The cost model's time per forward for the same micro-batches, ms. */
  predictedMs: number;
  /** measured / predicted: 1 on prediction, 2 when the device runs at half the profiled speed. */
  ratio: number;
}

export function emptyWork(): WindowWork {
  return { decode: new Map(), prefill: new Map() };
}

/** Records one micro-batch in the window's work. */
export function recordWork(
  work: WindowWork,
  rows: readonly { start: number; count: number }[],
): void {
  const width = Math.max(...rows.map((r) => r.count));
  if (width <= 1) {
    work.decode.set(rows.length, (work.decode.get(rows.length) ?? 0) + 1);
    return;
  }
  // A prefill micro-batch is timed as its widest row's chunk once per row.
  const context = Math.max(...rows.map((r) => r.start));
  const key = `${width}/${context}`;
  if (work.prefill.has(key) || work.prefill.size < MAX_PREFILL_SHAPES)
    work.prefill.set(key, (work.prefill.get(key) ?? 0) + rows.length);
}

/** Each stage's measured / predicted time per forward; stages that ran nothing in the window are left out. */
export function stageDrift(
  profile: ClusterProfile,
  workload: Partial<Workload> | undefined,
  plan: Plan,
  windows: readonly StageWindow[],
  work: WindowWork,
): StageDrift[] {
  const cost = new CostModel(profile, workload);
  const sum = (m: Map<unknown, number>) => [...m.values()].reduce((n, c) => n + c, 0);
  const batches = sum(work.decode) + sum(work.prefill);
  if (batches === 0) return [];
  const out: StageDrift[] = [];
  const S = plan.stages.length;
  for (const window of windows) {
    const stage = plan.stages[window.stage];
    if (!stage || window.forwards <= 0 || stage.device !== window.device) continue;
    const device = cost.deviceIndex(stage.device);
    const first = window.stage === 0;
    const last = window.stage === S - 1;
    let predictedNs = 0;
    for (const [rows, count] of work.decode)
      predictedNs +=
        count * cost.stageDecodeNs(device, stage.layerStart, stage.layerEnd, first, last, rows);
    for (const [key, count] of work.prefill) {
      const [tokens, context] = key.split('/').map(Number) as [number, number];
      predictedNs +=
        count *
        cost.stagePrefillChunkNs(device, stage.layerStart, stage.layerEnd, first, tokens, context);
    }
    const predictedMs = predictedNs / 1e6 / batches;
    const measuredMs = window.busyMs / window.forwards;
    if (predictedMs <= 0) continue;
    out.push({
      stage: window.stage,
      device: stage.device,
      forwards: window.forwards,
      measuredMs,
      predictedMs,
      ratio: measuredMs / predictedMs,
    });
  }
  return out;
}

function scaleGrid<G extends { ms: number[][]; p10Ms?: number[][]; p90Ms?: number[][] }>(
  grid: G,
  factor: number,
): G {
  const scale = (ms: number[][] | undefined) => ms?.map((row) => row.map((v) => v * factor));
  const out: G = { ...grid, ms: scale(grid.ms)! };
  if (grid.p10Ms) out.p10Ms = scale(grid.p10Ms)!;
  if (grid.p90Ms) out.p90Ms = scale(grid.p90Ms)!;
  return out;
}

function scaleTiming(timing: DeviceTiming, factor: number): DeviceTiming {
  const scaled: DeviceTiming = {
    layers: timing.layers.map((l) => ({
      decode: scaleGrid(l.decode, factor),
      prefill: scaleGrid(l.prefill, factor),
    })),
    embedding: {
      decode: scaleGrid(timing.embedding.decode, factor),
      prefill: scaleGrid(timing.embedding.prefill, factor),
    },
    head: { decode: scaleGrid(timing.head.decode, factor) },
  };
  // The overhead holds the engine's fixed cost of a pass, which a slower device pays slower too.
  if (timing.stageOverhead)
    scaled.stageOverhead = { decode: scaleGrid(timing.stageOverhead.decode, factor) };
  return scaled;
}

/** The profile with each named device's compute timings multiplied by its factor. */
export function correctedProfile(
  profile: ClusterProfile,
  factors: ReadonlyMap<string, number>,
): ClusterProfile {
  return {
    ...profile,
    devices: profile.devices.map((d) => {
      const factor = factors.get(d.name);
      if (factor === undefined) return d;
      return {
        ...d,
        timing: scaleTiming(d.timing, factor),
        source: `${d.source ?? 'profile'}, scaled ×${factor.toFixed(2)} from live stage metrics`,
      };
    }),
  };
}
