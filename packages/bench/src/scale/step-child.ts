/**
 * One measured step of the scale suite, run in a child process of its own so that its
 * peak RSS is the step's: `node step-child.(ts|js) '<json ScaleStep>'` runs the step
 * through @swarmbee/model's public API and prints one JSON line, a {@link StepMeasurement}.
 * The baseline is the process's peak RSS once the modules are loaded, before the step.
 */
import {
  importHf,
  openModelDir,
  quantizeModel,
  synthesizeHfCheckpoint,
  writeShard,
} from '@swarmbee/model';
import type { ScaleStep, StepMeasurement } from './step.js';

const KIB = 1024;

async function run(step: ScaleStep): Promise<{ inBytes: number; outBytes: number }> {
  switch (step.kind) {
    case 'synth': {
      const made = await synthesizeHfCheckpoint({
        shape: step.shape,
        seed: step.seed,
        out: step.out,
      });
      return { inBytes: 0, outBytes: made.bytes };
    }
    case 'import': {
      const dir = await importHf({
        dir: step.checkpoint,
        out: step.out,
        tokenizer: false,
        ...(step.bits
          ? { quantize: { bits: step.bits, ...(step.head ? { head: true } : {}) } }
          : {}),
      });
      return { inBytes: step.inBytes, outBytes: dir.manifest.weights.bytes };
    }
    case 'quantize': {
      const model = await openModelDir(step.model);
      const dir = await quantizeModel(model, {
        bits: step.bits,
        ...(step.head ? { head: true } : {}),
        out: step.out,
      });
      return { inBytes: model.manifest.weights.bytes, outBytes: dir.manifest.weights.bytes };
    }
    case 'shard': {
      const model = await openModelDir(step.model);
      const shard = await writeShard(model, step.range, step.out);
      const outBytes = shard.files.reduce((sum, f) => sum + f.bytes, 0);
      return { inBytes: outBytes, outBytes };
    }
  }
}

const step = JSON.parse(process.argv[2] ?? '{}') as ScaleStep;
const baselineRssBytes = process.resourceUsage().maxRSS * KIB;
const started = performance.now();
const bytes = await run(step);
const measurement: StepMeasurement = {
  seconds: (performance.now() - started) / 1000,
  ...bytes,
  baselineRssBytes,
  peakRssBytes: process.resourceUsage().maxRSS * KIB,
};
process.stdout.write(`${JSON.stringify(measurement)}\n`);
