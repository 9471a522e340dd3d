/**
 * The ggml tensor types SwarmBee decodes: their ids in GGUF files, and how many weights
 * one block holds in how many bytes (ggml's `ggml_type_traits`). Other ids are refused by
 * name (see {@link ggmlTypeName}).
 */
import type { GgmlTypeName } from '@swarmbee/core';

/** Weights per K-quant super-block (ggml's QK_K). */
export const QK_K = 256;

export interface GgmlTypeInfo {
  name: GgmlTypeName;
  id: number;
  /** Weights per block. */
  blockWeights: number;
  /** Bytes per block. */
  blockBytes: number;
}

const TYPES: GgmlTypeInfo[] = [
  { name: 'F32', id: 0, blockWeights: 1, blockBytes: 4 },
  { name: 'F16', id: 1, blockWeights: 1, blockBytes: 2 },
  { name: 'Q4_0', id: 2, blockWeights: 32, blockBytes: 2 + 16 },
  { name: 'Q4_1', id: 3, blockWeights: 32, blockBytes: 2 + 2 + 16 },
  { name: 'Q5_0', id: 6, blockWeights: 32, blockBytes: 2 + 4 + 16 },
  { name: 'Q5_1', id: 7, blockWeights: 32, blockBytes: 2 + 2 + 4 + 16 },
  { name: 'Q8_0', id: 8, blockWeights: 32, blockBytes: 2 + 32 },
  { name: 'Q2_K', id: 10, blockWeights: QK_K, blockBytes: QK_K / 16 + QK_K / 4 + 2 + 2 },
  { name: 'Q3_K', id: 11, blockWeights: QK_K, blockBytes: QK_K / 8 + QK_K / 4 + 12 + 2 },
  { name: 'Q4_K', id: 12, blockWeights: QK_K, blockBytes: 2 + 2 + 12 + QK_K / 2 },
  { name: 'Q5_K', id: 13, blockWeights: QK_K, blockBytes: 2 + 2 + 12 + QK_K / 8 + QK_K / 2 },
  { name: 'Q6_K', id: 14, blockWeights: QK_K, blockBytes: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2 },
  { name: 'Q8_K', id: 15, blockWeights: QK_K, blockBytes: 4 + QK_K + (QK_K / 16) * 2 },
  { name: 'BF16', id: 30, blockWeights: 1, blockBytes: 2 },
];

const BY_ID = new Map(TYPES.map((t) => [t.id, t]));
const BY_NAME = new Map(TYPES.map((t) => [t.name, t]));

/**
 * ggml's other types — known, sized, not decoded: a tensor of one of these is refused by
 * name, and its size still lets a file's layout be checked. [name, weights, bytes] per block.
 */
const UNDECODED: Record<number, [string, number, number]> = {
  9: ['Q8_1', 32, 36],
  16: ['IQ2_XXS', QK_K, 66],
  17: ['IQ2_XS', QK_K, 74],
  18: ['IQ3_XXS', QK_K, 98],
  19: ['IQ1_S', QK_K, 50],
  20: ['IQ4_NL', 32, 18],
  21: ['IQ3_S', QK_K, 110],
  22: ['IQ2_S', QK_K, 82],
  23: ['IQ4_XS', QK_K, 136],
  24: ['I8', 1, 1],
  25: ['I16', 1, 2],
  26: ['I32', 1, 4],
  27: ['I64', 1, 8],
  28: ['F64', 1, 8],
  29: ['IQ1_M', QK_K, 56],
  34: ['TQ1_0', QK_K, 54],
  35: ['TQ2_0', QK_K, 66],
};

/** The decoded type with this id, or undefined. */
export function ggmlType(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

export function ggmlTypeByName(name: GgmlTypeName): GgmlTypeInfo {
  return BY_NAME.get(name)!;
}

/** ggml's name for any type id (`type 99` for ids ggml does not have). */
export function ggmlTypeName(id: number): string {
  return BY_ID.get(id)?.name ?? UNDECODED[id]?.[0] ?? `type ${id}`;
}

/** Weights and bytes per block of any type ggml has, decoded or not; undefined for unknown ids. */
export function ggmlBlockLayout(
  id: number,
): { blockWeights: number; blockBytes: number } | undefined {
  const decoded = BY_ID.get(id);
  if (decoded) return decoded;
  const other = UNDECODED[id];
  return other ? { blockWeights: other[1], blockBytes: other[2] } : undefined;
}

/** Every type SwarmBee decodes. */
export const DECODED_GGML_TYPES: readonly GgmlTypeInfo[] = TYPES;
