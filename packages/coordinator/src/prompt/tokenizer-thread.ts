/**
 * Worker-thread entry of the {@link TokenizerPool}: loads the model's tokenizer once,
 * then prepares one prompt at a time — renders chat messages, encodes text, decodes an
 * echo — so none of that runs on the coordinator's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { asSwarmBeeError } from '@swarmbee/core';
import { decodeIds, loadTokenizer, type Tokenizer } from '@swarmbee/model';
import { TokenIdsOnly } from '../token-ids-only.js';
import type {
  PromptReplyMessage,
  PromptRequestMessage,
  TokenizerThreadData,
} from './pool-messages.js';
import { type ChatMessage, type PromptJob, renderChat } from './prompt.js';

const port = parentPort!;
const { model } = workerData as TokenizerThreadData;

function reply(message: PromptReplyMessage, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

/**
 * Chat messages as the prompt text the model continues. This is where a model's own chat
 * template (rendered from the model dir, in this thread) plugs in; models without one get
 * SwarmBee's plain rendering.
 */
const renderMessages: (messages: ChatMessage[]) => string = renderChat;

function prepare(tokenizer: Tokenizer, job: PromptJob): PromptReplyMessage & { ok: true } {
  const { prompt } = job;
  const ids =
    'ids' in prompt
      ? prompt.ids
      : tokenizer.encode('text' in prompt ? prompt.text : renderMessages(prompt.messages));
  // A prompt over the limit is refused by its count: its ids need not cross back.
  if (ids.length > job.maxIds) return { id: 0, ok: true, count: ids.length, echo: '' };
  const echo = job.echo ? decodeIds(tokenizer, ids) : '';
  return { id: 0, ok: true, count: ids.length, ids: Int32Array.from(ids), echo };
}

try {
  const tokenizer: Tokenizer = model.manifest.tokenizer
    ? await loadTokenizer(model)
    : new TokenIdsOnly(model.manifest.config.vocabSize, model.manifest.name);
  port.on('message', ({ id, job }: PromptRequestMessage) => {
    try {
      const prepared = { ...prepare(tokenizer, job), id };
      reply(prepared, prepared.ids ? [prepared.ids.buffer as ArrayBuffer] : []);
    } catch (error) {
      reply({ id, ok: false, error: asSwarmBeeError(error).toWire() });
    }
  });
  reply({ id: 0, ok: true, count: 0, echo: '' });
} catch (error) {
  reply({ id: 0, ok: false, error: asSwarmBeeError(error).toWire() });
}
