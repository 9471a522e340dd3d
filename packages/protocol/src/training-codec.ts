/**
 * Training stage calls and results to and from their wire form (`messages/training.ts`).
 * The shapes here are the engine's `TrainingMicroBatch` and `TrainingStageState`, stated
 * structurally so the wire does not depend on the engine. Outgoing arrays are views;
 * incoming ones are copied once into buffers of their own (aligned, and free to move to
 * the stage's thread).
 */
import { InvalidArgumentError } from '@swarmbee/core';
import {
  fromWireArray,
  type TrainingCall,
  type TrainLoadMessage,
  toWireArray,
  type WireArray,
  type WireArrayDtype,
  type WireTrainingState,
} from './messages/index.js';

/** A training micro-batch (see `TrainingMicroBatch` in @swarmbee/engine). */
export interface TrainingBatchArrays {
  id: number;
  lengths: Int32Array;
  width: number;
  tokens?: BigInt64Array;
  hidden?: Float32Array;
  targets?: BigInt64Array;
  lossScale?: number;
}

/** A stage's adapters and optimizer moments (see `TrainingStageState` in @swarmbee/engine). */
export interface TrainingStateArrays {
  step: number;
  tensors: Record<string, { value: Float32Array; expAvg: Float32Array; expAvgSq: Float32Array }>;
}

/** A stage's training graphs (see `TrainingStageGraphs` in @swarmbee/model), as `train.load` carries them. */
export function graphsToWire(graphs: TrainLoadMessage['graphs']): TrainLoadMessage['graphs'] {
  return {
    forward: graphs.forward,
    ...(graphs.backward ? { backward: graphs.backward } : {}),
    params: graphs.params,
    inputGradient: graphs.inputGradient,
    saved: graphs.saved,
  };
}

/** A wire array as `dtype`; a wrong dtype is refused with InvalidArgumentError naming `what`. */
export function readArray<D extends WireArrayDtype>(array: WireArray, dtype: D, what: string) {
  try {
    return fromWireArray(array, dtype, what);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

export function batchToWire(
  batch: TrainingBatchArrays,
): Extract<TrainingCall, { op: 'forward' }>['batch'] {
  return {
    id: batch.id,
    lengths: toWireArray(batch.lengths),
    width: batch.width,
    ...(batch.tokens ? { tokens: toWireArray(batch.tokens) } : {}),
    ...(batch.hidden ? { hidden: toWireArray(batch.hidden) } : {}),
    ...(batch.targets ? { targets: toWireArray(batch.targets) } : {}),
    ...(batch.lossScale === undefined ? {} : { lossScale: batch.lossScale }),
  };
}

export function batchFromWire(
  wire: Extract<TrainingCall, { op: 'forward' }>['batch'],
): TrainingBatchArrays {
  const batch: TrainingBatchArrays = {
    id: wire.id,
    lengths: readArray(wire.lengths, 'int32', 'lengths'),
    width: wire.width,
  };
  if (wire.tokens) batch.tokens = readArray(wire.tokens, 'int64', 'tokens');
  if (wire.hidden) batch.hidden = readArray(wire.hidden, 'float32', 'hidden');
  if (wire.targets) batch.targets = readArray(wire.targets, 'int64', 'targets');
  if (wire.lossScale !== undefined) batch.lossScale = wire.lossScale;
  return batch;
}

export function arraysToWire(
  arrays: Readonly<Record<string, Float32Array>>,
): Record<string, WireArray> {
  return Object.fromEntries(Object.entries(arrays).map(([name, a]) => [name, toWireArray(a)]));
}

export function arraysFromWire(
  arrays: Readonly<Record<string, WireArray>>,
): Record<string, Float32Array> {
  return Object.fromEntries(
    Object.entries(arrays).map(([name, a]) => [name, readArray(a, 'float32', name)]),
  );
}

export function stateToWire(state: TrainingStateArrays): WireTrainingState {
  const tensors: WireTrainingState['tensors'] = {};
  for (const [name, t] of Object.entries(state.tensors))
    tensors[name] = {
      value: toWireArray(t.value),
      expAvg: toWireArray(t.expAvg),
      expAvgSq: toWireArray(t.expAvgSq),
    };
  return { step: state.step, tensors };
}

export function stateFromWire(wire: WireTrainingState): TrainingStateArrays {
  const tensors: TrainingStateArrays['tensors'] = {};
  for (const [name, t] of Object.entries(wire.tensors))
    tensors[name] = {
      value: readArray(t.value, 'float32', `${name} value`),
      expAvg: readArray(t.expAvg, 'float32', `${name} first moment`),
      expAvgSq: readArray(t.expAvgSq, 'float32', `${name} second moment`),
    };
  return { step: wire.step, tensors };
}
