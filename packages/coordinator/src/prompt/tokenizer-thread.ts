/**
 * Worker-thread entry of the {@link TokenizerPool}: loads the model's tokenizer once,
 * (and chat template) once, then prepares one completion at a time — parses and checks an
 * API body, renders a conversation through the template, encodes text, decodes an echo — so
 * none of that runs on the coordinator's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { asSwarmBeeError } from '@swarmbee/core';
import { decodeIds, encodeChat, loadTokenizer, type Tokenizer } from '@swarmbee/model/tokenizer';
import { completionFromBody } from '../api/requests.js';
import {
  checkPromptChars,
  checkPromptLength,
  checkRequest,
  checkVocabulary,
  maxTokensFor,
} from '../completion-request.js';
import { TokenIdsOnly } from '../token-ids-only.js';
import type {
  PromptReplyMessage,
  PromptRequestMessage,
  TokenizerThreadData,
} from './pool-messages.js';
import type { CompletionJob } from './prompt.js';

const port = parentPort!;
const { model } = workerData as TokenizerThreadData;

function prepare(tokenizer: Tokenizer, id: number, job: CompletionJob): PromptReplyMessage {
  const { limits, source } = job;
  const { request, stream } =
    'body' in source
      ? completionFromBody(source.endpoint, source.body, limits)
      : { request: source.request, stream: false };
  checkRequest(request, limits);
  const { prompt } = request;
  // Every limit that needs no tokens is checked before any are made.
  checkPromptChars(prompt, limits);
  let ids: number[];
  if (Array.isArray(prompt)) {
    checkPromptLength(prompt.length, limits);
    checkVocabulary(prompt, limits);
    ids = prompt;
  } else {
    // A conversation goes through the model's chat template (plain lines without one).
    ids =
      typeof prompt === 'string'
        ? tokenizer.encode(prompt)
        : encodeChat(tokenizer, prompt.messages, prompt.template);
    checkPromptLength(ids.length, limits);
  }
  const { prompt: _prompt, ...rest } = request;
  return {
    id,
    ok: true,
    prepared: {
      request: rest,
      stream,
      maxTokens: maxTokensFor(request, ids.length, limits),
      echo: request.echo ? decodeIds(tokenizer, ids) : '',
    },
    ids: Int32Array.from(ids),
  };
}

try {
  const tokenizer: Tokenizer = model.manifest.tokenizer
    ? await loadTokenizer(model)
    : new TokenIdsOnly(model.manifest.config.vocabSize, model.manifest.name);
  port.on('message', ({ id, job }: PromptRequestMessage) => {
    let reply: PromptReplyMessage;
    try {
      reply = prepare(tokenizer, id, job);
    } catch (error) {
      const coded = asSwarmBeeError(error);
      reply = { id, ok: false, error: coded.toWire() };
      if (coded.param !== undefined) reply.param = coded.param;
    }
    port.postMessage(reply, reply.ok && reply.ids ? [reply.ids.buffer as ArrayBuffer] : []);
  });
  port.postMessage({ id: 0, ok: true } satisfies PromptReplyMessage);
} catch (error) {
  port.postMessage({
    id: 0,
    ok: false,
    error: asSwarmBeeError(error).toWire(),
  } satisfies PromptReplyMessage);
}
