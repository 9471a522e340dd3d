/**
 * A conversation as prompt ids: through the model's chat template when it has one,
 * exactly as transformers' `apply_chat_template(messages, add_generation_prompt=True,
 * tokenize=True)` gives them — the rendered text encoded without adding BOS, since
 * templates that want one write it themselves (no double BOS) — and otherwise
 * (llama2.c story models) the messages' text one per line, encoded as a prompt
 * (BOS first), which the model continues. Pure and synchronous.
 */
import type { ChatMessage, ChatTemplateOptions } from './chat-template.js';
import type { Tokenizer } from './tokenizer.js';

export function encodeChat(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions = {},
): number[] {
  const template = tokenizer.chatTemplate;
  if (template) return tokenizer.encode(template.render(messages, options), { bos: false });
  return tokenizer.encode(plainChatText(messages));
}

/**
 * SwarmBee's rendering for models without a template: the messages' text, one per
 * line, an empty assistant message left out.
 */
export function plainChatText(messages: readonly ChatMessage[]): string {
  return messages
    .filter((m) => m.role !== 'assistant' || m.content !== '')
    .map((m) => m.content)
    .join('\n');
}
