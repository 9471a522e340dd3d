/**
 * Which decoders the training graphs implement: the Llama core (llama2.c, Llama, Mistral
 * without a sliding window shorter than the context, Qwen2 with its q/k/v biases), any
 * head size, and RoPE scaled by tables (linear, llama3, longrope). The blocks other
 * families add are refused by name until their backward passes exist.
 */
import { type LlamaConfig, layerWindow, ModelUnsupportedError } from '@swarmbee/core';

export function checkTrainable(config: LlamaConfig, name: string): void {
  const refuse = (what: string) => {
    throw new ModelUnsupportedError(
      `${name}: the training graphs do not implement ${what} yet; fine-tune a Llama, Mistral or Qwen2 model`,
    );
  };
  if (config.qkNorm) refuse('per-head query/key norms (qkNorm: Qwen3, Gemma 3)');
  if (config.postNorms) refuse('norms after attention and the MLP (postNorms: Gemma 3)');
  if ((config.activation ?? 'silu') !== 'silu') refuse(`the ${config.activation} MLP activation`);
  if ((config.embeddingScale ?? 1) !== 1) refuse('scaled token embeddings (embeddingScale: Gemma)');
  if (config.attentionScale !== undefined)
    refuse('an attention scale other than 1/√headDim (attentionScale)');
  if (config.finalLogitSoftcap !== undefined) refuse('logit soft-capping (finalLogitSoftcap)');
  if (config.localRope) refuse('a second RoPE for sliding-window layers (localRope)');
  for (let layer = 0; layer < config.nLayers; layer++)
    if (layerWindow(config, layer) !== undefined)
      refuse(`sliding-window attention (layer ${layer}: ${config.slidingWindow} positions)`);
  // transformers scales a whole training sequence by its length; the tables scale per position.
  if (config.ropeScaling?.type === 'dynamic') refuse('dynamic (NTK) RoPE scaling');
}
