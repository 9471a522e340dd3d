import {
  HfCheckpointInvalidError,
  type LayerAttention,
  ModelUnsupportedError,
} from '@swarmbee/core';

/** transformers' `layer_types`: one of `full_attention` / `sliding_attention` per layer. */
export function layerTypes(value: unknown, nLayers: number, where: string): LayerAttention[] {
  if (!Array.isArray(value) || value.length !== nLayers)
    throw new HfCheckpointInvalidError(
      `${where}: config.json layer_types must list ${nLayers} layer types, one per layer`,
    );
  return value.map((kind) => {
    if (kind === 'full_attention') return 'full';
    if (kind === 'sliding_attention') return 'sliding';
    throw new ModelUnsupportedError(
      `${where}: config.json layer_types has ${JSON.stringify(kind)}; SwarmBee builds full_attention and sliding_attention`,
    );
  });
}
