/**
 * @swarmbee/engine — one stage's inference over onnxruntime-node, off the main
 * thread: session, KV cache and sampling; plus in-process pipelines and run.c-style
 * generation on top of them.
 *
 * @example
 * ```ts
 * import { openModelDir, loadTokenizer } from '@swarmbee/model';
 * import { LocalPipeline, generate } from '@swarmbee/engine';
 * const dir = await openModelDir('models/s260k');
 * const pipeline = await LocalPipeline.create(dir, { stages: 2 });
 * const tokenizer = await loadTokenizer(dir);
 * const [out] = await generate(pipeline, [{ promptIds: tokenizer.encode('Once upon a time'), steps: 64, sampling: { temperature: 0, topK: 0, topP: 1 } }]);
 * await pipeline.close();
 * ```
 */
export * from './batch-feeds.js';
export * from './decoder-feeds.js';
export * from './device-emulation.js';
export * from './execution-provider.js';
export * from './generate.js';
export * from './kv-cache.js';
export * from './local-pipeline.js';
export * from './onnx-decoder-stage.js';
export * from './ort-stage.js';
export * from './pipeline.js';
export * from './sampler.js';
export * from './shard-stage.js';
export * from './source-thread.js';
export * from './stage-engine.js';
export * from './stage-factory.js';
export * from './stage-session.js';
export * from './threaded-stage.js';
export * from './train/adamw.js';
export * from './train/ort-training-stage.js';
export * from './train/pipeline-schedule.js';
export * from './train/threaded-training-stage.js';
export * from './train/training-batch.js';
export * from './train/training-pipeline.js';
export * from './train/training-stage.js';
