/**
 * stories260K's weights as GGUFs of other architectures, laid out as llama.cpp's converters
 * lay those out: `qwen2` (NEOX RoPE, so q/k rows in rotate-half order; seeded q/k/v biases),
 * `phi3` (NEOX RoPE; q, k, v fused in
 * `attn_qkv`, gate and up fused in `ffn_up`; a sliding window as long as the context), and
 * `ropefreqs` (llama with a `rope_freqs.weight` of per-frequency divisors, as converters store
 * Llama 3.1's RoPE scaling). llama.cpp's greedy ids for them are in
 * test/fixtures/gguf/arch-reference.json (make_arch_reference.py runs this file to write them).
 *
 *   node --import=tsx --conditions=swarmbee:source test/helpers/gguf-arch-variants.ts OUT_DIR
 */

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SHARED_GGUF } from './gguf-fixtures.js';
import { type GgufLayout, type GgufTensorData, readGgufLayout, writeGguf } from './gguf-writer.js';

/** The variants llama.cpp c392e509 runs (it predates Qwen3), with greedy ids in arch-reference.json. */
export const ARCH_VARIANTS = ['qwen2', 'phi3', 'ropefreqs'] as const;
export type ArchVariant = (typeof ARCH_VARIANTS)[number];

const F32 = 0;
const HEADS = 8;
const KV_HEADS = 4;

const f32 = (data: Uint8Array) =>
  new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
const bytes = (values: Float32Array) => new Uint8Array(values.buffer);

/** llama.cpp's interleaved RoPE rows of each head (2j, 2j+1) to NEOX's halves (j, j + hd/2). */
function toNeox(tensor: GgufTensorData, heads: number): GgufTensorData {
  const [cols, rows] = tensor.ne as [number, number];
  const hd = rows / heads;
  const values = f32(tensor.data);
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++)
    for (let j = 0; j < hd / 2; j++)
      for (let p = 0; p < 2; p++)
        out.set(
          values.subarray((h * hd + 2 * j + p) * cols, (h * hd + 2 * j + p + 1) * cols),
          (h * hd + p * (hd / 2) + j) * cols,
        );
  return { ...tensor, data: bytes(out) };
}

function stackRows(name: string, parts: GgufTensorData[]): GgufTensorData {
  const cols = parts[0]!.ne[0]!;
  const rows = parts.reduce((n, p) => n + p.ne[1]!, 0);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.data.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p.data, at);
    at += p.data.length;
  }
  return { name, ne: [cols, rows], typeId: F32, data: out };
}

/** Deterministic small values (a 32-bit LCG), so the biases are the same in every run. */
function seeded(length: number, seed: number, amplitude: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 32 - 0.5) * 2 * amplitude;
  });
}

export async function archVariantLayout(arch: ArchVariant): Promise<GgufLayout> {
  const layout = await readGgufLayout(SHARED_GGUF.stories260kF32);
  if (arch === 'ropefreqs') {
    // One divisor per frequency of the 8-wide heads: the low frequencies slowed most, as llama3 does.
    const factors = Float32Array.of(1, 1.5, 3, 8);
    layout.tensors.push({ name: 'rope_freqs.weight', ne: [4], typeId: F32, data: bytes(factors) });
    return layout;
  }
  const context = layout.kv.find((k) => k.key === 'llama.context_length')!.value as number;
  layout.kv = layout.kv.map((kv) =>
    kv.key === 'general.architecture'
      ? { ...kv, value: arch }
      : kv.key.startsWith('llama.')
        ? { ...kv, key: `${arch}.${kv.key.slice('llama.'.length)}` }
        : kv,
  );
  if (arch === 'phi3')
    layout.kv.push({ key: 'phi3.attention.sliding_window', type: 'uint32', value: context });
  const byName = new Map(layout.tensors.map((t) => [t.name, t]));
  const tensors: GgufTensorData[] = [];
  const take = (name: string) => byName.get(name)!;
  for (const name of ['token_embd.weight', 'output_norm.weight', 'output.weight'])
    tensors.push(take(name));
  const layers = layout.kv.find((k) => k.key === `${arch}.block_count`)!.value as number;
  for (let l = 0; l < layers; l++) {
    const t = (part: string) => take(`blk.${l}.${part}.weight`);
    const q = toNeox(t('attn_q'), HEADS);
    const k = toNeox(t('attn_k'), KV_HEADS);
    const v = t('attn_v');
    tensors.push(t('attn_norm'), t('attn_output'), t('ffn_norm'), t('ffn_down'));
    if (arch === 'qwen2') {
      tensors.push(q, k, v, t('ffn_gate'), t('ffn_up'));
      const parts = [
        ['attn_q', q],
        ['attn_k', k],
        ['attn_v', v],
      ] as const;
      parts.forEach(([name, part], i) => {
        const rows = part.ne[1]!;
        tensors.push({
          name: `blk.${l}.${name}.bias`,
          ne: [rows],
          typeId: F32,
          data: bytes(seeded(rows, 1000 * l + i + 1, 0.05)),
        });
      });
    } else {
      tensors.push(
        stackRows(`blk.${l}.attn_qkv.weight`, [q, k, v]),
        stackRows(`blk.${l}.ffn_up.weight`, [t('ffn_gate'), t('ffn_up')]),
      );
    }
  }
  layout.tensors = tensors;
  return layout;
}

export async function writeArchVariant(arch: ArchVariant, path: string): Promise<void> {
  await writeGguf(path, await archVariantLayout(arch));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2];
  if (!out) throw new Error('usage: gguf-arch-variants.ts OUT_DIR');
  for (const arch of ARCH_VARIANTS)
    await writeArchVariant(arch, join(out, `stories260K-${arch}.gguf`));
}
