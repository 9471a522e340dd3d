/**
 * What a model dir imported from a GGUF file records about it: the file, its metadata,
 * and where every stored tensor came from — which GGUF tensors of which ggml type, and
 * how each became what the model dir holds (copied, dequantized, mapped onto
 * MatMulNBits without loss, or re-quantized with the error that added).
 */

/** Names of the ggml tensor types SwarmBee decodes (ggml's own spelling). */
export type GgmlTypeName =
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'Q4_0'
  | 'Q4_1'
  | 'Q5_0'
  | 'Q5_1'
  | 'Q8_0'
  | 'Q2_K'
  | 'Q3_K'
  | 'Q4_K'
  | 'Q5_K'
  | 'Q6_K'
  | 'Q8_K';

/**
 * How a GGUF tensor became a model-dir tensor:
 * - `copied`: F32 values as they were;
 * - `dequantized`: fp32 values exactly as ggml dequantizes them (F16, BF16, or a quantized
 *   type kept at full precision);
 * - `mapped`: the same codes and scales in MatMulNBits' layout, dequantizing to the same
 *   fp32 values bit for bit (Q4_0, Q8_0, Q5_0, Q3_K, Q6_K, Q8_K);
 * - `requantized`: ggml's values quantized anew to SwarmBee's block format, with an error.
 */
export type GgufConversion = 'copied' | 'dequantized' | 'mapped' | 'requantized';

/** The error re-quantization added, against ggml's dequantized values. */
export interface RequantizationError {
  /** Largest absolute difference. */
  maxAbs: number;
  /** Root-mean-square difference. */
  rms: number;
  /** `rms` divided by the root-mean-square of the tensor's values. */
  relativeRms: number;
}

/** One GGUF tensor that went into a model-dir tensor. */
export interface GgufTensorPart {
  name: string;
  type: GgmlTypeName;
  conversion: GgufConversion;
  /** Present when `conversion` is `requantized`. */
  error?: RequantizationError;
}

/** One model-dir tensor and the GGUF tensors it was made from. */
export interface GgufTensorOrigin {
  /** Canonical model-dir tensor name (`layers.0.wqkv`). */
  name: string;
  /** What the model dir stores. */
  stored: 'fp32' | 'int8' | 'int4';
  /** Weights per block of a quantized tensor. */
  blockSize?: number;
  /** GGUF tensors, in the order their rows were stacked (q, k, v; gate, up). */
  from: GgufTensorPart[];
}

/** A scalar GGUF metadata value as the manifest keeps it (arrays and long strings summarised). */
export type GgufMetadataValue = string | number | boolean;

export interface GgufSource {
  kind: 'gguf';
  /** File name of the GGUF read. */
  file: string;
  sha256: string;
  /** GGUF format version (2 or 3). */
  version: number;
  /** `general.architecture`. */
  architecture: string;
  /** The file's scalar metadata; arrays appear as `[N × type]`, long strings by their length. */
  metadata: Record<string, GgufMetadataValue>;
  tensors: GgufTensorOrigin[];
  /** The Hugging Face repository it was pulled from, when it was. */
  repo?: string;
}
