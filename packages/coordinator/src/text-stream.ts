/**
 * Turns a sequence's sampled tokens into text as they arrive through the
 * tokenizer's incremental decoder (a character split across byte tokens waits for
 * its last byte), and stop strings end the text. Text that might be the start of a
 * stop string is held back until it is clear, so a stream never shows part of one.
 */
import type { TokenDecoder, Tokenizer } from '@swarmbee/model';

export class TextStream {
  readonly #stops: string[];
  readonly #decoder: TokenDecoder;
  /** Text decoded so far, stop string excluded. */
  #text = '';
  /** How much of #text has been handed out. */
  #emitted = 0;
  #stopped = false;

  /** `promptIds`: the ids the sampled tokens continue (their text is not part of this stream). */
  constructor(tokenizer: Tokenizer, promptIds: readonly number[], stops: string[]) {
    this.#decoder = tokenizer.decoder(promptIds);
    this.#stops = stops.filter((s) => s.length > 0);
  }

  get text(): string {
    return this.#text;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Adds a token; returns the text that is now safe to show. */
  push(token: number): string {
    if (this.#stopped) return '';
    this.#text += this.#decoder.push(token);
    if (this.#cutAtStop()) return this.#flush(this.#text.length);
    return this.#flush(this.#text.length - this.#heldBack());
  }

  /** The rest of the text once the sequence has ended (text the decoder held back may still hold a stop string). */
  end(): string {
    if (!this.#stopped) {
      this.#text += this.#decoder.end();
      this.#cutAtStop();
    }
    return this.#flush(this.#text.length);
  }

  /** Ends the text before the first stop string in what has not been shown; true when one was found. */
  #cutAtStop(): boolean {
    let cut = -1;
    for (const stop of this.#stops) {
      const at = this.#text.indexOf(stop, Math.max(0, this.#emitted - stop.length + 1));
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut < 0) return false;
    this.#text = this.#text.slice(0, cut);
    this.#stopped = true;
    return true;
  }

  /** Length of the longest tail of the text that begins some stop string. */
  #heldBack(): number {
    let hold = 0;
    for (const stop of this.#stops) {
      for (let n = Math.min(stop.length - 1, this.#text.length); n > hold; n--) {
        if (this.#text.endsWith(stop.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    return hold;
  }

  #flush(upTo: number): string {
    if (upTo <= this.#emitted) return '';
    const out = this.#text.slice(this.#emitted, upTo);
    this.#emitted = upTo;
    return out;
  }
}
