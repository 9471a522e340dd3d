/**
 * A pipeline runs a micro-batch through every stage in order and returns the
 * last stage's sampled tokens. `LocalPipeline` chains stages in one process;
 * the coordinator's remote pipeline implements the same interface over the wire.
 */
import type { BatchRow, StageLimits } from './stage-engine.js';

export interface PipelineInfo {
  vocabSize: number;
  maxSeqLen: number;
  /** Layer ranges of the stages, in order, and what each stage's KV cache admits when known. */
  stages: { layerStart: number; layerEnd: number; limits?: StageLimits }[];
}

export interface PipelineStep {
  rows: BatchRow[];
  /** Token ids [B, T], T = the longest row; padding is ignored. */
  tokens: BigInt64Array;
  logits?: 'last' | 'all';
}

export interface PipelineResult {
  tokens: Int32Array;
  logprobs?: Float32Array;
  logits?: Float32Array;
}

export interface Pipeline {
  readonly info: PipelineInfo;
  step(step: PipelineStep): Promise<PipelineResult>;
  release(seqIds: string[]): Promise<void>;
  close(): Promise<void>;
}
