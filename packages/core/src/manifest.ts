/**
 * The model dir's `manifest.json`: what a model is, where its weights sit in
 * `weights.bin`, and what each layer costs in bytes — everything the planner and
 * the shard builder need without reading a weight. Two kinds, told apart by
 * `architecture`: a Llama-family model SwarmBee builds graphs for, and an
 * imported ONNX decoder export it cuts graphs from (see `onnx-decoder.ts`).
 */
import type { LlamaConfig } from './decoder-config.js';
import type { GgufSource } from './gguf.js';
import type { OnnxDecoderManifest } from './onnx-decoder.js';

/** `uint8` holds packed quantization codes (see {@link WeightQuantization}) or zero points. */
export type WeightDtype = 'float32' | 'uint8';

/** Numeric precision of a layer's linear weights (norms always stay fp32). */
export type LayerPrecision = 'fp32' | 'int8' | 'int4';

/**
 * Block-wise weight-only quantization of one linear weight, as onnxruntime's
 * `com.microsoft.MatMulNBits` takes it. The tensor that carries this holds the codes,
 * shape `[out, blocks, blockSize * bits / 8]` (blocks = ⌈in / blockSize⌉, codes packed
 * low bits first along the input dimension, the last block zero-padded); a weight is
 * `(code − zeroPoint) × scale` of its block. Scales and zero points are tensors of their
 * own, stored right after the codes so a layer stays one contiguous span.
 */
export interface WeightQuantization {
  /** Bits per code: 8 (int8) or 4 (int4). */
  bits: 8 | 4;
  /** Weights per block along the input dimension; a power of two, at least 16. */
  blockSize: number;
  /** `[out, in]` of the matrix the codes stand for (PyTorch's layout). */
  shape: [number, number];
  /** Name of the float32 tensor of per-block scales, `[out, blocks]`. */
  scales: string;
  /** Name of the uint8 tensor of per-block zero points, `[out, ⌈blocks × bits / 8⌉]`, packed like the codes. */
  zeroPoints: string;
  /**
   * How the matmul treats activations. `float32`: multiplies by the dequantized weights
   * exactly (onnxruntime's `accuracy_level` 0). `int8`: quantizes each block of the
   * activations to int8 first and multiplies in integers (`accuracy_level` 4, what
   * llama.cpp's CPU kernels do for its quantized formats): much faster on CPUs, with an
   * error below the weights' own.
   */
  activations: 'float32' | 'int8';
}

/** One tensor inside `weights.bin`, stored row-major with little-endian elements. */
export interface WeightTensor {
  name: string;
  dtype: WeightDtype;
  shape: number[];
  /** Byte offset in `weights.bin`, a multiple of {@link WEIGHT_ALIGNMENT_BYTES}. */
  offset: number;
  bytes: number;
  /** Present on quantized linear weights: how to read the codes. Absent: plain fp32. */
  quantization?: WeightQuantization;
}

/** Byte alignment of every tensor in `weights.bin` (a page, so the file can be mapped). */
export const WEIGHT_ALIGNMENT_BYTES = 4096;

/** Bytes one layer costs: what the planner charges a device for holding it. */
export interface LayerCost {
  /** Weight bytes of the layer (norms, attention, feed-forward). */
  paramBytes: number;
  /** KV-cache bytes per token of context (keys and values, fp32). */
  kvBytesPerToken: number;
  /**
   * Most positions the layer caches: its sliding window (a ring of this many slots).
   * Absent: every position of the context.
   */
  kvWindowTokens?: number;
  /** Precision of the layer's linear weights. Absent means fp32. */
  precision?: LayerPrecision;
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
  /**
   * Sampled ids that end a sequence: generation_config's and config's `eos_token_id`s,
   * tokenizer_config's `eos_token`, and the chat template's end-of-turn token.
   */
  stopIds: number[];
  /**
   * The chat template's end-of-turn token (`<|eot_id|>`, `<|im_end|>`, `<end_of_turn>`):
   * the special token the template writes right after an assistant message. One of
   * `stopIds`. Absent without a template, or when the template ends turns otherwise.
   */
  endOfTurnId?: number;
  /** The model's chat template, when it has one (see {@link ChatTemplateRef}). */
  chatTemplate?: ChatTemplateRef;
}

/**
 * A chat template kept in the model dir as `chat_template.jinja`, whatever the
 * checkpoint held: that file, or tokenizer_config.json's `chat_template` (a string, or
 * the list of named templates, whose `default` is the one used — the others serve
 * tool calls and documents, which the API does not take).
 */
export interface ChatTemplateRef {
  /** File name inside the model dir. */
  file: string;
  sha256: string;
  /** Where the checkpoint held it: `chat_template.jinja`, or `tokenizer_config.json` (`chat_template`). */
  source: string;
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
    }
  | GgufSource;

/** What `swarmbee optimize` did to the model a derived model dir was made from. */
export interface ModelDerivation {
  /** `modelHash` and name of the original model, before the first step. */
  fromModelHash: string;
  fromName: string;
  /** Every step, oldest first (a model quantized twice, or pruned then quantized, lists both). */
  steps: ModelDerivationStep[];
}

export type ModelDerivationStep =
  | {
      kind: 'quantize';
      bits: 8 | 4;
      blockSize: number;
      activations: WeightQuantization['activations'];
      /** How codes were chosen (`asymmetric-range-search`); absent in the first quantized models. */
      method?: string;
      /** Layers (of the model as it was then) quantized by this step. */
      layers: number[];
      /** Whether the LM head was quantized too. */
      head: boolean;
    }
  | {
      kind: 'prune';
      /** Layers (of the model as it was then) removed by this step. */
      dropped: number[];
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
  /** Present on models made by `swarmbee optimize` (quantized, pruned) from another. */
  derivedFrom?: ModelDerivation;
  createdBy: string;
}

/** Every kind of model dir. Fields common to both (`config.nLayers`, `layers`, `modelHash`, ...) need no narrowing. */
export type ModelManifest = LlamaManifest | OnnxDecoderManifest;

/** KV-cache bytes one sequence of `contextTokens` costs a layer: a windowed layer stops at its window. */
export function layerKvBytes(cost: LayerCost, contextTokens: number): number {
  return cost.kvBytesPerToken * Math.min(contextTokens, cost.kvWindowTokens ?? contextTokens);
}
