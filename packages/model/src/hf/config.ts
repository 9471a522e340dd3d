/**
 * Hugging Face `config.json` to a {@link LlamaConfig}, refusing what the graph
 * builder cannot honour — with the key and value found in the message, never a
 * silent approximation. Every key is accounted for: read (families.ts lists them
 * per architecture), known to leave the forward pass alone, or refused.
 */
import {
  HfCheckpointInvalidError,
  InvalidArgumentError,
  type LayerAttention,
  type LlamaConfig,
  ModelUnsupportedError,
  type RopeSpec,
} from '@swarmbee/core';
import {
  COMMON_KEYS,
  HF_FAMILIES,
  type HfArchitecture,
  type HfFamily,
  INERT_KEYS,
} from './families.js';
import { gemmaFields } from './gemma-config.js';
import { layerTypes } from './layer-types.js';
import { ropeFromParameters, ropeParameters } from './rope-config.js';

export { HF_FAMILIES as HF_ARCHITECTURES, type HfArchitecture } from './families.js';

export interface HfModelConfig {
  architecture: HfArchitecture;
  family: HfFamily;
  config: LlamaConfig;
  /** `bos_token_id` of config.json, when it names one. */
  bosTokenId?: number;
  /** `eos_token_id` of config.json (a number or a list). */
  eosTokenIds: number[];
}

export interface HfConfigOptions {
  /**
   * Context to record, in tokens. Default: `max_position_embeddings` (dynamic RoPE:
   * times its factor; longrope: `original_max_position_embeddings`, also its limit).
   */
  contextLength?: number;
}

type Json = Record<string, unknown>;

export function parseHfConfig(
  json: unknown,
  where: string,
  options: HfConfigOptions = {},
): HfModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new HfCheckpointInvalidError(`${where}: config.json is not a JSON object`);
  const c = json as Json;
  const architectures = Array.isArray(c.architectures) ? c.architectures : [];
  const name = architectures[0];
  if (typeof name !== 'string' || !(name in HF_FAMILIES)) {
    throw new ModelUnsupportedError(
      `${where}: architecture ${JSON.stringify(name ?? null)} (model_type ${JSON.stringify(c.model_type ?? null)}) ` +
        `is not one SwarmBee builds; it builds ${Object.keys(HF_FAMILIES).join(', ')}`,
    );
  }
  const architecture = name as HfArchitecture;
  const family: HfFamily = HF_FAMILIES[architecture];
  checkKeys(c, family, architecture, where);
  const unsupported = (what: string): never => {
    throw new ModelUnsupportedError(`${where}: config.json ${what}`);
  };
  const int = (key: string, fallback?: number | null): number => {
    const value = c[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
      throw new HfCheckpointInvalidError(
        `${where}: config.json ${key} is ${JSON.stringify(value ?? null)}, not a positive integer`,
      );
    return value;
  };
  const number = (key: string, fallback: number): number => {
    const value = c[key] ?? fallback;
    if (typeof value !== 'number' || !(value > 0))
      throw new HfCheckpointInvalidError(
        `${where}: config.json ${key} is ${JSON.stringify(value)}, not a positive number`,
      );
    return value;
  };
  const { defaults } = family;

  const dim = int('hidden_size');
  const nHeads = int('num_attention_heads');
  const nKvHeads = int('num_key_value_heads', defaults.kvHeads ?? nHeads);
  const maxPositions = int('max_position_embeddings');
  if (nHeads % nKvHeads !== 0)
    throw new HfCheckpointInvalidError(
      `${where}: num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`,
    );
  // Phi-3's modelling code derives the head size from the width whatever head_dim says.
  const hd = family.fused
    ? dim / nHeads
    : int('head_dim', defaults.headDim ?? (Number.isInteger(dim / nHeads) ? dim / nHeads : null));
  if (!Number.isInteger(hd))
    unsupported(`hidden_size ${dim} is not a multiple of num_attention_heads ${nHeads}`);
  if (hd % 2 !== 0) unsupported(`head size ${hd} is odd; RoPE needs pairs`);
  const act = family.gemma
    ? (c.hidden_activation ?? 'gelu_pytorch_tanh')
    : (c.hidden_act ?? 'silu');
  const expectedAct = family.gemma ? 'gelu_pytorch_tanh' : 'silu';
  if (act !== expectedAct)
    unsupported(
      `${family.gemma ? 'hidden_activation' : 'hidden_act'} ${JSON.stringify(act)}: the graph's feed-forward uses ${expectedAct}`,
    );
  if (c.attention_bias === true)
    unsupported(
      'attention_bias is true (biases on q, k, v and o projections); the graph has q/k/v biases only, as Qwen2 has them',
    );
  if (c.mlp_bias === true) unsupported('mlp_bias is true; the graph has no feed-forward biases');
  const partial = c.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1)
    unsupported(`partial_rotary_factor ${JSON.stringify(partial)}: the graph rotates whole heads`);

  const ropeContext = {
    where,
    maxPositions,
    pairs: hd / 2,
    phi3: family.fused === true,
    ...(family.fused || typeof c.original_max_position_embeddings === 'number'
      ? { originalContext: int('original_max_position_embeddings', 4096) }
      : {}),
  };
  const gemma = family.gemma
    ? gemmaFields(c, where, { dim, nLayers: int('num_hidden_layers'), ropeContext })
    : undefined;
  let rope: RopeSpec;
  if (gemma) rope = gemma.rope;
  else {
    const { params, key } = ropeParameters(c);
    rope = ropeFromParameters(params, number('rope_theta', defaults.ropeTheta), ropeContext, key);
  }
  const contextLength = resolveContext(
    options.contextLength,
    maxPositions,
    [rope, gemma?.localRope],
    where,
  );

  const config: LlamaConfig = {
    dim,
    hiddenDim: int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    vocabSize: int('vocab_size'),
    maxSeqLen: contextLength,
    normEps: number('rms_norm_eps', defaults.rmsNormEps),
    ropeTheta: rope.theta,
    sharedClassifier: (c.tie_word_embeddings ?? defaults.tied) === true,
  };
  if (hd !== dim / nHeads) config.headDim = hd;
  if (rope.scaling) config.ropeScaling = rope.scaling;
  if (family.qkvBias) config.qkvBias = true;
  if (family.qkNorm) config.qkNorm = true;
  if (gemma) Object.assign(config, gemma.fields);
  const window = slidingWindow(c, family, config.nLayers, where, gemma?.layerAttention);
  if (window) {
    config.slidingWindow = window.size;
    if (window.layers.some((kind) => kind === 'full')) config.layerAttention = window.layers;
  }
  const result: HfModelConfig = {
    architecture,
    family,
    config,
    eosTokenIds: tokenIds(c.eos_token_id),
  };
  const [bos] = tokenIds(c.bos_token_id);
  if (bos !== undefined) result.bosTokenId = bos;
  return result;
}

/** Refuses every key that is neither read by this family nor known to leave the forward pass alone. */
function checkKeys(c: Json, family: HfFamily, architecture: string, where: string): void {
  const known = new Set<string>([...COMMON_KEYS, ...INERT_KEYS, ...family.keys]);
  for (const key of Object.keys(c)) {
    if (known.has(key)) continue;
    throw new ModelUnsupportedError(
      `${where}: config.json has ${key} = ${JSON.stringify(c[key])}, which SwarmBee does not read for ${architecture}; ` +
        'it may change the computation (docs/MODELS.md lists every key read)',
    );
  }
}

/** The context to record: the option, within what the RoPE scaling allows. */
function resolveContext(
  asked: number | undefined,
  maxPositions: number,
  ropes: (RopeSpec | undefined)[],
  where: string,
): number {
  let limit = maxPositions;
  for (const rope of ropes) {
    const scaling = rope?.scaling;
    if (scaling?.type === 'dynamic') limit = Math.floor(maxPositions * scaling.factor);
    if (scaling?.type === 'longrope') {
      limit = Math.min(limit, scaling.originalContext);
      if (asked !== undefined && asked > scaling.originalContext)
        throw new ModelUnsupportedError(
          `${where}: config.json longrope long_factor: a context of ${asked} passes original_max_position_embeddings ${scaling.originalContext}, ` +
            'where transformers switches every position to the long factors and recomputes the whole cache; SwarmBee serves the short-factor range only ' +
            `(import with --context ${scaling.originalContext} or less)`,
        );
    }
  }
  const context = asked ?? limit;
  if (!Number.isSafeInteger(context) || context < 1 || context > limit)
    throw new InvalidArgumentError(
      `context ${context} must be a positive integer no larger than ${limit} (max_position_embeddings ${maxPositions}${limit === maxPositions ? '' : ' with its RoPE scaling'})`,
    );
  return context;
}

/** The sliding window in force and which layers use it; undefined when no layer does. */
function slidingWindow(
  c: Json,
  family: HfFamily,
  nLayers: number,
  where: string,
  gemmaLayers: LayerAttention[] | undefined,
): { size: number; layers: LayerAttention[] } | undefined {
  if (family.window === 'none') return undefined;
  if (family.window === 'qwen' && c.use_sliding_window !== true) return undefined;
  const size = c.sliding_window === undefined ? family.defaults.slidingWindow : c.sliding_window;
  if (size === null) return undefined;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1)
    throw new HfCheckpointInvalidError(
      `${where}: config.json sliding_window is ${JSON.stringify(size)}, not a positive integer`,
    );
  let layers: LayerAttention[] = Array.from({ length: nLayers }, () => 'sliding');
  if (gemmaLayers) layers = gemmaLayers;
  else if (family.window === 'qwen') {
    const given = c.layer_types;
    if (given !== undefined && given !== null) layers = layerTypes(given, nLayers, where);
    else {
      const from = typeof c.max_window_layers === 'number' ? c.max_window_layers : 28;
      layers = layers.map((_, l) => (l >= from ? 'sliding' : 'full'));
    }
  }
  return layers.includes('sliding') ? { size, layers } : undefined;
}

/** A token id field that may be a number, a list of numbers, or null. */
export function tokenIds(value: unknown): number[] {
  const list = Array.isArray(value) ? value : [value];
  return list.filter((v): v is number => Number.isSafeInteger(v) && (v as number) >= 0);
}
