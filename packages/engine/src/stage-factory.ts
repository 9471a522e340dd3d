/**
 * The one place that picks a StageEngine implementation for a shard, from the
 * shard's kind: SwarmBee's own Llama graphs run in `OrtStage`, stages cut out of
 * an imported ONNX decoder in `OnnxDecoderStage`. The stage thread, in-process
 * pipelines and (through `ThreadedStage`) the worker all create engines here.
 */
import type { ShardGraph } from '@swarmbee/model';
import { OnnxDecoderStage } from './onnx-decoder-stage.js';
import { OrtStage } from './ort-stage.js';
import type { StageEngine, StageOptions } from './stage-engine.js';

export function createStageEngine(
  shard: ShardGraph,
  options: StageOptions = {},
): Promise<StageEngine> {
  return shard.kind === 'onnx-decoder'
    ? OnnxDecoderStage.create(shard, options)
    : OrtStage.create(shard, options);
}
