/** `--adapter NAME=DIR`: a LoRA adapter a coordinator merges into the shards it builds. */
import { basename, resolve } from 'node:path';
import type { ServedAdapter } from '@swarmbee/coordinator';
import { InvalidArgumentError } from '@swarmbee/core';
import { readPeftAdapter } from '@swarmbee/model';

export const adapterOption = {
  adapter: {
    type: 'string',
    describe:
      'LoRA adapter (PEFT format, e.g. from `swarmbee finetune`) merged into the shards as they are built, as NAME=DIR (or DIR, named after it); the API serves the model as <model>:NAME. One per coordinator',
  },
} as const;

/** `--adapter NAME=DIR` (or DIR, named after its folder), read and checked as a PEFT adapter. */
export async function servedAdapter(value: string | string[]): Promise<ServedAdapter> {
  if (Array.isArray(value))
    throw new InvalidArgumentError(
      `--adapter was given ${value.length} times: a coordinator serves one adapter, merged into its shards (several chosen per request are not supported yet)`,
    );
  const at = value.indexOf('=');
  const dir = at < 0 ? value : value.slice(at + 1);
  const name = at < 0 ? basename(resolve(dir)) : value.slice(0, at);
  return { name, adapter: await readPeftAdapter(dir) };
}
