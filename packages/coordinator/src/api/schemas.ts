/**
 * OpenAI-compatible request bodies, checked with zod. SwarmBee extensions:
 * `top_k`, `seed`, `steps` (run.c-style positions, prompt included) and, as
 * vLLM names them, `ignore_eos` (generate past end-of-sequence tokens) and
 * `chat_template_kwargs.enable_thinking` (Qwen3's thinking toggle).
 *
 * Every field describes what it expects; a body that does not parse is refused with
 * that description and what was sent instead (`stop: expected a string or an array of
 * at most 8 stop strings, got an array of 9`), naming the field in `param`.
 */
import { DEFAULT_SAMPLING, InvalidArgumentError, type SamplingParams } from '@swarmbee/core';
import { z } from 'zod';
import type { ChatPrompt } from '../completion-request.js';

/** Most stop strings one request may give. */
export const MAX_STOP_STRINGS = 8;

const count = (what: string) => z.number().int().min(0).optional().describe(what);
const flag = z.boolean().optional().describe('expected true or false');

const samplingFields = {
  model: z.string().optional().describe("expected a string (the model's name)"),
  max_tokens: count('expected an integer ≥ 0 (tokens to generate)'),
  max_completion_tokens: count('expected an integer ≥ 0 (tokens to generate)'),
  steps: count('expected an integer ≥ 0 (positions, prompt included; 0: the whole context)'),
  temperature: z.number().min(0).max(100).optional().describe('expected a number from 0 to 100'),
  top_p: z.number().gt(0).max(1).optional().describe('expected a number above 0 and at most 1'),
  top_k: count('expected an integer ≥ 0 (0: off)'),
  seed: count('expected an integer ≥ 0'),
  stop: z
    .union([z.string(), z.array(z.string()).max(MAX_STOP_STRINGS)])
    .nullish()
    .describe(`expected a string or an array of at most ${MAX_STOP_STRINGS} stop strings`),
  ignore_eos: flag,
  stream: flag,
  n: z.literal(1).optional().describe('expected 1 (one choice per request)'),
  user: z.string().optional().describe('expected a string'),
};

export const completionBody = z
  .object({
    ...samplingFields,
    prompt: z
      .union([z.string(), z.array(z.number().int()).min(1)])
      .describe('expected a string or a non-empty array of integer token ids'),
    echo: flag,
    logprobs: z.number().int().min(0).max(1).nullish().describe('expected 0 or 1'),
  })
  .describe('expected a JSON object with a "prompt"');

export const chatMessage = z.object({
  role: z
    .enum(['system', 'user', 'assistant', 'developer'])
    .describe('expected one of system, user, assistant, developer'),
  content: z
    .union([z.string(), z.array(z.object({ type: z.literal('text'), text: z.string() }))])
    .describe('expected a string or an array of {"type": "text", "text": string} parts'),
  name: z.string().optional().describe('expected a string'),
});

export const chatBody = z
  .object({
    ...samplingFields,
    messages: z
      .array(chatMessage)
      .min(1)
      .describe('expected a non-empty array of messages {"role", "content"}'),
    logprobs: flag,
    /** Variables for the model's chat template, as vLLM takes them; only those SwarmBee passes on. */
    chat_template_kwargs: z
      .object({ enable_thinking: z.boolean().optional() })
      .strict()
      .optional()
      .describe('expected an object with at most "enable_thinking" (true or false)'),
  })
  .describe('expected a JSON object with "messages"');

export type CompletionBody = z.infer<typeof completionBody>;
export type ChatBody = z.infer<typeof chatBody>;

/**
 * Parses a body, turning the first schema problem into a coded 400 that names the
 * field, says what it expects and what it got.
 */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const { field, expected, path } = describePath(schema, issue.path);
  const got = describeValue(valueAt(body, path));
  throw new InvalidArgumentError(`${field}: ${expected ?? issue.message}, got ${got}`, {
    param: field,
  });
}

/** The deepest described schema along `path`: its description, and the path up to it. */
function describePath(
  schema: z.ZodType,
  path: readonly PropertyKey[],
): { field: string; expected: string | undefined; path: PropertyKey[] } {
  let current: z.ZodType | undefined = schema;
  let expected = schema.description;
  let described: PropertyKey[] = [];
  for (let depth = 0; depth < path.length && current; depth++) {
    current = child(current, path[depth]!);
    if (current?.description) {
      expected = current.description;
      described = path.slice(0, depth + 1);
    }
  }
  // Nothing described below the root: name the field zod found, with zod's own words.
  if (described.length === 0 && path.length > 0)
    return { field: path.map(String).join('.'), expected: undefined, path: [...path] };
  return { field: described.map(String).join('.') || 'body', expected, path: described };
}

function child(schema: z.ZodType, key: PropertyKey): z.ZodType | undefined {
  let inner: z.ZodType = schema;
  while (inner instanceof z.ZodOptional || inner instanceof z.ZodNullable)
    inner = inner.unwrap() as z.ZodType;
  if (inner instanceof z.ZodObject && typeof key === 'string')
    return Object.hasOwn(inner.shape, key) ? (inner.shape[key] as z.ZodType) : undefined;
  if (inner instanceof z.ZodArray && typeof key === 'number') return inner.element as z.ZodType;
  return undefined;
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let value = body;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'arrays';
  return `${typeof value}s`;
}

/** A short account of a value for an error message: its kind, and small values themselves. */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    const kinds = [...new Set(value.map(kindOf))].sort();
    return value.length === 0
      ? 'an empty array'
      : `an array of ${value.length} (${kinds.join(', ')})`;
  }
  switch (typeof value) {
    case 'string':
      return value.length <= 40 ? JSON.stringify(value) : `a string of ${value.length} characters`;
    case 'number':
    case 'boolean':
      return String(value);
    default:
      return 'an object';
  }
}

export function samplingFrom(body: {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  seed?: number;
}): SamplingParams {
  const sampling: SamplingParams = {
    temperature: body.temperature ?? DEFAULT_SAMPLING.temperature,
    topP: body.top_p ?? DEFAULT_SAMPLING.topP,
    topK: body.top_k ?? DEFAULT_SAMPLING.topK,
  };
  if (body.seed !== undefined) sampling.seed = body.seed;
  return sampling;
}

export function stopsFrom(stop: string | string[] | null | undefined): string[] {
  if (stop === undefined || stop === null) return [];
  return typeof stop === 'string' ? [stop] : stop;
}

/**
 * The messages as the chat template takes them: content parts joined into text,
 * OpenAI's `developer` role as the `system` role templates know.
 */
export function chatPromptFrom(body: ChatBody): ChatPrompt {
  const prompt: ChatPrompt = {
    messages: body.messages.map((m) => ({
      role: m.role === 'developer' ? 'system' : m.role,
      content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
    })),
  };
  const thinking = body.chat_template_kwargs?.enable_thinking;
  if (thinking !== undefined) prompt.template = { enableThinking: thinking };
  return prompt;
}
