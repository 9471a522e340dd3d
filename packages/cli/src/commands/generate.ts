/**
 * `swarmbee generate`: run a model's shards chained in this process (generate-local.ts), or
 * ask a running coordinator (`--url`), and print the text.
 */
import type { SamplingParams } from '@swarmbee/core';
import type { Argv } from 'yargs';
import { parsePromptIds } from '../options.js';
import { remoteComplete, remoteStream, servedAdapterModel } from '../remote-generate.js';
import { roundRate } from './generate-output.js';

export function generateCommand(yargs: Argv): Argv {
  return yargs.command(
    'generate',
    'Generate text from a model, its stages chained in this process',
    (y) =>
      y
        .option('model', {
          type: 'string',
          describe: 'Model dir (default: the embedded default model, random weights)',
        })
        .option('adapter', {
          type: 'string',
          describe:
            'LoRA adapter dir (PEFT format, e.g. from swarmbee finetune), merged into the fp32 weights in memory; with --url, the NAME of an adapter the coordinator serves (--adapter NAME=DIR there)',
        })
        .option('url', {
          type: 'string',
          describe: "A running coordinator's base URL; generate there instead of in this process",
        })
        .option('api-key', {
          type: 'string',
          describe: 'Bearer key for --url when the coordinator requires one',
        })
        .option('prompt', {
          type: 'string',
          default: '',
          describe: 'Prompt text (encoded with BOS first, as run.c does)',
        })
        .option('prompt-ids', {
          type: 'string',
          describe:
            'Raw token ids instead of text: "1,403,407"; ";" separates the sequences of a batch',
        })
        .option('steps', {
          type: 'number',
          default: 256,
          describe: 'Positions to run, prompt included (run.c -n); 0 = the whole context',
        })
        .option('temperature', {
          type: 'number',
          default: 1,
          describe: 'Sampling temperature; 0 = greedy',
        })
        .option('top-p', {
          type: 'number',
          default: 0.9,
          describe: 'Nucleus sampling threshold in (0, 1]; 1 disables (run.c default 0.9)',
        })
        .option('top-k', {
          type: 'number',
          default: 0,
          describe: 'Sample among the k most likely tokens; 0 disables',
        })
        .option('seed', {
          type: 'number',
          describe: 'Random seed for sampling (default: from the clock)',
        })
        .option('stages', {
          type: 'number',
          default: 1,
          describe: 'Split the model into this many even stages',
        })
        .option('ranges', {
          type: 'string',
          describe: 'Explicit stage layer ranges instead of --stages, e.g. 0-2,2-5 (end exclusive)',
        })
        .option('threads', {
          type: 'number',
          describe: 'onnxruntime threads per stage (default: all cores)',
        })
        .option('execution-provider', {
          type: 'string',
          default: 'cpu',
          describe: 'onnxruntime execution provider: cpu, cuda, ... (CPU takes what it lacks)',
        })
        .option('json', {
          type: 'boolean',
          default: false,
          describe: 'Print one JSON line per sequence: {"text","token_ids","tokens_per_s"}',
        }),
    async (args) => {
      const sampling = {
        temperature: args.temperature,
        topP: args.topP,
        topK: args.topK,
        ...(args.seed === undefined ? {} : { seed: args.seed }),
      };
      const url = args.url;
      if (url !== undefined) {
        const model =
          args.adapter === undefined
            ? undefined
            : await servedAdapterModel({ url, apiKey: args.apiKey }, args.adapter);
        const prompts =
          args.promptIds !== undefined ? parsePromptIds(args.promptIds) : [args.prompt];
        await generateRemote(url, prompts, args.steps, sampling, args.json, args.apiKey, model);
        return;
      }
      const { generateLocal } = await import('./generate-local.js');
      await generateLocal(args, sampling);
    },
  );
}

async function generateRemote(
  url: string,
  prompts: (string | number[])[],
  steps: number,
  sampling: SamplingParams,
  json: boolean,
  apiKey?: string,
  model?: string,
): Promise<void> {
  const requests = prompts.map((prompt) => ({ url, prompt, steps, sampling, apiKey, model }));
  if (json || requests.length > 1) {
    // A batch travels as concurrent requests; the coordinator micro-batches them.
    const results = await Promise.all(requests.map((request) => remoteComplete(request)));
    for (const result of results) {
      if (json)
        process.stdout.write(
          `${JSON.stringify({ text: result.text, token_ids: result.tokenIds, tokens_per_s: roundRate(result.tokensPerSecond) })}\n`,
        );
      else process.stdout.write(`${result.text}\n`);
    }
    return;
  }
  await remoteStream(requests[0]!, (text) => process.stdout.write(text));
  process.stdout.write('\n');
}
