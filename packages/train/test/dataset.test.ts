import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ContextOverflowError, TrainingDataInvalidError } from '@swarmbee/core';
import {
  ChatTemplate,
  Llama2cTokenizer,
  plainChatText,
  synthVocab,
  type Tokenizer,
} from '@swarmbee/model';
import t, { type Test } from 'tap';
import { DataOrder, toMicroBatches } from '../src/data-order.js';
import { readTrainingData } from '../src/dataset.js';

const tokenizer: Tokenizer = new Llama2cTokenizer(synthVocab(512));
/** The same tokenizer with a chat template: each turn `[role] text [end]`, the reply opened by `[assistant]`. */
const templated: Tokenizer = {
  vocabSize: tokenizer.vocabSize,
  bosId: tokenizer.bosId,
  eosId: tokenizer.eosId,
  stopIds: tokenizer.stopIds,
  maxTokenChars: tokenizer.maxTokenChars,
  encode: (text, options) => tokenizer.encode(text, options),
  decoder: (context) => tokenizer.decoder(context),
  chatTemplate: new ChatTemplate(
    '{% for m in messages %}[{{ m.role }}] {{ m.content }} [end]\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}',
    {},
    'test template',
  ),
};

/** The text the target tokens of an example spell, turn by turn. */
function learnedText(ids: Int32Array, targetMask: Uint8Array, tok: Tokenizer): string {
  const decoder = tok.decoder([1]);
  let text = '';
  targetMask.forEach((m, j) => {
    if (m) text += decoder.push(ids[j + 1]!);
  });
  return text + decoder.end();
}

async function data(t: Test, lines: string[]): Promise<string> {
  const path = join(t.testdir(), 'data.jsonl');
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

t.test('text records: BOS, the text and the stop id; every position is a target', async (t) => {
  const path = await data(t, [
    JSON.stringify({ text: 'the cat sat' }),
    '',
    JSON.stringify({ text: 'a dog' }),
  ]);
  const examples = await readTrainingData(path, { tokenizer, seqLen: 64 });
  t.equal(examples.length, 2, 'blank lines are skipped');
  t.same(
    examples.map((e) => e.line),
    [1, 3],
  );
  const ids = [...examples[0]!.ids];
  t.same(ids, [...tokenizer.encode('the cat sat', { bos: true }), tokenizer.stopIds[0]]);
  t.ok(examples[0]!.targetMask.every((m) => m === 1));
});

const CHAT = [
  { role: 'system', content: 'be brief' },
  { role: 'user', content: 'hello there' },
  { role: 'assistant', content: 'hi' },
  { role: 'user', content: [{ type: 'text', text: 'and now' }] },
  { role: 'assistant', content: 'bye now' },
];

t.test(
  'chat records without a template: the messages one a line; only assistant turns and the stop id are targets',
  async (t) => {
    const path = await data(t, [JSON.stringify({ messages: CHAT })]);
    const [example] = await readTrainingData(path, { tokenizer, seqLen: 128 });
    const { ids, targetMask } = example!;
    const text = plainChatText(
      CHAT.map((m) => ({
        role: m.role,
        content: typeof m.content === 'string' ? m.content : m.content[0]!.text,
      })),
    );
    t.same([...ids], [...tokenizer.encode(text, { bos: true }), tokenizer.stopIds[0]]);
    const learned = learnedText(ids, targetMask, tokenizer);
    t.ok(
      learned.includes('hi') && learned.includes('bye now'),
      `learned text: ${JSON.stringify(learned)}`,
    );
    t.notOk(/hello|brief|and now/.test(learned), 'prompt turns are not learned');
    t.equal(ids[ids.length - 1], tokenizer.stopIds[0]);
    t.equal(targetMask.at(-1), 1, 'the stop id after the last assistant turn is learned');
  },
);

t.test(
  "chat records with the model's template: rendered by it, each assistant turn learned through its end",
  async (t) => {
    const path = await data(t, [JSON.stringify({ messages: CHAT })]);
    const [example] = await readTrainingData(path, { tokenizer: templated, seqLen: 128 });
    const { ids, targetMask } = example!;
    const rendered = templated.chatTemplate!.render(
      CHAT.map((m) => ({
        role: m.role,
        content: typeof m.content === 'string' ? m.content : m.content[0]!.text,
      })),
      { addGenerationPrompt: false },
    );
    t.same(
      [...ids],
      tokenizer.encode(rendered, { bos: false }),
      'the template writes the whole sequence (no BOS or stop added)',
    );
    const learned = learnedText(ids, targetMask, tokenizer);
    t.match(
      learned,
      /hi \[end\][\s\S]*bye now \[end\]/,
      `learned text: ${JSON.stringify(learned)}`,
    );
    t.notOk(
      /hello|brief|and now|\[user\]|\[system\]/.test(learned),
      'prompt turns and headers are not learned',
    );
  },
);

t.test('BAD INPUT - a bad record is a coded error naming its line', async (t) => {
  const cases: [string, string, string][] = [
    ['{"text": "ok"}\n{not json', 'data.jsonl:2: not a JSON record', TrainingDataInvalidError.code],
    [
      '{"prompt": "x"}',
      'data.jsonl:1: expected {"text": string} or {"messages": [...]}',
      TrainingDataInvalidError.code,
    ],
    ['{"text": ""}', 'data.jsonl:1: "text" is empty', TrainingDataInvalidError.code],
    [
      '{"messages": [{"role": "user", "content": "hi"}]}',
      'data.jsonl:1: a chat without an assistant',
      TrainingDataInvalidError.code,
    ],
    [
      '{"messages": [{"role": "robot", "content": "hi"}]}',
      'data.jsonl:1: message 0 needs a role',
      TrainingDataInvalidError.code,
    ],
    ['', 'holds no records', TrainingDataInvalidError.code],
  ];
  for (const [text, message, code] of cases) {
    const path = join(t.testdir(), 'data.jsonl');
    await writeFile(path, text);
    const error = await readTrainingData(path, { tokenizer, seqLen: 64 }).catch((e: Error) => e);
    t.match(
      error,
      { code, message: new RegExp(message.replace(/[[\]{}()*+?.\\^$|]/g, '\\$&')) },
      message,
    );
  }
  await t.rejects(readTrainingData(join(t.testdir(), 'missing.jsonl'), { tokenizer, seqLen: 64 }), {
    code: TrainingDataInvalidError.code,
  });
});

t.test(
  'BAD INPUT - a record longer than the sequence length is refused with its line, or cut with truncate',
  async (t) => {
    const long = 'the cat sat on the mat and then the dog ran far away';
    const path = await data(t, [JSON.stringify({ text: 'short' }), JSON.stringify({ text: long })]);
    const n = tokenizer.encode(long, { bos: true }).length;
    await t.rejects(readTrainingData(path, { tokenizer, seqLen: 8 }), {
      code: ContextOverflowError.code,
      message: new RegExp(
        `data.jsonl:2: the record is ${n} tokens, longer than the sequence length 8`,
      ),
    });
    const [, cut] = await readTrainingData(path, { tokenizer, seqLen: 8, truncate: true });
    t.equal(cut!.ids.length, 9, 'inputs cut to 8 tokens (plus the last target)');
    t.equal(cut!.targetMask.length, 8);
  },
);

t.test(
  'the data order is a seeded function of the step: every example once per epoch',
  async (t) => {
    const examples = Array.from({ length: 10 }, (_, i) => ({
      line: i + 1,
      ids: Int32Array.of(1, 5 + i, 9),
      targetMask: Uint8Array.of(1, 1),
    }));
    const order = new DataOrder(examples, 4, 7);
    const again = new DataOrder(examples, 4, 7);
    const lines = (o: DataOrder, step: number) => o.step(step).map((e) => e.line);
    t.same(lines(order, 3), lines(again, 3), 'same seed, same batch, in any order of asking');
    const epoch = [...lines(order, 0), ...lines(order, 1), ...lines(order, 2).slice(0, 2)];
    t.same(
      [...epoch].sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      'the first 10 positions are one epoch',
    );
    t.notSame(
      lines(new DataOrder(examples, 4, 8), 0),
      lines(order, 0),
      'another seed, another order',
    );
    const [mb] = toMicroBatches(
      [
        examples[0]!,
        { line: 0, ids: Int32Array.of(1, 2, 3, 4, 5), targetMask: Uint8Array.of(0, 1, 1, 1) },
      ],
      2,
    );
    t.same([...mb!.lengths], [2, 4]);
    t.equal(mb!.width, 4);
    t.same(
      [...mb!.targets].map(Number),
      [5, 9, -100, -100, -100, 3, 4, 5],
      'right-padded, masked targets ignored',
    );
  },
);
