/**
 * The tokenizer pool: completions prepared off the event loop — API bodies parsed and
 * checked, prompts rendered, tokenized and echoed — bounded, abortable, surviving a dead
 * thread.
 */
import { join } from 'node:path';
import {
  type CompletionLimits,
  type CompletionRequest,
  TokenizerPool,
} from '@swarmbee/coordinator';
import {
  AbortedError,
  ContextOverflowError,
  InvalidArgumentError,
  QueueFullError,
  RequestTooLargeError,
  TokenizerFailedError,
} from '@swarmbee/core';
import { decodeIds, encodeChat, importHf, loadTokenizer } from '@swarmbee/model';
import t from 'tap';
import { writeHfStories260K } from '../../../test/helpers/hf-stories260k.js';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';
import { stories260kDir } from '../../../test/helpers/stories260k.js';
import type { CompletionJob } from '../src/prompt/prompt.js';

const LIMITS: CompletionLimits = {
  maxSeqLen: 512,
  vocabSize: 512,
  maxPromptTokens: 512,
  maxPromptChars: 2_000_000,
  maxTokens: 512,
};
const GREEDY = { temperature: 0, topK: 0, topP: 1 };

function job(
  prompt: CompletionRequest['prompt'],
  extra: Partial<CompletionRequest> = {},
  limits: Partial<CompletionLimits> = {},
): CompletionJob {
  return {
    source: { request: { prompt, sampling: GREEDY, ...extra } },
    limits: { ...LIMITS, ...limits },
  };
}

function body(endpoint: 'completions' | 'chat', value: unknown): CompletionJob {
  return { source: { endpoint, body: Buffer.from(JSON.stringify(value)) }, limits: LIMITS };
}

/** A text long enough to keep one thread busy for a while (about a second). */
const LONG_TEXT = 'Once upon a time, a little cat sat on a mat. '.repeat(20_000);

t.test('prepares text, chat, ids and API bodies as the tokenizer does in process', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const tokenizer = await loadTokenizer(dir);
  const pool = await TokenizerPool.start(dir);
  t.teardown(() => pool.close());
  const text = await pool.prepare(job('Once upon a time', { echo: true, maxTokens: 7 }));
  t.same(text.request.prompt, [1, 403, 407, 261, 378]);
  t.equal(text.echo, 'Once upon a time');
  t.equal(text.maxTokens, 7);
  t.equal(text.stream, false);
  const messages = [
    { role: 'system', content: 'Tell a story.' },
    { role: 'user', content: 'Lily and Tom' },
  ];
  const chat = await pool.prepare(job({ messages }));
  t.same(chat.request.prompt, encodeChat(tokenizer, messages));
  t.equal(chat.echo, '', 'no echo unless asked for');
  const ids = tokenizer.encode('The cat sat. ☃');
  const echoed = await pool.prepare(job(ids, { echo: true }));
  t.equal(echoed.echo, decodeIds(tokenizer, ids));
  const many = await Promise.all(
    Array.from({ length: 20 }, (_, i) => pool.prepare(job(`story ${i}`))),
  );
  for (const [i, p] of many.entries()) t.same(p.request.prompt, tokenizer.encode(`story ${i}`));

  const api = await pool.prepare(
    body('completions', { prompt: 'Once upon a time', max_tokens: 3, stream: true, stop: '.' }),
  );
  t.same(api.request.prompt, [1, 403, 407, 261, 378], 'an API body is parsed and encoded');
  t.match(api, { stream: true, maxTokens: 3, request: { stop: ['.'], sampling: { topP: 1 } } });
  const apiChat = await pool.prepare(
    body('chat', {
      messages: [
        { role: 'developer', content: 'Tell a story.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Lily and ' },
            { type: 'text', text: 'Tom' },
          ],
        },
      ],
      max_completion_tokens: 2,
    }),
  );
  t.same(apiChat.request.prompt, chat.request.prompt);
  await t.rejects(pool.prepare(body('completions', { prompt: 'x', stop: Array(9).fill('.') })), {
    code: InvalidArgumentError.code,
    param: 'stop',
    message: /at most 8 stop strings/,
  });
  await t.rejects(
    pool.prepare({
      source: { endpoint: 'chat', body: Buffer.from('{"messages": [') },
      limits: LIMITS,
    }),
    { code: InvalidArgumentError.code, param: 'body', message: /not valid JSON/ },
  );
  await t.rejects(
    pool.prepare({ source: { endpoint: 'completions', body: null }, limits: LIMITS }),
    {
      param: 'body',
      message: /^body: expected a JSON object with a "prompt", got nothing$/,
    },
  );
});

t.test(
  'limits: characters before tokenizing, then tokens; ids by count and vocabulary',
  async (t) => {
    const dir = await stories260kDir(t);
    if (!dir) return;
    const pool = await TokenizerPool.start(dir, { threads: 1 });
    t.teardown(() => pool.close());
    await t.rejects(pool.prepare(job('x'.repeat(101), {}, { maxPromptChars: 100 })), {
      code: RequestTooLargeError.code,
      param: 'prompt',
      message: /101 characters; this server tokenizes at most 100 \(--max-prompt-chars\)/,
    });
    await t.rejects(pool.prepare(job(' x'.repeat(40), {}, { maxPromptTokens: 20 })), {
      code: RequestTooLargeError.code,
      message: /this server accepts at most 20 \(--max-prompt-tokens\)/,
    });
    await t.rejects(pool.prepare(job(LONG_TEXT)), { code: ContextOverflowError.code });
    await t.rejects(pool.prepare(job([1, 512])), {
      code: 'SWARMBEE_ERR_TOKEN_OUT_OF_VOCAB',
      param: 'prompt',
    });
    await t.rejects(pool.prepare(body('completions', { prompt: Array(250_000).fill(5) })), {
      code: ContextOverflowError.code,
    });
    await t.rejects(pool.prepare(job('x', { maxTokens: 513 })), {
      code: InvalidArgumentError.code,
      param: 'max_tokens',
    });
  },
);

t.test('a full queue refuses at once; an aborted job leaves the queue or is dropped', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const pool = await TokenizerPool.start(dir, { threads: 1, maxQueued: 2 });
  t.teardown(() => pool.close());
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
  t.same((await waiting).request.prompt, [1, 403, 407, 261, 378], 'the thread serves the next');
  await t.rejects(pool.prepare(job('x'), { signal: AbortSignal.abort() }), {
    code: AbortedError.code,
  });
});

t.test('a thread that dies fails its own job only and is replaced', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const lines: string[] = [];
  // A heap this small cannot hold the tokens of a few megabytes of text.
  const pool = await TokenizerPool.start(dir, {
    threads: 1,
    threadHeapMib: 24,
    log: (line) => lines.push(line),
  });
  t.teardown(() => pool.close());
  const huge = pool.prepare(job(LONG_TEXT.repeat(4), {}, { maxPromptChars: 10_000_000 }));
  const next = pool.prepare(job('Once upon a time'));
  await t.rejects(huge, { code: TokenizerFailedError.code, message: /memory/ });
  t.same((await next).request.prompt, [1, 403, 407, 261, 378], 'served by a new thread');
  t.match(lines.join('\n'), /tokenizer thread failed: .*memory.*; starting another/);
});

t.test('closing fails what waits; a model without a tokenizer refuses text', async (t) => {
  const dir = await stories260kDir(t);
  if (!dir) return;
  const pool = await TokenizerPool.start(dir, { threads: 1 });
  const outcomes = Promise.allSettled([pool.prepare(job(LONG_TEXT)), pool.prepare(job('x'))]);
  await pool.close();
  for (const outcome of await outcomes)
    t.match(outcome, { status: 'rejected', reason: { code: TokenizerFailedError.code } });
  await t.rejects(pool.prepare(job('x')), { code: TokenizerFailedError.code });

  const { tokenizer: _dropped, ...manifest } = dir.manifest;
  const bare = await TokenizerPool.start({ ...dir, manifest }, { threads: 1 });
  t.teardown(() => bare.close());
  await t.rejects(bare.prepare(job('x')), {
    code: InvalidArgumentError.code,
    message: /array of token ids/,
  });
  const ids = await bare.prepare(job([1, 5], { echo: true }));
  t.same(ids.request.prompt, [1, 5]);
  t.equal(ids.echo, '');
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
  for (const text of ['Once upon a time', 'café ☕ 日本語', LONG_TEXT.slice(0, 1000)]) {
    const prepared = await pool.prepare(job(text, { echo: true }));
    t.same(prepared.request.prompt, tokenizer.encode(text));
    t.equal(prepared.echo, decodeIds(tokenizer, tokenizer.encode(text)));
  }
});
