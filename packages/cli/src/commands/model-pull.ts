/** `swarmbee model pull`: download a published model, check it, and import it. */
import { relative } from 'node:path';
import {
  DEFAULT_DOWNLOAD_RETRIES,
  DEFAULT_HF_ENDPOINT,
  DEFAULT_LLAMA2C_URL,
  LLAMA2C_CATALOG,
  pullModel,
} from '@swarmbee/model';
import type { Argv } from 'yargs';
import { withProgress } from '../ui/progress.js';
import { formatBytes, renderTable } from '../ui/table.js';
import { ggufImportOptions } from './model-gguf.js';

export function modelPullCommand(yargs: Argv): Argv {
  return yargs.command(
    'pull <model>',
    'Download a published model (llama2.c by name, or a Hugging Face repository) and import it',
    (c) =>
      ggufImportOptions(
        c
          .positional('model', {
            type: 'string',
            demandOption: true,
            describe: `${Object.keys(LLAMA2C_CATALOG).join(', ')}; hf:owner/name[@revision]; or a huggingface.co URL`,
          })
          .option('out', {
            type: 'string',
            demandOption: true,
            describe: 'Model dir to create (must not exist or be empty)',
          })
          .option('name', { type: 'string', describe: 'Model name (default: from the model)' })
          .option('hub-url', {
            type: 'string',
            describe: `Hugging Face Hub base URL (default: $SWARMBEE_HF_ENDPOINT, $HF_ENDPOINT, else ${DEFAULT_HF_ENDPOINT})`,
          })
          .option('llama2c-url', {
            type: 'string',
            describe: `Base URL of llama2.c's tokenizer.bin (default: $SWARMBEE_LLAMA2C_URL, else ${DEFAULT_LLAMA2C_URL})`,
          })
          .option('download-dir', {
            type: 'string',
            describe:
              'Where downloads and their .partial files are kept (default: <cache>/downloads/<model>; cache is $SWARMBEE_CACHE_DIR or ~/.cache/swarmbee)',
          })
          .option('retries', {
            type: 'number',
            default: DEFAULT_DOWNLOAD_RETRIES,
            describe: 'Network retries per file, each resuming where the last stopped',
          })
          .option('context', {
            type: 'number',
            describe:
              "Hugging Face and GGUF models: context to record, in tokens (default: max_position_embeddings or the GGUF's context_length; see `model import hf --context`)",
          })
          .option('file', {
            type: 'string',
            describe:
              'A GGUF file of the Hugging Face repository to pull and import (NAME.gguf or its path there) instead of its safetensors checkpoint',
          }),
      ),
    async (args) => {
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      try {
        const result = await withProgress((progress) =>
          pullModel({
            target: args.model,
            out: args.out,
            name: args.name,
            hubUrl: args.hubUrl,
            llama2cUrl: args.llama2cUrl,
            downloadDir: args.downloadDir,
            retries: args.retries,
            contextLength: args.context,
            file: args.file,
            requantize: args.requantize,
            activations: args.activations,
            progress,
            signal: controller.signal,
          }),
        );
        const rows = result.files.map((f) => [
          relative(result.downloadDir, f.path),
          formatBytes(f.bytes),
          f.verified === 'nothing' ? 'not checked (no published hash)' : f.verified,
          f.resumedFrom > 0 ? `resumed at ${formatBytes(f.resumedFrom)}` : '',
        ]);
        process.stderr.write(
          `downloaded into ${result.downloadDir}\n${renderTable(['file', 'size', 'verified', ''], rows)}\n`,
        );
        const m = result.dir.manifest;
        process.stdout.write(
          `pulled ${m.name} into ${result.dir.path} (model hash ${m.modelHash.slice(0, 12)})\n`,
        );
      } finally {
        process.off('SIGINT', onSignal);
      }
    },
  );
}
