/**
 * Chat templates rendered by SwarmBee (@huggingface/jinja) against transformers'
 * `apply_chat_template(messages, add_generation_prompt=True, tokenize=True)`: the same
 * token ids and text for Llama 3, Qwen3 (its thinking toggle: default, false, true),
 * Gemma 3 and Llama 2 templates — one message, system + user, multi-turn with a system
 * message, a conversation ending with an assistant message, unicode — BOS written by
 * the template and never added again; a template of the fixture's own that leans on
 * defaults (date_string), tools being none, tojson, namespace, loop controls, slices;
 * a conversation a template refuses (raise_exception) as a coded error naming the
 * template; the end-of-turn token each template writes after a reply.
 * Reference: packages/model/test/fixtures/tokenizers.json, made by
 * scripts/fixtures/tokenizer_reference.py with transformers 5.18.0 and jinja2 3.1.6.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChatTemplateInvalidError, ChatTemplateRenderError } from '@swarmbee/core';
import {
  ChatTemplate,
  encodeChat,
  HfTokenizer,
  plainChatText,
  readHfTokenizerFiles,
} from '@swarmbee/model';
import t from 'tap';
import { haveSharedModel } from '../../../test/helpers/shared-models.js';
import { readChatTemplate } from '../src/hf/chat-template-files.js';
import { specialTokensOf } from '../src/tokenizer/chat-template.js';
import { MODEL_VOCAB, TOKENIZER_FIXTURES, tokenizerDir } from './helpers/tokenizer-fixtures.js';

/** The end-of-turn token each template writes after an assistant's message. */
const END_OF_TURN: Record<string, string> = {
  llama3: '<|eot_id|>',
  qwen3: '<|im_end|>',
  gemma3: '<end_of_turn>',
  llama2: '</s>',
};

for (const [name, recorded] of Object.entries(TOKENIZER_FIXTURES.tokenizers_recorded)) {
  t.test(`${name}: conversations render to transformers' ids`, async (t) => {
    const dir = tokenizerDir(recorded);
    if (name === 'llama2' && !haveSharedModel(t, dir)) return;
    if (!existsSync(dir)) throw new Error(`${dir} is missing: run npm ci`);
    const { tokenizer, files } = await readHfTokenizerFiles(
      dir,
      { eosTokenIds: [] },
      MODEL_VOCAB[name]!,
    );
    t.ok(tokenizer.chatTemplate, 'the template of tokenizer_config.json is found');
    t.equal(files.chatTemplate?.source, 'tokenizer_config.json');
    const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
    const feature = new ChatTemplate(
      TOKENIZER_FIXTURES.feature_template,
      specialTokensOf(config),
      'the fixture’s feature template',
    );
    const withFeature = HfTokenizer.parse(
      JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')),
      config,
      files.settings,
      MODEL_VOCAB[name]!,
      dir,
      feature,
    );
    for (const chat of recorded.chats) {
      const options =
        chat.options.enable_thinking === undefined
          ? {}
          : { enableThinking: chat.options.enable_thinking };
      const label = `${chat.template ?? 'model'} template, ${chat.conversation}${
        options.enableThinking === undefined ? '' : `, enable_thinking ${options.enableThinking}`
      }`;
      const withTemplate = chat.template === 'feature' ? withFeature : tokenizer;
      if (chat.error !== undefined) {
        t.throws(
          () => encodeChat(withTemplate, chat.messages, options),
          { code: ChatTemplateRenderError.code, message: chat.error },
          `${label}: refused as transformers refuses it`,
        );
        continue;
      }
      t.equal(
        withTemplate.chatTemplate!.render(chat.messages, options),
        chat.text,
        `${label}: text`,
      );
      t.same(encodeChat(withTemplate, chat.messages, options), chat.ids, `${label}: ids`);
    }
    const endOfTurn = tokenizer.tokenId(END_OF_TURN[name]!)!;
    t.equal(files.settings.endOfTurnId, endOfTurn, `end of turn: ${END_OF_TURN[name]}`);
    t.ok(tokenizer.stopIds.includes(endOfTurn), 'and it stops generation');
  });
}

t.test('templates without the message API: the plain fallback joins the messages', async (t) => {
  t.equal(
    plainChatText([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Once upon a time' },
      { role: 'assistant', content: '' },
    ]),
    'Be brief.\nOnce upon a time',
  );
});

t.test('where a checkpoint keeps its template', async (t) => {
  const root = t.testdir({
    jinja: { 'chat_template.jinja': '{{ messages[0].content }}!' },
    named: {},
    nodefault: {},
    bad: {},
  });
  const config = { chat_template: 'from the config' };
  t.same(
    await readChatTemplate(join(root, 'jinja'), config),
    {
      text: '{{ messages[0].content }}!',
      source: 'chat_template.jinja',
    },
    'chat_template.jinja wins over tokenizer_config.json, as in transformers',
  );
  t.same(
    await readChatTemplate(join(root, 'named'), {
      chat_template: [
        { name: 'tool_use', template: 'tools' },
        { name: 'default', template: 'plain' },
      ],
    }),
    { text: 'plain', source: 'tokenizer_config.json' },
    'the list form: the default template',
  );
  await t.rejects(
    readChatTemplate(join(root, 'nodefault'), { chat_template: [{ name: 'rag', template: 'x' }] }),
    { code: ChatTemplateInvalidError.code, message: /names templates rag but none "default"/ },
  );
  await t.rejects(readChatTemplate(join(root, 'bad'), { chat_template: 7 }), {
    code: ChatTemplateInvalidError.code,
    message: /tokenizer_config\.json: chat_template is number/,
  });
  t.equal(await readChatTemplate(join(root, 'bad'), {}), undefined, 'no template');
  t.throws(() => new ChatTemplate('{% for m in messages %}', {}, 'broken.jinja'), {
    code: ChatTemplateInvalidError.code,
    message: /^broken\.jinja: the chat template cannot be parsed/,
  });
  const failing = new ChatTemplate('{{ messages[0].content.nope() }}', {}, 'failing.jinja');
  t.throws(() => failing.render([{ role: 'user', content: 'x' }]), {
    code: ChatTemplateRenderError.code,
    message: /^failing\.jinja: the chat template failed: /,
  });
});
