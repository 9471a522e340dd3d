/**
 * OpenAI-compatible request bodies, checked with zod. SwarmBee extensions:
 * `top_k`, `seed`, `steps` (run.c-style positions, prompt included) and, as
 * vLLM names them, `ignore_eos` (generate past end-of-sequence tokens) and
 * `chat_template_kwargs.enable_thinking` (Qwen3's thinking toggle).
 */
import { DEFAULT_SAMPLING, InvalidArgumentError, type SamplingParams } from '@swarmbee/core';
import { z } from 'zod';
import type { ChatPrompt } from '../generation-service.js';

const samplingFields = {
  model: z.string().optional(),
  max_tokens: z.number().int().min(0).optional(),
  max_completion_tokens: z.number().int().min(0).optional(),
  steps: z.number().int().min(0).optional(),
  temperature: z.number().min(0).max(100).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  seed: z.number().int().min(0).optional(),
  stop: z.union([z.string(), z.array(z.string()).max(8)]).nullish(),
  ignore_eos: z.boolean().optional(),
  stream: z.boolean().optional(),
  n: z.literal(1).optional(),
  user: z.string().optional(),
};

export const completionBody = z.object({
  ...samplingFields,
  prompt: z.union([z.string(), z.array(z.number().int()).min(1)]),
  echo: z.boolean().optional(),
  logprobs: z.number().int().min(0).max(1).nullish(),
});

export const chatMessage = z.object({
  role: z.enum(['system', 'user', 'assistant', 'developer']),
  content: z.union([z.string(), z.array(z.object({ type: z.literal('text'), text: z.string() }))]),
  name: z.string().optional(),
});

export const chatBody = z.object({
  ...samplingFields,
  messages: z.array(chatMessage).min(1),
  logprobs: z.boolean().optional(),
  /** Variables for the model's chat template, as vLLM takes them; only those SwarmBee passes on. */
  chat_template_kwargs: z.object({ enable_thinking: z.boolean().optional() }).strict().optional(),
});

export type CompletionBody = z.infer<typeof completionBody>;
export type ChatBody = z.infer<typeof chatBody>;

/** Parses a body, turning the first schema problem into a coded 400 that names the field. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.join('.') || 'body';
  throw new InvalidArgumentError(`${field}: ${issue.message}`);
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
