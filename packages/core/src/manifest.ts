/**
 * The model dir's `manifest.json`: what a model is, where its weights sit in
 * `weights.bin`, and what each layer costs in bytes — everything the planner and
 * the shard builder need without reading a weight. Two kinds, told apart by
 * `architecture`: a Llama-family model SwarmBee builds graphs for, and an
 * imported ONNX decoder export it cuts graphs from (see `onnx-decoder.ts`).
 */
import type { OnnxDecoderManifest } from './onnx-decoder.js';

/** Shape of a Llama-family decoder (Llama, Mistral, Qwen2, llama2.c). */
export interface LlamaConfig {
  /** Model (residual stream) width. */
  dim: number;
  /** Feed-forward inner width. */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads; fewer than `nHeads` means grouped-query attention. */
  nKvHeads: number;
  vocabSize: number;
  /** Longest context the model supports, in tokens (positions). */
  maxSeqLen: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** RoPE base frequency. */
  ropeTheta: number;
  /** The LM head reuses the token embedding matrix. */
  sharedClassifier: boolean;
  /**
   * The q/k/v projections add a bias (Qwen2): the model dir then holds a
   * `layers.N.bqkv` vector beside each `wqkv`. Absent means false.
   */
  qkvBias?: boolean;
}

export type WeightDtype = 'float32';

/** One tensor inside `weights.bin`, stored row-major with little-endian elements. */
export interface WeightTensor {
  name: string;
  dtype: WeightDtype;
  shape: number[];
  /** Byte offset in `weights.bin`, a multiple of {@link WEIGHT_ALIGNMENT_BYTES}. */
  offset: number;
  bytes: number;
}

/** Byte alignment of every tensor in `weights.bin` (a page, so the file can be mapped). */
export const WEIGHT_ALIGNMENT_BYTES = 4096;

/** Bytes one layer costs: what the planner charges a device for holding it. */
export interface LayerCost {
  /** Weight bytes of the layer (norms, attention, feed-forward). */
  paramBytes: number;
  /** KV-cache bytes per token of context (keys and values, fp32). */
  kvBytesPerToken: number;
}

/** A llama2.c tokenizer file (`tokenizer.bin`): run.c's encode and decode. */
export interface Llama2cTokenizerRef {
  kind: 'llama2c';
  /** File name inside the model dir. */
  file: string;
  sha256: string;
  bosId: number;
  eosId: number;
}

/**
 * A Hugging Face tokenizer: `tokenizer.json` plus `tokenizer_config.json`, run by
 * @huggingface/tokenizers.
 */
export interface HfTokenizerRef {
  kind: 'hf';
  /** `tokenizer.json` inside the model dir. */
  file: string;
  /** `tokenizer_config.json` inside the model dir. */
  configFile: string;
  /** sha256 over both files' hashes. */
  sha256: string;
  /** BOS id; -1 when the tokenizer has none (Qwen2). */
  bosId: number;
  eosId: number;
  /** Whether encoding a prompt puts BOS first (tokenizer_config's `add_bos_token`). */
  addBos: boolean;
  /** Sampled ids that end a sequence: generation_config's and config's `eos_token_id`s. */
  stopIds: number[];
}

export type TokenizerRef = Llama2cTokenizerRef | HfTokenizerRef;

export type ModelSource =
  | { kind: 'llama2c'; checkpoint: string; checkpointSha256: string }
  | { kind: 'synthetic'; seed: number; preset?: string }
  | {
      kind: 'hf';
      /** `architectures[0]` of config.json, e.g. LlamaForCausalLM. */
      architecture: string;
      /** sha256 of config.json. */
      configSha256: string;
      /** The safetensors files read, with their sha256. */
      weights: { file: string; sha256: string }[];
      /** The Hugging Face repository it was pulled from, when it was. */
      repo?: string;
    };

export const MANIFEST_FORMAT = 'swarmbee.model';
export const MANIFEST_FORMAT_VERSION = 1;

/** A Llama-family model whose shard graphs SwarmBee builds from `weights.bin`. */
export interface LlamaManifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_FORMAT_VERSION;
  name: string;
  architecture: 'llama';
  config: LlamaConfig;
  /**
   * RoPE pairing the q/k weights are stored for. SwarmBee stores Hugging Face's
   * rotate-half layout; llama2.c checkpoints (interleaved pairs) are permuted on import.
   */
  rope: 'rotate-half';
  weights: {
    file: string;
    bytes: number;
    sha256: string;
    /**
     * Stored in layer order (embedding, layers 0..n-1, final norm, head), so any
     * layer range is one contiguous span of the file. Fused tensors keep the q/k/v
     * and gate/up projections adjacent: `layers.N.wqkv` rows are q, then k, then v;
     * `layers.N.w13` rows are gate (w1), then up (w3). Linear weights are
     * [out, in] as in PyTorch.
     */
    tensors: WeightTensor[];
  };
  tokenizer?: TokenizerRef;
  layers: LayerCost[];
  /** Token embedding bytes (held by the first stage). */
  embeddingBytes: number;
  /** Final norm plus LM head bytes (held by the last stage; the head is shared when tied). */
  headBytes: number;
  /** sha256 over the config and the content hashes: the model's identity. */
  modelHash: string;
  source: ModelSource;
  createdBy: string;
}

/** Every kind of model dir. Fields common to both (`config.nLayers`, `layers`, `modelHash`, ...) need no narrowing. */
export type ModelManifest = LlamaManifest | OnnxDecoderManifest;

export function headDim(config: LlamaConfig): number {
  return config.dim / config.nHeads;
}

/** Bytes of keys plus values, per token of context, for one layer at fp32. */
export function kvBytesPerTokenPerLayer(config: LlamaConfig): number {
  return 2 * config.nKvHeads * headDim(config) * 4;
}
