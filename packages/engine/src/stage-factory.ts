/**
 * The one place that picks a StageEngine implementation for a shard, from the
 * shard's kind: SwarmBee's own Llama graphs run in `OrtStage`, stages cut out of
 * an imported ONNX decoder in `OnnxDecoderStage`. The stage thread, in-process
 * pipelines and (through `ThreadedStage`) the worker all create engines here.
 */
import type { ShardGraph, TensorSliceShard } from '@swarmbee/model';
import { paceSegments, type SegmentEmulation, unpaced } from './device-emulation.js';
import { OnnxDecoderStage } from './onnx-decoder-stage.js';
import { OrtStage } from './ort-stage.js';
import { PortAllReduce, type PortGroup } from './port-all-reduce.js';
import { SharedAllReduce, type SharedGroup } from './shared-all-reduce.js';
import type { StageEngine, StageOptions } from './stage-engine.js';
import { TensorMemberStage } from './tensor-member-stage.js';

export function createStageEngine(
  shard: ShardGraph,
  options: StageOptions = {},
): Promise<StageEngine> {
  return shard.kind === 'onnx-decoder'
    ? OnnxDecoderStage.create(shard, options)
    : OrtStage.create(shard, options);
}

/**
 * A tensor-parallel member: over the shared memory of its in-process group, or through the
 * port to the group member its process's main thread holds (a worker's); with `emulation`,
 * its segments run as on that slower device.
 */
export function createMemberEngine(
  shard: TensorSliceShard,
  group: SharedGroup | PortGroup,
  options: StageOptions = {},
  emulation?: SegmentEmulation,
): Promise<StageEngine> {
  const allReduce =
    'port' in group ? new PortAllReduce(group) : new SharedAllReduce(group, shard.slice.rank);
  return TensorMemberStage.create(
    shard,
    allReduce,
    options,
    emulation ? paceSegments(emulation) : unpaced,
  );
}
