/** Errors of bringing models in: Hugging Face checkpoints, GGUF files and downloads. */
import { registerErrors, SwarmBeeError } from './errors.js';

/**
 * A checkpoint asks for something the Llama graph builder cannot honour: an
 * unknown architecture, RoPE scaling, a sliding window shorter than the context,
 * an unusual head size, biases where the builder has none. The message names
 * what was found.
 */
export class ModelUnsupportedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_MODEL_UNSUPPORTED';
}

/** A Hugging Face checkpoint dir is incomplete or inconsistent: config, index or tensors. */
export class HfCheckpointInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_HF_CHECKPOINT_INVALID';
}

/**
 * A GGUF file is malformed or inconsistent: truncated, a tensor's data past the end of
 * the file, a version it does not follow, a missing or mistyped key, a vocabulary that
 * disagrees with the embedding. The message names the file and the key or tensor.
 */
export class GgufInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_GGUF_INVALID';
}

/** A GGUF tensor is stored in a ggml type SwarmBee does not decode (IQ*, TQ*, I8…); the message names it. */
export class GgufTensorTypeUnsupportedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_GGUF_TENSOR_TYPE_UNSUPPORTED';
}

/** A safetensors file is malformed: header, dtype, shape or data offsets. */
export class SafetensorsInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_SAFETENSORS_INVALID';
}

/** The server answered 404: no such model, repository or file (or it is private). */
export class DownloadNotFoundError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_DOWNLOAD_NOT_FOUND';
  static override readonly httpStatus = 404;
}

/** A downloaded file's sha256 or size differs from what the server or catalogue says. */
export class DownloadChecksumError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_DOWNLOAD_CHECKSUM';
}

/** The server refused or failed a download (401/403 for gated models, 5xx, a bad answer). */
export class DownloadFailedError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_DOWNLOAD_FAILED';
}

/**
 * The network failed: the host cannot be resolved or reached, the connection was
 * dropped mid-way, or it stalled. What was downloaded is kept; running again resumes.
 */
export class NetworkUnavailableError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_NETWORK_UNAVAILABLE';
  static override readonly retryable = true;
  static override readonly httpStatus = 503;
}

/**
 * A model's chat template cannot be used: the file is missing or unreadable, its
 * `chat_template` has no default among named templates, or @huggingface/jinja cannot
 * parse it. The message names the file and the problem.
 */
export class ChatTemplateInvalidError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_CHAT_TEMPLATE_INVALID';
}

/**
 * A conversation cannot be rendered by the model's chat template: the template raised
 * (`raise_exception`, e.g. roles that do not alternate) or failed on the messages. A
 * client error: the message names the template and what it said.
 */
export class ChatTemplateRenderError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_CHAT_TEMPLATE_FAILED';
  static override readonly httpStatus = 400;
}

/**
 * The disk cannot hold what an operation would write (an import, a quantized copy, a
 * synthetic checkpoint): refused before anything is written. The message names the
 * directory, the bytes needed and the bytes free.
 */
export class DiskSpaceError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_DISK_SPACE';
}

registerErrors(
  DiskSpaceError,
  ModelUnsupportedError,
  HfCheckpointInvalidError,
  GgufInvalidError,
  GgufTensorTypeUnsupportedError,
  SafetensorsInvalidError,
  DownloadNotFoundError,
  DownloadChecksumError,
  DownloadFailedError,
  NetworkUnavailableError,
  ChatTemplateInvalidError,
  ChatTemplateRenderError,
);
