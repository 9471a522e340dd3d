/**
 * The text fidelity is measured on: a plain-text file, paragraphs separated by blank
 * lines, each encoded with BOS (as a prompt would be) and cut into windows the model's
 * context holds. Every window is run through a model at once with teacher forcing: the
 * model sees the corpus tokens, never its own samples.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { CorpusInvalidError } from '@swarmbee/core';
import { sha256, type Tokenizer } from '@swarmbee/model';

/**
 * The corpus that ships with SwarmBee: a few paragraphs of plain English, in this package's
 * corpus/ (found through the package's entry, so the bundled CLI finds it too).
 */
export const DEFAULT_CORPUS_FILE = fileURLToPath(
  new URL('../corpus/default.txt', import.meta.resolve('@swarmbee/optimize')),
);

/** Longest window, in tokens (capped by the model's context). */
export const DEFAULT_WINDOW_TOKENS = 256;

/** Fewest predicted tokens a corpus must give for its figures to mean anything. */
export const MIN_CORPUS_PREDICTIONS = 64;

export interface Corpus {
  /** The file it came from. */
  file: string;
  /** sha256 of the text, for caches keyed by corpus. */
  sha256: string;
  /** Token windows, each at least 2 tokens. */
  windows: number[][];
  /** Predicted positions: Σ (window length − 1). */
  predictions: number;
}

export interface LoadCorpusOptions {
  /** Text file. Default {@link DEFAULT_CORPUS_FILE}. */
  file?: string;
  /** Longest window in tokens. Default {@link DEFAULT_WINDOW_TOKENS}, at most the model's context. */
  windowTokens?: number;
  /** Stop after this many tokens in all (quick runs). Default: the whole corpus. */
  maxTokens?: number;
}

export async function loadCorpus(
  tokenizer: Tokenizer,
  maxSeqLen: number,
  options: LoadCorpusOptions = {},
): Promise<Corpus> {
  const file = options.file ?? DEFAULT_CORPUS_FILE;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CorpusInvalidError(`cannot read the corpus ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const width = Math.min(options.windowTokens ?? DEFAULT_WINDOW_TOKENS, maxSeqLen);
  if (!Number.isInteger(width) || width < 2) {
    throw new CorpusInvalidError(`a corpus window needs at least 2 tokens, got ${width}`);
  }
  const budget = options.maxTokens ?? Number.POSITIVE_INFINITY;
  const windows: number[][] = [];
  let tokens = 0;
  for (const paragraph of text.split(/\n\s*\n/)) {
    const clean = paragraph.replace(/\s+/g, ' ').trim();
    if (clean === '') continue;
    const ids = tokenizer.encode(clean);
    for (let start = 0; start < ids.length && tokens < budget; start += width) {
      const window = ids.slice(start, Math.min(start + width, start + budget - tokens));
      if (window.length < 2) continue;
      windows.push(window);
      tokens += window.length;
    }
  }
  const predictions = windows.reduce((sum, w) => sum + w.length - 1, 0);
  if (predictions < MIN_CORPUS_PREDICTIONS) {
    throw new CorpusInvalidError(
      `${file} gives ${predictions} predicted tokens; fidelity needs at least ${MIN_CORPUS_PREDICTIONS} (a few sentences of text)`,
    );
  }
  return { file, sha256: sha256(text), windows, predictions };
}
