/** Messages between the {@link TokenizerPool} and its threads. */
import type { WireError } from '@swarmbee/core';
import type { ModelDir } from '@swarmbee/model';
import type { PromptJob } from './prompt.js';

/** What a tokenizer thread starts from: the model dir whose tokenizer it loads. */
export interface TokenizerThreadData {
  model: ModelDir;
}

export interface PromptRequestMessage {
  id: number;
  job: PromptJob;
}

/** Id 0 answers the thread's start: its tokenizer is loaded, or why not. */
export type PromptReplyMessage =
  | { id: number; ok: true; count: number; ids?: Int32Array; echo: string }
  | { id: number; ok: false; error: WireError };
