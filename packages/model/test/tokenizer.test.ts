import { readFile } from 'node:fs/promises';
import { Tokenizer as HfTokenizerModel } from '@huggingface/tokenizers';
import {
  decodeIds,
  HfTokenizer,
  Llama2cTokenizer,
  synthVocab,
  type Tokenizer,
} from '@swarmbee/model';
import t from 'tap';
import { hfTokenizerFromTok512 } from '../../../test/helpers/hf-stories260k.js';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';
import { mulberry32 } from '../src/synth/random.js';

async function tok512Hf(): Promise<HfTokenizer> {
  const { tokenizer, tokenizerConfig } = await hfTokenizerFromTok512();
  return HfTokenizer.parse(
    tokenizer,
    tokenizerConfig,
    { bosId: 1, eosId: 2, addBos: true, stopIds: [2] },
    512,
    'tok512 as tokenizer.json',
  );
}

/** What the CLI and TextStream print: every push, then end(). */
function streamed(tokenizer: Tokenizer, context: number[], ids: number[]): string[] {
  const decoder = tokenizer.decoder(context);
  const pieces = ids.map((id) => decoder.push(id));
  pieces.push(decoder.end());
  return pieces;
}

const TEXTS = [
  'Once upon a time',
  '',
  ' ',
  'Hello  world',
  'Lily\'s mom said, "Lily, let\'s go to the park."\nThe end.',
  'café ☕ 日本語 — “quotes”',
  '  two leading spaces',
  'trailing spaces  ',
  'Tim and Sue were best friends. They liked to play with their toys.',
  '\ttabs\tand\nnewlines\n\n',
];

t.test('llama2.c decoder: byte for byte what decodePiece printed before it', async (t) => {
  const tokenizer = new Llama2cTokenizer(synthVocab(512));
  const random = mulberry32(7);
  for (let trial = 0; trial < 200; trial++) {
    // Random ids, byte tokens (3..258) over-represented to split characters and emit junk.
    const ids = Array.from({ length: 1 + Math.floor(random() * 30) }, () =>
      random() < 0.5 ? 3 + Math.floor(random() * 256) : Math.floor(random() * 512),
    );
    const context = random() < 0.5 ? [1] : [Math.floor(random() * 512)];
    const bytes: Uint8Array[] = [];
    let previous = context[0]!;
    for (const id of ids) {
      bytes.push(tokenizer.decodePiece(previous, id));
      previous = id;
    }
    const expected = Buffer.concat(bytes).toString('utf8');
    t.equal(streamed(tokenizer, context, ids).join(''), expected, `trial ${trial}`);
    t.equal(decodeIds(tokenizer, [...context, ...ids]), expected);
  }
});

t.test(
  'llama2.c decoder keeps run.c quirks: lone non-ASCII byte tokens print nothing',
  async (t) => {
    const tokenizer = new Llama2cTokenizer(synthVocab(512));
    // run.c's safe_printf prints a byte token only when it is printable ASCII or whitespace.
    const bytes = [...Buffer.from('é☕A', 'utf8')].map((b) => 3 + b);
    t.same(streamed(tokenizer, [1], bytes), ['', '', '', '', '', 'A', '']);
  },
);

t.test(
  'tok512 as a Hugging Face tokenizer.json encodes as run.c does (but for leading spaces)',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.tokenizer)) return;
    const llama2c = await Llama2cTokenizer.load(STORIES260K.tokenizer, 512);
    const hf = await tok512Hf();
    t.same(hf.encode('Once upon a time'), [1, 403, 407, 261, 378]);
    const references = [
      await readFile(STORIES260K.refNoPrompt, 'utf8'),
      await readFile(STORIES260K.refOnceUponATime, 'utf8'),
    ];
    // run.c always adds its dummy-prefix space; transformers 5's LlamaTokenizer (the reference
    // for HF tokenizers, see hf-tokenizers.test.ts) adds none before text that starts with one.
    const texts = [
      ...TEXTS,
      ...references,
      ...references.flatMap((r) => r.split(/(?<=[.!?])/)),
    ].filter((text) => !text.startsWith(' '));
    t.same(hf.encode(' upon', { bos: false }), [407], 'a leading space is the word’s own');
    t.same(llama2c.encode(' upon', { bos: false }), [410, 407], 'run.c adds another');
    for (const text of texts) {
      t.same(hf.encode(text), llama2c.encode(text), JSON.stringify(text.slice(0, 40)));
      t.same(hf.encode(text, { bos: false }), llama2c.encode(text, { bos: false }));
    }
  },
);

t.test('HF decoder: streamed text equals decoding the whole sequence', async (t) => {
  if (!haveSharedModel(t, STORIES260K.tokenizer)) return;
  const hf = await tok512Hf();
  for (const text of TEXTS) {
    const ids = hf.encode(text);
    const pieces = streamed(hf, ids.slice(0, 1), ids.slice(1));
    t.equal(pieces.join(''), hf.decode(ids), JSON.stringify(text));
  }
  // Ids that continue a prompt keep the space before them; the first word after BOS drops it.
  const prompt = hf.encode('Once upon');
  const more = hf.encode(' a time', { bos: false }).slice(1); // drop the dummy-prefix space token
  t.equal(
    streamed(hf, prompt, more).join(''),
    hf.decode([...prompt, ...more]).slice('Once upon'.length),
  );
  t.same(streamed(hf, [1], [403, 407]), ['Once', ' upon', '']);
  // A character spelled in byte tokens appears whole, with its last byte.
  const bytes = [...Buffer.from('☕', 'utf8')].map((b) => 3 + b);
  t.same(streamed(hf, [1, 403], bytes), ['', '', '☕', '']);
  // Special tokens print nothing; the EOS a model samples does not show.
  t.same(streamed(hf, [1, 403], [2]), ['', '']);
  t.equal(decodeIds(hf, [1, 403, 407, 2]), 'Once upon');
});

t.test('HF decoder on byte-level BPE (GPT-2 style): streaming equals whole decoding', async (t) => {
  // A tiny byte-level BPE: every byte is a token, plus a few merges.
  const bytesToUnicode = new Map<number, string>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    bytesToUnicode.set(b, String.fromCharCode(printable ? b : 256 + extra++));
  }
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[bytesToUnicode.get(b)!] = b;
  const merges = [
    ['Ġ', 't'],
    ['h', 'e'],
    ['Ġt', 'he'],
  ];
  for (const [a, b] of merges) vocab[a! + b!] = Object.keys(vocab).length;
  vocab['<|endoftext|>'] = Object.keys(vocab).length;
  const model = {
    version: '1.0',
    added_tokens: [
      {
        id: vocab['<|endoftext|>'],
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: {
      type: 'ByteLevel',
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', vocab, merges: merges.map((m) => m.join(' ')), byte_fallback: false },
  };
  new HfTokenizerModel(model, {}); // loads as @huggingface/tokenizers reads it
  const eos = vocab['<|endoftext|>']!;
  const hf = HfTokenizer.parse(
    model,
    { clean_up_tokenization_spaces: false },
    { bosId: -1, eosId: eos, addBos: false, stopIds: [eos] },
    300,
    'byte-level test tokenizer',
  );
  for (const text of ['the cat and the hat', 'naïve café ☕!', '  spaced  out ']) {
    const ids = hf.encode(text);
    t.same(ids.includes(eos), false);
    t.equal(streamed(hf, [], ids).join(''), text, JSON.stringify(text));
    t.equal(streamed(hf, ids.slice(0, 2), ids.slice(2)).join(''), hf.decode(ids.slice(2)));
  }
  t.same(hf.encode(''), [], 'no BOS for a tokenizer without one');
});
