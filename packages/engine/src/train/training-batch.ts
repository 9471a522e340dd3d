/**
 * A training micro-batch as a stage sees it, and its onnxruntime feeds. Every row is a
 * sequence of its own starting at position 0, right-padded to the batch width T; the
 * attention bias lets a token see its own row's earlier tokens and nothing past the
 * row's length, so padding changes nothing for the real tokens.
 */
import {
  ContextOverflowError,
  InvalidArgumentError,
  TokenOutOfVocabularyError,
} from '@swarmbee/core';
import { MASKED_BIAS, TRAIN_IO } from '@swarmbee/model/graph-io';
import ort from 'onnxruntime-node';

export interface TrainingMicroBatch {
  /** Names the micro-batch between its forward and backward pass; unique among those in flight. */
  id: number;
  /** Real tokens per row (1..T); the rest of each row is padding. */
  lengths: Int32Array;
  /** Batch width T: the longest row. */
  width: number;
  /** First stage: token ids [B, T]. */
  tokens?: BigInt64Array;
  /** Other stages: hidden states [B, T, dim] from the previous stage. */
  hidden?: Float32Array | Float64Array;
  /** Last stage: the next token of each position [B, T], negative where no loss is taken. */
  targets?: BigInt64Array;
  /** Last stage: 1 / target tokens of the whole optimizer step. */
  lossScale?: number;
}

export interface TrainingStagePlace {
  isFirst: boolean;
  isLast: boolean;
  dim: number;
  vocabSize: number;
  maxSeqLen: number;
}

/** Checks a micro-batch against the stage; throws a coded error naming what is wrong. */
export function checkTrainingBatch(batch: TrainingMicroBatch, place: TrainingStagePlace): void {
  const rows = batch.lengths.length;
  const { width } = batch;
  if (rows === 0) throw new InvalidArgumentError('a training micro-batch needs at least one row');
  if (!Number.isInteger(width) || width < 1)
    throw new InvalidArgumentError(`micro-batch width must be a positive integer, got ${width}`);
  if (width > place.maxSeqLen)
    throw new ContextOverflowError(
      `a micro-batch of ${width} tokens per row exceeds the model's context of ${place.maxSeqLen}`,
    );
  for (const length of batch.lengths)
    if (length < 1 || length > width)
      throw new InvalidArgumentError(`row length ${length} is outside 1..${width}`);
  const cells = rows * width;
  const ids = (name: string, values: BigInt64Array | undefined, allowNegative: boolean) => {
    if (values?.length !== cells)
      throw new InvalidArgumentError(
        `${name}: expected ${rows}x${width} ids, got ${values?.length ?? 'none'}`,
      );
    for (const id of values)
      if ((id < 0n && !allowNegative) || id >= BigInt(place.vocabSize))
        throw new TokenOutOfVocabularyError(
          `${name}: id ${id} is outside the vocabulary of ${place.vocabSize} tokens`,
        );
  };
  if (place.isFirst) ids('tokens', batch.tokens, false);
  else if (batch.hidden?.length !== cells * place.dim)
    throw new InvalidArgumentError(
      `hidden: expected ${rows}x${width}x${place.dim} values, got ${batch.hidden?.length ?? 'none'}`,
    );
  if (place.isLast) {
    ids('targets', batch.targets, true);
    if (!(batch.lossScale !== undefined && batch.lossScale > 0 && Number.isFinite(batch.lossScale)))
      throw new InvalidArgumentError(
        `the last stage needs a positive loss scale, got ${batch.lossScale}`,
      );
  }
}

type FloatArray = typeof Float32Array | typeof Float64Array;

/** The feeds every graph of the stage takes for this micro-batch (adapters and gradients aside). */
export function trainingFeeds(
  batch: TrainingMicroBatch,
  place: TrainingStagePlace,
  float: 'float32' | 'float64' = 'float32',
): Record<string, ort.Tensor> {
  const rows = batch.lengths.length;
  const { width } = batch;
  const Float: FloatArray = float === 'float64' ? Float64Array : Float32Array;
  const positions = new BigInt64Array(rows * width);
  const bias = new Float(rows * width * width).fill(MASKED_BIAS);
  for (let r = 0; r < rows; r++) {
    const length = batch.lengths[r]!;
    for (let i = 0; i < width; i++) {
      if (i < length) positions[r * width + i] = BigInt(i);
      // A real token sees itself and the row's earlier tokens; padding sees the whole real prefix.
      const line = (r * width + i) * width;
      bias.fill(0, line, line + Math.min(i + 1, length));
    }
  }
  const feeds: Record<string, ort.Tensor> = {
    [TRAIN_IO.positionIds]: new ort.Tensor('int64', positions, [rows, width]),
    [TRAIN_IO.attentionBias]: new ort.Tensor(float, bias, [rows, 1, width, width]),
  };
  if (place.isFirst)
    feeds[TRAIN_IO.inputIds] = new ort.Tensor('int64', batch.tokens!, [rows, width]);
  else feeds[TRAIN_IO.hiddenIn] = new ort.Tensor(float, batch.hidden!, [rows, width, place.dim]);
  if (place.isLast) {
    feeds[TRAIN_IO.targets] = new ort.Tensor('int64', batch.targets!, [rows, width]);
    feeds[TRAIN_IO.lossScale] = new ort.Tensor(float, Float.of(batch.lossScale!), []);
  }
  return feeds;
}
