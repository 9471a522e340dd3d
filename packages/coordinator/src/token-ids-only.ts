/**
 * Stands in for a tokenizer when a model dir has none (an imported ONNX decoder
 * without one): the API then serves prompts given as token ids, and completions
 * carry their `token_ids` with empty text. A text prompt is refused with a coded
 * error that says what to send instead.
 */
import { InvalidArgumentError } from '@swarmbee/core';
import type { TokenDecoder, Tokenizer } from '@swarmbee/model';

export class TokenIdsOnly implements Tokenizer {
  /** No id is BOS or EOS: nothing is added to prompts, and sampling stops only at max_tokens. */
  readonly bosId = -1;
  readonly eosId = -1;
  readonly stopIds: readonly number[] = [];
  /** Text is refused whatever its length, with a message that says to send ids. */
  readonly maxTokenChars = Number.POSITIVE_INFINITY;

  constructor(
    readonly vocabSize: number,
    readonly modelName: string,
  ) {}

  encode(): number[] {
    throw new InvalidArgumentError(
      `model ${this.modelName} has no tokenizer: send the prompt as an array of token ids`,
    );
  }

  /** Text is empty without a tokenizer; completions carry their token ids instead. */
  decoder(): TokenDecoder {
    return { push: () => '', end: () => '' };
  }
}
