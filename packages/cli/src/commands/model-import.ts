/** `swarmbee model import llama2c|hf`: checkpoints into model dirs. */
import { InvalidArgumentError } from '@swarmbee/core';
import { importHf, importLlama2c } from '@swarmbee/model';
import type { Argv } from 'yargs';
import { withProgress } from '../ui/progress.js';

export function modelImportCommands(yargs: Argv): Argv {
  return yargs
    .command(
      'llama2c <checkpoint>',
      'Import a llama2.c (version 0) checkpoint and its tokenizer',
      (c) =>
        c
          .positional('checkpoint', {
            type: 'string',
            demandOption: true,
            describe: 'llama2.c .bin checkpoint',
          })
          .option('tokenizer', {
            type: 'string',
            describe: 'llama2.c tokenizer .bin (tokenizer.bin, tok512.bin)',
          })
          .option('out', {
            type: 'string',
            demandOption: true,
            describe: 'Model dir to create (must not exist or be empty)',
          })
          .option('name', {
            type: 'string',
            describe: 'Model name (default: the checkpoint file name)',
          }),
      async (args) => {
        const dir = await withProgress((progress) =>
          importLlama2c({
            checkpoint: args.checkpoint,
            tokenizer: args.tokenizer,
            out: args.out,
            name: args.name,
            progress,
          }),
        );
        process.stdout.write(
          `imported ${dir.manifest.name} into ${dir.path} (model hash ${dir.manifest.modelHash.slice(0, 12)})\n`,
        );
      },
    )
    .command(
      'hf <dir>',
      'Import a Hugging Face Llama, Mistral or Qwen2 checkpoint dir (config.json, safetensors, tokenizer.json)',
      (c) =>
        c
          .positional('dir', {
            type: 'string',
            demandOption: true,
            describe:
              'Checkpoint dir: config.json, model.safetensors or shards with index, tokenizer.json',
          })
          .option('out', {
            type: 'string',
            demandOption: true,
            describe: 'Model dir to create (must not exist or be empty)',
          })
          .option('name', {
            type: 'string',
            describe: "Model name (default: the checkpoint dir's name)",
          })
          .option('context', {
            type: 'number',
            describe:
              'Context to record, in tokens (default and limit: max_position_embeddings; with dynamic RoPE scaling that times its factor; with longrope original_max_position_embeddings)',
          })
          .option('tokenizer', {
            type: 'boolean',
            default: true,
            describe:
              'Import tokenizer.json (and chat template); --no-tokenizer imports a checkpoint without one (e.g. from `model synth-hf`) to run from token ids',
          })
          .option('bits', {
            type: 'number',
            choices: [8, 4],
            describe:
              "Quantize every layer's linear weights to this many bits on the way (as `optimize quantize --bits` after an fp32 import, the same bytes), never writing the fp32 model dir (default: fp32)",
          })
          .option('head', {
            type: 'boolean',
            default: false,
            describe:
              'With --bits: quantize the LM head too, as `optimize quantize --head` (a head tied to the embedding becomes its own tensor; for 128k vocabularies the fp32 head outweighs the int4 layers)',
          }),
      async (args) => {
        if (args.head && args.bits === undefined)
          throw new InvalidArgumentError(
            '--head quantizes the LM head along with the layers: give --bits 4 or --bits 8 with it',
          );
        const dir = await withProgress((progress) =>
          importHf({
            dir: args.dir,
            out: args.out,
            name: args.name,
            progress,
            tokenizer: args.tokenizer,
            ...(args.bits === undefined
              ? {}
              : { quantize: { bits: args.bits as 4 | 8, head: args.head } }),
            ...(args.context === undefined ? {} : { contextLength: args.context }),
          }),
        );
        process.stdout.write(
          `imported ${dir.manifest.name} into ${dir.path} (model hash ${dir.manifest.modelHash.slice(0, 12)})\n`,
        );
      },
    );
}
