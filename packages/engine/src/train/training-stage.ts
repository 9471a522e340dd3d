/**
 * The public interface of one pipeline stage's training, beside `StageEngine` for
 * inference. A driver (the in-process `TrainingPipeline` here; a coordinator over the
 * data plane later) hands each stage micro-batches forward — token ids to the first,
 * hidden states to the others — and gradients backward, in the order a pipeline
 * schedule says; the stage keeps what each micro-batch's backward pass needs between
 * the two calls, accumulates its adapters' gradients, and applies AdamW when told.
 * Everything crossing the interface is plain typed arrays and numbers, so it travels
 * as tensor frames and control messages unchanged.
 */
import type { ActivationPolicy } from '@swarmbee/model';
import type { AdamWMoments, AdamWOptions } from './adamw.js';
import type { TrainingMicroBatch } from './training-batch.js';

export interface TrainingStageInfo {
  layerStart: number;
  layerEnd: number;
  isFirst: boolean;
  isLast: boolean;
  dim: number;
  vocabSize: number;
  maxSeqLen: number;
  /** The stage's adapter tensors, in a fixed order, with their shapes. */
  params: { name: string; dims: [number, number] }[];
  /** Whether `backward` yields the gradient at the stage's input (an earlier stage has adapters). */
  inputGradient: boolean;
  activations: ActivationPolicy;
}

export interface TrainingForward {
  /** Non-last stages: the hidden state [B, T, dim] for the next stage. */
  hidden?: Float32Array;
  /** Last stage, evaluating: the micro-batch's loss (Σ −log p × loss scale). */
  loss?: number;
}

export interface TrainingBackward {
  /** The gradient at the stage's input [B, T, dim], for the previous stage (when it needs one). */
  gradIn?: Float32Array;
  /** Last stage: the micro-batch's share of the step's mean loss. */
  loss?: number;
}

/** An optimizer update: the step's learning rate and the clipping factor for its gradients. */
export interface TrainingUpdate {
  learningRate: number;
  /** Multiplies every accumulated gradient (global-norm clipping); 1 leaves them. */
  gradientScale: number;
}

/** Adapter values and optimizer state, to checkpoint and resume a stage exactly. */
export interface TrainingStageState {
  /** Optimizer updates applied so far. */
  step: number;
  tensors: Record<string, { value: Float32Array } & AdamWMoments>;
}

export interface TrainingStageStats {
  forwards: number;
  backwards: number;
  forwardMsTotal: number;
  backwardMsTotal: number;
  /** Most micro-batches held between forward and backward at once, and their bytes. */
  peakInFlight: number;
  peakStashBytes: number;
}

export interface TrainingStageOptions {
  /** onnxruntime intra-op threads. Default: the machine's available parallelism. */
  intraOpThreads?: number;
  /** Let onnxruntime's threads spin while idle. Default true; off when stages share cores. */
  allowSpinning?: boolean;
  optimizer?: AdamWOptions;
}

export interface TrainingStage {
  readonly info: TrainingStageInfo;
  /**
   * Runs the micro-batch forward. Training (the default) keeps what its backward pass
   * needs until `backward(batch.id)`; `evaluate` keeps nothing and, on the last stage,
   * returns the loss.
   */
  forward(batch: TrainingMicroBatch, options?: { evaluate?: boolean }): Promise<TrainingForward>;
  /** Backward pass of a micro-batch run forward earlier; `gradOut` [B, T, dim] except on the last stage. */
  backward(id: number, gradOut?: Float32Array): Promise<TrainingBackward>;
  /** Σ g² over the gradients accumulated since the last update (for global-norm clipping). */
  gradientSquaredNorm(): Promise<number>;
  /** The gradients accumulated since the last update, by adapter tensor (copies). */
  gradients(): Promise<Record<string, Float32Array>>;
  /**
   * Computes the AdamW step from the accumulated gradients, without applying it yet;
   * throws TrainingDivergedError (and keeps nothing) if a new value would not be finite.
   * An update is prepared on every stage, then committed on every stage — or on none.
   */
  prepareUpdate(update: TrainingUpdate): Promise<void>;
  /** Applies the prepared update and clears the accumulated gradients. */
  commitUpdate(): Promise<void>;
  /** Drops accumulated gradients, held micro-batches and a prepared update (a failed step). */
  discard(): Promise<void>;
  state(): Promise<TrainingStageState>;
  loadState(state: TrainingStageState): Promise<void>;
  stats(): Promise<TrainingStageStats>;
  close(): Promise<void>;
}
