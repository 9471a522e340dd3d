/** Errors of fine-tuning: LoRA adapters, training data, training runs and their checkpoints. */
import { registerErrors, SwarmBeeError } from './errors.js';

/**
 * An adapter dir is malformed: `adapter_config.json` or `adapter_model.safetensors`
 * missing or unreadable, a tensor with an unknown name, or a shape that does not fit
 * the model. The message names the file, tensor or field.
 */
export class AdapterInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_ADAPTER_INVALID';
  static override readonly httpStatus = 400;
}

/**
 * An adapter asks for something SwarmBee does not implement (named in the message):
 * another PEFT method than LoRA, DoRA, trained biases, per-module rank or alpha patterns,
 * extra trained modules; or merging into quantized weights.
 */
export class AdapterUnsupportedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_ADAPTER_UNSUPPORTED';
  static override readonly httpStatus = 400;
}

/** An adapter was trained for another base model: its recorded model hash differs. */
export class AdapterBaseMismatchError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_ADAPTER_BASE_MISMATCH';
  static override readonly httpStatus = 400;
}

/** A training data file cannot be used: unreadable, a record that is not valid (the message names its line), or no records. */
export class TrainingDataInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TRAINING_DATA_INVALID';
  static override readonly httpStatus = 400;
}

/**
 * A training step produced a loss or gradient that is not finite. The step was not
 * applied; the message names the last good checkpoint.
 */
export class TrainingDivergedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TRAINING_DIVERGED';
}

/** A training checkpoint dir is incomplete, from another model or adapter, or from an incompatible run. */
export class TrainingCheckpointInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TRAINING_CHECKPOINT_INVALID';
}

/**
 * The cluster already runs a fine-tuning job: one trains at a time (its stages hold the
 * workers' spare memory). Retry once it has finished.
 */
export class TrainingBusyError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TRAINING_BUSY';
  static override readonly retryable = true;
  static override readonly httpStatus = 409;
}

registerErrors(
  AdapterInvalidError,
  AdapterUnsupportedError,
  AdapterBaseMismatchError,
  TrainingDataInvalidError,
  TrainingDivergedError,
  TrainingCheckpointInvalidError,
  TrainingBusyError,
);
