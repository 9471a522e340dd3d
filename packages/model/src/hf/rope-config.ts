/**
 * RoPE settings of a Hugging Face config, read from either layout transformers
 * accepts — the older `rope_theta` + `rope_scaling`, or the current
 * `rope_parameters` with `rope_theta` inside it (nested by layer type for Gemma 3) —
 * the way transformers 5's `RotaryEmbeddingConfigMixin` standardises them. A RoPE
 * type or parameter the graph does not implement is refused, naming the key.
 */
import { ModelUnsupportedError, type RopeScaling, type RopeSpec } from '@swarmbee/core';

type Json = Record<string, unknown>;

export interface RopeContext {
  where: string;
  maxPositions: number;
  /** Frequencies per head: headDim / 2. */
  pairs: number;
  /** Top-level `original_max_position_embeddings` (Phi-3 always has one: default 4096). */
  originalContext?: number;
  /** Phi-3 reads `su` and `yarn` as `longrope`. */
  phi3: boolean;
}

/** The RoPE of one layer kind from its parameter dict (`rope_parameters`, one nested entry, or `rope_scaling`). */
export function ropeFromParameters(
  params: Json | null | undefined,
  fallbackTheta: number,
  context: RopeContext,
  key: string,
): RopeSpec {
  const { where } = context;
  const refuse = (what: string): never => {
    throw new ModelUnsupportedError(`${where}: config.json ${key}: ${what}`);
  };
  const p = params ?? {};
  let type = p.rope_type ?? p.type ?? 'default';
  if (context.phi3 && (type === 'su' || type === 'yarn')) type = 'longrope';
  const theta = p.rope_theta ?? fallbackTheta;
  if (typeof theta !== 'number' || !(theta > 0))
    refuse(`rope_theta ${JSON.stringify(theta)} is not a positive number`);
  const partial = p.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1)
    refuse(`partial_rotary_factor ${JSON.stringify(partial)}: the graph rotates whole heads`);
  const known = new Set(['rope_type', 'type', 'rope_theta', 'partial_rotary_factor']);
  const number = (name: string, fallback?: number): number => {
    known.add(name);
    const value = p[name] ?? fallback;
    if (typeof value !== 'number' || !(value > 0))
      refuse(`${name} is ${JSON.stringify(value ?? null)}, not a positive number`);
    return value as number;
  };
  const factors = (name: string): number[] => {
    known.add(name);
    const value = p[name];
    if (
      !Array.isArray(value) ||
      value.length !== context.pairs ||
      !value.every((v) => typeof v === 'number' && v > 0)
    )
      refuse(`${name} must list ${context.pairs} positive numbers (one per frequency)`);
    return value as number[];
  };
  const original = () =>
    context.originalContext ?? number('original_max_position_embeddings', context.maxPositions);

  let scaling: RopeScaling | undefined;
  switch (type) {
    case 'default':
      break;
    case 'linear':
      scaling = { type: 'linear', factor: number('factor') };
      break;
    case 'dynamic':
      scaling = {
        type: 'dynamic',
        factor: number('factor'),
        originalContext: context.maxPositions,
      };
      break;
    case 'llama3':
      scaling = {
        type: 'llama3',
        factor: number('factor'),
        lowFreqFactor: number('low_freq_factor'),
        highFreqFactor: number('high_freq_factor'),
        originalContext: original(),
      };
      if (scaling.lowFreqFactor >= scaling.highFreqFactor)
        refuse('low_freq_factor must be below high_freq_factor');
      break;
    case 'longrope': {
      known.add('original_max_position_embeddings');
      const originalContext = original();
      const factor = p.factor === undefined || p.factor === null ? undefined : number('factor');
      known.add('factor');
      const stretch = factor ?? context.maxPositions / originalContext;
      const given = p.attention_factor;
      known.add('attention_factor');
      const attentionFactor =
        typeof given === 'number'
          ? given
          : stretch <= 1
            ? 1
            : Math.sqrt(1 + Math.log(stretch) / Math.log(originalContext));
      scaling = {
        type: 'longrope',
        shortFactor: factors('short_factor'),
        longFactor: factors('long_factor'),
        originalContext,
        attentionFactor,
      };
      break;
    }
    default:
      refuse(
        `RoPE type ${JSON.stringify(type)} is not implemented (SwarmBee builds default, linear, dynamic, llama3 and longrope)`,
      );
  }
  for (const name of Object.keys(p))
    if (!known.has(name) && p[name] !== null)
      refuse(`${name} is not a parameter of RoPE type ${JSON.stringify(type)} that SwarmBee reads`);
  return scaling ? { theta: theta as number, scaling } : { theta: theta as number };
}

/** The RoPE dict of the config, from whichever layout it uses: `rope_parameters` wins, as in transformers. */
export function ropeParameters(c: Json): { params: Json | null; key: string } {
  const current = c.rope_parameters;
  if (current !== undefined && current !== null)
    return { params: asObject(current), key: 'rope_parameters' };
  const older = c.rope_scaling;
  if (older !== undefined && older !== null)
    return { params: asObject(older), key: 'rope_scaling' };
  return { params: null, key: 'rope_theta' };
}

function asObject(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Json)
    : { rope_type: JSON.stringify(value) };
}
