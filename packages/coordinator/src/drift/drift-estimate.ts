/**
 * How far each stage of a running plan is from its prediction, from live stage metrics
 * alone (no extra traffic): over a window, the engine time a stage reported per forward
 * against the cost model's time for the micro-batches the scheduler sent in that window.
 * And the profile corrected by what was seen: a drifted device's timings scaled by its
 * ratio — a re-profile from serving's own measurements, taken without stopping it.
 */
import type { ClusterProfile, DeviceTiming, Plan } from '@swarmbee/core';
import { CostModel, type Workload } from '@swarmbee/planner';

/** The micro-batches sent in a window: decode batches by rows, and prefill chunks. */
export interface WindowWork {
  /** Rows → decode micro-batches of that many rows. */
  decode: Map<number, number>;
  prefillChunks: number;
}

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
  return { decode: new Map(), prefillChunks: 0 };
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
  const batches = [...work.decode.values()].reduce((n, c) => n + c, 0) + work.prefillChunks;
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
    predictedNs +=
      work.prefillChunks * cost.stagePrefillNs(device, stage.layerStart, stage.layerEnd, first);
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
  if (timing.stageOverhead) scaled.stageOverhead = timing.stageOverhead;
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
