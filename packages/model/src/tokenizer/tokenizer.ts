/** What generation needs from a tokenizer, whatever its file format. */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  /** Sampled ids that end a sequence. llama2.c's run.c stops at BOS, which delimits its stories. */
  readonly stopIds: readonly number[];
  /** Token ids of `text`, with a BOS first when `bos` is set (run.c's `encode(text, 1, 0)`). */
  encode(text: string, options?: { bos?: boolean }): number[];
  /**
   * Bytes to print for `token` following `prev`, as run.c prints them: the leading
   * space after BOS is dropped, byte tokens become raw bytes, and lone unprintable
   * bytes print as nothing.
   */
  decodePiece(prev: number, token: number): Uint8Array;
}

/** Decodes a whole id sequence the way run.c prints it (the first id is the context). */
export function decodeIds(tokenizer: Tokenizer, ids: readonly number[]): string {
  const chunks: Uint8Array[] = [];
  for (let i = 1; i < ids.length; i++) chunks.push(tokenizer.decodePiece(ids[i - 1]!, ids[i]!));
  return Buffer.concat(chunks).toString('utf8');
}
