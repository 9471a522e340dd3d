/**
 * @swarmbee/model — models in and out: llama2.c checkpoints and tokenizers,
 * Hugging Face safetensors checkpoints and tokenizers, synthetic models, imported
 * ONNX decoder exports, the model dir, and ONNX shards for any layer range.
 *
 * @example
 * ```ts
 * import { importLlama2c, openModelDir, buildShard } from '@swarmbee/model';
 * await importLlama2c({ checkpoint: 'stories260K.bin', tokenizer: 'tok512.bin', out: 'models/s260k' });
 * const dir = await openModelDir('models/s260k');
 * const shard = buildShard(dir, { start: 0, end: 3 }); // layers 0..2 plus the embedding
 * ```
 */

export {
  CHUNK_DIGESTS_FILE,
  ChunkedSha256,
  fileStatKey,
  readChunkDigests,
  SHARD_CHUNK_BYTES,
  writeChunkDigests,
} from './chunk-digests-file.js';
export { DISK_HEADROOM_BYTES, ensureDiskSpace, freeDiskBytes } from './disk-space.js';
export { type GgmlTypeInfo, ggmlTypeName } from './gguf/ggml-types.js';
export type {
  GgufArchitecture,
  GgufConfigOptions,
  GgufModelConfig,
} from './gguf/gguf-config.js';
export {
  type GgufEntry,
  type GgufFile,
  type GgufScalar,
  type GgufTensorInfo,
  type GgufValue,
  openGguf,
} from './gguf/gguf-file.js';
export { GgufKeys } from './gguf/gguf-keys.js';
export { type GgufTokenizer, ggufTokenizer } from './gguf/gguf-tokenizer.js';
export { type ImportGgufOptions, importGguf, metadataSummary } from './gguf/import.js';
export {
  DEFAULT_GGUF_REQUANTIZE,
  type GgufPart,
  type GgufRequantizeTarget,
  type GgufTensorPlan,
  type PlannedTensor,
  type StoredFormat,
} from './gguf/tensor-plan.js';
export { sha256, sha256File } from './hash.js';
export { type ImportHfOptions, importHf } from './hf/import.js';
export { type SafetensorsEntry, SafetensorsFile } from './hf/safetensors.js';
export { type NamedTensor, writeSafetensors } from './hf/safetensors-writer.js';
export { type HfIdsFromConfig, readHfTokenizerFiles } from './hf/tokenizer-files.js';
export { type TensorSpec, TOKEN_EMBEDDING } from './llama-tensors.js';
export { exportLlama2c } from './llama2c/export.js';
export { type ImportLlama2cOptions, importLlama2c } from './llama2c/import.js';
export {
  adapterModules,
  checkAdapterBase,
  initLoraAdapter,
  type LoraAdapter,
} from './lora/adapter.js';
export {
  DEFAULT_LORA_ALPHA,
  DEFAULT_LORA_RANK,
  DEFAULT_LORA_TARGETS,
  LORA_TARGETS,
  type LoraModule,
  type LoraSpec,
  type LoraTarget,
  loraModules,
  loraShapes,
  loraTensor,
  type TargetPlace,
} from './lora/lora-spec.js';
export { buildMergedShard, mergeAdapter } from './lora/merge.js';
export { adaptedModelHash, adapterHash, checkMergeable } from './lora/merge-tensor.js';
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  peftTensorName,
  readPeftAdapter,
  writePeftAdapter,
  writePeftAdapterFiles,
} from './lora/peft-format.js';
export {
  ADAPTER_NAME,
  checkAdapterNames,
  fillLoraStack,
  type LoraStack,
  loraStackDims,
  loraStackTensor,
  MAX_SERVED_ADAPTERS,
  type NamedAdapter,
  planLoraStacks,
  servedAdapterLayerBytes,
  servedAdaptersId,
} from './lora/served-adapters.js';
export { cachedSynthModel, cacheRoot } from './model-cache.js';
export {
  type HfTokenizerFiles,
  type LlamaModelDir,
  type ModelDir,
  openModelDir,
  readTensor,
  requireLlamaDir,
  type TensorSource,
  type TensorValues,
  type WriteModelDirOptions,
} from './model-dir.js';
export {
  type Attribute,
  attr,
  type Dim,
  type ExternalLocation,
  GraphBuilder,
  type GraphDtype,
} from './onnx/graph.js';
export type {
  LlamaShardSpec,
  LocatedTensor,
  LocatedWeight,
  ShardAttention,
} from './onnx/llama-shard-graph.js';
export { MASKED_BIAS, SHARD_IO, shardBiasInputs } from './onnx/shard-io.js';
export {
  type ImportOnnxOptions,
  importOnnxDecoder,
  type OnnxDecoderModelDir,
} from './onnx-decoder/import.js';
export type { ProgressEvent, ProgressFn } from './progress.js';
export { keptLayers, type PruneModelOptions, pruneModel } from './prune/prune-model.js';
export {
  DEFAULT_LLAMA2C_URL,
  LLAMA2C_CATALOG,
  type Llama2cCatalogEntry,
  type PullTarget,
} from './pull/catalog.js';
export {
  DEFAULT_DOWNLOAD_RETRIES,
  type DownloadedFile,
  type DownloadOptions,
  type ExpectedFile,
} from './pull/download.js';
export { DEFAULT_HF_ENDPOINT, type HubFile, type HubRepo } from './pull/hub.js';
export { type PullOptions, type PullResult, pullModel } from './pull/pull.js';
export {
  DEFAULT_QUANT_BLOCK_SIZE,
  QUANT_METHOD,
  type QuantBits,
  type QuantizedLayout,
  type QuantizedMatrix,
  quantizeBlockwise,
  quantizedLayout,
} from './quant/block-quant.js';
export {
  type ModelVariant,
  VariantBuilder,
  type VariantBuilderOptions,
} from './quant/model-variant.js';
export {
  DEFAULT_QUANT_ACTIVATIONS,
  layerPrecisions,
  type QuantizeModelOptions,
  quantizeModel,
} from './quant/quantize-model.js';
export {
  buildShard,
  evenRanges,
  type LayerRange,
  type LlamaShardGraph,
  type LlamaShardManifest,
  type OnnxDecoderShardGraph,
  type OnnxDecoderShardManifest,
  SHARD_FORMAT_VERSION,
  SHARD_MANIFEST_FILE,
  type ShardBuildOptions,
  type ShardGraph,
  type ShardManifest,
  servedConfig,
} from './shard.js';
export {
  openShard,
  readShardManifest,
  type ShardWriteOptions,
  writeShard,
} from './shard-files.js';
export { StagingDir } from './staging-dir.js';
export {
  DEFAULT_HF_SYNTH_FILE_BYTES,
  hfSynthTensors,
  type SynthHfCheckpoint,
  type SynthHfOptions,
  synthesizeHfCheckpoint,
} from './synth/hf-checkpoint.js';
export { HF_SYNTH_SHAPES, type HfSynthShape, type HfSynthShapeName } from './synth/hf-shapes.js';
export {
  BENCH_PRESET,
  DEFAULT_PRESET,
  DEFAULT_SYNTH_SEED,
  SYNTH_PRESETS,
  type SynthPreset,
  type SynthPresetName,
} from './synth/presets.js';
export { mulberry32 } from './synth/random.js';
export { type SynthOptions, synthesizeModel } from './synth/synthesize.js';
export { synthVocab } from './synth/vocab.js';
export {
  apportion,
  DEFAULT_COLUMN_GRANULARITY,
  type IndexRange,
  splitTensors,
  type TensorSlice,
  type TensorSplitOptions,
  wholeSlice,
} from './tensor-slice.js';
export {
  openSliceShard,
  SLICE_SEGMENT_FILES,
  type SliceShardManifest,
  sliceShardId,
  writeSliceShard,
} from './tensor-slice-files.js';
export {
  buildGroupShards,
  buildSliceShard,
  checkSliceShard,
  type GroupShardOptions,
  type LayerSegments,
  type SliceShardOptions,
  type TensorSliceShard,
} from './tensor-slice-shard.js';
export { encodeChat, plainChatText } from './tokenizer/chat.js';
export {
  type ChatMessage,
  ChatTemplate,
  type ChatTemplateOptions,
} from './tokenizer/chat-template.js';
export { HfTokenizer, type HfTokenizerSettings } from './tokenizer/hf-tokenizer.js';
export {
  Llama2cTokenizer,
  type Llama2cVocab,
  serializeLlama2cVocab,
} from './tokenizer/llama2c-tokenizer.js';
export { loadTokenizer } from './tokenizer/load.js';
export { decodeIds, type TokenDecoder, type Tokenizer } from './tokenizer/tokenizer.js';
export {
  ACTIVATION_POLICIES,
  type ActivationPolicy,
  type SavedTensor,
  type TrainingStageGraphs,
  type TrainingStageSpec,
} from './train/stage-graphs.js';
export { TRAIN_IO } from './train/train-io.js';
export { checkTrainable } from './train/trainable.js';
export {
  buildTrainingShard,
  DEFAULT_ACTIVATION_POLICY,
  type TrainingShard,
  type TrainingShardOptions,
} from './train/training-shard.js';
