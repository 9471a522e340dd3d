/**
 * The scale suite's steps (synthesize, import, quantize, shard), each run in a child
 * process (step-child) so that the peak RSS measured is that step's alone.
 */
import { spawn } from 'node:child_process';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HfSynthShape, HfSynthShapeName, LayerRange } from '@swarmbee/model';

export type ScaleStep =
  | { kind: 'synth'; shape: HfSynthShapeName | HfSynthShape; seed: number; out: string }
  | {
      kind: 'import';
      checkpoint: string;
      inBytes: number;
      out: string;
      bits?: 4 | 8;
      /** With `bits`: quantize the LM head too. Default false. */
      head?: boolean;
    }
  | { kind: 'quantize'; model: string; bits: 4 | 8; head?: boolean; out: string }
  | { kind: 'shard'; model: string; range: LayerRange; out: string };

export interface StepMeasurement {
  seconds: number;
  /** Bytes read (checkpoint tensors, model weights, shard bytes copied). */
  inBytes: number;
  /** Bytes written. */
  outBytes: number;
  /** Peak RSS of the child before the step (Node and the modules). */
  baselineRssBytes: number;
  /** Peak RSS of the child over its whole life. */
  peakRssBytes: number;
}

const here = fileURLToPath(import.meta.url);
/** The child entry beside this module: step-child.ts under tsx, step-child.js from dist/. */
const CHILD = join(dirname(here), `step-child${extname(here)}`);

/** Runs one step in a fresh Node process (same flags as this one: tsx and conditions under tests). */
export function runStep(step: ScaleStep, signal?: AbortSignal): Promise<StepMeasurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, CHILD, JSON.stringify(step)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').at(-1);
      if (code !== 0 || !line) {
        reject(
          new Error(`scale step ${step.kind} failed (exit ${code}): ${err.trim().slice(-2000)}`),
        );
        return;
      }
      resolve(JSON.parse(line) as StepMeasurement);
    });
  });
}
