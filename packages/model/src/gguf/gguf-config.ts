/**
 * A GGUF's hyper-parameters (`<arch>.*` keys, as llama.cpp's `load_hparams` reads them)
 * to a {@link LlamaConfig}, per architecture, refusing with a coded error what the graph
 * builder cannot honour — naming the key or tensor and the value found.
 */
import { basename } from 'node:path';
import {
  GgufInvalidError,
  InvalidArgumentError,
  type LlamaConfig,
  ModelUnsupportedError,
  type RopeScaling,
} from '@swarmbee/core';
import type { GgufFile, GgufTensorInfo, GgufValue } from './gguf-file.js';

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
  gemma3: { ropeInterleaved: false, qkvBias: false, fusedQkv: false, fusedGateUp: false },
} as const;

export type GgufArchitecture = keyof typeof GGUF_ARCHITECTURES;

/** Architectures whose numerics the builder has today; the others are mapped and refused. */
const BUILT: readonly GgufArchitecture[] = ['llama', 'qwen2', 'phi3'];

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

/** Typed access to a file's metadata; every failure names the file and the key. */
export class GgufKeys {
  readonly name: string;
  constructor(readonly file: GgufFile) {
    this.name = basename(file.path);
  }

  has(key: string): boolean {
    return this.file.metadata.has(key);
  }

  raw(key: string): GgufValue | undefined {
    return this.file.metadata.get(key)?.value;
  }

  #invalid(key: string, what: string): never {
    const entry = this.file.metadata.get(key);
    throw new GgufInvalidError(
      `${this.name}: key ${key} is ${entry ? `${entry.type} ${preview(entry.value)}` : 'missing'}; expected ${what}`,
    );
  }

  /** A non-negative integer; `fallback` when absent (required when no fallback). */
  uint(key: string, fallback?: number): number {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    const n = typeof value === 'bigint' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      this.#invalid(key, 'a non-negative integer');
    return n;
  }

  /** A positive integer; a per-layer array is refused unless all its entries are equal. */
  positive(key: string, fallback?: number): number {
    const value = this.raw(key);
    if (Array.isArray(value)) {
      const distinct = [...new Set(value.map(Number))];
      if (distinct.length === 1 && distinct[0]! > 0) return distinct[0]!;
      throw new ModelUnsupportedError(
        `${this.name}: key ${key} varies per layer (${preview(value)}); the builder gives every layer the same shape`,
      );
    }
    const n = this.uint(key, fallback);
    if (n === 0) this.#invalid(key, 'a positive integer');
    return n;
  }

  number(key: string, fallback?: number): number {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value)) this.#invalid(key, 'a number');
    return value;
  }

  string(key: string, fallback?: string): string {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string') this.#invalid(key, 'a string');
    return value;
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.#invalid(key, 'a boolean');
    return value;
  }

  array(key: string): GgufValue[] | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) this.#invalid(key, 'an array');
    return value;
  }
}

/** A short rendering of a metadata value for messages. */
export function preview(value: GgufValue): string {
  if (Array.isArray(value))
    return `[${value.slice(0, 4).map(preview).join(', ')}${value.length > 4 ? `, … ${value.length} in all` : ''}]`;
  return typeof value === 'string'
    ? JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)
    : String(value);
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
    k('final_logit_softcapping'),
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
  if (window > 0 && window < contextLength)
    unsupported(
      `${k('attention.sliding_window')} ${window} is shorter than the context ${contextLength}: the builder attends to the whole context; ` +
        `import with a context of at most ${window} tokens (--context ${window})`,
    );
  refuseMissingNumerics(architecture, file, keys.name, k);

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
  return { architecture, config, layout, ...(ropeFreqs ? { ropeFreqs } : {}) };
}

/** What the architectures the builder lacks need, named so the refusal says what is missing. */
function refuseMissingNumerics(
  architecture: GgufArchitecture,
  file: GgufFile,
  name: string,
  k: (suffix: string) => string,
): void {
  if (BUILT.includes(architecture)) return;
  const missing: Record<Exclude<GgufArchitecture, 'llama' | 'qwen2' | 'phi3'>, string> = {
    qwen3:
      'its per-head q/k norms (blk.N.attn_q_norm / attn_k_norm) and head size (key_length) mapped onto the config as they are, ' +
      'which this importer has not been checked against a reference yet (the llama.cpp it is tested with predates Qwen3)',
    gemma3:
      "llama.cpp's own Gemma 3 conventions mapped and checked against it — norm weights stored with their +1, the √dim embedding scale, " +
      `the local RoPE base and window pattern of its sliding layers (${k('attention.sliding_window')}) — which this importer has not been checked against yet`,
  };
  throw new ModelUnsupportedError(
    `${name}: architecture ${architecture} needs ${missing[architecture as keyof typeof missing]}; ` +
      `the graph builder computes it (import it from Hugging Face safetensors), but a GGUF import is not proven to compute the same (${file.tensors.length} tensors)`,
  );
}
