/** Messages between the {@link TokenizerPool} and its threads. */
import type { WireError } from '@swarmbee/core';
import type { ModelDir } from '@swarmbee/model';
import type { CompletionJob, PreparedPrompt } from './prompt.js';

/** What a tokenizer thread starts from: the model dir whose tokenizer it loads. */
export interface TokenizerThreadData {
  model: ModelDir;
}

export interface PromptRequestMessage {
  id: number;
  job: CompletionJob;
}

/**
 * Id 0 answers the thread's start: its tokenizer is loaded, or why not. A prepared
 * prompt's ids travel apart, in a buffer that moves rather than being copied.
 */
export type PromptReplyMessage =
  | {
      id: number;
      ok: true;
      prepared?: Omit<PreparedPrompt, 'request'> & {
        request: Omit<PreparedPrompt['request'], 'prompt'>;
      };
      ids?: Int32Array;
    }
  | { id: number; ok: false; error: WireError; param?: string };
