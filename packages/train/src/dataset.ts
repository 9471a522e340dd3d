/**
 * Training data: a JSONL file, one record a line — `{"text": "..."}` (a document: every
 * token is a target) or `{"messages": [{"role", "content"}, ...]}` (a chat: only the
 * assistant turns are targets). A text record becomes BOS, the text, and the tokenizer's
 * first stop id, so the model also learns where a record ends.
 *
 * A chat is rendered as the model is prompted with it: through its chat template when it
 * has one (the template writes BOS and each turn's end itself), else SwarmBee's plain
 * rendering — the messages one a line, BOS first, the stop id after a final assistant
 * turn. The whole chat is encoded once, and an assistant turn's tokens are found by
 * rendering the conversation up to the turn's start (the assistant header opened) and
 * end, encoding those, and taking the tokens they share with the whole.
 */
import { readFile } from 'node:fs/promises';
import { ContextOverflowError, TrainingDataInvalidError } from '@swarmbee/core';
import { plainChatText, type Tokenizer } from '@swarmbee/model';

/** A chat record's message; text parts are joined into one text. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'developer';
  content: string | { type: 'text'; text: string }[];
}

export interface TrainingExample {
  /** 1-based line of the record in its file. */
  line: number;
  /** The sequence's token ids (BOS first, the stop id last). */
  ids: Int32Array;
  /** Per position i < ids.length − 1: 1 if predicting ids[i + 1] takes a loss. */
  targetMask: Uint8Array;
}

export interface DatasetOptions {
  tokenizer: Tokenizer;
  /** Longest sequence fed to the model (its input tokens: ids.length − 1). */
  seqLen: number;
  /** Cut records longer than `seqLen` instead of refusing them. Default false. */
  truncate?: boolean;
}

const ROLES = new Set(['system', 'user', 'assistant', 'developer']);

/** Reads and tokenizes every record of `path`; a bad record is a coded error naming its line. */
export async function readTrainingData(
  path: string,
  options: DatasetOptions,
): Promise<TrainingExample[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new TrainingDataInvalidError(`cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const examples: TrainingExample[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    if (raw.trim() === '') continue;
    const where = `${path}:${i + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch (error) {
      throw new TrainingDataInvalidError(
        `${where}: not a JSON record (${(error as Error).message})`,
      );
    }
    examples.push(encodeRecord(record, i + 1, where, options));
  }
  if (examples.length === 0) throw new TrainingDataInvalidError(`${path} holds no records`);
  return examples;
}

export function encodeRecord(
  record: unknown,
  line: number,
  where: string,
  options: DatasetOptions,
): TrainingExample {
  if (typeof record !== 'object' || record === null || Array.isArray(record))
    throw new TrainingDataInvalidError(
      `${where}: a record is a JSON object with "text" or "messages"`,
    );
  const keys = Object.keys(record);
  const r = record as { text?: unknown; messages?: unknown };
  let example: TrainingExample;
  if (keys.length === 1 && typeof r.text === 'string') {
    if (r.text === '') throw new TrainingDataInvalidError(`${where}: "text" is empty`);
    const ids = withStop(options.tokenizer.encode(r.text, { bos: true }), options.tokenizer);
    example = { line, ids, targetMask: new Uint8Array(ids.length - 1).fill(1) };
  } else if (keys.length === 1 && Array.isArray(r.messages)) {
    example = encodeChat(checkMessages(r.messages, where), line, where, options);
  } else {
    throw new TrainingDataInvalidError(
      `${where}: expected {"text": string} or {"messages": [...]}, got keys ${JSON.stringify(keys)}`,
    );
  }
  const inputs = example.ids.length - 1;
  if (inputs > options.seqLen) {
    if (!options.truncate)
      throw new ContextOverflowError(
        `${where}: the record is ${inputs} tokens, longer than the sequence length ${options.seqLen}; ` +
          'raise --seq-len (up to the model context), shorten the record, or pass --truncate',
      );
    example = {
      line,
      ids: example.ids.slice(0, options.seqLen + 1),
      targetMask: example.targetMask.slice(0, options.seqLen),
    };
  }
  if (inputs < 1 || !example.targetMask.includes(1))
    throw new TrainingDataInvalidError(`${where}: the record has no tokens to learn`);
  return example;
}

function withStop(ids: number[], tokenizer: Tokenizer): Int32Array {
  const stop = tokenizer.stopIds[0] ?? tokenizer.eosId;
  return Int32Array.from(stop >= 0 ? [...ids, stop] : ids);
}

function checkMessages(messages: unknown[], where: string): ChatMessage[] {
  if (messages.length === 0) throw new TrainingDataInvalidError(`${where}: "messages" is empty`);
  return messages.map((m, i) => {
    const message = m as { role?: unknown; content?: unknown };
    const content = message?.content;
    const textParts =
      Array.isArray(content) &&
      content.every(
        (p) =>
          typeof p === 'object' &&
          p !== null &&
          (p as { type?: unknown }).type === 'text' &&
          typeof (p as { text?: unknown }).text === 'string',
      );
    if (
      typeof message?.role !== 'string' ||
      !ROLES.has(message.role) ||
      !(typeof content === 'string' || textParts)
    )
      throw new TrainingDataInvalidError(
        `${where}: message ${i} needs a role (${[...ROLES].join(', ')}) and string or text-part content`,
      );
    return message as ChatMessage;
  });
}

function encodeChat(
  messages: ChatMessage[],
  line: number,
  where: string,
  options: DatasetOptions,
): TrainingExample {
  if (!messages.some((m) => m.role === 'assistant'))
    throw new TrainingDataInvalidError(
      `${where}: a chat without an assistant message has nothing to learn`,
    );
  const { tokenizer } = options;
  const template = tokenizer.chatTemplate;
  const plain = messages.map((m) => ({
    role: m.role,
    content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
  }));
  /** The first `count` messages as the model sees them; `opening` opens the assistant's turn after them. */
  const render = (count: number, opening: boolean) => {
    if (count === 0) return '';
    const part = plain.slice(0, count);
    return template ? template.render(part, { addGenerationPrompt: opening }) : plainChatText(part);
  };
  const full = render(plain.length, false);
  const encode = (text: string) => tokenizer.encode(text, { bos: !template });
  const encoded = encode(full);
  const lastIsAssistant = plain.at(-1)!.role === 'assistant';
  const ids =
    template || !lastIsAssistant ? Int32Array.from(encoded) : withStop(encoded, tokenizer);
  const targetMask = new Uint8Array(ids.length - 1);
  /** Tokens of `full` up to the end of `prefix` (those its encoding shares with the whole). */
  const tokensBefore = (prefix: string) => {
    if (!full.startsWith(prefix))
      throw new TrainingDataInvalidError(
        `${where}: the chat template does not render the conversation's start as a prefix of the whole`,
      );
    if (prefix === '') return template ? 0 : 1;
    const ids = encode(prefix);
    let n = 0;
    while (n < ids.length && n < encoded.length && ids[n] === encoded[n]) n++;
    return n;
  };
  plain.forEach((message, i) => {
    if (message.role !== 'assistant') return;
    const from = tokensBefore(render(i, true));
    const to = tokensBefore(render(i + 1, false));
    // Target index j predicts ids[j + 1]: the turn's tokens are ids[from, to).
    for (let j = Math.max(0, from - 1); j < to - 1; j++) targetMask[j] = 1;
  });
  // SwarmBee's plain rendering ends a final assistant turn with the stop id, learned too.
  if (ids.length > encoded.length) targetMask[ids.length - 2] = 1;
  return { line, ids, targetMask };
}
