/**
 * `swarmbee chat` as a real process, typed into through stdin: in process (--model)
 * and against a running coordinator (--url). stories260K has no chat template: the
 * reply to "Once upon a time" is run.c's greedy story. stories260K as a Hugging Face
 * checkpoint with a chat template: each reply is the greedy continuation of the whole
 * conversation rendered through the template (two turns, so the history is in it), the
 * same in process and over the API; /reset and /system; tokens/s after every reply;
 * Ctrl-C stops a reply and the session goes on; Ctrl-D ends it with exit code 0.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TextStream } from '@swarmbee/coordinator';
import { generate, LocalPipeline } from '@swarmbee/engine';
import { type ChatMessage, encodeChat, type LlamaModelDir, loadTokenizer } from '@swarmbee/model';
import t from 'tap';
import { importStoryChatModel } from './helpers/chat-model.js';
import { ChatProcess } from './helpers/chat-process.js';
import { importStories260k } from './helpers/cli.js';
import { startCluster } from './helpers/cluster.js';
import { haveSharedModel, STORIES260K } from './helpers/shared-models.js';

const GREEDY = ['--temperature', '0'];
const REPLY_TOKENS = 24;

/** The greedy reply to `messages` through the model's template, as the library generates it. */
async function expectedReply(dir: LlamaModelDir, messages: ChatMessage[]): Promise<string> {
  const tokenizer = await loadTokenizer(dir);
  const promptIds = encodeChat(tokenizer, messages);
  const pipeline = await LocalPipeline.create(dir, { stages: 1 });
  try {
    const [result] = await generate(pipeline, [
      {
        promptIds,
        steps: promptIds.length + REPLY_TOKENS - 1,
        sampling: { temperature: 0, topP: 1, topK: 0 },
        stopIds: [...tokenizer.stopIds],
      },
    ]);
    const stream = new TextStream(tokenizer, promptIds, []);
    for (const id of result!.ids.slice(promptIds.length)) stream.push(id);
    stream.end();
    return stream.text;
  } finally {
    await pipeline.close();
  }
}

t.test('stories260K in process: no template, run.c’s story; commands; Ctrl-D', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const model = await importStories260k(t.testdir());
  const chat = new ChatProcess(['--model', model, ...GREEDY, '--max-tokens', '60']);
  t.teardown(() => chat.child.kill('SIGKILL'));
  await chat.waitFor('stderr', /chatting with stories260K/);
  const { reply, stats } = await chat.say('Once upon a time');
  const reference = await readFile(STORIES260K.refOnceUponATime, 'utf8');
  t.equal(`Once upon a time${reply}\n`, reference, 'the reply is run.c’s greedy continuation');
  t.match(stats, /^\[60 tokens, \d+\.\d tok\/s, max tokens reached\]/, 'tokens/s after the reply');
  chat.type('/system You tell stories.');
  await chat.waitFor('stderr', /system message set; conversation reset/);
  chat.type('/reset');
  await chat.waitFor('stderr', /conversation reset\)\n/);
  chat.type('/nope');
  await chat.waitFor('stderr', /unknown command \/nope; commands:\n {2}\/reset/);
  t.equal(await chat.end(), 0, 'Ctrl-D ends the session');
});

t.test('the embedded default model: Ctrl-C stops the reply, not the program', async (t) => {
  const chat = new ChatProcess([...GREEDY, '--max-tokens', '500', '--stages', '2']);
  t.teardown(() => chat.child.kill('SIGKILL'));
  await chat.waitFor('stderr', /chatting with synthetic/);
  const out = chat.stdout.length;
  chat.type('hello');
  await chat.waitFor('stdout', /\S/, out + 2);
  chat.child.kill('SIGINT');
  const [stats] = await chat.waitFor('stderr', /\[(\d+) tokens, [\d.]+ tok\/s, stopped\]/);
  t.ok(Number(/\[(\d+)/.exec(stats!)![1]) < 500, `stopped early: ${stats}`);
  const second = await chat.say('again');
  t.match(second.stats, /max tokens reached|tok\/s\]/, 'the session goes on');
  chat.child.kill('SIGINT');
  await chat.waitFor('stderr', /Ctrl-C again or Ctrl-D to exit/);
  chat.child.kill('SIGINT');
  t.equal(await chat.exited, 0, 'a second Ctrl-C at the prompt exits');
});

t.test('a chat template, in process and over a coordinator: multi-turn replies', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const dir = await importStoryChatModel(join(root, 'ckpt'), join(root, 'm'));
  const turn1: ChatMessage[] = [
    { role: 'system', content: 'A story.' },
    { role: 'user', content: 'Tell me about Lily.' },
  ];
  const want1 = await expectedReply(dir, turn1);
  const turn2: ChatMessage[] = [
    ...turn1,
    { role: 'assistant', content: want1 },
    { role: 'user', content: 'What did Ben do?' },
  ];
  const want2 = await expectedReply(dir, turn2);
  t.not(want1, want2, 'the two turns differ');
  const args = [...GREEDY, '--max-tokens', String(REPLY_TOKENS), '--system', 'A story.'];

  const local = new ChatProcess(['--model', dir.path, '--stages', '2', ...args]);
  t.teardown(() => local.child.kill('SIGKILL'));
  t.equal((await local.say('Tell me about Lily.')).reply, want1, 'in process: turn 1');
  t.equal(
    (await local.say('What did Ben do?')).reply,
    want2,
    'in process: turn 2, with the history',
  );
  t.equal(await local.end(), 0);

  const cluster = await startCluster({ model: dir.path, workers: 1, root: join(root, 'cluster') });
  t.teardown(() => cluster.stop());
  const remote = new ChatProcess(['--url', cluster.apiUrl, ...args]);
  t.teardown(() => remote.child.kill('SIGKILL'));
  const first = await remote.say('Tell me about Lily.');
  t.equal(first.reply, want1, 'over the API: turn 1');
  t.match(first.stats, /^\[\d+ tokens, \d+\.\d tok\/s/, 'tokens/s from the stream');
  t.equal((await remote.say('What did Ben do?')).reply, want2, 'over the API: turn 2');
  remote.type('/reset');
  await remote.waitFor('stderr', /conversation reset\)\n/);
  t.equal((await remote.say('Tell me about Lily.')).reply, want1, 'after /reset, turn 1 again');
  t.equal(await remote.end(), 0);
});
