import { InvalidArgumentError } from './errors.js';

/** How the last stage picks the next token. Travels with each request. */
export interface SamplingParams {
  /** Softmax temperature; 0 means greedy argmax. Default 1. */
  temperature: number;
  /** Keep only the k most likely tokens; 0 disables. Default 0. */
  topK: number;
  /** Nucleus sampling: keep the smallest set with cumulative probability >= p; 1 disables. Default 1. */
  topP: number;
  /** Seed of the sequence's random stream; the same seed gives the same tokens. Default: from the clock. */
  seed?: number;
}

export const DEFAULT_SAMPLING: Readonly<SamplingParams> = { temperature: 1, topK: 0, topP: 1 };

/** Checks sampling parameters, throwing an InvalidArgumentError that names the bad field. */
export function validateSampling(params: SamplingParams): SamplingParams {
  const { temperature, topK, topP, seed } = params;
  if (!Number.isFinite(temperature) || temperature < 0) {
    throw new InvalidArgumentError(`temperature must be a number >= 0, got ${temperature}`);
  }
  if (!Number.isInteger(topK) || topK < 0) {
    throw new InvalidArgumentError(`top_k must be an integer >= 0, got ${topK}`);
  }
  if (!Number.isFinite(topP) || topP <= 0 || topP > 1) {
    throw new InvalidArgumentError(`top_p must be in (0, 1], got ${topP}`);
  }
  if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) {
    throw new InvalidArgumentError(`seed must be a non-negative integer, got ${seed}`);
  }
  return params;
}
