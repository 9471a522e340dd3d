/**
 * What a model made from another (quantized, pruned) carries over: its tokenizer files,
 * its source, and the record of how it was derived.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelDerivation, ModelDerivationStep } from '@swarmbee/core';
import type { HfTokenizerFiles, LlamaModelDir, WriteModelDirOptions } from './model-dir.js';
import { type Llama2cVocab, parseLlama2cVocab } from './tokenizer/llama2c-tokenizer.js';

/** The tokenizer of `dir` in the form `writeModelDir` writes, or nothing when it has none. */
export async function carriedTokenizer(
  dir: LlamaModelDir,
): Promise<{ tokenizer?: Llama2cVocab; hfTokenizer?: HfTokenizerFiles }> {
  const ref = dir.manifest.tokenizer;
  if (!ref) return {};
  if (ref.kind === 'llama2c') {
    const path = join(dir.path, ref.file);
    return {
      tokenizer: parseLlama2cVocab(await readFile(path), dir.manifest.config.vocabSize, path),
    };
  }
  const { bosId, eosId, addBos, stopIds, endOfTurnId } = ref;
  const hfTokenizer: HfTokenizerFiles = {
    tokenizerJson: await readFile(join(dir.path, ref.file)),
    tokenizerConfigJson: await readFile(join(dir.path, ref.configFile)),
    settings: {
      bosId,
      eosId,
      addBos,
      stopIds,
      ...(endOfTurnId === undefined ? {} : { endOfTurnId }),
    },
  };
  if (ref.chatTemplate) {
    hfTokenizer.chatTemplate = {
      text: await readFile(join(dir.path, ref.chatTemplate.file), 'utf8'),
      source: ref.chatTemplate.source,
    };
  }
  return { hfTokenizer };
}

/** The derivation record of a model made from `dir` by one more step. */
export function nextDerivation(dir: LlamaModelDir, step: ModelDerivationStep): ModelDerivation {
  const before = dir.manifest.derivedFrom;
  return {
    fromModelHash: before?.fromModelHash ?? dir.manifest.modelHash,
    fromName: before?.fromName ?? dir.manifest.name,
    steps: [...(before?.steps ?? []), step],
  };
}

/** The options every derived model dir shares with the one it comes from. */
export async function derivedDirOptions(
  dir: LlamaModelDir,
  step: ModelDerivationStep,
): Promise<Pick<WriteModelDirOptions, 'source' | 'derivedFrom' | 'tokenizer' | 'hfTokenizer'>> {
  return {
    source: dir.manifest.source,
    derivedFrom: nextDerivation(dir, step),
    ...(await carriedTokenizer(dir)),
  };
}
