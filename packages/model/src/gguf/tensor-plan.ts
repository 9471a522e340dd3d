/**
 * Which GGUF tensors make each model-dir tensor, and what each becomes. Names follow
 * llama.cpp's (`token_embd`, `blk.N.attn_q`, …). Every tensor of the file is accounted for:
 * one the model dir has no place for (a bias the builder lacks, a norm of a layer kind it
 * does not build) is refused by name rather than dropped.
 */
import { basename } from 'node:path';
import {
  type GgmlTypeName,
  GgufInvalidError,
  headDim,
  type LlamaConfig,
  ModelUnsupportedError,
} from '@swarmbee/core';
import {
  CLASSIFIER,
  FINAL_NORM,
  layerTensor,
  llamaTensorSpecs,
  type TensorSpec,
  TOKEN_EMBEDDING,
} from '../llama-tensors.js';
import type { QuantBits } from '../quant/block-quant.js';
import type { GgufModelConfig } from './gguf-config.js';
import { decodedType, type GgufFile, type GgufTensorInfo } from './gguf-file.js';
import { losslessFormat } from './nbits-mapping.js';

/** What tensors that cannot be mapped without loss become: int8 or int4 codes, or fp32 values. */
export type GgufRequantizeTarget = 'int8' | 'int4' | 'fp32';

export const DEFAULT_GGUF_REQUANTIZE: GgufRequantizeTarget = 'int8';

/** Block size re-quantized tensors get: SwarmBee's and llama.cpp's usual 32 … */
const REQUANT_BLOCK = 32;
/** … except for types whose own sub-blocks are 16 weights, which keep that resolution. */
const SUB_BLOCK_16: readonly GgmlTypeName[] = ['Q2_K', 'Q3_K', 'Q6_K'];

/** One GGUF tensor feeding a model-dir tensor, with the rows it contributes. */
export interface GgufPart {
  tensor: GgufTensorInfo;
  type: GgmlTypeName;
  rows: number;
  cols: number;
  /** q and k of llama.cpp's interleaved-RoPE architectures: rows are permuted to rotate-half. */
  permuteHeads?: number;
}

/** How a model-dir tensor is stored. */
export type StoredFormat =
  | { kind: 'fp32' }
  | { kind: 'quantized'; bits: QuantBits; blockSize: number };

export interface PlannedTensor {
  spec: TensorSpec;
  parts: GgufPart[];
  format: StoredFormat;
}

export interface GgufTensorPlan {
  tensors: PlannedTensor[];
  /**
   * Whether the LM head is the fp32 token embedding itself. A head that is the embedding in
   * the file (no `output.weight`, or one holding the same bytes) is tied when it is stored
   * fp32; a quantized one becomes a quantized head of its own, so the last stage multiplies
   * by the codes llama.cpp multiplies by instead of holding a fp32 copy.
   */
  tied: boolean;
}

/** GGUF names of a layer's tensors. */
const blk = (layer: number, name: string) => `blk.${layer}.${name}`;

/** The GGUF tensors each canonical tensor is made of, in row order. */
function sourceNames(
  model: GgufModelConfig,
  spec: TensorSpec,
  head: string,
  has: (name: string) => boolean,
): string[] {
  const { fusedGateUp } = model.layout;
  // phi3 files hold q, k and v fused (attn_qkv) or, from some converters, apart.
  const fusedQkv = model.layout.fusedQkv && has(blk(spec.part as number, 'attn_qkv.weight'));
  if (spec.name === TOKEN_EMBEDDING) return ['token_embd.weight'];
  if (spec.name === FINAL_NORM) return ['output_norm.weight'];
  if (spec.name === CLASSIFIER) return [head];
  const layer = spec.part as number;
  const of = (name: string) => [blk(layer, name)];
  switch (spec.name) {
    case layerTensor.attnNorm(layer):
      return of('attn_norm.weight');
    case layerTensor.wqkv(layer):
      return fusedQkv
        ? of('attn_qkv.weight')
        : ['attn_q', 'attn_k', 'attn_v'].map((p) => blk(layer, `${p}.weight`));
    case layerTensor.bqkv(layer):
      return ['attn_q', 'attn_k', 'attn_v'].map((p) => blk(layer, `${p}.bias`));
    case layerTensor.qNorm(layer):
      return of('attn_q_norm.weight');
    case layerTensor.kNorm(layer):
      return of('attn_k_norm.weight');
    case layerTensor.wo(layer):
      return of('attn_output.weight');
    case layerTensor.attnPostNorm(layer):
      return of('post_attention_norm.weight');
    case layerTensor.ffnNorm(layer):
      return of('ffn_norm.weight');
    case layerTensor.ffnPostNorm(layer):
      return of('post_ffw_norm.weight');
    case layerTensor.w13(layer):
      return fusedGateUp
        ? of('ffn_up.weight')
        : [blk(layer, 'ffn_gate.weight'), blk(layer, 'ffn_up.weight')];
    case layerTensor.w2(layer):
      return of('ffn_down.weight');
  }
  throw new Error(`internal: no GGUF source for ${spec.name}`);
}

/** Row counts of each source of a canonical tensor, in order. */
function sourceRows(config: LlamaConfig, spec: TensorSpec, count: number): number[] {
  const rows = spec.shape[0]!;
  if (count === 1) return [rows];
  const hd = headDim(config);
  if (spec.name.endsWith('.wqkv') || spec.name.endsWith('.bqkv'))
    return [config.nHeads * hd, config.nKvHeads * hd, config.nKvHeads * hd];
  return [config.hiddenDim, config.hiddenDim];
}

/** Linear weights: what may be stored quantized (norms, biases and the embedding stay fp32). */
function isMatrix(spec: TensorSpec): boolean {
  return /\.(wqkv|wo|w13|w2)$/.test(spec.name) || spec.name === CLASSIFIER;
}

export function planGgufTensors(
  file: GgufFile,
  model: GgufModelConfig,
  options: {
    requantize: GgufRequantizeTarget;
    /** The file has no `output.weight`, or one with the embedding's type and bytes. */
    headIsEmbedding: boolean;
  },
): GgufTensorPlan {
  const name = basename(file.path);
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const head = options.headIsEmbedding ? 'token_embd.weight' : 'output.weight';
  const embedding = byName.get('token_embd.weight');
  const tied =
    options.headIsEmbedding &&
    embedding !== undefined &&
    matrixFormat([{ type: decodedType(file, embedding).name }], options.requantize).kind === 'fp32';
  const config: LlamaConfig = { ...model.config, sharedClassifier: tied };
  const used = new Set<string>();
  if (options.headIsEmbedding && byName.has('output.weight')) used.add('output.weight');
  // Read into the config's RoPE scaling, not stored (see parseGgufConfig).
  if (model.ropeFreqs) used.add(model.ropeFreqs.name);
  const tensors = llamaTensorSpecs(config).map((spec): PlannedTensor => {
    const names = sourceNames(model, spec, head, (n) => byName.has(n));
    const rows = sourceRows(config, spec, names.length);
    const cols = spec.shape.length === 2 ? spec.shape[1]! : 1;
    const parts = names.map((source, i): GgufPart => {
      const tensor = byName.get(source);
      if (!tensor)
        throw new GgufInvalidError(
          `${name}: tensor ${source} is missing; a ${model.architecture} model needs it for ${spec.name}`,
        );
      used.add(source);
      const want = spec.shape.length === 2 ? [cols, rows[i]!] : [rows[i]!];
      if (tensor.ne.length !== want.length || tensor.ne.some((n, d) => n !== want[d]))
        throw new GgufInvalidError(
          `${name}: tensor ${source} is [${tensor.ne.join(', ')}] (ggml order, columns first); the model's hyper-parameters make it [${want.join(', ')}]`,
        );
      const part: GgufPart = { tensor, type: decodedType(file, tensor).name, rows: rows[i]!, cols };
      const isQk = spec.name.endsWith('.wqkv') && i < 2 && names.length === 3;
      if (model.layout.ropeInterleaved && isQk)
        part.permuteHeads = i === 0 ? config.nHeads : config.nKvHeads;
      return part;
    });
    return {
      spec,
      parts,
      format: isMatrix(spec) ? matrixFormat(parts, options.requantize) : { kind: 'fp32' },
    };
  });
  const unused = file.tensors.filter((t) => !used.has(t.name)).map((t) => t.name);
  if (unused.length > 0)
    throw new ModelUnsupportedError(
      `${name}: tensor${unused.length > 1 ? 's' : ''} ${unused.slice(0, 6).join(', ')}${unused.length > 6 ? `, … (${unused.length} in all)` : ''} ` +
        `ha${unused.length > 1 ? 've' : 's'} no place in the ${model.architecture} graph SwarmBee builds (a bias, norm or projection it lacks)`,
    );
  return { tensors, tied };
}

/**
 * The stored format of a linear weight: fp32 when any part is float (or re-quantization is
 * declined); otherwise the widest codes and smallest blocks its parts need, so that every
 * losslessly mapped part stays lossless when the parts are fused.
 */
function matrixFormat(
  parts: Pick<GgufPart, 'type'>[],
  requantize: GgufRequantizeTarget,
): StoredFormat {
  const formats = parts.map((p) => {
    if (p.type === 'F32' || p.type === 'F16' || p.type === 'BF16') return undefined;
    const lossless = losslessFormat(p.type);
    if (lossless) return lossless;
    if (requantize === 'fp32') return undefined;
    return {
      bits: (requantize === 'int4' ? 4 : 8) as QuantBits,
      blockSize: SUB_BLOCK_16.includes(p.type) ? 16 : REQUANT_BLOCK,
    };
  });
  if (formats.some((f) => f === undefined)) return { kind: 'fp32' };
  const defined = formats as { bits: QuantBits; blockSize: number }[];
  return {
    kind: 'quantized',
    bits: defined.some((f) => f.bits === 8) ? 8 : 4,
    blockSize: Math.min(...defined.map((f) => f.blockSize)),
  };
}
