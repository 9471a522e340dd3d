/** Turns a cost-model evaluation into the PlanResult the coordinator deploys and the CLI prints. */
import { CostModel } from './cost-model.js';
import type { Parallelism } from './parallel-search.js';
import type { Evaluation, StageEvaluation } from './plan-evaluation.js';
import type { Objective, PlannedRange, PlannedStage, PlannerName, PlanResult } from './types.js';
import { nsToMs } from './units.js';

function bottleneckText(cost: CostModel, e: Evaluation): string {
  const b = e.bottleneck;
  if (b.kind === 'stage') {
    const stage = e.stages[b.index]!;
    const devices = stage.group ?? [stage.device];
    return `stage ${b.index} (${devices.map((d) => cost.devices[d]!.name).join(' + ')})`;
  }
  if (b.kind === 'link') {
    const hop = e.hops[b.index]!;
    if (b.index === 0 && cost.coordinatorStepNs(e.microBatchSize) > hop.occupancyNs / 2)
      return `the coordinator's own work per micro-batch (before ${cost.nodeName(hop.to)})`;
    return `link ${cost.nodeName(hop.from)} → ${cost.nodeName(hop.to)}`;
  }
  const m = e.microBatchesInFlight;
  return `round trip (${m} micro-batch${m === 1 ? '' : 'es'} in flight)`;
}

/** The plan's predictions from the profile's medians and from its 90th percentiles. */
function predictedRange(cost: CostModel, e: Evaluation): PlannedRange {
  const at = (risk: 'p50' | 'p90') => {
    const model =
      risk === cost.workload.risk
        ? cost
        : new CostModel(cost.cluster, { ...cost.workload, risk }, cost.groups.tensor);
    const x =
      model === cost ? e : model.evaluate(e.stages, e.microBatchSize, e.microBatchesInFlight);
    return { ttftMs: nsToMs(x.ttftNs), tpotMs: nsToMs(x.tpotNs), tokensPerS: x.tokensPerS };
  };
  return { p50: at('p50'), p90: at('p90') };
}

/** A group stage's `tensor` plan and its members' memory; nothing for a single device. */
function groupFields(
  cost: CostModel,
  s: StageEvaluation,
): Pick<PlannedStage, 'tensor' | 'memberMemoryBytes' | 'memberDeviceMemoryBytes'> {
  if (!s.group) return {};
  const split = cost.groups.split(s.group, s.how?.weights)!;
  return {
    tensor: {
      devices: s.group.map((d) => cost.devices[d]!.name),
      weights: [...split.weights],
      allReduce: s.allReduce ?? 'star',
      ...(s.head === 'split' ? { head: 'split' as const } : {}),
    },
    memberMemoryBytes: s.memberMemoryBytes ?? [],
    memberDeviceMemoryBytes: s.group.map((d) => cost.devices[d]!.memoryBytes),
  };
}

export function toPlanResult(
  cost: CostModel,
  e: Evaluation,
  planner: Exclude<PlannerName, 'auto'>,
  objective: Objective,
  searchSteps: number,
  parallelism: Parallelism = 'pipeline',
): PlanResult {
  return {
    modelHash: cost.model.modelHash,
    nLayers: cost.nLayers,
    stages: e.stages.map((s, index) => ({
      index,
      device: cost.devices[s.device]!.name,
      layerStart: s.layerStart,
      layerEnd: s.layerEnd,
      ...groupFields(cost, s),
      memoryBytes: s.memoryBytes,
      kvBudgetBytes: Math.ceil(
        cost.stageKvBytes(s.layerStart, s.layerEnd, e.microBatchSize * e.microBatchesInFlight),
      ),
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
    parallelism,
    microBatchSize: e.microBatchSize,
    microBatchesInFlight: e.microBatchesInFlight,
    ttftMs: nsToMs(e.ttftNs),
    tpotMs: nsToMs(e.tpotNs),
    tokensPerS: e.tokensPerS,
    bottleneck: bottleneckText(cost, e),
    range: predictedRange(cost, e),
    workload: { ...cost.workload },
    searchSteps,
  };
}
