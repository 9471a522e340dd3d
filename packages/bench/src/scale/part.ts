/**
 * The scale suite is a list of parts run in order on each model shape: each part adds
 * rows to the table and may leave artefacts (a model dir, a quantized copy) in the
 * shape's run for the parts after it. New measurements (transfer, serving) are new parts.
 */
import type { HfSynthShapeName } from '@swarmbee/model';
import type { SuiteContext } from '../suite.js';
import type { StepMeasurement } from './step.js';

/** One shape's run: its checkpoint, and what the parts so far have made (all under `root`). */
export interface ScaleShapeRun {
  shape: HfSynthShapeName;
  checkpoint: string;
  /** Tensor bytes of the bf16 checkpoint. */
  checkpointBytes: number;
  /** Scratch dir of this run, removed when the shape is done. */
  root: string;
  /** The fp32 model dir, once the import part has run. */
  fp32?: string;
  /** Quantized model dirs by bits, once the quantize part has run. */
  quantized: Partial<Record<4 | 8, string>>;
}

export interface ScaleRow {
  shape: HfSynthShapeName;
  step: string;
  /** What the step produced or read, e.g. `bf16 → fp32`, `int4`, `int4 [0, 8)`. */
  detail: string;
  measurement: StepMeasurement;
}

export interface ScalePart {
  name: string;
  run(shape: ScaleShapeRun, context: SuiteContext): Promise<ScaleRow[]>;
}

/** Decimal megabytes per second through the step (the larger of bytes read and written). */
export function stepMbPerSecond(m: StepMeasurement): number {
  return Math.max(m.inBytes, m.outBytes) / 1e6 / m.seconds;
}
