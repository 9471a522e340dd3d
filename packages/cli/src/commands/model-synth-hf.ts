/** `swarmbee model synth-hf`: a Hugging Face checkpoint of a real model's shape with seeded random weights. */
import {
  DEFAULT_HF_SYNTH_FILE_BYTES,
  HF_SYNTH_SHAPES,
  type HfSynthShapeName,
  synthesizeHfCheckpoint,
} from '@swarmbee/model';
import type { Argv, CommandModule } from 'yargs';
import { withProgress } from '../ui/progress.js';
import { formatBytes } from '../ui/table.js';

const SHAPES = Object.keys(HF_SYNTH_SHAPES) as HfSynthShapeName[];

interface SynthHfArgs {
  shape: HfSynthShapeName;
  out: string;
  seed: number;
  fileBytes: number;
  'file-bytes': number;
}

export const synthHfCommand: CommandModule<object, SynthHfArgs> = {
  command: 'synth-hf',
  describe:
    'Write a Hugging Face checkpoint (config.json, bf16 safetensors split with an index) of a real model shape with seeded random weights',
  builder: (y) =>
    y
      .option('shape', {
        choices: SHAPES,
        demandOption: true,
        describe: `Model shape: ${SHAPES.map((s) => `${s} (${HF_SYNTH_SHAPES[s].description})`).join('; ')}`,
      })
      .option('out', {
        type: 'string',
        demandOption: true,
        describe: 'Checkpoint dir to create (must not exist or be empty)',
      })
      .option('seed', { type: 'number', default: 0, describe: 'Weight seed' })
      .option('file-bytes', {
        type: 'number',
        default: DEFAULT_HF_SYNTH_FILE_BYTES,
        describe: 'Largest safetensors file, in bytes',
      }) as Argv<SynthHfArgs>,
  handler: async (args) => {
    const started = performance.now();
    const made = await withProgress((progress) =>
      synthesizeHfCheckpoint({
        shape: args.shape,
        seed: args.seed,
        out: args.out,
        fileBytes: args.fileBytes,
        progress,
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      `wrote ${args.shape} (seed ${args.seed}) into ${made.dir}: ${made.tensors} tensors, ${formatBytes(made.bytes)} in ${made.files.length} files ` +
        `(${(made.bytes / 1e6 / seconds).toFixed(0)} MB/s); import it with \`swarmbee model import hf ${made.dir} --no-tokenizer --out DIR\`\n`,
    );
  },
};
