import type { Plan } from '@swarmbee/core';
import { evenRanges } from '@swarmbee/model';

/** Layers split evenly over the given workers, in the order given; extra workers stay idle. */
export function evenPlan(modelHash: string, nLayers: number, workers: readonly string[]): Plan {
  const ranges = evenRanges(nLayers, Math.min(nLayers, workers.length));
  return {
    modelHash,
    nLayers,
    stages: ranges.map((range, index) => ({
      index,
      device: workers[index]!,
      layerStart: range.start,
      layerEnd: range.end,
    })),
  };
}
