/** `swarmbee chat`: an interactive conversation in the terminal, through the model's chat template. */
import { InvalidArgumentError } from '@swarmbee/core';
import type { Argv } from 'yargs';
import type { ChatBackend, ReplySettings } from '../chat/backend.js';
import { RemoteChatBackend } from '../chat/remote-backend.js';
import { runChatSession } from '../chat/session.js';
import { parseRanges } from '../options.js';

/** Tokens one reply may have when --max-tokens is not given. */
export const DEFAULT_CHAT_REPLY_TOKENS = 256;

export function chatCommand(yargs: Argv): Argv {
  return yargs.command(
    'chat',
    'Chat with a model in the terminal (a running coordinator, or the model in this process): streamed replies, multi-turn history through its chat template, /reset, /system TEXT',
    (y) =>
      y
        .option('model', {
          type: 'string',
          describe:
            'Model dir to run in this process (default: the embedded default model, random weights)',
        })
        .option('url', {
          type: 'string',
          describe: "A running coordinator's base URL; chat there instead of in this process",
        })
        .option('api-key', {
          type: 'string',
          describe: 'Bearer key for --url when the coordinator requires one',
        })
        .option('system', {
          type: 'string',
          describe:
            'System message the conversation starts with (default: none; /system changes it)',
        })
        .option('max-tokens', {
          type: 'number',
          default: DEFAULT_CHAT_REPLY_TOKENS,
          describe: 'Most tokens one reply may have',
        })
        .option('temperature', {
          type: 'number',
          default: 1,
          describe: 'Sampling temperature; 0 = greedy',
        })
        .option('top-p', {
          type: 'number',
          default: 0.9,
          describe: 'Nucleus sampling threshold in (0, 1]; 1 disables',
        })
        .option('top-k', {
          type: 'number',
          default: 0,
          describe: 'Sample among the k most likely tokens; 0 disables',
        })
        .option('seed', {
          type: 'number',
          describe: 'Random seed for sampling each reply (default: from the clock)',
        })
        .option('enable-thinking', {
          type: 'boolean',
          describe:
            "The template's enable_thinking (Qwen3: --no-enable-thinking asks for replies without a thinking block; default: the template's own)",
        })
        .option('stages', {
          type: 'number',
          default: 1,
          describe: 'With --model: split the model into this many even stages',
        })
        .option('ranges', {
          type: 'string',
          describe: 'With --model: explicit stage layer ranges instead of --stages, e.g. 0-2,2-5',
        })
        .option('threads', {
          type: 'number',
          describe: 'With --model: onnxruntime threads per stage (default: all cores)',
        })
        .option('execution-provider', {
          type: 'string',
          default: 'cpu',
          describe: 'With --model: onnxruntime execution provider: cpu, cuda, ...',
        })
        .conflicts('url', ['model', 'ranges', 'threads']),
    async (args) => {
      if (!Number.isInteger(args.maxTokens) || args.maxTokens < 1)
        throw new InvalidArgumentError(
          `--max-tokens must be a positive integer, got ${args.maxTokens}`,
        );
      if (!Number.isInteger(args.stages) || args.stages < 1)
        throw new InvalidArgumentError(`--stages must be a positive integer, got ${args.stages}`);
      const settings: ReplySettings = {
        sampling: {
          temperature: args.temperature,
          topP: args.topP,
          topK: args.topK,
          ...(args.seed === undefined ? {} : { seed: args.seed }),
        },
        maxTokens: args.maxTokens,
        template: args.enableThinking === undefined ? {} : { enableThinking: args.enableThinking },
      };
      const notice = (line: string) => process.stderr.write(`${line}\n`);
      let backend: ChatBackend;
      if (args.url !== undefined) {
        backend = new RemoteChatBackend({ url: args.url, apiKey: args.apiKey }, settings);
      } else {
        // In process only: `chat --url` loads neither the engine nor the model package.
        const [{ resolveModel }, { LocalChatBackend }] = await Promise.all([
          import('../model-arg.js'),
          import('../chat/local-backend.js'),
        ]);
        const dir = await resolveModel(args.model, notice);
        const ranges = args.ranges !== undefined ? parseRanges(args.ranges) : undefined;
        backend = await LocalChatBackend.open(dir, settings, {
          stages: args.stages,
          ranges,
          stage: {
            executionProvider: args.executionProvider,
            ...(args.threads === undefined ? {} : { intraOpThreads: args.threads }),
          },
        });
      }
      try {
        await runChatSession(backend, {
          system: args.system,
          input: process.stdin,
          output: process.stdout,
          notices: process.stderr,
        });
      } finally {
        await backend.close();
      }
    },
  );
}
