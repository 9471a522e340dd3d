/**
 * onnxruntime-genai's model-builder export (tiny-random-LlamaForCausalLM-fp16: fp16,
 * external data, fused RotaryEmbedding and MultiHeadAttention, an attention bias
 * built from the mask by `/model/attn_mask_reformat/...`): every split against the
 * unsplit graph run directly with onnxruntime, as the builder's own runtime feeds it
 * (the whole prompt with an empty past, then one token at a time).
 */
import { existsSync } from 'node:fs';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OnnxGraphUnsupportedError } from '@swarmbee/core';
import { generate, LocalPipeline } from '@swarmbee/engine';
import { encodeChat, importOnnxDecoder, loadTokenizer } from '@swarmbee/model';
import onnxProto from 'onnx-proto';
import t from 'tap';
import { withInt4MatMuls } from '../../../test/helpers/genai-variants.js';
import {
  type DecoderNaming,
  DecoderReference,
  everySplit,
  maxAbsDiff,
} from '../../../test/helpers/gpt2-reference.js';
import { haveSharedModel, TINY_GENAI_LLAMA } from '../../../test/helpers/shared-models.js';
import { TOKENIZER_FIXTURES } from '../../model/test/helpers/tokenizer-fixtures.js';

const { onnx } = onnxProto;
const GREEDY = { temperature: 0, topK: 0, topP: 1 };
const LENGTH = 32;
/**
 * Stages against the unsplit graph: both run the same fp16 kernels; the stages feed
 * spare, masked cache slots, which changes the length of the softmax sums. Measured:
 * 2.4e-4, one fp16 step of logits near 1.
 */
const LOGIT_TOLERANCE = 1e-3;

const NAMING: DecoderNaming = {
  past: [0, 1].map((l) => [`past_key_values.${l}.key`, `past_key_values.${l}.value`]),
  present: [0, 1].map((l) => [`present.${l}.key`, `present.${l}.value`]),
  kv: 'separate',
  kvHeads: 1,
  headDim: 16,
  ids: 'int64',
  vocab: 32_000,
};

t.test(
  'genai builder export: every split gives the unsplit graph’s greedy ids and logits',
  async (t) => {
    if (!haveSharedModel(t, TINY_GENAI_LLAMA.onnx)) return;
    const dir = await importOnnxDecoder({
      model: TINY_GENAI_LLAMA.onnx,
      out: join(t.testdir(), 'm'),
    });
    if (dir.manifest.architecture !== 'onnx-decoder')
      throw new Error('expected an imported decoder');
    t.same(
      dir.manifest.decoder.attentionBiases?.map((b) => b.dtype),
      ['float16'],
      'the builder’s mask-derived attention bias is found',
    );
    const reference = await DecoderReference.open(TINY_GENAI_LLAMA.onnx, NAMING);
    const want = await reference.greedy([TINY_GENAI_LLAMA.prompt], LENGTH);
    await reference.close();
    let worst = 0;
    for (const ranges of everySplit(2)) {
      const label = ranges.map((r) => `${r.start}-${r.end}`).join(',');
      const pipeline = await LocalPipeline.create(dir, { ranges, threaded: false });
      try {
        const [got] = await generate(pipeline, [
          {
            promptIds: TINY_GENAI_LLAMA.prompt,
            steps: LENGTH - 1,
            sampling: GREEDY,
            logprobs: true,
          },
        ]);
        t.same(got!.ids, want.ids[0], `split ${label}: the unsplit graph's greedy ids`);
        // Chunks of 2 put a past and several new tokens in one run: the case the builder's own bias cannot express.
        const [chunked] = await generate(
          pipeline,
          [{ promptIds: TINY_GENAI_LLAMA.prompt, steps: LENGTH - 1, sampling: GREEDY }],
          { prefillChunkTokens: 2 },
        );
        t.same(chunked!.ids, want.ids[0], `split ${label}, prompt prefilled in chunks of 2`);
        const logits = await lastLogits(pipeline, want.ids[0]!);
        const diff = Math.max(...logits.map((l, i) => maxAbsDiff(l, want.logits[i]!)));
        worst = Math.max(worst, diff);
      } finally {
        await pipeline.close();
      }
    }
    t.ok(
      worst <= LOGIT_TOLERANCE,
      `largest logit difference over both splits and every step: ${worst}`,
    );
  },
);

t.test(
  'genai builder export: rows of different lengths in one batch get what each gets alone',
  async (t) => {
    if (!haveSharedModel(t, TINY_GENAI_LLAMA.onnx)) return;
    const dir = await importOnnxDecoder({
      model: TINY_GENAI_LLAMA.onnx,
      out: join(t.testdir(), 'm'),
    });
    const pipeline = await LocalPipeline.create(dir, { stages: 2 });
    t.teardown(() => pipeline.close());
    const prompts = [TINY_GENAI_LLAMA.prompt, [1, 450], [1, 3118, 338, 263, 1243, 310, 278, 4996]];
    const request = (promptIds: number[]) => ({ promptIds, steps: 20, sampling: GREEDY });
    const together = await generate(pipeline, prompts.map(request));
    for (const [i, promptIds] of prompts.entries()) {
      const [alone] = await generate(pipeline, [request(promptIds)]);
      t.same(together[i]!.ids, alone!.ids, `prompt of ${promptIds.length} tokens`);
    }
  },
);

/** The logits each position of `ids` (after the prompt's last) gets, position by position. */
async function lastLogits(pipeline: LocalPipeline, ids: number[]): Promise<Float32Array[]> {
  const vocab = pipeline.info.vocabSize;
  const seqId = `logits-${Math.random()}`;
  const out: Float32Array[] = [];
  const prompt = TINY_GENAI_LLAMA.prompt.length;
  for (let start = 0; start < ids.length - 1; ) {
    const count = start === 0 ? prompt : 1;
    const tokens = BigInt64Array.from(ids.slice(start, start + count), BigInt);
    const step = await pipeline.step({
      rows: [{ seqId, start, count, sampling: GREEDY }],
      tokens,
      logits: 'last',
    });
    out.push(step.logits!.slice(0, vocab));
    start += count;
  }
  await pipeline.release([seqId]);
  return out;
}

t.test(
  'BAD INPUT - a builder export with GroupQueryAttention is refused naming the node',
  async (t) => {
    if (!haveSharedModel(t, TINY_GENAI_LLAMA.onnx)) return;
    const root = t.testdir();
    const model = onnx.ModelProto.decode(await readFile(TINY_GENAI_LLAMA.onnx));
    for (const node of model.graph!.node!)
      if (node.opType === 'MultiHeadAttention') node.opType = 'GroupQueryAttention';
    await writeFile(join(root, 'model.onnx'), onnx.ModelProto.encode(model).finish());
    await symlink(join(TINY_GENAI_LLAMA.dir, 'model.onnx.data'), join(root, 'model.onnx.data'));
    await t.rejects(importOnnxDecoder({ model: join(root, 'model.onnx'), out: join(root, 'm') }), {
      code: OnnxGraphUnsupportedError.code,
      message: /\/model\/layers\.0\/attn\/MultiHeadAttention is a GroupQueryAttention/,
    });
    t.notOk(existsSync(join(root, 'm')), 'nothing written');
  },
);

t.test(
  'genai builder export with int4 MatMulNBits weights: every split gives the unsplit ids',
  async (t) => {
    if (!haveSharedModel(t, TINY_GENAI_LLAMA.onnx)) return;
    const root = t.testdir({ int4: {} });
    const source = await withInt4MatMuls(TINY_GENAI_LLAMA.onnx, join(root, 'int4'));
    const dir = await importOnnxDecoder({ model: source, out: join(root, 'm') });
    const reference = await DecoderReference.open(source, NAMING);
    const want = await reference.greedy([TINY_GENAI_LLAMA.prompt], LENGTH);
    await reference.close();
    const fp16 = await DecoderReference.open(TINY_GENAI_LLAMA.onnx, NAMING);
    const unquantized = await fp16.greedy([TINY_GENAI_LLAMA.prompt], LENGTH);
    await fp16.close();
    t.not(want.ids[0]!.join(), unquantized.ids[0]!.join(), 'int4 weights change the greedy ids');
    for (const ranges of everySplit(2)) {
      const pipeline = await LocalPipeline.create(dir, { ranges, threaded: false });
      try {
        const [got] = await generate(pipeline, [
          { promptIds: TINY_GENAI_LLAMA.prompt, steps: LENGTH - 1, sampling: GREEDY },
        ]);
        t.same(
          got!.ids,
          want.ids[0],
          `split ${ranges.map((r) => `${r.start}-${r.end}`).join(',')}`,
        );
      } finally {
        await pipeline.close();
      }
    }
  },
);

t.test(
  'genai builder export: its tokenizer and chat template come along, as transformers encodes',
  async (t) => {
    if (!haveSharedModel(t, TINY_GENAI_LLAMA.onnx)) return;
    const dir = await importOnnxDecoder({
      model: TINY_GENAI_LLAMA.onnx,
      out: join(t.testdir(), 'm'),
    });
    const ref = dir.manifest.tokenizer;
    if (ref?.kind !== 'hf') throw new Error('expected the export’s Hugging Face tokenizer');
    t.equal(ref.bosId, 1, 'BOS is the tokenizer’s <s>, as the export’s runtime encodes');
    t.same(ref.stopIds, [1, 2], 'stops on genai_config’s eos_token_id and the tokenizer’s </s>');
    t.equal(ref.chatTemplate?.source, 'tokenizer_config.json', 'the chat template is kept');
    const tokenizer = await loadTokenizer(dir);
    const recorded = TOKENIZER_FIXTURES.tokenizers_recorded.llama2!;
    for (const { text, ids_with_special_tokens } of recorded.encodings)
      t.same(
        tokenizer.encode(text),
        ids_with_special_tokens,
        `transformers' ids for ${JSON.stringify(text)}`,
      );
    for (const chat of recorded.chats.filter((c) => c.template === undefined && c.ids))
      t.same(encodeChat(tokenizer, chat.messages), chat.ids, `chat: ${chat.conversation}`);
  },
);
