/**
 * A GGUF's hyper-parameters (`<arch>.*` keys, as llama.cpp's `load_hparams` reads them)
 * to a {@link LlamaConfig}, per architecture, refusing with a coded error what the graph
 * builder cannot honour — naming the key or tensor and the value found.
 */
import {
  GgufInvalidError,
  InvalidArgumentError,
  type LlamaConfig,
  ModelUnsupportedError,
  type RopeScaling,
} from '@swarmbee/core';
import { gemma3Fields } from './gemma3-config.js';
import type { GgufFile, GgufTensorInfo } from './gguf-file.js';
import { GgufKeys, preview } from './gguf-keys.js';

/**
 * How each architecture's tensors sit in the file. `ropeInterleaved`: q/k rows are in
 * llama.cpp's "normal" RoPE layout (interleaved pairs, as Meta's and llama2.c's checkpoints)
 * and are permuted to the model dir's rotate-half layout on import; the others use NEOX
 * RoPE, which is rotate-half already.
 */
export const GGUF_ARCHITECTURES = {
  llama: { ropeInterleaved: true, qkvBias: false, fusedQkv: false, fusedGateUp: false },
  qwen2: { ropeInterleaved: false, qkvBias: true, fusedQkv: false, fusedGateUp: false },
  qwen3: {
    ropeInterleaved: false,
    qkvBias: false,
    fusedQkv: false,
    fusedGateUp: false,
    qkNorm: true,
  },
  phi3: { ropeInterleaved: false, qkvBias: false, fusedQkv: true, fusedGateUp: true },
  gemma3: {
    ropeInterleaved: false,
    qkvBias: false,
    fusedQkv: false,
    fusedGateUp: false,
    qkNorm: true,
  },
} as const;

export type GgufArchitecture = keyof typeof GGUF_ARCHITECTURES;

/**
 * The `<arch>.*` keys SwarmBee reads (the key without its `<arch>.` prefix); any other is
 * refused by name, since llama.cpp may compute with it. `expert_used_count` goes with
 * `expert_count` (refused when positive); `rope.scaling.original_context_length` matters
 * only to YaRN and LongRoPE, which are refused by their scaling type or tensors;
 * `rope.scaling.finetuned` and `tensor_data_layout` are bookkeeping llama.cpp does not compute with.
 */
const READ_KEYS = [
  'context_length',
  'embedding_length',
  'block_count',
  'feed_forward_length',
  'vocab_size',
  'attention.head_count',
  'attention.head_count_kv',
  'attention.key_length',
  'attention.value_length',
  'attention.layer_norm_rms_epsilon',
  'attention.sliding_window',
  'rope.dimension_count',
  'rope.freq_base',
  'rope.scaling.type',
  'rope.scaling.factor',
  'rope.scale_linear',
  'rope.scaling.original_context_length',
  'rope.scaling.finetuned',
  'tensor_data_layout',
  'expert_count',
  'expert_used_count',
];
/** Keys read for one architecture only (see gemma3-config.ts). */
const ARCH_KEYS: Partial<Record<GgufArchitecture, readonly string[]>> = {
  gemma3: ['final_logit_softcapping', 'rope.freq_base_swa'],
};

export interface GgufModelConfig {
  architecture: GgufArchitecture;
  config: LlamaConfig;
  layout: (typeof GGUF_ARCHITECTURES)[GgufArchitecture];
  /**
   * `rope_freqs.weight`: llama.cpp divides each RoPE frequency by its factor (how converters
   * store Llama 3.1's scaling). The importer reads it into `config.ropeScaling`.
   */
  ropeFreqs?: GgufTensorInfo;
}

export interface GgufConfigOptions {
  /**
   * Context to record, in tokens; default `<arch>.context_length`, at most that. A context no
   * longer than a sliding window lets a model with one import (within the window, sliding
   * attention is full attention).
   */
  contextLength?: number;
}

/** Refuses every `<arch>.*` key SwarmBee does not read, naming it and its value. */
function refuseUnreadKeys(keys: GgufKeys, architecture: GgufArchitecture): void {
  const read = new Set([...READ_KEYS, ...(ARCH_KEYS[architecture] ?? [])]);
  const prefix = `${architecture}.`;
  for (const [key, entry] of keys.file.metadata)
    if (key.startsWith(prefix) && !read.has(key.slice(prefix.length)))
      throw new ModelUnsupportedError(
        `${keys.name}: key ${key} = ${preview(entry.value)} is not one SwarmBee reads for ${architecture}; llama.cpp may compute with it (docs/MODELS.md lists the keys read)`,
      );
}

export function parseGgufConfig(file: GgufFile, options: GgufConfigOptions = {}): GgufModelConfig {
  const keys = new GgufKeys(file);
  const arch = keys.string('general.architecture');
  const unsupported = (what: string): never => {
    throw new ModelUnsupportedError(`${keys.name}: ${what}`);
  };
  if (!(arch in GGUF_ARCHITECTURES))
    unsupported(
      `general.architecture ${JSON.stringify(arch)} is not one SwarmBee imports; it imports ${Object.keys(GGUF_ARCHITECTURES).join(', ')}`,
    );
  const architecture = arch as GgufArchitecture;
  const layout = GGUF_ARCHITECTURES[architecture];
  const k = (suffix: string) => `${arch}.${suffix}`;

  const experts = keys.uint(k('expert_count'), 0);
  if (experts > 0)
    unsupported(
      `${k('expert_count')} is ${experts}: a mixture-of-experts model; the builder runs dense feed-forward layers only`,
    );
  const dim = keys.positive(k('embedding_length'));
  const nHeads = keys.positive(k('attention.head_count'));
  const nKvHeads = keys.positive(k('attention.head_count_kv'), nHeads);
  const nLayers = keys.positive(k('block_count'));
  const trained = keys.positive(k('context_length'));
  if (dim % nHeads !== 0)
    throw new GgufInvalidError(
      `${keys.name}: ${k('embedding_length')} ${dim} is not a multiple of ${k('attention.head_count')} ${nHeads}`,
    );
  if (nHeads % nKvHeads !== 0)
    throw new GgufInvalidError(
      `${keys.name}: ${k('attention.head_count')} ${nHeads} is not a multiple of ${k('attention.head_count_kv')} ${nKvHeads}`,
    );
  // llama.cpp's head size: key_length when given (Qwen3 sets it apart from the width).
  const headSize = keys.uint(k('attention.key_length'), dim / nHeads);
  const valueSize = keys.uint(k('attention.value_length'), headSize);
  if (valueSize !== headSize)
    unsupported(
      `${k('attention.value_length')} is ${valueSize}, not ${k('attention.key_length')} ${headSize}; the builder gives keys and values one head size`,
    );
  if (!Number.isInteger(headSize) || headSize === 0)
    throw new GgufInvalidError(
      `${keys.name}: the head size ${headSize} (${k('embedding_length')} / ${k('attention.head_count')}) is not a whole number`,
    );
  const rotated = keys.uint(k('rope.dimension_count'), headSize);
  if (rotated !== headSize)
    unsupported(
      `${k('rope.dimension_count')} is ${rotated} of a head of ${headSize}: partial RoPE; the builder rotates whole heads`,
    );
  if (headSize % 2 !== 0) unsupported(`head size ${headSize} is odd; RoPE needs pairs`);
  const scaling = keys.string(k('rope.scaling.type'), 'none');
  const factor = keys.number(k('rope.scaling.factor'), keys.number(k('rope.scale_linear'), 0));
  let ropeScaling: RopeScaling | undefined;
  if (scaling === 'linear' && factor > 0 && factor !== 1) ropeScaling = { type: 'linear', factor };
  else if (scaling !== 'none' && scaling !== 'linear')
    unsupported(
      `${k('rope.scaling.type')} is ${JSON.stringify(scaling)} (factor ${factor}); SwarmBee reads linear scaling and rope_freqs factors`,
    );
  const ropeFreqs = file.tensors.find((t) => t.name === 'rope_freqs.weight');
  if (ropeFreqs && ropeScaling)
    unsupported(
      `both ${k('rope.scaling.type')} linear and tensor rope_freqs.weight are set; llama.cpp applies both, the builder one`,
    );
  if (
    ropeFreqs &&
    (ropeFreqs.ne.length !== 1 || ropeFreqs.ne[0] !== headSize / 2 || ropeFreqs.typeId !== 0)
  )
    throw new GgufInvalidError(
      `${keys.name}: tensor rope_freqs.weight is [${ropeFreqs.ne.join(', ')}] of type id ${ropeFreqs.typeId}; expected ${headSize / 2} F32 factors, one per frequency`,
    );
  for (const key of [
    k('attn_logit_softcapping'),
    ...(architecture === 'gemma3' ? [] : [k('final_logit_softcapping')]),
    k('logit_scale'),
    k('embedding_scale'),
    k('residual_scale'),
  ])
    if (keys.has(key))
      unsupported(`${key} is ${preview(keys.raw(key)!)}; the builder has no such scaling`);
  if (
    !keys.has(k('attention.layer_norm_rms_epsilon')) &&
    keys.has(k('attention.layer_norm_epsilon'))
  )
    unsupported(
      `${k('attention.layer_norm_epsilon')} is set: LayerNorm; the builder normalises with RMSNorm`,
    );
  refuseUnreadKeys(keys, architecture);
  const normEps = keys.number(k('attention.layer_norm_rms_epsilon'));
  if (!(normEps > 0))
    throw new GgufInvalidError(
      `${keys.name}: ${k('attention.layer_norm_rms_epsilon')} is ${normEps}, not positive`,
    );
  const ropeTheta = keys.number(k('rope.freq_base'), 10_000);
  if (!(ropeTheta > 0))
    throw new GgufInvalidError(
      `${keys.name}: ${k('rope.freq_base')} is ${ropeTheta}, not positive`,
    );

  const contextLength = options.contextLength ?? trained;
  if (!Number.isSafeInteger(contextLength) || contextLength < 1 || contextLength > trained)
    throw new InvalidArgumentError(
      `context ${contextLength} must be a positive integer no larger than ${k('context_length')} ${trained}`,
    );
  const window = keys.uint(k('attention.sliding_window'), 0);
  if (architecture !== 'gemma3' && window > 0 && window < contextLength)
    unsupported(
      `${k('attention.sliding_window')} ${window} is shorter than the context ${contextLength}: the builder attends to the whole context; ` +
        `import with a context of at most ${window} tokens (--context ${window})`,
    );
  const vocab = keys.array('tokenizer.ggml.tokens')?.length ?? keys.positive(k('vocab_size'));
  const config: LlamaConfig = {
    dim,
    hiddenDim: keys.positive(k('feed_forward_length')),
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: vocab,
    maxSeqLen: contextLength,
    normEps,
    ropeTheta,
    // Decided from the tensors: tied when there is no output.weight (or it equals the embedding).
    sharedClassifier: false,
  };
  if (layout.qkvBias) config.qkvBias = true;
  if ('qkNorm' in layout) config.qkNorm = true;
  if (headSize !== dim / nHeads) config.headDim = headSize;
  if (ropeScaling) config.ropeScaling = ropeScaling;
  if (architecture === 'gemma3')
    Object.assign(config, gemma3Fields(keys, { dim, nHeads, nLayers, headSize }));
  return { architecture, config, layout, ...(ropeFreqs ? { ropeFreqs } : {}) };
}
