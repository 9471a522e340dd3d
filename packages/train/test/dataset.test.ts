import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ContextOverflowError, TrainingDataInvalidError } from '@swarmbee/core';
import { Llama2cTokenizer, synthVocab, type Tokenizer } from '@swarmbee/model';
import t, { type Test } from 'tap';
import { type ChatMessage, DataOrder, readTrainingData, toMicroBatches } from '../src/index.js';

const tokenizer: Tokenizer = new Llama2cTokenizer(synthVocab(512));
/** The coordinator's renderer for models without a template: the messages, one a line. */
const renderChat = (messages: ChatMessage[]) =>
  messages
    .map((m) => (typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('')))
    .join('\n');

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

t.test('chat records: only the assistant turns (and the final stop id) are targets', async (t) => {
  const messages = [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hello there' },
    { role: 'assistant', content: 'hi' },
    { role: 'user', content: [{ type: 'text', text: 'and now' }] },
    { role: 'assistant', content: 'bye now' },
  ];
  const path = await data(t, [JSON.stringify({ messages })]);
  const [example] = await readTrainingData(path, { tokenizer, seqLen: 128, renderChat });
  const { ids, targetMask } = example!;
  t.same(
    [...ids],
    [
      ...tokenizer.encode(renderChat(messages as ChatMessage[]), { bos: true }),
      tokenizer.stopIds[0],
    ],
  );
  const learned = [...targetMask].flatMap((m, j) => (m ? [ids[j + 1]!] : []));
  const decoder = tokenizer.decoder([1]);
  let text = '';
  for (const id of learned.slice(0, -1)) text += decoder.push(id);
  text += decoder.end();
  t.ok(text.includes('hi') && text.includes('bye now'), `learned text: ${JSON.stringify(text)}`);
  t.notOk(
    text.includes('hello') || text.includes('brief') || text.includes('and now'),
    'prompt turns are not learned',
  );
  t.equal(
    learned.at(-1),
    tokenizer.stopIds[0],
    'the stop id after the last assistant turn is learned',
  );
});

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
    const error = await readTrainingData(path, { tokenizer, seqLen: 64, renderChat }).catch(
      (e: Error) => e,
    );
    t.match(
      error,
      { code, message: new RegExp(message.replace(/[[\]{}()*+?.\\^$|]/g, '\\$&')) },
      message,
    );
  }
  const chatPath = await data(t, [
    '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}',
  ]);
  await t.rejects(readTrainingData(chatPath, { tokenizer, seqLen: 64 }), {
    code: TrainingDataInvalidError.code,
    message: /no chat renderer/,
  });
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
