/**
 * stories260K written the way Hugging Face publishes a Llama: `config.json`,
 * `model.safetensors` (fp32, fp16 or bf16; optionally sharded with an index),
 * `tokenizer.json` + `tokenizer_config.json` + `generation_config.json`.
 *
 * Written independently of the model package's importers: the checkpoint is read
 * here by hand, q/k rows are permuted with the formula of HF's
 * convert_llama_weights_to_hf.py (`view(heads, hd/2, 2, dim).transpose(1, 2)`),
 * and the tokenizer is built from tok512's pieces and scores the way HF's
 * SentencePiece converter builds merges (every split of a piece into two vocab
 * pieces, ordered by the merged piece's score, then by the parts' ids).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { STORIES260K } from './shared-models.js';

export type HfFixtureDtype = 'F32' | 'F16' | 'BF16';

export interface HfFixtureOptions {
  dtype?: HfFixtureDtype;
  /** Split the weights over this many safetensors files with an index. Default 1. */
  shards?: number;
}

const DIM = 64;
const HIDDEN = 172;
const LAYERS = 5;
const HEADS = 8;
const KV_HEADS = 4;
const VOCAB = 512;
const SEQ_LEN = 512;
const HEAD_DIM = DIM / HEADS;

export const HF_STORIES260K_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: DIM,
  intermediate_size: HIDDEN,
  num_hidden_layers: LAYERS,
  num_attention_heads: HEADS,
  num_key_value_heads: KV_HEADS,
  vocab_size: VOCAB,
  max_position_embeddings: SEQ_LEN,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  rope_scaling: null,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  attention_bias: false,
  mlp_bias: false,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'float32',
};

/** HF tensors of stories260K in fp32, HF names, q/k permuted to rotate-half. */
export async function stories260kHfTensors(): Promise<
  Map<string, { shape: number[]; data: Float32Array }>
> {
  const bytes = await readFile(STORIES260K.checkpoint);
  const floats = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset + 28, bytes.byteOffset + bytes.length),
  );
  let at = 0;
  const take = (n: number) => {
    const out = floats.slice(at, at + n);
    at += n;
    return out;
  };
  const kvDim = KV_HEADS * HEAD_DIM;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  tensors.set('model.embed_tokens.weight', { shape: [VOCAB, DIM], data: take(VOCAB * DIM) });
  const perLayer = (name: string, shape: number[], map?: (w: Float32Array) => Float32Array) => {
    const n = shape.reduce((a, b) => a * b, 1);
    for (let l = 0; l < LAYERS; l++) {
      const w = take(n);
      tensors.set(`model.layers.${l}.${name}`, { shape, data: map ? map(w) : w });
    }
  };
  perLayer('input_layernorm.weight', [DIM]);
  perLayer('self_attn.q_proj.weight', [DIM, DIM], (w) => hfPermute(w, HEADS, DIM, DIM));
  perLayer('self_attn.k_proj.weight', [kvDim, DIM], (w) => hfPermute(w, KV_HEADS, kvDim, DIM));
  perLayer('self_attn.v_proj.weight', [kvDim, DIM]);
  perLayer('self_attn.o_proj.weight', [DIM, DIM]);
  perLayer('post_attention_layernorm.weight', [DIM]);
  perLayer('mlp.gate_proj.weight', [HIDDEN, DIM]);
  perLayer('mlp.down_proj.weight', [DIM, HIDDEN]);
  perLayer('mlp.up_proj.weight', [HIDDEN, DIM]);
  tensors.set('model.norm.weight', { shape: [DIM], data: take(DIM) });
  return tensors;
}

/**
 * HF's `permute(w, n_heads, dim1, dim2)`: w.view(n_heads, dim1 / n_heads / 2, 2, dim2)
 * .transpose(1, 2).reshape(dim1, dim2) — written as that index map.
 */
function hfPermute(w: Float32Array, heads: number, dim1: number, dim2: number): Float32Array {
  const half = dim1 / heads / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++)
      for (let two = 0; two < 2; two++) {
        // view index [h][i][two] -> transposed [h][two][i]
        const from = ((h * half + i) * 2 + two) * dim2;
        const to = ((h * 2 + two) * half + i) * dim2;
        out.set(w.subarray(from, from + dim2), to);
      }
  return out;
}

/** Writes stories260K in the HF layout into `out`. */
export async function writeHfStories260K(
  out: string,
  options: HfFixtureOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? 'F32';
  const shards = options.shards ?? 1;
  await mkdir(out, { recursive: true });
  const tensors = [...(await stories260kHfTensors()).entries()];
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  await writeJson(join(out, 'config.json'), { ...HF_STORIES260K_CONFIG, torch_dtype: torchDtype });
  await writeJson(join(out, 'generation_config.json'), {
    bos_token_id: 1,
    eos_token_id: 2,
    _from_model_config: true,
  });
  if (shards === 1) {
    await writeFile(join(out, 'model.safetensors'), safetensorsFile(tensors, dtype));
  } else {
    const weightMap: Record<string, string> = {};
    const per = Math.ceil(tensors.length / shards);
    let total = 0;
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = tensors.slice(s * per, (s + 1) * per);
      for (const [name, t] of part) {
        weightMap[name] = file;
        total += t.data.length * (dtype === 'F32' ? 4 : 2);
      }
      await writeFile(join(out, file), safetensorsFile(part, dtype));
    }
    await writeJson(join(out, 'model.safetensors.index.json'), {
      metadata: { total_size: total },
      weight_map: weightMap,
    });
  }
  const { tokenizer, tokenizerConfig } = await hfTokenizerFromTok512();
  await writeJson(join(out, 'tokenizer.json'), tokenizer);
  await writeJson(join(out, 'tokenizer_config.json'), tokenizerConfig);
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** A safetensors file: u64 LE header length, JSON header (space padded to 8 bytes), data. */
export function safetensorsFile(
  tensors: [string, { shape: number[]; data: Float32Array }][],
  dtype: HfFixtureDtype,
): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const data = encode(t.data, dtype);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
    parts.push(data);
    offset += data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, Buffer.from(json, 'utf8'), ...parts]);
}

function encode(data: Float32Array, dtype: HfFixtureDtype): Buffer {
  if (dtype === 'F32') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.alloc(data.length * 2);
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < data.length; i++)
    out.writeUInt16LE(dtype === 'F16' ? f32ToF16(data[i]!) : f32BitsToBf16(bits[i]!), i * 2);
  return out;
}

/** Round-to-nearest-even bf16 (what torch's .to(torch.bfloat16) does for finite values). */
function f32BitsToBf16(bits: number): number {
  const lsb = (bits >>> 16) & 1;
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** Round-to-nearest-even IEEE half (normal and subnormal; no NaN or overflow in these weights). */
function f32ToF16(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  let mantissa = bits & 0x7fffff;
  if (exponent >= 31) return sign | 0x7c00;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - exponent;
    const half = 1 << (shift - 1);
    const rest = mantissa & ((1 << shift) - 1);
    let result = mantissa >>> shift;
    if (rest > half || (rest === half && (result & 1) === 1)) result++;
    return sign | result;
  }
  const rest = mantissa & 0x1fff;
  let result = (exponent << 10) | (mantissa >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (result & 1) === 1)) result++;
  return sign | result;
}

/** A Llama-style byte-fallback BPE tokenizer.json with tok512's vocabulary and merge order. */
export async function hfTokenizerFromTok512(): Promise<{
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}> {
  const bytes = await readFile(STORIES260K.tokenizer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pieces: string[] = [];
  const scores: number[] = [];
  let offset = 4;
  for (let id = 0; id < VOCAB; id++) {
    scores.push(view.getFloat32(offset, true));
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    pieces.push(bytes.subarray(offset, offset + length).toString('utf8'));
    offset += length;
  }
  const specials = ['<unk>', '<s>', '</s>'];
  const vocab: Record<string, number> = {};
  pieces.forEach((piece, id) => {
    vocab[id < 3 ? specials[id]! : piece.replaceAll(' ', '▁')] = id;
  });
  const mergeable = (id: number | undefined) => id !== undefined && id >= 3 + 256;
  const merges: { left: string; right: string; score: number; l: number; r: number }[] = [];
  for (const [piece, id] of Object.entries(vocab)) {
    if (!mergeable(id)) continue;
    const chars = Array.from(piece);
    for (let cut = 1; cut < chars.length; cut++) {
      const left = chars.slice(0, cut).join('');
      const right = chars.slice(cut).join('');
      const l = vocab[left];
      const r = vocab[right];
      if (mergeable(l) && mergeable(r))
        merges.push({ left, right, score: scores[id]!, l: l!, r: r! });
    }
  }
  merges.sort((a, b) => b.score - a.score || a.l - b.l || a.r - b.r);
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, id) => special(id, s)),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => [m.left, m.right]),
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: SEQ_LEN,
    tokenizer_class: 'LlamaTokenizer',
  };
  return { tokenizer, tokenizerConfig };
}
