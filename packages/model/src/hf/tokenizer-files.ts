/**
 * A checkpoint dir's tokenizer: `tokenizer.json` and `tokenizer_config.json`, its chat
 * template, plus the ids generation needs — BOS, EOS, whether prompts start with BOS,
 * and the stop ids: `generation_config.json`'s and `config.json`'s `eos_token_id` (one
 * or a list), tokenizer_config's `eos_token`, and the template's end-of-turn token.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TokenizerInvalidError, TokenizerMissingError } from '@swarmbee/core';
import type { HfTokenizerFiles } from '../model-dir.js';
import { ChatTemplate, specialTokensOf } from '../tokenizer/chat-template.js';
import {
  HF_TOKENIZER_CONFIG_FILE,
  HF_TOKENIZER_FILE,
  HfTokenizer,
  type HfTokenizerSettings,
} from '../tokenizer/hf-tokenizer.js';
import { findEndOfTurn, readChatTemplate } from './chat-template-files.js';
import { HF_GENERATION_CONFIG_FILE } from './checkpoint.js';
import { tokenIds } from './config.js';

export interface HfIdsFromConfig {
  bosTokenId?: number;
  eosTokenIds: number[];
}

/** Reads and checks the tokenizer files; the returned tokenizer is ready to use. */
export async function readHfTokenizerFiles(
  dir: string,
  fromConfig: HfIdsFromConfig,
  vocabSize: number,
): Promise<{ files: HfTokenizerFiles; tokenizer: HfTokenizer }> {
  const tokenizerJson = await readFile(join(dir, HF_TOKENIZER_FILE)).catch((error: Error) => {
    throw new TokenizerMissingError(
      `${dir} has no readable ${HF_TOKENIZER_FILE} (${error.message}); SwarmBee needs the fast-tokenizer file to encode prompts (to import the model without it, running from token ids: --no-tokenizer)`,
      { cause: error },
    );
  });
  // Some repositories ship tokenizer.json alone; an empty config means the defaults.
  const tokenizerConfigJson = await readFile(join(dir, HF_TOKENIZER_CONFIG_FILE)).catch(() =>
    Buffer.from('{}\n'),
  );
  const parse = (bytes: Uint8Array, file: string): Record<string, unknown> => {
    try {
      const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
      if (typeof value === 'object' && value !== null) return value as Record<string, unknown>;
    } catch {}
    throw new TokenizerInvalidError(`${join(dir, file)} is not a JSON object`);
  };
  const tokenizerSpec = parse(tokenizerJson, HF_TOKENIZER_FILE);
  const config = parse(tokenizerConfigJson, HF_TOKENIZER_CONFIG_FILE);
  const generation = await readFile(join(dir, HF_GENERATION_CONFIG_FILE), 'utf8')
    .then((text) => JSON.parse(text) as Record<string, unknown>)
    .catch(() => ({}) as Record<string, unknown>);

  // Provisional settings to load the tokenizer, then the ids it names.
  const probe = HfTokenizer.parse(
    tokenizerSpec,
    config,
    { bosId: -1, eosId: -1, addBos: false, stopIds: [] },
    vocabSize,
    dir,
  );
  const found = await readChatTemplate(dir, config);
  const template = found
    ? new ChatTemplate(found.text, specialTokensOf(config), join(dir, found.source))
    : undefined;
  const endOfTurnId = template ? findEndOfTurn(template, probe) : undefined;
  const idOf = (token: unknown): number | undefined => {
    const content =
      typeof token === 'string'
        ? token
        : typeof token === 'object' && token !== null
          ? (token as { content?: unknown }).content
          : undefined;
    return typeof content === 'string' ? probe.tokenId(content) : undefined;
  };
  const bosId =
    tokenIds(generation.bos_token_id)[0] ?? fromConfig.bosTokenId ?? idOf(config.bos_token) ?? -1;
  const stopIds = [
    ...new Set(
      [
        ...tokenIds(generation.eos_token_id),
        ...fromConfig.eosTokenIds,
        idOf(config.eos_token),
        endOfTurnId,
      ].filter((id): id is number => id !== undefined),
    ),
  ];
  const eosId = stopIds[0] ?? -1;
  const addBos =
    typeof config.add_bos_token === 'boolean'
      ? config.add_bos_token && bosId >= 0
      : probe.templateAddsBos(bosId);
  const settings: HfTokenizerSettings = { bosId, eosId, addBos, stopIds };
  if (endOfTurnId !== undefined) settings.endOfTurnId = endOfTurnId;
  const files: HfTokenizerFiles = { tokenizerJson, tokenizerConfigJson, settings };
  if (found) files.chatTemplate = found;
  return {
    files,
    tokenizer: HfTokenizer.parse(tokenizerSpec, config, settings, vocabSize, dir, template),
  };
}
