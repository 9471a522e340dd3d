/**
 * Turns a sequence's sampled tokens into text as they arrive through the
 * tokenizer's incremental decoder (a character split across byte tokens waits for
 * its last byte), and stop strings end the text. Text that might be the start of a
 * stop string is held back until it is clear, so a stream never shows part of one.
 * Each token costs time in the text it adds, not in the text so far or the stops' length.
 */
import type { TokenDecoder, Tokenizer } from '@swarmbee/model';
import { StopMatcher } from './stop-matcher.js';

export class TextStream {
  readonly #stops: StopMatcher[];
  readonly #decoder: TokenDecoder;
  /** Text decoded so far, stop string excluded. */
  #text = '';
  /** How much of #text has been handed out. */
  #emitted = 0;
  #stopped = false;

  /** `promptIds`: the ids the sampled tokens continue (their text is not part of this stream). */
  constructor(tokenizer: Tokenizer, promptIds: readonly number[], stops: string[]) {
    this.#decoder = tokenizer.decoder(promptIds);
    this.#stops = stops.filter((s) => s.length > 0).map((s) => new StopMatcher(s));
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
    this.#append(this.#decoder.push(token));
    if (this.#cutAtStop()) return this.#flush(this.#text.length);
    const heldBack = this.#stops.reduce((most, stop) => Math.max(most, stop.pending), 0);
    return this.#flush(this.#text.length - heldBack);
  }

  /** The rest of the text once the sequence has ended (text the decoder held back may still hold a stop string). */
  end(): string {
    if (!this.#stopped) {
      this.#append(this.#decoder.end());
      this.#cutAtStop();
    }
    return this.#flush(this.#text.length);
  }

  #append(piece: string): void {
    this.#text += piece;
    for (const stop of this.#stops) stop.feed(piece);
  }

  /** Ends the text before the earliest stop string found; true when there is one. */
  #cutAtStop(): boolean {
    let cut = -1;
    for (const stop of this.#stops)
      if (stop.foundAt >= 0 && (cut < 0 || stop.foundAt < cut)) cut = stop.foundAt;
    if (cut < 0) return false;
    this.#text = this.#text.slice(0, cut);
    this.#stopped = true;
    return true;
  }

  #flush(upTo: number): string {
    if (upTo <= this.#emitted) return '';
    const out = this.#text.slice(this.#emitted, upTo);
    this.#emitted = upTo;
    return out;
  }
}
