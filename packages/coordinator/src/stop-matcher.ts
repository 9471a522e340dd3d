/**
 * Finds one stop string in text that arrives piece by piece, in time linear in the
 * text whatever the stop's length (Knuth–Morris–Pratt): each new character updates how
 * much of the stop the text currently ends with. That is also how much text must be
 * held back, since it may be the start of the stop.
 */
export class StopMatcher {
  readonly stop: string;
  /** fallback[i]: the longest proper prefix of stop[0..i] that is also its suffix. */
  readonly #fallback: Int32Array;
  /** Characters of the stop the text fed so far ends with. */
  #matched = 0;
  /** Characters fed so far. */
  #fed = 0;
  /** Where the first occurrence starts, once there is one. */
  #foundAt = -1;

  constructor(stop: string) {
    if (stop.length === 0) throw new RangeError('a stop string is never empty');
    this.stop = stop;
    this.#fallback = new Int32Array(stop.length);
    for (let i = 1, k = 0; i < stop.length; i++) {
      while (k > 0 && stop.charCodeAt(i) !== stop.charCodeAt(k)) k = this.#fallback[k - 1]!;
      if (stop.charCodeAt(i) === stop.charCodeAt(k)) k++;
      this.#fallback[i] = k;
    }
  }

  /** Start of the first occurrence in the text fed so far, or -1. */
  get foundAt(): number {
    return this.#foundAt;
  }

  /** Length of the text's tail that is a proper start of the stop (0 once found). */
  get pending(): number {
    return this.#foundAt >= 0 ? 0 : this.#matched;
  }

  /** Feeds the next piece of text; stops looking once the stop has been found. */
  feed(piece: string): void {
    const { stop } = this;
    for (let i = 0; i < piece.length && this.#foundAt < 0; i++) {
      const c = piece.charCodeAt(i);
      let k = this.#matched;
      while (k > 0 && stop.charCodeAt(k) !== c) k = this.#fallback[k - 1]!;
      if (stop.charCodeAt(k) === c) k++;
      if (k === stop.length) this.#foundAt = this.#fed + i + 1 - stop.length;
      this.#matched = k;
    }
    this.#fed += piece.length;
  }
}
