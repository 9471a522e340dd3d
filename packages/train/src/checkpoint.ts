/**
 * Checkpoints of a fine-tuning run: `<dir>/step-NNNNNN/` holding the adapter as a PEFT
 * adapter dir (usable as it is), the AdamW moments (`optimizer.safetensors`) and
 * `trainer_state.json` (the step, the settings that must not change on resume, the
 * loss history). Each is written under a temporary name and renamed into place, so a
 * crash never leaves a half-written checkpoint; the oldest beyond `keep` are removed.
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SWARMBEE_VERSION, TrainingCheckpointInvalidError } from '@swarmbee/core';
import {
  type LoraAdapter,
  readPeftAdapter,
  SafetensorsFile,
  StagingDir,
  writePeftAdapterFiles,
  writeSafetensors,
} from '@swarmbee/model';

export const CHECKPOINT_FORMAT = 'swarmbee.finetune-checkpoint';
export const CHECKPOINT_FORMAT_VERSION = 1;
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const STEP_DIR = /^step-(\d{6,})$/;

/** One optimizer step's figures. */
export interface StepRecord {
  step: number;
  loss: number;
  gradNorm: number;
  learningRate: number;
}

export interface TrainerState {
  format: typeof CHECKPOINT_FORMAT;
  formatVersion: typeof CHECKPOINT_FORMAT_VERSION;
  /** Optimizer steps done. */
  step: number;
  /** What must be the same to resume: model hash, data hash, adapter and optimization settings. */
  run: Record<string, unknown>;
  history: StepRecord[];
  createdBy: string;
}

/** Adapter values, AdamW moments and the optimizer step: everything to resume exactly. */
export interface TrainingSnapshot {
  adapter: LoraAdapter;
  moments: Map<string, { expAvg: Float32Array; expAvgSq: Float32Array }>;
  state: TrainerState;
}

export function checkpointPath(dir: string, step: number): string {
  return join(dir, `step-${String(step).padStart(6, '0')}`);
}

export async function writeCheckpoint(
  dir: string,
  snapshot: TrainingSnapshot,
  keep: number,
): Promise<string> {
  const path = checkpointPath(dir, snapshot.state.step);
  await rm(path, { recursive: true, force: true });
  await StagingDir.build(path, async (staging) => {
    await writePeftAdapterFiles(staging, snapshot.adapter);
    const tensors = [...snapshot.moments].flatMap(([name, m]) => [
      { name: `${name}.exp_avg`, shape: [m.expAvg.length], data: m.expAvg },
      { name: `${name}.exp_avg_sq`, shape: [m.expAvgSq.length], data: m.expAvgSq },
    ]);
    await writeSafetensors(join(staging, OPTIMIZER_FILE), tensors, { format: 'pt' });
    await writeFile(
      join(staging, TRAINER_STATE_FILE),
      `${JSON.stringify(snapshot.state, null, 2)}\n`,
    );
  });
  const steps = await checkpointSteps(dir);
  for (const old of steps.slice(0, Math.max(0, steps.length - keep)))
    await rm(checkpointPath(dir, old), { recursive: true, force: true });
  return path;
}

/** Steps of the complete checkpoints in `dir`, ascending (none when it does not exist). */
export async function checkpointSteps(dir: string): Promise<number[]> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  return entries
    .map((e) => STEP_DIR.exec(e))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Reads a checkpoint dir (a `step-NNNNNN` dir, or a dir of them: the latest). */
export async function readCheckpoint(
  path: string,
): Promise<{ path: string; snapshot: TrainingSnapshot }> {
  const steps = await checkpointSteps(path);
  const dir = steps.length > 0 ? checkpointPath(path, steps.at(-1)!) : path;
  let state: TrainerState;
  try {
    state = JSON.parse(await readFile(join(dir, TRAINER_STATE_FILE), 'utf8')) as TrainerState;
  } catch (error) {
    throw new TrainingCheckpointInvalidError(
      `${dir} is not a training checkpoint: cannot read ${TRAINER_STATE_FILE} (${(error as Error).message})`,
      { cause: error },
    );
  }
  if (state.format !== CHECKPOINT_FORMAT || state.formatVersion !== CHECKPOINT_FORMAT_VERSION)
    throw new TrainingCheckpointInvalidError(
      `${dir}: ${TRAINER_STATE_FILE} has format ${state.format} v${state.formatVersion}; this SwarmBee reads ${CHECKPOINT_FORMAT} v${CHECKPOINT_FORMAT_VERSION}`,
    );
  const adapter = await readPeftAdapter(dir);
  const moments = new Map<string, { expAvg: Float32Array; expAvgSq: Float32Array }>();
  const file = await SafetensorsFile.open(join(dir, OPTIMIZER_FILE)).catch((error: Error) => {
    throw new TrainingCheckpointInvalidError(`${dir}: ${error.message}`, { cause: error });
  });
  try {
    for (const name of adapter.tensors.keys()) {
      const read = async (suffix: string) => {
        const entry = file.entry(`${name}.${suffix}`);
        if (!entry)
          throw new TrainingCheckpointInvalidError(
            `${dir}/${OPTIMIZER_FILE} has no ${name}.${suffix}`,
          );
        const chunks: Float32Array[] = [];
        for await (const chunk of file.readFloat32(entry.name)) chunks.push(chunk.slice());
        const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const chunk of chunks) {
          out.set(chunk, at);
          at += chunk.length;
        }
        return out;
      };
      moments.set(name, { expAvg: await read('exp_avg'), expAvgSq: await read('exp_avg_sq') });
    }
  } finally {
    await file.close();
  }
  return { path: dir, snapshot: { adapter, moments, state } };
}

export function newTrainerState(
  step: number,
  run: Record<string, unknown>,
  history: StepRecord[],
): TrainerState {
  return {
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    step,
    run,
    history,
    createdBy: `swarmbee ${SWARMBEE_VERSION}`,
  };
}
