/**
 * What a request asks the model to continue — a text, chat messages or token ids — and
 * what preparing it gives: the ids, and the prompt's text when it is echoed. Preparing
 * grows with the prompt (tokenizing, rendering chat, decoding an echo), so the
 * coordinator does it off its event loop ({@link TokenizerPool}).
 */

/** One chat message as the API takes it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'developer';
  content: string | { type: 'text'; text: string }[];
  name?: string;
}

export type PromptInput = { text: string } | { messages: ChatMessage[] } | { ids: number[] };

export interface PromptJob {
  prompt: PromptInput;
  /** Also decode the prompt's ids into text (`echo`). */
  echo: boolean;
  /** Ids the caller accepts: a longer prompt comes back as its count alone. */
  maxIds: number;
}

export interface PreparedPrompt {
  /** Token ids, BOS first when the tokenizer adds one; absent when more than `maxIds`. */
  ids: number[] | undefined;
  /** How many ids the prompt has. */
  count: number;
  /** The prompt's ids decoded, when echo was asked for; else ''. */
  echo: string;
}

/** Prepares prompts; implemented by {@link TokenizerPool}. */
export interface PromptPreparer {
  prepare(job: PromptJob, options?: { signal?: AbortSignal }): Promise<PreparedPrompt>;
  close(): Promise<void>;
}

/**
 * SwarmBee's chat template for models without one of their own (llama2.c story
 * models): the messages' text, one per line, which the model continues.
 */
export function renderChat(messages: readonly ChatMessage[]): string {
  return messages
    .filter((m) => m.role !== 'assistant' || m.content !== '')
    .map(messageText)
    .join('\n');
}

/**
 * Characters of text a prompt holds before any template: a text's length, or the
 * messages' text. A rendered chat prompt is at least this long, so a limit on it can be
 * checked before anything is rendered or tokenized.
 */
export function promptChars(prompt: PromptInput): number {
  if ('text' in prompt) return prompt.text.length;
  if ('ids' in prompt) return 0;
  let chars = 0;
  for (const message of prompt.messages) {
    if (typeof message.content === 'string') chars += message.content.length;
    else for (const part of message.content) chars += part.text.length;
  }
  return chars;
}

function messageText(message: ChatMessage): string {
  return typeof message.content === 'string'
    ? message.content
    : message.content.map((part) => part.text).join('');
}
