/**
 * Everything the DP reads in its inner loop, precomputed per device type for one
 * micro-batch size: prefix sums of layer times (a stage's time is one subtraction),
 * the embedding and head, and every hop between types and the coordinator. All values
 * come from the CostModel, so the DP's sums equal its evaluation to the nanosecond.
 */
import type { CostModel } from './cost-model.js';
import type { DeviceType } from './device-types.js';

export interface TypeTables {
  /** Number of types; hop arrays are indexed [from * types + to]. */
  types: number;
  /** Devices of each type. */
  counts: number[];
  memoryBytes: number[];
  /** Decode time of layers [0, l) at this micro-batch, by type then l. */
  decodePrefix: Float64Array[];
  /** One prefill chunk through layers [0, l), by type then l. */
  prefillPrefix: Float64Array[];
  embeddingDecodeNs: number[];
  embeddingPrefillNs: number[];
  /** The runtime's fixed cost of one stage step: a decode micro-batch, a prefill chunk. */
  stageOverheadDecodeNs: number[];
  stageOverheadPrefillNs: number[];
  headDecodeNs: number[];
  /** The head on one position: what TTFT adds after the last chunk. */
  headFirstTokenNs: number[];
  /**
   * Coordinator → type: delay, and busy time for a decode / prefill token frame: the
   * coordinator's step work plus the frame on the link (CostModel.coordinatorStepNs).
   */
  inLatencyNs: number[];
  inDecodeNs: number[];
  inPrefillNs: number[];
  /** Type → coordinator: delay, busy time for a decode frame, and for the first token. */
  outLatencyNs: number[];
  outDecodeNs: number[];
  outFirstTokenNs: number[];
  /** Type → type activations: delay and busy time (decode, prefill chunk). NaN where no link exists (a single device to itself). */
  hopLatencyNs: Float64Array;
  hopDecodeNs: Float64Array;
  hopPrefillNs: Float64Array;
}

export function buildTypeTables(
  cost: CostModel,
  types: readonly DeviceType[],
  batch: number,
): TypeTables {
  const T = types.length;
  const coord = cost.coordinator;
  const reps = types.map((t) => t.members[0]!);
  const chunk = cost.prefillChunkLength;
  const decodeFrame = cost.activationFrameBytes(batch);
  const prefillFrame = cost.activationFrameBytes(chunk);
  const hopLatencyNs = new Float64Array(T * T).fill(Number.NaN);
  const hopDecodeNs = new Float64Array(T * T).fill(Number.NaN);
  const hopPrefillNs = new Float64Array(T * T).fill(Number.NaN);
  for (let u = 0; u < T; u++) {
    for (let v = 0; v < T; v++) {
      // Within a type, any two members stand for all (device-types.ts checks the links agree).
      const members = types[u]!.members;
      const [from, to] = u === v ? [members[0]!, members[1]] : [reps[u]!, reps[v]!];
      if (to === undefined) continue;
      hopLatencyNs[u * T + v] = cost.latencyNs(from, to);
      hopDecodeNs[u * T + v] = cost.occupancyNs(from, to, decodeFrame);
      hopPrefillNs[u * T + v] = cost.occupancyNs(from, to, prefillFrame);
    }
  }
  return {
    types: T,
    counts: types.map((t) => t.members.length),
    memoryBytes: reps.map((r) => cost.devices[r]!.memoryBytes),
    decodePrefix: reps.map((r) => cost.decodePrefixNs(r, batch)),
    prefillPrefix: reps.map((r) => cost.prefillPrefixNs(r)),
    embeddingDecodeNs: reps.map((r) => cost.embeddingDecodeNs(r, batch)),
    embeddingPrefillNs: reps.map((r) => cost.embeddingPrefillNs(r)),
    stageOverheadDecodeNs: reps.map((r) => cost.stageOverheadNs(r, batch)),
    stageOverheadPrefillNs: reps.map((r) => cost.stageOverheadNs(r, 1)),
    headDecodeNs: reps.map((r) => cost.headDecodeNs(r, batch)),
    headFirstTokenNs: reps.map((r) => cost.headDecodeNs(r, 1)),
    inLatencyNs: reps.map((r) => cost.latencyNs(coord, r)),
    inDecodeNs: reps.map(
      (r) =>
        cost.occupancyNs(coord, r, cost.tokenFrameBytes(batch)) + cost.coordinatorStepNs(batch),
    ),
    inPrefillNs: reps.map(
      (r) => cost.occupancyNs(coord, r, cost.tokenFrameBytes(chunk)) + cost.coordinatorStepNs(1),
    ),
    outLatencyNs: reps.map((r) => cost.latencyNs(r, coord)),
    outDecodeNs: reps.map((r) => cost.occupancyNs(r, coord, cost.tokenFrameBytes(batch))),
    outFirstTokenNs: reps.map((r) => cost.occupancyNs(r, coord, cost.tokenFrameBytes(1))),
    hopLatencyNs,
    hopDecodeNs,
    hopPrefillNs,
  };
}
