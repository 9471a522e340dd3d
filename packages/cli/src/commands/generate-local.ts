/**
 * `swarmbee generate --model`: the model's shards chained in this process. Loaded only when
 * generation runs here, so `generate --url` does not load the engine and the model package.
 */
import { InvalidArgumentError, type SamplingParams } from '@swarmbee/core';
import { generate, LocalPipeline } from '@swarmbee/engine';
import {
  adapterHash,
  buildMergedShard,
  decodeIds,
  type LayerRange,
  loadTokenizer,
  type ModelDir,
  mergeAdapter,
  readPeftAdapter,
  requireLlamaDir,
  type ShardGraph,
  type Tokenizer,
} from '@swarmbee/model';
import { resolveModel } from '../model-arg.js';
import { parsePromptIds, parseRanges } from '../options.js';
import { roundRate } from './generate-output.js';

/** What `generate` in process takes from its command line. */
export interface LocalGenerateArgs {
  model?: string;
  adapter?: string;
  prompt: string;
  promptIds?: string;
  steps: number;
  stages: number;
  ranges?: string;
  threads?: number;
  executionProvider: string;
  json: boolean;
}

export async function generateLocal(
  args: LocalGenerateArgs,
  sampling: SamplingParams,
): Promise<void> {
  const dir = await resolveModel(args.model, (line) => process.stderr.write(`${line}\n`));
  // Raw ids need no tokenizer; text does, and loadTokenizer says so when it is missing.
  const tokenizer: Tokenizer | undefined =
    args.promptIds === undefined || dir.manifest.tokenizer ? await loadTokenizer(dir) : undefined;
  const prompts =
    args.promptIds !== undefined
      ? parsePromptIds(args.promptIds)
      : [tokenizer!.encode(args.prompt)];
  const ranges = args.ranges !== undefined ? parseRanges(args.ranges) : undefined;
  if (!Number.isInteger(args.stages) || args.stages < 1)
    throw new InvalidArgumentError(`--stages must be a positive integer, got ${args.stages}`);
  const stage = {
    executionProvider: args.executionProvider,
    ...(args.threads === undefined ? {} : { intraOpThreads: args.threads }),
  };
  const shard = args.adapter === undefined ? undefined : await adaptedShards(dir, args.adapter);
  const pipeline = await LocalPipeline.create(dir, {
    stages: args.stages,
    ranges,
    stage,
    ...(shard ? { shard } : {}),
  });
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  // Stream the single sequence's text as run.c does; batches print when done.
  const streaming = !args.json && prompts.length === 1 && tokenizer !== undefined;
  const first = prompts[0]!;
  // One decoder over prompt and continuation, so text joining the two comes out right.
  const decoder = streaming ? tokenizer!.decoder(first.slice(0, 1)) : undefined;
  if (decoder) {
    let prompt = '';
    for (const id of first.slice(1, args.steps + 1)) prompt += decoder.push(id);
    process.stdout.write(prompt);
  }
  try {
    const results = await generate(
      pipeline,
      prompts.map((promptIds) => ({
        promptIds,
        steps: args.steps,
        sampling,
        stopIds: tokenizer ? [...tokenizer.stopIds] : [],
      })),
      {
        signal: controller.signal,
        onToken: (_, id) => {
          const text = decoder?.push(id);
          if (text) process.stdout.write(text);
        },
      },
    );
    for (const result of results) {
      const text = tokenizer ? decodeIds(tokenizer, result.ids) : '';
      if (args.json) {
        process.stdout.write(
          `${JSON.stringify({ text, token_ids: result.ids, tokens_per_s: roundRate(result.tokensPerSecond) })}\n`,
        );
      } else if (decoder) {
        process.stdout.write(`${decoder.end()}\n`);
      } else {
        process.stdout.write(`${tokenizer ? text : result.ids.join(',')}\n`);
      }
    }
    if (!args.json) {
      const speeds = results.map((r) => roundRate(r.tokensPerSecond)).join(', ');
      process.stderr.write(
        `achieved tok/s: ${speeds} (stages: ${pipeline.info.stages.map((s) => `[${s.layerStart},${s.layerEnd})`).join(' ')})\n`,
      );
    }
  } finally {
    process.off('SIGINT', onSignal);
    await pipeline.close();
  }
}

/** Shards of `dir` with the adapter merged into its weights (adapters of another model are refused). */
async function adaptedShards(
  dir: ModelDir,
  adapterDir: string,
): Promise<(range: LayerRange) => ShardGraph> {
  const model = requireLlamaDir(dir, '--adapter');
  const adapter = await readPeftAdapter(adapterDir);
  const merged = await mergeAdapter(model, adapter);
  const id = adapterHash(adapter);
  return (range) => buildMergedShard(model, range, merged, id);
}
