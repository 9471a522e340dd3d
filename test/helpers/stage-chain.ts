/**
 * Runs stage graphs cut out of an imported decoder one after another with bare
 * onnxruntime sessions — no SwarmBee engine — so graph surgery is tested on its
 * own: each stage gets the inputs its graph declares from one pool of feeds (the
 * previous stage's hidden state as `hidden_in`), and its presents go back into
 * the pool as the next step's pasts.
 */
import type { OnnxKvLayout } from '@swarmbee/core';
import type { OnnxDecoderShardGraph } from '@swarmbee/model';
import ort from 'onnxruntime-node';

export class StageChain {
  private constructor(
    readonly shards: OnnxDecoderShardGraph[],
    readonly sessions: ort.InferenceSession[],
  ) {}

  static async open(shards: OnnxDecoderShardGraph[]): Promise<StageChain> {
    const sessions = await Promise.all(
      shards.map((shard) =>
        ort.InferenceSession.create(shard.onnx, {
          logSeverityLevel: 3,
          extra: {
            session: { model_external_initializers_file_folder_path: shard.externalDataDir },
          },
        }),
      ),
    );
    return new StageChain(shards, sessions);
  }

  /**
   * One forward pass through every stage. `feeds` holds the original inputs and every
   * layer's past by name; the stages' presents replace the pasts in it. Returns the logits.
   */
  async step(feeds: Record<string, ort.Tensor>): Promise<ort.Tensor> {
    let hidden: ort.Tensor | undefined;
    let logits: ort.Tensor | undefined;
    for (const [i, session] of this.sessions.entries()) {
      const { io } = this.shards[i]!;
      const stageFeeds: Record<string, ort.Tensor> = {};
      for (const name of session.inputNames) {
        const value = name === io.hiddenIn ? hidden : feeds[name];
        if (!value) throw new Error(`stage ${i} needs ${name}`);
        stageFeeds[name] = value;
      }
      const out = await session.run(stageFeeds);
      io.kv.present.forEach((names, l) => {
        names.forEach((name, part) => {
          feeds[io.kv.past[l]![part]!] = out[name]!;
        });
      });
      if (io.hiddenOut) hidden = out[io.hiddenOut];
      else logits = out[io.logits!];
    }
    return logits!;
  }

  async close(): Promise<void> {
    await Promise.all(this.sessions.map((s) => s.release()));
  }
}

/** Empty pasts (zero positions) for every layer of a decoder's KV layout (the manifest's, all layers). */
export function emptyPasts(kv: OnnxKvLayout, batch: number): Record<string, ort.Tensor> {
  const dims =
    kv.kind === 'stacked'
      ? [2, batch, kv.kvHeads, 0, kv.headDim]
      : [batch, kv.kvHeads, 0, kv.headDim];
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of kv.past.flat()) {
    feeds[name] =
      kv.dtype === 'float16'
        ? new ort.Tensor('float16', new Uint16Array(0), dims)
        : new ort.Tensor('float32', new Float32Array(0), dims);
  }
  return feeds;
}
