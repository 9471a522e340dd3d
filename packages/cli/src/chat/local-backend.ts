/** `swarmbee chat --model`: replies from the model's stages chained in this process. */

import { TextStream } from '@swarmbee/coordinator';
import { generate, LocalPipeline, type LocalPipelineOptions } from '@swarmbee/engine';
import {
  type ChatMessage,
  encodeChat,
  loadTokenizer,
  type ModelDir,
  type Tokenizer,
} from '@swarmbee/model';
import {
  type ChatBackend,
  type Reply,
  type ReplyOptions,
  type ReplySettings,
  TokenClock,
} from './backend.js';

export class LocalChatBackend implements ChatBackend {
  private constructor(
    readonly label: string,
    private readonly pipeline: LocalPipeline,
    private readonly tokenizer: Tokenizer,
    private readonly settings: ReplySettings,
  ) {}

  static async open(
    dir: ModelDir,
    settings: ReplySettings,
    pipeline: LocalPipelineOptions,
  ): Promise<LocalChatBackend> {
    const tokenizer = await loadTokenizer(dir);
    const stages = await LocalPipeline.create(dir, pipeline);
    return new LocalChatBackend(dir.manifest.name, stages, tokenizer, settings);
  }

  async reply(messages: readonly ChatMessage[], options: ReplyOptions): Promise<Reply> {
    const promptIds = encodeChat(this.tokenizer, messages, this.settings.template);
    const stream = new TextStream(this.tokenizer, promptIds, []);
    const clock = new TokenClock();
    let finish: Reply['finish'] = 'length';
    try {
      const [result] = await generate(
        this.pipeline,
        [
          {
            promptIds,
            // generate() counts positions: the prompt, then at most maxTokens sampled ids.
            steps: promptIds.length + this.settings.maxTokens - 1,
            sampling: this.settings.sampling,
            stopIds: [...this.tokenizer.stopIds],
          },
        ],
        {
          signal: options.signal,
          onToken: (_, id) => {
            clock.tick();
            const text = stream.push(id);
            if (text) options.onText(text);
          },
        },
      );
      finish = result!.finish;
    } catch (error) {
      if (!options.signal.aborted) throw error;
      finish = 'interrupted';
    }
    const tail = stream.end();
    if (tail) options.onText(tail);
    return {
      text: stream.text,
      tokens: clock.count,
      tokensPerSecond: clock.tokensPerSecond,
      finish,
    };
  }

  async close(): Promise<void> {
    await this.pipeline.close();
  }
}
