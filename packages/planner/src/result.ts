/** Turns a cost-model evaluation into the PlanResult the coordinator deploys and the CLI prints. */
import type { CostModel, Evaluation } from './cost-model.js';
import type { Objective, PlannerName, PlanResult } from './types.js';
import { nsToMs } from './units.js';

function bottleneckText(cost: CostModel, e: Evaluation): string {
  const b = e.bottleneck;
  if (b.kind === 'stage') {
    return `stage ${b.index} (${cost.devices[e.stages[b.index]!.device]!.name})`;
  }
  if (b.kind === 'link') {
    const hop = e.hops[b.index]!;
    return `link ${cost.nodeName(hop.from)} → ${cost.nodeName(hop.to)}`;
  }
  const m = e.microBatchesInFlight;
  return `round trip (${m} micro-batch${m === 1 ? '' : 'es'} in flight)`;
}

export function toPlanResult(
  cost: CostModel,
  e: Evaluation,
  planner: Exclude<PlannerName, 'auto'>,
  objective: Objective,
  searchSteps: number,
): PlanResult {
  return {
    modelHash: cost.model.modelHash,
    nLayers: cost.nLayers,
    stages: e.stages.map((s, index) => ({
      index,
      device: cost.devices[s.device]!.name,
      layerStart: s.layerStart,
      layerEnd: s.layerEnd,
      memoryBytes: s.memoryBytes,
      deviceMemoryBytes: cost.devices[s.device]!.memoryBytes,
      computeMs: nsToMs(s.decodeNs),
      prefillChunkMs: nsToMs(s.prefillNs),
    })),
    hops: e.hops.map((h) => ({
      from: cost.nodeName(h.from),
      to: cost.nodeName(h.to),
      bytes: h.bytes,
      transferMs: nsToMs(h.latencyNs + h.occupancyNs),
    })),
    planner,
    objective,
    microBatchSize: e.microBatchSize,
    microBatchesInFlight: e.microBatchesInFlight,
    ttftMs: nsToMs(e.ttftNs),
    tpotMs: nsToMs(e.tpotNs),
    tokensPerS: e.tokensPerS,
    bottleneck: bottleneckText(cost, e),
    workload: { ...cost.workload },
    searchSteps,
  };
}
