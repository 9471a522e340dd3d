/**
 * An imported ONNX decoder export (Hugging Face Optimum, onnxruntime's GPT-2
 * tooling, ...) as a model dir: the source graph with its weights moved into
 * `weights.bin`, plus what the splitter found in it — where the layers begin
 * and end, the residual tensor at every cut, and the names and layout of the
 * per-layer KV inputs and outputs. Shards for any layer range are cut from the
 * source graph on demand.
 */
import type {
  LayerCost,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  TokenizerRef,
} from './manifest.js';

/** Element types a decoder's activations and KV cache may have. */
export type DecoderFloatDtype = 'float32' | 'float16';

/** Element types of integer graph inputs (token ids, positions, the attention mask). */
export type DecoderIndexDtype = 'int32' | 'int64';

/** Shape of an imported decoder, as far as the planner, engine and API need it. */
export interface OnnxDecoderConfig {
  /** Residual stream width. */
  dim: number;
  nLayers: number;
  /** Query heads (the attention op's `num_heads` when the graph says; else the KV heads). */
  nHeads: number;
  /** Key/value heads of the cache. */
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** Longest context the model supports, in tokens (positions). */
  maxSeqLen: number;
  /** Element type of most weight bytes (what the planner charges per parameter). */
  weightDtype: DecoderFloatDtype;
}

/** A named graph input and its element type. */
export interface OnnxIoTensor {
  name: string;
  dtype: DecoderIndexDtype;
}

/**
 * How the graph keeps its KV cache.
 * - `stacked`: one tensor per layer, `[2, batch, kvHeads, seq, headDim]`, keys then values
 *   (onnxruntime's GPT-2 tooling: `past_L` / `present_L`).
 * - `separate`: keys and values apart, each `[batch, kvHeads, seq, headDim]`
 *   (Optimum: `past_key_values.L.key` / `present.L.key`).
 * A present output is the past with the new tokens appended along the seq axis.
 */
export interface OnnxKvLayout {
  kind: 'stacked' | 'separate';
  dtype: DecoderFloatDtype;
  kvHeads: number;
  headDim: number;
  /** Per layer: the past input names (one when stacked; key then value when separate). */
  past: string[][];
  /** Per layer: the present output names, in the same order. */
  present: string[][];
}

/**
 * How a downstream stage recomputes what the node ending the previous layer
 * produced besides the residual: fused Skip*LayerNormalization nodes also
 * normalise the sum for the next layer, so the next stage normalises the
 * residual it receives again with the same op, weights and epsilon (skip = 0).
 */
export type OnnxCutReplay = 'SkipLayerNormalization' | 'SkipSimplifiedLayerNormalization';

/** The cut in front of one layer: what crosses it. */
export interface OnnxLayerCut {
  /** The cut lies in front of this layer (1..nLayers-1). */
  layer: number;
  /** The residual stream (pre-normalisation sum) at the cut: the hidden state that travels. */
  residual: string;
  /** Op type of the node that ends the previous layer (and produces `residual`). */
  boundaryOp: string;
  /** When that node also hands the next layer a normalised copy: its name and how to recompute it. */
  normalized?: { tensor: string; replay: OnnxCutReplay };
}

/**
 * An additive attention bias `[batch, 1, new tokens, past + new]` that the export
 * computes from the attention mask alone and hands to `com.microsoft.MultiHeadAttention`
 * (onnxruntime-genai's model builder: `/model/attn_mask_reformat/...`). The export
 * builds its causal part as a new × new triangle, which only fits a past of width 0
 * (a prompt) or one new token; SwarmBee feeds both at once (cache capacity, chunked
 * prefill), so every stage computes this tensor itself: 0 where a new token may attend
 * (the mask is 1 and the slot is not after it), the dtype's lowest value elsewhere.
 */
export interface OnnxAttentionBias {
  /** The tensor the attention ops read. */
  tensor: string;
  dtype: DecoderFloatDtype;
}

/** What the splitter found in the source graph. */
export interface OnnxDecoderLayout {
  /** The source graph inside the model dir; its initializers point into the weights file. */
  graph: { file: string; bytes: number; sha256: string };
  /** Version of the default (ai.onnx) opset the graph imports. */
  opset: number;
  inputIds: OnnxIoTensor;
  positionIds: OnnxIoTensor;
  attentionMask: OnnxIoTensor;
  /** Name of the logits output, `[batch, seq, vocab]`. */
  logits: string;
  kv: OnnxKvLayout;
  /** Element type of the residual stream inside the graph (it travels as float32). */
  hiddenDtype: DecoderFloatDtype;
  /** One cut in front of each layer but the first. */
  cuts: OnnxLayerCut[];
  /** The LM head reads the token embedding's initializer. */
  tiedEmbedding: boolean;
  /** Attention biases every stage rebuilds from the mask; absent: none. */
  attentionBiases?: OnnxAttentionBias[];
  /** The patterns that were recognised, for `model inspect` and error reports. */
  patterns: string[];
}

/** Element types an initializer of an imported graph may have in `weights.bin`. */
export type OnnxWeightDtype =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

/** One initializer of the source graph, stored in `weights.bin`. */
export interface OnnxWeightTensor {
  name: string;
  dtype: OnnxWeightDtype;
  shape: number[];
  /** Byte offset in the weights file, a multiple of the weight alignment. */
  offset: number;
  bytes: number;
}

export type OnnxModelSource = {
  kind: 'onnx';
  /** The file imported (its base name). */
  file: string;
  /** sha256 of that file (not of its external data). */
  sha256: string;
  /** The exporter, as the graph names it (`producer_name producer_version`). */
  producer: string;
};

export interface OnnxDecoderManifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_FORMAT_VERSION;
  name: string;
  architecture: 'onnx-decoder';
  config: OnnxDecoderConfig;
  /** Initializers of at least {@link ONNX_EXTERNAL_MIN_BYTES} bytes, in part order (embedding, layers, head). */
  weights: { file: string; bytes: number; sha256: string; tensors: OnnxWeightTensor[] };
  decoder: OnnxDecoderLayout;
  tokenizer?: TokenizerRef;
  /**
   * Per layer: bytes of the initializers the layer's nodes read. An initializer the
   * export shares between layers counts for each of them, since every stage holding
   * one of those layers holds it.
   */
  layers: LayerCost[];
  /** Initializers the embedding nodes read. */
  embeddingBytes: number;
  /** Initializers the final norm and LM head read (a tied head counts the embedding again). */
  headBytes: number;
  /** sha256 over the config, the layout and the content hashes: the model's identity. */
  modelHash: string;
  source: OnnxModelSource;
  createdBy: string;
}

/** Initializers this large or larger are moved out of the graph into `weights.bin` (ONNX's own default threshold). */
export const ONNX_EXTERNAL_MIN_BYTES = 1024;

/** Bytes per element of the KV cache and activation element types. */
export const DECODER_DTYPE_BYTES: Readonly<Record<DecoderFloatDtype, number>> = {
  float32: 4,
  float16: 2,
};

/**
 * What a stage of an imported decoder feeds and fetches: the part of the layout
 * its own graph has. Recorded in the shard, so a worker needs no model dir.
 */
export interface OnnxDecoderStageIo {
  /** First stage: the token ids input. */
  inputIds?: OnnxIoTensor;
  /** Later stages: the float32 `[batch, seq, dim]` hidden-state input. */
  hiddenIn?: string;
  positionIds?: OnnxIoTensor;
  attentionMask?: OnnxIoTensor;
  /** Last stage: the logits output; others: the float32 hidden-state output. */
  logits?: string;
  hiddenOut?: string;
  /** The KV layout, `past` and `present` restricted to the stage's own layers. */
  kv: OnnxKvLayout;
}
