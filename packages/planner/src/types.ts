/** The planner's request, options and result types. */
import type { ClusterProfile, KvDtype, Plan, StagePlan, TimingRisk } from '@swarmbee/core';
import type { TensorCosts } from './group-cost.js';
import type { Parallelism } from './parallel-search.js';

/**
 * `latency`: minimize the time per output token of one sequence (ties: time to first token).
 * `throughput`: maximize pipelined tokens per second with micro-batches in flight
 * (ties: time per output token).
 */
export type Objective = 'latency' | 'throughput';

/**
 * `dp`: exact dynamic program (EdgeShard, extended). `ga`/`pso`: seeded heuristic search
 * for clusters too varied for the DP. `solo`: best single device. `even`: every device in
 * the given order, equal layer counts. `memory`: every device, layers in proportion to
 * memory (what exo and llama.cpp RPC do). `auto`: `dp` when its state space is small
 * enough, else `ga`.
 */
export type PlannerName = 'dp' | 'ga' | 'pso' | 'solo' | 'even' | 'memory' | 'auto';

/** The traffic a plan is judged on. All lengths in tokens. */
export interface Workload {
  /** Context window each sequence may fill (prompt plus output); sizes the KV cache. Default: the model's maxSeqLen. */
  contextTokens: number;
  /** Prompt length the time to first token is predicted for. Default: 128 (capped at contextTokens). */
  promptTokens: number;
  /** Longest prefill chunk; the prompt is cut into equal chunks no longer than this. Default: 128. */
  prefillChunkTokens: number;
  /** Context length decode steps are timed at. Default: halfway between the prompt and the full window. */
  decodeContextTokens: number;
  /**
   * Concurrent sequences the throughput objective plans for. With it, M micro-batches in flight
   * carry min(largest micro-batch candidate, ⌈streams / M⌉) rows each — the micro-batches the
   * coordinator's scheduler composes from that many streams — so the plan is judged on the
   * batches serving really runs, beyond 8 rows when the profile says they pay. Default: none
   * (the size and the count are chosen freely from the candidates).
   */
  streams?: number;
  /**
   * Which of the profile's timings plans are judged at: `p50` the medians of the repeated
   * samples, `p90` their 90th percentiles (plan for a bad run). Default `p50`.
   */
  risk: TimingRisk;
  /**
   * Element type of the Llama shards' KV cache: `float16` charges half the model's recorded
   * (fp32) KV bytes per token. Default `float32`. Imported ONNX decoders keep their export's type.
   */
  kvDtype?: KvDtype;
}

export interface PlanRequest {
  cluster: ClusterProfile;
  /** Missing fields take the defaults documented on {@link Workload}. */
  workload?: Partial<Workload>;
}

export interface PlanOptions {
  /** Which planner to run. Default: `dp`. */
  planner?: PlannerName;
  /** What to optimize. Default: `throughput`. */
  objective?: Objective;
  /** Device that must run stage 0 (so raw prompt tokens never leave it). Default: none. */
  pinFirst?: string;
  /** Device that must run the last stage (so sampled tokens never leave it but to the coordinator). Default: none. */
  pinLast?: string;
  /** Micro-batch sizes (sequences) the throughput objective chooses from. Default: [1, 2, 4, 8, 16]. Latency uses 1. */
  microBatchCandidates?: number[];
  /**
   * Micro-batches kept in flight; with the micro-batch size it sizes every stage's KV
   * cache. Default: latency keeps 1; throughput chooses it with the plan, from 1 to
   * 2 × (most stages possible) + 1 — enough to keep every stage and link of the loop busy.
   */
  microBatchesInFlight?: number;
  /** Seed of the GA/PSO random stream; the same seed gives the same plan. Default: 1. */
  seed?: number;
  /** Fitness evaluations the GA/PSO may spend. Default: 12000. */
  searchEvaluations?: number;
  /**
   * Largest DP state space, (layers + 1) × Π(devices of a kind + 1) × kinds, before `dp`
   * refuses with PlanTooLargeError (and `auto` switches to `ga`). Default: 600,000 — about
   * a second on a 2-core machine; time grows roughly in proportion.
   */
  dpStateLimit?: number;
  /**
   * Which plans to consider. `pipeline`: stages of one device each (what the coordinator
   * deploys today). `tensor`: one stage of every layer run by a tensor-parallel group of 2 or
   * more devices. `hybrid`: pipelines whose stages may each be a group; the objective decides.
   * `tensor` and `hybrid` need the `dp` (or `auto`) planner and a model that splits
   * (`ModelSummary.tensorShape`, a float32 KV cache). Default: `pipeline`.
   */
  parallelism?: Parallelism;
  /**
   * What a tensor-parallel stage adds, ms: per segment run (two per layer) and CPU per
   * all-reduce part. Default: `DEFAULT_TENSOR_COSTS` (0.09 and 0.12, measured on loopback).
   */
  tensorCosts?: Partial<TensorCosts>;
}

/** One stage of a planned pipeline, with what the cost model predicts for it. */
export interface PlannedStage extends StagePlan {
  /** Weights plus KV cache the stage holds, in bytes (of a group: its leader, rank 0). */
  memoryBytes: number;
  /**
   * The stage's KV-cache budget, bytes: its layers' KV bytes per token × the workload's
   * context × the sequences the plan keeps (micro-batch size × micro-batches in flight).
   * The coordinator deploys the stage with this budget. Absent from plans made before it.
   * Of a tensor-parallel stage: the whole stage's; each member holds its KV heads' share.
   */
  kvBudgetBytes?: number;
  /** Bytes the device has available. */
  deviceMemoryBytes: number;
  /** Of a tensor-parallel stage: bytes each member holds, and has, by rank (`tensor.devices`). */
  memberMemoryBytes?: number[];
  memberDeviceMemoryBytes?: number[];
  /** One decode step of a micro-batch on this stage, in ms. */
  computeMs: number;
  /** One prefill chunk on this stage, in ms. */
  prefillChunkMs: number;
}

/** A message's trip along one link during a decode step. */
export interface PlannedHop {
  from: string;
  to: string;
  /** Payload plus framing, in bytes. */
  bytes: number;
  /** Half the round trip plus bytes over bandwidth, in ms. */
  transferMs: number;
}

/** Predicted figures of a plan. */
export interface PlannedFigures {
  ttftMs: number;
  tpotMs: number;
  tokensPerS: number;
}

export interface PlannedRange {
  p50: PlannedFigures;
  p90: PlannedFigures;
}

export interface PlanResult extends Plan {
  stages: PlannedStage[];
  /** Coordinator → stage 0, stage i → i+1, last stage → coordinator. */
  hops: PlannedHop[];
  planner: Exclude<PlannerName, 'auto'>;
  objective: Objective;
  /** The plans the search considered (its stages say which it made). */
  parallelism: Parallelism;
  microBatchSize: number;
  microBatchesInFlight: number;
  /** Predicted time to first token of one prompt, in ms. */
  ttftMs: number;
  /** Predicted time per output token of one micro-batch (a full trip around the pipeline), in ms. */
  tpotMs: number;
  /** Predicted pipelined tokens per second across all sequences in flight. */
  tokensPerS: number;
  /** What bounds the throughput: a stage, a link, or the round trip when too few micro-batches are in flight. */
  bottleneck: string;
  /**
   * The same plan predicted from the profile's medians (`p50`) and from its 90th percentiles
   * (`p90`): the range its measured figures should fall in. Equal when the profile has no spread.
   */
  range: PlannedRange;
  workload: Workload;
  /** Work the planner did: DP labels created, or GA/PSO fitness evaluations. */
  searchSteps: number;
}
