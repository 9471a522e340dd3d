/** The tokenizer pool: prompts prepared off the event loop, bounded, abortable, surviving a dead thread. */
import { join } from 'node:path';
import { renderChat, TokenizerPool } from '@swarmbee/coordinator';
import {
  AbortedError,
  InvalidArgumentError,
  QueueFullError,
  TokenizerFailedError,
} from '@swarmbee/core';
import { decodeIds, importHf, importLlama2c, loadTokenizer, type ModelDir } from '@swarmbee/model';
import t, { type Test } from 'tap';
import { writeHfStories260K } from '../../../test/helpers/hf-stories260k.js';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';

async function stories260k(t: Test): Promise<ModelDir | undefined> {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return undefined;
  return importLlama2c({
    checkpoint: STORIES260K.checkpoint,
    tokenizer: STORIES260K.tokenizer,
    out: join(t.testdir(), 'm'),
  });
}

/** A text long enough to keep one thread busy for a while (about a second). */
const LONG_TEXT = 'Once upon a time, a little cat sat on a mat. '.repeat(20_000);

t.test('prepares text, chat and echoed ids as the tokenizer does in process', async (t) => {
  const dir = await stories260k(t);
  if (!dir) return;
  const tokenizer = await loadTokenizer(dir);
  const pool = await TokenizerPool.start(dir);
  t.teardown(() => pool.close());
  const text = 'Once upon a time';
  t.same(await pool.prepare({ prompt: { text }, echo: true, maxIds: 512 }), {
    ids: [1, 403, 407, 261, 378],
    count: 5,
    echo: 'Once upon a time',
  });
  const messages = [
    { role: 'system' as const, content: 'Tell a story.' },
    { role: 'user' as const, content: [{ type: 'text' as const, text: 'Lily and Tom' }] },
  ];
  const chat = await pool.prepare({ prompt: { messages }, echo: false, maxIds: 512 });
  t.same(chat.ids, tokenizer.encode(renderChat(messages)));
  t.equal(chat.echo, '', 'no echo unless asked for');
  const ids = tokenizer.encode('The cat sat. ☃');
  const echoed = await pool.prepare({ prompt: { ids }, echo: true, maxIds: 512 });
  t.equal(echoed.echo, decodeIds(tokenizer, ids));
  const many = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      pool.prepare({ prompt: { text: `story ${i}` }, echo: false, maxIds: 512 }),
    ),
  );
  for (const [i, p] of many.entries()) t.same(p.ids, tokenizer.encode(`story ${i}`));
  const over = await pool.prepare({ prompt: { text: LONG_TEXT }, echo: true, maxIds: 512 });
  t.equal(over.ids, undefined, 'a prompt over maxIds comes back as its count alone');
  t.equal(over.count, tokenizer.encode(LONG_TEXT).length);
});

t.test('a full queue refuses at once; an aborted job leaves the queue or is dropped', async (t) => {
  const dir = await stories260k(t);
  if (!dir) return;
  const pool = await TokenizerPool.start(dir, { threads: 1, maxQueued: 2 });
  t.teardown(() => pool.close());
  const job = (text: string) => ({ prompt: { text }, echo: false, maxIds: 10 });
  const running = new AbortController();
  const busy = pool.prepare(job(LONG_TEXT), { signal: running.signal }).catch((e) => e);
  const waiting = pool.prepare(job('Once upon a time'));
  const queued = new AbortController();
  const abandoned = pool.prepare(job('second in line'), { signal: queued.signal }).catch((e) => e);
  t.equal(pool.queued, 2);
  await t.rejects(pool.prepare(job('one too many')), {
    code: QueueFullError.code,
    message: /limit 2/,
  });
  queued.abort(new Error('client went away'));
  t.match(await abandoned, { code: AbortedError.code, message: /client went away/ });
  t.equal(pool.queued, 1, 'an aborted job leaves the queue at once');
  running.abort();
  t.match(await busy, { code: AbortedError.code }, 'a running job is answered at once');
  t.same((await waiting).ids, [1, 403, 407, 261, 378], 'and the thread serves the next');
  await t.rejects(pool.prepare(job('x'), { signal: AbortSignal.abort() }), {
    code: AbortedError.code,
  });
});

t.test('a thread that dies fails its own job only and is replaced', async (t) => {
  const dir = await stories260k(t);
  if (!dir) return;
  const lines: string[] = [];
  // A heap this small cannot hold the tokens of a few megabytes of text.
  const pool = await TokenizerPool.start(dir, {
    threads: 1,
    threadHeapMib: 24,
    log: (line) => lines.push(line),
  });
  t.teardown(() => pool.close());
  const huge = pool.prepare({ prompt: { text: LONG_TEXT.repeat(4) }, echo: false, maxIds: 10 });
  const next = pool.prepare({ prompt: { text: 'Once upon a time' }, echo: false, maxIds: 10 });
  await t.rejects(huge, { code: TokenizerFailedError.code, message: /memory/ });
  t.same((await next).ids, [1, 403, 407, 261, 378], 'the job behind it is served by a new thread');
  t.match(lines.join('\n'), /tokenizer thread failed: .*memory.*; starting another/);
});

t.test('closing fails what waits; a model without a tokenizer refuses text', async (t) => {
  const dir = await stories260k(t);
  if (!dir) return;
  const pool = await TokenizerPool.start(dir, { threads: 1 });
  const running = pool.prepare({ prompt: { text: LONG_TEXT }, echo: false, maxIds: 10 });
  const queued = pool.prepare({ prompt: { text: 'x' }, echo: false, maxIds: 10 });
  const outcomes = Promise.allSettled([running, queued]);
  await pool.close();
  for (const outcome of await outcomes)
    t.match(outcome, { status: 'rejected', reason: { code: TokenizerFailedError.code } });
  await t.rejects(pool.prepare({ prompt: { text: 'x' }, echo: false, maxIds: 10 }), {
    code: TokenizerFailedError.code,
  });

  const { tokenizer: _dropped, ...manifest } = dir.manifest;
  const bare = await TokenizerPool.start({ ...dir, manifest }, { threads: 1 });
  t.teardown(() => bare.close());
  await t.rejects(bare.prepare({ prompt: { text: 'x' }, echo: false, maxIds: 10 }), {
    code: InvalidArgumentError.code,
    message: /array of token ids/,
  });
  const ids = await bare.prepare({ prompt: { ids: [1, 5] }, echo: true, maxIds: 10 });
  t.same(ids, { ids: [1, 5], count: 2, echo: '' });
});

t.test('a tokenizer.json model: its threads encode as @huggingface/tokenizers does', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  await writeHfStories260K(join(root, 'hf'));
  const dir = await importHf({ dir: join(root, 'hf'), out: join(root, 'm') });
  const tokenizer = await loadTokenizer(dir);
  t.equal(dir.manifest.tokenizer?.kind, 'hf');
  t.ok(tokenizer.maxTokenChars >= 2, `longest token: ${tokenizer.maxTokenChars} characters`);
  const pool = await TokenizerPool.start(dir, { threads: 1 });
  t.teardown(() => pool.close());
  for (const text of ['Once upon a time', 'café ☕ 日本語', LONG_TEXT.slice(0, 5000)]) {
    const prepared = await pool.prepare({ prompt: { text }, echo: true, maxIds: 100_000 });
    t.same(prepared.ids, tokenizer.encode(text));
    t.equal(prepared.echo, decodeIds(tokenizer, tokenizer.encode(text)));
  }
});
