/**
 * Where `swarmbee chat` gets its replies: a model run in this process, or a running
 * coordinator's `/v1/chat/completions`. Either way the conversation goes through the
 * model's chat template, text streams as it is decoded, and a reply can be stopped.
 */
import type { SamplingParams } from '@swarmbee/core';
import type { ChatMessage, ChatTemplateOptions } from '@swarmbee/model';

export interface ReplyOptions {
  /** Called with each piece of text as soon as it is safe to show. */
  onText: (text: string) => void;
  /** Aborting stops the reply; what was shown so far is the reply. */
  signal: AbortSignal;
}

export interface Reply {
  text: string;
  /** Tokens sampled. */
  tokens: number;
  /** Sampled tokens after the first, per second (0 with fewer than two). */
  tokensPerSecond: number;
  /** `stop`: an end-of-turn token or stop string; `length`: max tokens; `interrupted`: Ctrl-C. */
  finish: 'stop' | 'length' | 'interrupted';
}

export interface ChatBackend {
  /** What the session says it talks to, e.g. the model's name. */
  readonly label: string;
  reply(messages: readonly ChatMessage[], options: ReplyOptions): Promise<Reply>;
  close(): Promise<void>;
}

/** What every reply is generated with. */
export interface ReplySettings {
  sampling: SamplingParams;
  /** Most tokens one reply may have. */
  maxTokens: number;
  template: ChatTemplateOptions;
}

/** Tokens per second over the gaps between the first and the last token. */
export class TokenClock {
  #count = 0;
  #first = 0;
  #last = 0;

  tick(): void {
    const now = performance.now();
    if (this.#count === 0) this.#first = now;
    this.#last = now;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  get tokensPerSecond(): number {
    const span = this.#last - this.#first;
    return this.#count > 1 && span > 0 ? ((this.#count - 1) * 1000) / span : 0;
  }
}
