/**
 * The PyTorch + PEFT reference runs in test/fixtures/peft-reference (made by
 * scripts/fixtures/peft_reference.py): the base model, PEFT's initial adapter, 20 steps
 * of data with PyTorch's loss, gradients, gradient norm and learning rate per step, and
 * SwarmBee's side of the same run.
 */
import { join } from 'node:path';
import {
  LEARNING_RATE_SCHEDULES,
  type LearningRateSchedule,
  learningRateFactor,
  type PipelineScheduleKind,
  type StepMicroBatch,
  type StepResult,
  TrainingPipeline,
} from '@swarmbee/engine';
import {
  importHf,
  importLlama2c,
  type LlamaModelDir,
  LORA_TARGETS,
  type LoraAdapter,
  type LoraTarget,
  loraTensor,
  peftTensorName,
  readPeftAdapter,
  SafetensorsFile,
} from '@swarmbee/model';
import { REPO_ROOT, STORIES260K } from './shared-models.js';

export const PEFT_REFERENCE_DIR = join(REPO_ROOT, 'test', 'fixtures', 'peft-reference');
export const REFERENCE_CASES = ['stories260k', 'tiny-gqa'] as const;
export type ReferenceCaseName = (typeof REFERENCE_CASES)[number];

interface ReferenceRows {
  lengths: number[];
  ids: number[][];
  targets: number[][];
}

export interface ReferenceStep extends ReferenceRows {
  loss: number;
  grad_norm: number;
  learning_rate: number;
}

export interface Reference {
  tools: Record<string, string>;
  lora: { rank: number; alpha: number; rslora: boolean; targets: LoraTarget[]; layers: number[] };
  train: {
    steps: number;
    lr: number;
    weight_decay: number;
    beta1: number;
    beta2: number;
    eps: number;
    max_grad_norm: number;
    schedule: LearningRateSchedule;
    warmup_steps: number;
  };
  steps: ReferenceStep[];
  eval: ReferenceRows;
}

export interface ReferenceCase {
  name: ReferenceCaseName;
  dir: LlamaModelDir;
  reference: Reference;
  initial: LoraAdapter;
  /** PyTorch's gradients per step (`stepNN/<SwarmBee tensor name>`) and its final adapter (`final/...`). */
  tensors: Map<string, Float32Array>;
}

export function caseDir(name: ReferenceCaseName): string {
  return join(PEFT_REFERENCE_DIR, name);
}

/**
 * PEFT's logits with the adapter SwarmBee trained, over the case's evaluation rows:
 * [rows, widest row, vocab], row r's position p at (r · widest + p) · vocab.
 */
export async function peftRoundtripLogits(name: ReferenceCaseName): Promise<Float32Array> {
  const file = await SafetensorsFile.open(join(caseDir(name), 'roundtrip.safetensors'));
  const chunks: Float32Array[] = [];
  try {
    for await (const chunk of file.readFloat32('logits')) chunks.push(chunk.slice());
  } finally {
    await file.close();
  }
  return Float32Array.from(chunks.flatMap((chunk) => [...chunk]));
}

/** Imports the case's base model into `root` the way a user would, and reads the reference. */
export async function loadReferenceCase(
  name: ReferenceCaseName,
  root: string,
): Promise<ReferenceCase> {
  const dir =
    name === 'stories260k'
      ? await importLlama2c({
          checkpoint: STORIES260K.checkpoint,
          tokenizer: STORIES260K.tokenizer,
          out: join(root, name),
        })
      : await importHf({ dir: join(caseDir(name), 'model'), out: join(root, name) });
  const { readFile } = await import('node:fs/promises');
  const reference = JSON.parse(
    await readFile(join(caseDir(name), 'reference.json'), 'utf8'),
  ) as Reference;
  if (!LEARNING_RATE_SCHEDULES.includes(reference.train.schedule))
    throw new Error(`unknown schedule ${reference.train.schedule}`);
  const initial = await readPeftAdapter(join(caseDir(name), 'initial'));
  const byPeftName = new Map<string, string>();
  for (let layer = 0; layer < dir.manifest.config.nLayers; layer++)
    for (const target of LORA_TARGETS) {
      byPeftName.set(peftTensorName(layer, target, 'A'), loraTensor.a(layer, target));
      byPeftName.set(peftTensorName(layer, target, 'B'), loraTensor.b(layer, target));
    }
  const file = await SafetensorsFile.open(join(caseDir(name), 'gradients.safetensors'));
  const tensors = new Map<string, Float32Array>();
  try {
    for (const entry of file.tensors.values()) {
      const [part, peftName] = entry.name.split('/') as [string, string];
      const chunks: Float32Array[] = [];
      for await (const chunk of file.readFloat32(entry.name)) chunks.push(chunk.slice());
      tensors.set(
        `${part}/${byPeftName.get(peftName)}`,
        Float32Array.from(chunks.flatMap((c) => [...c])),
      );
    }
  } finally {
    await file.close();
  }
  return { name, dir, reference, initial, tensors };
}

/** A reference step's rows as micro-batches of `rowsPerMicroBatch`, each padded to its own longest row. */
export function microBatches(rows: ReferenceRows, rowsPerMicroBatch: number): StepMicroBatch[] {
  const out: StepMicroBatch[] = [];
  for (let from = 0; from < rows.lengths.length; from += rowsPerMicroBatch) {
    const lengths = rows.lengths.slice(from, from + rowsPerMicroBatch);
    const width = Math.max(...lengths);
    const tokens = new BigInt64Array(lengths.length * width);
    const targets = new BigInt64Array(lengths.length * width).fill(-100n);
    lengths.forEach((length, r) => {
      for (let i = 0; i < length; i++) {
        tokens[r * width + i] = BigInt(rows.ids[from + r]![i]!);
        targets[r * width + i] = BigInt(rows.targets[from + r]![i]!);
      }
    });
    out.push({ lengths: Int32Array.from(lengths), width, tokens, targets });
  }
  return out;
}

export interface StepComparison {
  step: number;
  result: StepResult;
  learningRate: number;
  gradients: Map<string, Float32Array>;
}

/**
 * Trains the case's 20 steps from PEFT's initial adapter with the reference's settings,
 * calling `onStep` with each step's loss and gradients before its update; returns the
 * final adapter values.
 */
export async function runReference(
  c: ReferenceCase,
  options: {
    stages: number;
    schedule: PipelineScheduleKind;
    rowsPerMicroBatch?: number;
    onStep?: (comparison: StepComparison) => void;
  },
): Promise<Map<string, Float32Array>> {
  const { train } = c.reference;
  const pipeline = await TrainingPipeline.local(c.dir, c.initial, {
    stages: options.stages,
    schedule: options.schedule,
    stage: {
      intraOpThreads: 1,
      optimizer: {
        beta1: train.beta1,
        beta2: train.beta2,
        eps: train.eps,
        weightDecay: train.weight_decay,
      },
    },
  });
  try {
    for (const [k, step] of c.reference.steps.entries()) {
      const result = await pipeline.accumulate(microBatches(step, options.rowsPerMicroBatch ?? 2));
      const learningRate =
        train.lr *
        learningRateFactor(k, {
          schedule: train.schedule,
          warmupSteps: train.warmup_steps,
          totalSteps: train.steps,
        });
      options.onStep?.({ step: k, result, learningRate, gradients: await pipeline.gradients() });
      await pipeline.update(result.gradNorm, { learningRate, maxGradNorm: train.max_grad_norm });
    }
    return await pipeline.adapterTensors();
  } finally {
    await pipeline.close();
  }
}

/** max |a − b| / max |b|: a difference relative to the reference tensor's scale. */
export function relativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}
