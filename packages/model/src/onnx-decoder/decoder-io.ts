/**
 * Recognises a decoder export's inputs and outputs: token ids, positions, the
 * attention mask, the logits, and one past input / present output per layer.
 * Exporters name the KV IO differently; the namings below are the ones known.
 */
import {
  type DecoderFloatDtype,
  type DecoderIndexDtype,
  OnnxGraphUnsupportedError,
  type OnnxIoTensor,
  type OnnxKvLayout,
  OnnxLayersNotFoundError,
} from '@swarmbee/core';
import type { GraphIndex } from './graph-index.js';
import { onnx, valueType } from './proto.js';

interface KvNaming {
  /** How the naming reads in documentation and errors. */
  label: string;
  kind: OnnxKvLayout['kind'];
  past: RegExp;
  present: RegExp;
}

/** KV IO namings, by exporter. `layer` and (for separate caches) `part` are the regexes' groups. */
export const KV_NAMINGS: readonly KvNaming[] = [
  {
    label: 'past_L -> present_L, K and V stacked (onnxruntime GPT-2 tooling)',
    kind: 'stacked',
    past: /^past_(?<layer>\d+)$/,
    present: /^present_(?<layer>\d+)$/,
  },
  {
    label:
      'past_key_values.L.key/value -> present.L.key/value (Hugging Face Optimum, onnxruntime-genai)',
    kind: 'separate',
    past: /^past_key_values\.(?<layer>\d+)\.(?<part>key|value)$/,
    present: /^present\.(?<layer>\d+)\.(?<part>key|value)$/,
  },
  {
    label:
      'past_key_L/past_value_L -> present_key_L/present_value_L (onnxruntime LLaMA conversion)',
    kind: 'separate',
    past: /^past_(?<part>key|value)_(?<layer>\d+)$/,
    present: /^present_(?<part>key|value)_(?<layer>\d+)$/,
  },
];

export const INPUT_IDS = 'input_ids';
export const POSITION_IDS = 'position_ids';
export const ATTENTION_MASK = 'attention_mask';

export interface DecoderIo {
  inputIds: OnnxIoTensor;
  positionIds: OnnxIoTensor;
  attentionMask: OnnxIoTensor;
  logits: string;
  kv: OnnxKvLayout;
  naming: string;
}

const { DataType } = onnx.TensorProto;

export function recognizeDecoderIo(index: GraphIndex): DecoderIo {
  const names = [...index.inputs.keys()];
  const naming = KV_NAMINGS.find((n) => names.some((name) => n.past.test(name)));
  if (!naming) {
    throw new OnnxLayersNotFoundError(
      `no per-layer past inputs found among the graph inputs (${names.join(', ')}); looked for ${KV_NAMINGS.map((n) => n.label).join('; ')}`,
    );
  }
  const indexInput = (name: string, why: string): OnnxIoTensor => {
    const info = index.inputs.get(name);
    if (!info) throw new OnnxGraphUnsupportedError(`the graph has no ${name} input: ${why}`);
    const { elemType } = valueType(info);
    const dtype: DecoderIndexDtype | undefined =
      elemType === DataType.INT64 ? 'int64' : elemType === DataType.INT32 ? 'int32' : undefined;
    if (!dtype) throw new OnnxGraphUnsupportedError(`input ${name} is not int32 or int64`);
    return { name, dtype };
  };
  const inputIds = indexInput(INPUT_IDS, 'SwarmBee feeds token ids by that name');
  const positionIds = indexInput(
    POSITION_IDS,
    'without it the graph derives positions from the cache width, which SwarmBee pads; re-export with position_ids',
  );
  const attentionMask = indexInput(
    ATTENTION_MASK,
    'SwarmBee masks padded cache slots and batch rows through it',
  );
  const known = new Set([INPUT_IDS, POSITION_IDS, ATTENTION_MASK]);
  const others = names.filter((n) => !known.has(n) && !naming.past.test(n));
  if (others.length > 0)
    throw new OnnxGraphUnsupportedError(
      `the graph has inputs SwarmBee cannot feed: ${others.join(', ')}`,
    );

  const kv = kvLayout(index, naming);
  const outputs = [...index.outputs.keys()].filter((n) => !naming.present.test(n));
  const logits = outputs.includes('logits')
    ? 'logits'
    : outputs.length === 1
      ? outputs[0]
      : undefined;
  if (!logits) {
    throw new OnnxLayersNotFoundError(
      `cannot tell the logits among the outputs ${outputs.join(', ')}: expected one named logits`,
    );
  }
  return { inputIds, positionIds, attentionMask, logits, kv, naming: naming.label };
}

function kvLayout(index: GraphIndex, naming: KvNaming): OnnxKvLayout {
  const partsPerLayer = naming.kind === 'stacked' ? 1 : 2;
  const collect = (names: Iterable<string>, pattern: RegExp, what: string): string[][] => {
    const layers: string[][] = [];
    for (const name of names) {
      const groups = pattern.exec(name)?.groups;
      if (!groups) continue;
      const layer = Number(groups.layer);
      const part = groups.part === 'value' ? 1 : 0;
      layers[layer] ??= [];
      layers[layer]![part] = name;
    }
    for (let l = 0; l < layers.length; l++) {
      const found = layers[l]?.filter(Boolean).length ?? 0;
      if (found !== partsPerLayer) {
        throw new OnnxLayersNotFoundError(
          `the ${what} of layer ${l} are incomplete (${naming.label}): found ${found} of ${partsPerLayer}`,
        );
      }
    }
    return layers;
  };
  const past = collect(index.inputs.keys(), naming.past, 'past inputs');
  const present = collect(index.outputs.keys(), naming.present, 'present outputs');
  if (present.length !== past.length) {
    throw new OnnxLayersNotFoundError(
      `${past.length} layers have past inputs but ${present.length} have present outputs (${naming.label})`,
    );
  }
  const first = valueType(index.inputs.get(past[0]![0]!)!);
  const rank = naming.kind === 'stacked' ? 5 : 4;
  const [headsAxis, dimAxis] = naming.kind === 'stacked' ? [2, 4] : [1, 3];
  const kvHeads = first.dims[headsAxis];
  const headDim = first.dims[dimAxis];
  if (
    first.dims.length !== rank ||
    (naming.kind === 'stacked' && first.dims[0] !== 2) ||
    typeof kvHeads !== 'number' ||
    typeof headDim !== 'number'
  ) {
    throw new OnnxGraphUnsupportedError(
      `past input ${past[0]![0]} has dims [${first.dims.join(', ')}]; expected ${
        naming.kind === 'stacked'
          ? '[2, batch, heads, past, headDim]'
          : '[batch, heads, past, headDim]'
      } with the heads and head size as numbers`,
    );
  }
  const dtype: DecoderFloatDtype | undefined =
    first.elemType === DataType.FLOAT
      ? 'float32'
      : first.elemType === DataType.FLOAT16
        ? 'float16'
        : undefined;
  if (!dtype)
    throw new OnnxGraphUnsupportedError(`past input ${past[0]![0]} is not float32 or float16`);
  for (const name of [...past.flat(), ...present.flat()]) {
    const info = index.inputs.get(name) ?? index.outputs.get(name)!;
    const t = valueType(info);
    // Exports do not always declare the presents' shapes; when they do, they must agree.
    const shapeDiffers =
      t.dims.length > 0 && (t.dims[headsAxis] !== kvHeads || t.dims[dimAxis] !== headDim);
    if (t.elemType !== first.elemType || shapeDiffers) {
      throw new OnnxGraphUnsupportedError(
        `${name} differs from ${past[0]![0]} in element type or heads; SwarmBee needs every layer's cache alike`,
      );
    }
  }
  return { kind: naming.kind, dtype, kvHeads, headDim, past, present };
}
