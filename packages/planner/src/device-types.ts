/**
 * Devices with identical profiles and identical links are interchangeable: swapping two
 * of them maps every plan to one that costs exactly the same. The DP therefore tracks
 * how many devices of each *type* a partial pipeline uses instead of which ones, which
 * turns 2^N device subsets into Π(n_t + 1) type mixes — 17 instead of 65,536 for
 * sixteen identical Pis.
 */
import type { CostModel } from './cost-model.js';

export interface DeviceType {
  /** Device indices, in cluster order. */
  members: number[];
}

/**
 * Groups devices into types. Devices in `alone` (pinned ones) get a type of their own,
 * so a pin becomes a constraint on types.
 */
export function groupDeviceTypes(
  cost: CostModel,
  alone: ReadonlySet<number> = new Set(),
): DeviceType[] {
  const n = cost.devices.length;
  const timingKey = cost.devices.map((d) => `${d.memoryBytes}|${JSON.stringify(d.timing)}`);
  const sameLink = (a: number, b: number, c: number, d: number) =>
    cost.latencyNs(a, b) === cost.latencyNs(c, d) &&
    cost.bandwidthBytesPerS(a, b) === cost.bandwidthBytesPerS(c, d);
  // i and j see the rest of the cluster (coordinator included) through the same links.
  const sameOutside = (i: number, j: number) => {
    for (let k = 0; k <= n; k++) {
      if (k === i || k === j) continue;
      if (!sameLink(i, k, j, k) || !sameLink(k, i, k, j)) return false;
    }
    return true;
  };
  const types: DeviceType[] = [];
  for (let d = 0; d < n; d++) {
    const fits = (type: DeviceType) => {
      const rep = type.members[0]!;
      if (alone.has(rep) || timingKey[rep] !== timingKey[d] || !sameOutside(rep, d)) return false;
      // Links inside a type must all be alike, in both directions.
      const [a, b] = type.members.length > 1 ? [type.members[0]!, type.members[1]!] : [rep, d];
      return type.members.every((m) => sameLink(d, m, a, b) && sameLink(m, d, a, b));
    };
    const type = alone.has(d) ? undefined : types.find(fits);
    if (type) type.members.push(d);
    else types.push({ members: [d] });
  }
  return types;
}
