/** `swarmbee chat --url`: replies streamed from a running coordinator's /v1/chat/completions. */
import { type ApiTarget, postEvents } from '@swarmbee/coordinator/client';
import { NetworkUnavailableError, SwarmBeeError } from '@swarmbee/core';
import type { ChatMessage } from '@swarmbee/model';
import {
  type ChatBackend,
  type Reply,
  type ReplyOptions,
  type ReplySettings,
  TokenClock,
} from './backend.js';

interface ChatChunk {
  choices: {
    delta?: { content?: string };
    finish_reason?: 'stop' | 'length' | null;
    token_ids?: number[];
  }[];
}

export class RemoteChatBackend implements ChatBackend {
  readonly label: string;

  constructor(
    private readonly target: ApiTarget,
    private readonly settings: ReplySettings,
  ) {
    this.label = target.url;
  }

  async reply(messages: readonly ChatMessage[], options: ReplyOptions): Promise<Reply> {
    const { sampling, maxTokens, template } = this.settings;
    const body = {
      messages,
      max_tokens: maxTokens,
      temperature: sampling.temperature,
      top_p: sampling.topP,
      top_k: sampling.topK,
      ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
      ...(template.enableThinking === undefined
        ? {}
        : { chat_template_kwargs: { enable_thinking: template.enableThinking } }),
      stream: true,
    };
    const clock = new TokenClock();
    let text = '';
    let finish: Reply['finish'] = 'length';
    try {
      await postEvents<ChatChunk>(
        this.target,
        '/v1/chat/completions',
        body,
        (event) => {
          const choice = event.choices[0];
          // One event per sampled token (SwarmBee's token_ids), whether or not it shows text yet.
          for (const _ of choice?.token_ids ?? []) clock.tick();
          const piece = choice?.delta?.content;
          if (piece) {
            text += piece;
            options.onText(piece);
          }
          if (choice?.finish_reason) finish = choice.finish_reason;
        },
        { signal: options.signal },
      );
    } catch (error) {
      if (options.signal.aborted) finish = 'interrupted';
      else if (error instanceof SwarmBeeError) throw error;
      else
        throw new NetworkUnavailableError(
          `cannot reach the coordinator at ${this.target.url}: ${(error as Error).message}`,
          { cause: error },
        );
    }
    return { text, tokens: clock.count, tokensPerSecond: clock.tokensPerSecond, finish };
  }

  async close(): Promise<void> {}
}
