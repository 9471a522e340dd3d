/**
 * Where a checkpoint dir keeps its chat template, as transformers 5 looks for it:
 * `chat_template.jinja` beside the tokenizer (newer repositories) wins over
 * tokenizer_config.json's `chat_template`, which is a string or a list of named
 * templates (`default` is the one used without tools or documents). And which token
 * ends an assistant's turn in it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChatTemplateInvalidError } from '@swarmbee/core';
import { CHAT_TEMPLATE_FILE, type ChatTemplate } from '../tokenizer/chat-template.js';
import { HF_TOKENIZER_CONFIG_FILE, type HfTokenizer } from '../tokenizer/hf-tokenizer.js';

export interface FoundChatTemplate {
  text: string;
  /** The file it was read from (`chat_template.jinja` or `tokenizer_config.json`). */
  source: string;
}

/** The checkpoint's default chat template, or undefined when it has none. */
export async function readChatTemplate(
  dir: string,
  config: Record<string, unknown>,
): Promise<FoundChatTemplate | undefined> {
  const file = join(dir, CHAT_TEMPLATE_FILE);
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new ChatTemplateInvalidError(`${file} cannot be read: ${error.message}`, {
      cause: error,
    });
  });
  if (text !== undefined) return { text, source: CHAT_TEMPLATE_FILE };
  const value = config.chat_template;
  const where = `${join(dir, HF_TOKENIZER_CONFIG_FILE)}: chat_template`;
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return { text: value, source: HF_TOKENIZER_CONFIG_FILE };
  if (Array.isArray(value)) {
    const named = new Map<string, string>();
    for (const entry of value) {
      const { name, template } = (entry ?? {}) as { name?: unknown; template?: unknown };
      if (typeof name !== 'string' || typeof template !== 'string')
        throw new ChatTemplateInvalidError(
          `${where} is a list whose entries are not {"name", "template"} strings`,
        );
      named.set(name, template);
    }
    const chosen = named.get('default');
    if (chosen === undefined)
      throw new ChatTemplateInvalidError(
        `${where} names templates ${[...named.keys()].join(', ')} but none "default"; SwarmBee uses the default one`,
      );
    return { text: chosen, source: HF_TOKENIZER_CONFIG_FILE };
  }
  throw new ChatTemplateInvalidError(`${where} is ${typeof value}, not a string or a list`);
}

/** A message text no template writes by itself. */
const PROBE = 'SwarmBee end-of-turn probe';

/**
 * The special token the template writes right after an assistant's message (only
 * whitespace between): the token a chat model samples to end its reply. Found by
 * rendering a user and an assistant turn; undefined when the template refuses that
 * conversation or follows the reply with ordinary text.
 */
export function findEndOfTurn(template: ChatTemplate, tokenizer: HfTokenizer): number | undefined {
  let text: string;
  try {
    text = template.render(
      [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: PROBE },
      ],
      { addGenerationPrompt: false },
    );
  } catch {
    return undefined;
  }
  const at = text.indexOf(PROBE);
  if (at < 0) return undefined;
  const after = text.slice(at + PROBE.length).trimStart();
  let best: { id: number; length: number } | undefined;
  for (const [id, content] of tokenizer.specialTokens()) {
    if (after.startsWith(content) && content.length > (best?.length ?? 0))
      best = { id, length: content.length };
  }
  return best?.id;
}
