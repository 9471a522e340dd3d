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
export * from './derived-model.js';
export * from './gguf/dequantize.js';
export * from './gguf/gemma3-config.js';
export * from './gguf/ggml-types.js';
export * from './gguf/gguf-config.js';
export * from './gguf/gguf-file.js';
export * from './gguf/gguf-keys.js';
export * from './gguf/gguf-tokenizer.js';
export * from './gguf/import.js';
export * from './gguf/nbits-mapping.js';
export * from './gguf/tensor-plan.js';
export * from './gguf/tensor-values.js';
export * from './hash.js';
export * from './hf/chat-template-files.js';
export * from './hf/checkpoint.js';
export * from './hf/config.js';
export * from './hf/import.js';
export * from './hf/safetensors.js';
export * from './hf/safetensors-writer.js';
export * from './hf/tokenizer-files.js';
export * from './llama-tensors.js';
export * from './llama2c/checkpoint.js';
export * from './llama2c/export.js';
export * from './llama2c/import.js';
export * from './lora/adapter.js';
export * from './lora/lora-spec.js';
export * from './lora/merge.js';
export * from './lora/peft-format.js';
export * from './model-cache.js';
export * from './model-dir.js';
export * from './onnx/graph.js';
export * from './onnx/llama-shard-graph.js';
export * from './onnx/rope.js';
export * from './onnx/shard-io.js';
export * from './onnx-decoder/detect.js';
export * from './onnx-decoder/import.js';
export * from './onnx-decoder/shard.js';
export * from './progress.js';
export * from './prune/prune-model.js';
export * from './pull/catalog.js';
export * from './pull/download.js';
export * from './pull/hub.js';
export * from './pull/pull.js';
export * from './quant/block-quant.js';
export * from './quant/matrix-ops.js';
export * from './quant/model-variant.js';
export * from './quant/quantize-model.js';
export * from './quant/stored-tensors.js';
export * from './quant/stored-weights.js';
export * from './shard.js';
export * from './staging-dir.js';
export * from './synth/presets.js';
export * from './synth/synthesize.js';
export * from './synth/vocab.js';
export * from './tokenizer/chat.js';
export * from './tokenizer/chat-template.js';
export * from './tokenizer/hf-tokenizer.js';
export * from './tokenizer/llama2c-tokenizer.js';
export * from './tokenizer/load.js';
export * from './tokenizer/tokenizer.js';
export * from './tokenizer/transformers-compat.js';
export * from './train/stage-graphs.js';
export * from './train/train-graph.js';
export * from './train/train-io.js';
export * from './train/trainable.js';
export * from './train/training-shard.js';
