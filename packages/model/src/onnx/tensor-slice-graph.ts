/**
 * The ONNX graphs of one tensor-parallel member: each layer of its range as two
 * segments that end in a partial sum — attention (norm → its q/k/v → RoPE → attention
 * over its KV heads → its columns of the output projection) and feed-forward (norm → its
 * gate/up columns → SwiGLU → its rows of down) — whose sum over the group is what the
 * residual adds. The residual adds, and the all-reduces before them, are the engine's.
 * On the group's leader, an embedding segment (first stage) and a head segment (final
 * norm and LM head, last stage). The segments are `DecoderLayers`' blocks over a config
 * counting only the member's heads and columns; `locate` hands out the sliced weights.
 */
import type { KvDtype, LlamaConfig } from '@swarmbee/core';
import type { IndexRange } from '../tensor-slice.js';
import type { LocatedWeight } from './decoder-blocks.js';
import { DecoderLayers } from './decoder-layers.js';
import { GraphBuilder } from './graph.js';
import { SHARD_IO } from './shard-io.js';

export interface SliceSegmentSpec {
  /** The member's config: the model's, with heads and feed-forward width of its slice. */
  config: LlamaConfig;
  locate: (tensor: string) => LocatedWeight;
  kvDtype: KvDtype;
  producer: string;
  opset: number;
}

/** The model's config cut to `kvHeads` KV heads (and their query heads) and `columns` feed-forward columns. */
export function sliceConfig(
  config: LlamaConfig,
  kvHeads: IndexRange,
  columns: IndexRange,
): LlamaConfig {
  const group = config.nHeads / config.nKvHeads;
  const nKvHeads = kvHeads.end - kvHeads.start;
  return {
    ...config,
    headDim: config.headDim ?? config.dim / config.nHeads,
    nKvHeads,
    nHeads: nKvHeads * group,
    hiddenDim: columns.end - columns.start,
  };
}

/** Layer `layer`'s attention segment: `hidden_in`, positions, bias, its past → `partial`, its new KV. */
export function buildAttentionSegment(spec: SliceSegmentSpec, layer: number): Uint8Array {
  const g = new GraphBuilder(`tp_attention_${layer}`);
  const layers = segmentLayers(g, spec, layer, true);
  const partial = layers.attention(layer, layers.hiddenIn());
  return finish(g, spec, layers, partial, `attention of layer ${layer}, sliced`);
}

/** Layer `layer`'s feed-forward segment: `hidden_in` → `partial`. */
export function buildFeedForwardSegment(spec: SliceSegmentSpec, layer: number): Uint8Array {
  const g = new GraphBuilder(`tp_feed_forward_${layer}`);
  const layers = segmentLayers(g, spec, layer, false);
  const partial = layers.feedForward(layer, layers.hiddenIn());
  return finish(g, spec, layers, partial, `feed-forward of layer ${layer}, sliced`);
}

/** The leader's embedding: `input_ids` (and positions, for their shape) → `hidden_out`. */
export function buildEmbeddingSegment(spec: SliceSegmentSpec): Uint8Array {
  const g = new GraphBuilder('tp_embedding');
  const layers = segmentLayers(g, spec, 0, false);
  const x = layers.embed();
  g.output(layers.hidden3(x, SHARD_IO.hiddenOut), 'float32', ['batch', 'tokens', spec.config.dim]);
  return g.encode({ opset: spec.opset, producer: spec.producer, docString: 'token embedding' });
}

/** The leader's head: `hidden_in` and `logit_index` → `logits`. */
export function buildHeadSegment(spec: SliceSegmentSpec, headChunkBytes: number): Uint8Array {
  const g = new GraphBuilder('tp_head');
  const layers = segmentLayers(g, spec, 0, false);
  const { dim } = spec.config;
  const hidden = g.input(SHARD_IO.hiddenIn, 'float32', ['batch', 'tokens', dim]);
  layers.logits(hidden, headChunkBytes);
  return g.encode({
    opset: spec.opset,
    producer: spec.producer,
    docString: 'final norm and LM head',
  });
}

/**
 * A segment's layer blocks. Only attention segments take the bias of their layer's kind;
 * the others declare none (`layerStart` = `layerEnd` leaves them out), and every segment
 * takes `position_ids` (attention rotates by them; the rest read the batch shape off them).
 */
function segmentLayers(
  g: GraphBuilder,
  spec: SliceSegmentSpec,
  layer: number,
  attends: boolean,
): DecoderLayers {
  return new DecoderLayers(g, {
    config: spec.config,
    layerStart: layer,
    layerEnd: attends ? layer + 1 : layer,
    locate: spec.locate,
    kvDtype: spec.kvDtype,
    attention: 'decomposed',
  });
}

function finish(
  g: GraphBuilder,
  spec: SliceSegmentSpec,
  layers: DecoderLayers,
  partial: string,
  docString: string,
): Uint8Array {
  g.output(layers.hidden3(partial, SHARD_IO.partial), 'float32', [
    'batch',
    'tokens',
    spec.config.dim,
  ]);
  return g.encode({ opset: spec.opset, producer: spec.producer, docString });
}
