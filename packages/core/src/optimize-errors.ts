/** Errors of `swarmbee optimize`: quantizing, pruning, measuring fidelity, searching deployments. */
import { registerErrors, SwarmBeeError } from './errors.js';

/**
 * A quantization was asked for that SwarmBee cannot make: bits other than 8 or 4, a block
 * size that is not a power of two of at least 16, a layer that is already quantized (quantize
 * the fp32 model instead: requantizing compounds the error), or a model kind without
 * SwarmBee's own Llama graphs (an imported ONNX decoder).
 */
export class QuantizationUnsupportedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_QUANTIZATION_UNSUPPORTED';
  static override readonly httpStatus = 400;
}

/** A pruning request cannot be met: too many layers to drop, or a layer that does not exist. */
export class PruneInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_PRUNE_INVALID';
  static override readonly httpStatus = 400;
}

/** A fidelity corpus is unreadable, or too short to measure anything (the message says how short). */
export class CorpusInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_CORPUS_INVALID';
  static override readonly httpStatus = 400;
}

/**
 * Two things that must describe the same model do not: a reference and a candidate with
 * different vocabularies or tokenizers, or a profile measured for another model than the
 * one given.
 */
export class ModelMismatchError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_MODEL_MISMATCH';
  static override readonly httpStatus = 400;
}

registerErrors(
  QuantizationUnsupportedError,
  PruneInvalidError,
  CorpusInvalidError,
  ModelMismatchError,
);
