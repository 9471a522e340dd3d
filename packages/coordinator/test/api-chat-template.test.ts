/**
 * Chat completions through a model's own chat template (stories260K as a Hugging Face
 * checkpoint with a template beside it): the prompt is the template's rendering encoded
 * as transformers encodes it (no BOS added to the BOS the template writes), the
 * template's end-of-turn token stops the reply, `chat_template_kwargs.enable_thinking`
 * reaches the template, a conversation the template refuses is a coded 400, and
 * /v1/completions with text keeps the plain encoding.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createApi, GenerationService, Metrics, TokenizerPool } from '@swarmbee/coordinator';
import { ChatTemplateRenderError, InvalidArgumentError } from '@swarmbee/core';
import { LocalPipeline, pipelineTransport, Scheduler } from '@swarmbee/engine';
import { encodeChat, loadTokenizer } from '@swarmbee/model';
import t from 'tap';
import { importStoryChatModel, STORY_CHAT_TEMPLATE } from '../../../test/helpers/chat-model.js';
import { haveSharedModel, STORIES260K } from '../../../test/helpers/shared-models.js';

t.test('chat completions use the model’s template', async (t) => {
  if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
  const root = t.testdir();
  const dir = await importStoryChatModel(join(root, 'ckpt'), join(root, 'm'));
  const ref = dir.manifest.tokenizer;
  if (ref?.kind !== 'hf') throw new Error('expected an HF tokenizer');
  t.same(
    ref.chatTemplate && { file: ref.chatTemplate.file, source: ref.chatTemplate.source },
    {
      file: 'chat_template.jinja',
      source: 'chat_template.jinja',
    },
    'the template is copied into the model dir and recorded',
  );
  t.equal(await readFile(join(dir.path, 'chat_template.jinja'), 'utf8'), STORY_CHAT_TEMPLATE);
  t.equal(ref.endOfTurnId, 2, 'the template ends a turn with </s>');
  t.ok(ref.stopIds.includes(2));

  const tokenizer = await loadTokenizer(dir);
  const pipeline = await LocalPipeline.create(dir, { stages: 2 });
  t.teardown(() => pipeline.close());
  const scheduler = new Scheduler(pipelineTransport(pipeline), { maxInFlight: 2 });
  const { config, name } = dir.manifest;
  const prompts = await TokenizerPool.start(dir, { threads: 1 });
  t.teardown(() => prompts.close());
  const service = new GenerationService({
    scheduler,
    tokenizer,
    prompts,
    model: { name, vocabSize: config.vocabSize, maxSeqLen: config.maxSeqLen },
  });
  const app = createApi({
    service: () => service,
    health: () => ({ ready: true }),
    metrics: new Metrics({
      queued: () => service.queued,
      active: () => service.active,
      inFlight: () => scheduler.inFlight,
      stages: () => [],
    }),
    modelName: name,
  });
  t.teardown(() => app.close());
  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload });

  const messages = [
    { role: 'system', content: 'A story.' },
    { role: 'user', content: 'Tell me about Lily.' },
    { role: 'assistant', content: 'Lily was a girl.' },
    { role: 'user', content: 'And then?' },
  ];
  const wantIds = encodeChat(tokenizer, messages);
  t.same(
    wantIds.slice(0, 2),
    [1, ...tokenizer.encode('A story.', { bos: false }).slice(0, 1)],
    'one BOS, the template’s',
  );
  const chat = await post('/v1/chat/completions', { messages, max_tokens: 40, temperature: 0 });
  t.equal(chat.statusCode, 200, chat.body);
  const choice = chat.json().choices[0];
  t.same(choice.token_ids.slice(0, wantIds.length), wantIds, 'the prompt is the template’s ids');
  t.equal(chat.json().usage.prompt_tokens, wantIds.length);
  const plain = await post('/v1/completions', {
    prompt: choice.token_ids.slice(0, wantIds.length),
    max_tokens: 40,
    temperature: 0,
  });
  t.same(
    plain.json().choices[0].token_ids,
    choice.token_ids,
    'the same ids as the prompt sent as ids',
  );
  t.equal(choice.message.content, plain.json().choices[0].text);

  const thinking = await post('/v1/chat/completions', {
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 1,
    temperature: 0,
    chat_template_kwargs: { enable_thinking: false },
  });
  t.same(
    thinking.json().choices[0].token_ids.slice(0, -1),
    encodeChat(tokenizer, [{ role: 'user', content: 'Hi' }], { enableThinking: false }),
    'enable_thinking reaches the template',
  );
  const refused = await post('/v1/chat/completions', {
    messages: [
      { role: 'user', content: 'Hi' },
      { role: 'system', content: 'late' },
    ],
  });
  t.equal(refused.statusCode, 400);
  t.equal(refused.json().error.code, ChatTemplateRenderError.code);
  t.match(
    refused.json().error.message,
    /chat_template\.jinja: the chat template refused the conversation: the system message must come first/,
  );
  const unknown = await post('/v1/chat/completions', {
    messages: [{ role: 'user', content: 'Hi' }],
    chat_template_kwargs: { tools: [] },
  });
  t.equal(unknown.statusCode, 400);
  t.equal(unknown.json().error.code, InvalidArgumentError.code);
  t.match(unknown.json().error.message, /chat_template_kwargs/);

  const text = await post('/v1/completions', { prompt: 'Once upon a time', max_tokens: 2 });
  t.equal(
    text.json().usage.prompt_tokens,
    tokenizer.encode('Once upon a time').length,
    '/v1/completions with text: plain encoding',
  );
  t.ok(existsSync(join(dir.path, 'tokenizer_config.json')));
});

t.test(
  'the template’s end-of-turn token ends a reply: finish_reason stop, its text not returned',
  async (t) => {
    if (!haveSharedModel(t, STORIES260K.checkpoint)) return;
    const root = t.testdir();
    // Turns end with <s> here, which stories260K samples when a story is over; it is no EOS id.
    const template = STORY_CHAT_TEMPLATE.replace(
      "m.content + eos_token + '\\n'",
      'm.content + bos_token',
    );
    t.not(template, STORY_CHAT_TEMPLATE);
    const dir = await importStoryChatModel(join(root, 'ckpt'), join(root, 'm'), template);
    const ref = dir.manifest.tokenizer;
    if (ref?.kind !== 'hf') throw new Error('expected an HF tokenizer');
    t.equal(ref.endOfTurnId, 1, 'the end of turn is <s>');
    t.same(ref.stopIds, [2, 1], 'generation_config’s EOS, then the end of turn');
    const tokenizer = await loadTokenizer(dir);
    const pipeline = await LocalPipeline.create(dir, { stages: 1 });
    t.teardown(() => pipeline.close());
    const { config, name } = dir.manifest;
    const prompts = await TokenizerPool.start(dir, { threads: 1 });
    t.teardown(() => prompts.close());
    const service = new GenerationService({
      scheduler: new Scheduler(pipelineTransport(pipeline), { maxInFlight: 1 }),
      tokenizer,
      prompts,
      model: { name, vocabSize: config.vocabSize, maxSeqLen: config.maxSeqLen },
    });
    const messages = [{ role: 'user', content: 'Once upon a time' }];
    const reply = await service.complete({
      prompt: { messages },
      maxTokens: 400,
      sampling: { temperature: 0, topP: 1, topK: 0 },
    });
    t.equal(reply.finishReason, 'stop', `stopped after ${reply.completionTokens} tokens`);
    t.ok(reply.completionTokens < 400);
    t.not(reply.tokenIds.at(-1), 1, 'the end-of-turn token is not part of the reply');
    t.notMatch(reply.text, /<s>/);
    const longer = await service.complete({
      prompt: { messages },
      maxTokens: reply.completionTokens + 5,
      sampling: { temperature: 0, topP: 1, topK: 0 },
      ignoreEos: true,
    });
    t.equal(longer.tokenIds[reply.tokenIds.length], 1, 'what was sampled next was <s>');
  },
);
