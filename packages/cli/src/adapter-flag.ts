/**
 * `--adapter NAME=DIR` (repeatable): LoRA adapters a coordinator serves beside the base model,
 * chosen per request by the API's `model` field; `--merge-adapter NAME=DIR`: one adapter merged
 * into the shards as they are built instead.
 */
import { basename, resolve } from 'node:path';
import type { ServedAdapter } from '@swarmbee/coordinator';
import { InvalidArgumentError } from '@swarmbee/core';
import { readPeftAdapter } from '@swarmbee/model';

export const adapterOptions = {
  adapter: {
    type: 'string',
    array: true,
    describe:
      'LoRA adapter (PEFT format, e.g. from `swarmbee finetune`) served beside the base model, as NAME=DIR (or DIR, named after it); a request picks it with "model": "<model>:NAME". Repeat for several (at most 64); any base precision',
  },
  'merge-adapter': {
    type: 'string',
    describe:
      "LoRA adapter merged into the shards as they are built, as NAME=DIR (or DIR): the API serves <model>:NAME alone, at the base model's speed. fp32 models only; not with --adapter",
  },
} as const;

/** The adapters of `--adapter` and `--merge-adapter`, read and checked as PEFT adapters. */
export async function servedAdapters(args: {
  adapter?: string[] | undefined;
  mergeAdapter?: string | string[] | undefined;
}): Promise<{ adapters?: ServedAdapter[]; adapter?: ServedAdapter }> {
  const { mergeAdapter } = args;
  if (Array.isArray(mergeAdapter))
    throw new InvalidArgumentError(
      `--merge-adapter was given ${mergeAdapter.length} times: one adapter merges into the shards; serve several with --adapter`,
    );
  const adapters = await Promise.all((args.adapter ?? []).map(readNamed));
  return {
    ...(adapters.length > 0 ? { adapters } : {}),
    ...(mergeAdapter === undefined ? {} : { adapter: await readNamed(mergeAdapter) }),
  };
}

/** `NAME=DIR`, or `DIR` named after its folder. */
async function readNamed(value: string): Promise<ServedAdapter> {
  const at = value.indexOf('=');
  const dir = at < 0 ? value : value.slice(at + 1);
  const name = at < 0 ? basename(resolve(dir)) : value.slice(0, at);
  return { name, adapter: await readPeftAdapter(dir) };
}
