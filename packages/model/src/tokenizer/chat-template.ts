/**
 * A model's Jinja chat template, rendered with @huggingface/jinja the way
 * transformers' `apply_chat_template` renders it: the same variables (the messages,
 * `add_generation_prompt`, `tools` and `documents` as none, the special tokens by
 * name, caller options such as `enable_thinking`), the same globals
 * (`raise_exception`, `strftime_now`), trimmed and left-stripped blocks. Whatever
 * the template leaves undefined keeps the template's own default (Llama 3.1's date,
 * Qwen3's thinking). Pure and synchronous: it can run on any thread.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { ChatTemplateInvalidError, ChatTemplateRenderError } from '@swarmbee/core';

/** One message of a conversation; content parts are joined into text before rendering. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** What a request may pass to the template besides the messages. */
export interface ChatTemplateOptions {
  /**
   * Open the assistant's turn after the messages (transformers' `add_generation_prompt`).
   * Default true: the model writes the reply.
   */
  addGenerationPrompt?: boolean;
  /**
   * `enable_thinking` for templates that read it (Qwen3): false asks for a reply without
   * a thinking block. Default: undefined — the template's own default (Qwen3 thinks).
   */
  enableThinking?: boolean;
}

/** The file name transformers saves a model's default template under (and SwarmBee's model dirs keep). */
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

export class ChatTemplate {
  readonly #template: Template;
  readonly #specialTokens: Readonly<Record<string, string>>;

  /**
   * @param source the Jinja text.
   * @param specialTokens the tokenizer's special tokens by name (`bos_token`, `eos_token`, ...),
   *   as transformers passes its `special_tokens_map`.
   * @param where the file it came from, for errors.
   */
  constructor(
    readonly source: string,
    specialTokens: Record<string, string>,
    readonly where: string,
  ) {
    try {
      this.#template = new Template(source);
    } catch (error) {
      throw new ChatTemplateInvalidError(
        `${where}: the chat template cannot be parsed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.#specialTokens = { ...specialTokens };
  }

  /** The conversation as the template writes it; throws ChatTemplateRenderError when the template refuses it. */
  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (messages.length === 0)
      throw new ChatTemplateRenderError(`${this.where}: a conversation needs at least one message`);
    const scope = templateGlobals();
    const variables: Record<string, unknown> = {
      ...this.#specialTokens,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      tools: null,
      documents: null,
      add_generation_prompt: options.addGenerationPrompt ?? true,
    };
    if (options.enableThinking !== undefined) variables.enable_thinking = options.enableThinking;
    try {
      for (const [name, value] of Object.entries(variables)) scope.set(name, value);
      return new Interpreter(scope).run(this.#template.parsed).value as string;
    } catch (error) {
      const raised = error instanceof TemplateRaised;
      throw new ChatTemplateRenderError(
        `${this.where}: the chat template ${raised ? 'refused the conversation' : 'failed'}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
}

/** What a template's `raise_exception(message)` throws, told apart from the renderer's own failures. */
class TemplateRaised extends Error {}

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/**
 * The globals transformers gives a template (Jinja's constants, `range`,
 * `raise_exception`, `strftime_now`), in a scope of their own. @huggingface/jinja's
 * `Template.render` declares its own `raise_exception`, which cannot be told from the
 * renderer's failures, and formats dates in the process's locale; transformers' Python
 * formats them in the C locale ("26 Jul 2024").
 */
function templateGlobals(): Environment {
  const scope = new Environment();
  for (const [name, value] of Object.entries({ true: true, false: false, none: null })) {
    scope.set(name, value);
    scope.set(name[0]!.toUpperCase() + name.slice(1), value);
  }
  scope.set('raise_exception', (message: unknown) => {
    throw new TemplateRaised(String(message));
  });
  scope.set('range', (...args: number[]) => {
    const [start, stop, step = 1] = args.length === 1 ? [0, args[0]!] : args;
    const out: number[] = [];
    for (let i = start!; step > 0 ? i < stop! : i > stop!; i += step) out.push(i);
    return out;
  });
  scope.set('strftime_now', (format: string) => strftime(new Date(), format));
  return new Environment(scope);
}

/** Python's `datetime.strftime` in the C locale, for the directives templates use. */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const fields: Record<string, () => string> = {
    Y: () => String(date.getFullYear()),
    y: () => pad(date.getFullYear() % 100),
    m: () => pad(date.getMonth() + 1),
    d: () => pad(date.getDate()),
    e: () => String(date.getDate()).padStart(2, ' '),
    H: () => pad(date.getHours()),
    I: () => pad(((date.getHours() + 11) % 12) + 1),
    M: () => pad(date.getMinutes()),
    S: () => pad(date.getSeconds()),
    p: () => (date.getHours() < 12 ? 'AM' : 'PM'),
    B: () => MONTHS[date.getMonth()]!,
    b: () => MONTHS[date.getMonth()]!.slice(0, 3),
    A: () => WEEKDAYS[date.getDay()]!,
    a: () => WEEKDAYS[date.getDay()]!.slice(0, 3),
    j: () =>
      pad(
        Math.floor((date.getTime() - new Date(date.getFullYear(), 0, 1).getTime()) / 86_400_000) +
          1,
        3,
      ),
    '%': () => '%',
  };
  return format.replace(/%([a-zA-Z%])/g, (all, code: string) => fields[code]?.() ?? all);
}

/**
 * The special tokens transformers hands a template by name: tokenizer_config.json's
 * `bos_token`, `eos_token`, `unk_token`, `sep_token`, `pad_token`, `cls_token`,
 * `mask_token` (a string or an added-token object) and the names of `extra_special_tokens`.
 */
export function specialTokensOf(config: Record<string, unknown>): Record<string, string> {
  const tokens: Record<string, string> = {};
  const content = (value: unknown): string | undefined => {
    if (typeof value === 'string') return value;
    if (typeof value === 'object' && value !== null) {
      const text = (value as { content?: unknown }).content;
      if (typeof text === 'string') return text;
    }
    return undefined;
  };
  for (const name of SPECIAL_TOKEN_NAMES) {
    const value = content(config[name]);
    if (value !== undefined) tokens[name] = value;
  }
  const extra = config.extra_special_tokens;
  if (typeof extra === 'object' && extra !== null && !Array.isArray(extra)) {
    for (const [name, value] of Object.entries(extra)) {
      const text = content(value);
      if (text !== undefined) tokens[name] = text;
    }
  }
  return tokens;
}

const SPECIAL_TOKEN_NAMES = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
] as const;
