/** `swarmbee model import gguf`, and how `model inspect` shows a GGUF file or a model dir made from one. */
import type { GgufSource, GgufTensorOrigin } from '@swarmbee/core';
import {
  DEFAULT_GGUF_REQUANTIZE,
  DEFAULT_QUANT_ACTIVATIONS,
  type GgufFile,
  type GgufRequantizeTarget,
  ggmlTypeName,
  importGguf,
  metadataSummary,
} from '@swarmbee/model';
import type { Argv, CommandModule } from 'yargs';
import { withProgress } from '../ui/progress.js';
import { formatBytes, renderTable } from '../ui/table.js';

export const GGUF_REQUANTIZE_CHOICES: readonly GgufRequantizeTarget[] = ['int8', 'int4', 'fp32'];

interface ImportGgufArgs {
  file: string;
  out: string;
  name?: string;
  context?: number;
  requantize: GgufRequantizeTarget;
  activations: 'int8' | 'float32';
}

/** The options `model import gguf` and `model pull --file X.gguf` share. */
export function ggufImportOptions<T>(c: Argv<T>) {
  return c
    .option('requantize', {
      choices: GGUF_REQUANTIZE_CHOICES,
      default: DEFAULT_GGUF_REQUANTIZE,
      describe:
        "GGUF: what tensors that cannot be mapped onto MatMulNBits without loss (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) become: int8 or int4 codes (block 32, or 16 for Q2_K), or fp32 (ggml's values, exactly; 4 bytes a weight). Q4_0, Q8_0, Q5_0, Q3_K, Q6_K and Q8_K are always mapped without loss",
    })
    .option('activations', {
      choices: ['int8', 'float32'] as const,
      default: DEFAULT_QUANT_ACTIVATIONS,
      describe:
        'GGUF: how quantized matmuls treat activations: int8 per block, as llama.cpp does (fast), or float32 (the exact product, much slower for int8 weights)',
    });
}

export const importGgufCommand: CommandModule<object, ImportGgufArgs> = {
  command: 'gguf <file>',
  describe:
    'Import a GGUF file (llama.cpp): llama, qwen2, qwen3, phi3 or gemma3 architecture; F32, F16, BF16, Q4_0…Q8_0, Q2_K…Q8_K',
  builder: (c) =>
    ggufImportOptions(
      c
        .positional('file', { type: 'string', demandOption: true, describe: 'The .gguf file' })
        .option('out', {
          type: 'string',
          demandOption: true,
          describe: 'Model dir to create (must not exist or be empty)',
        })
        .option('name', {
          type: 'string',
          describe: 'Model name (default: the file name without .gguf)',
        })
        .option('context', {
          type: 'number',
          describe:
            "Context to record, in tokens (default: the GGUF's context_length; at most that). A context no longer than a sliding window lets such a model import",
        }),
    ) as unknown as Argv<ImportGgufArgs>,
  handler: async (args) => {
    const started = Date.now();
    const dir = await withProgress((progress) =>
      importGguf({
        file: args.file,
        out: args.out,
        name: args.name,
        requantize: args.requantize,
        activations: args.activations,
        progress,
        ...(args.context === undefined ? {} : { contextLength: args.context }),
      }),
    );
    const m = dir.manifest;
    if (m.source.kind === 'gguf') process.stderr.write(`${conversionSummary(m.source)}\n`);
    process.stdout.write(
      `imported ${m.name} into ${dir.path} in ${((Date.now() - started) / 1000).toFixed(1)} s (${formatBytes(m.weights.bytes)} of weights, model hash ${m.modelHash.slice(0, 12)})\n`,
    );
  },
};

/** One line per (source type → stored) pair, with the worst re-quantization error. */
export function conversionSummary(source: GgufSource): string {
  const groups = new Map<string, { tensors: number; worst: number }>();
  for (const origin of source.tensors)
    for (const part of origin.from) {
      const key = `${part.type} → ${stored(origin)} (${part.conversion})`;
      const group = groups.get(key) ?? { tensors: 0, worst: 0 };
      group.tensors++;
      group.worst = Math.max(group.worst, part.error?.relativeRms ?? 0);
      groups.set(key, group);
    }
  return renderTable(
    ['GGUF type → stored', 'tensors', 'worst added error (relative RMS)'],
    [...groups].map(([key, g]) => [
      key,
      g.tensors,
      g.worst > 0 ? g.worst.toExponential(2) : 'none',
    ]),
  );
}

function stored(origin: GgufTensorOrigin): string {
  return origin.blockSize ? `${origin.stored}/${origin.blockSize}` : origin.stored;
}

/** The `model inspect` tables of a model dir imported from a GGUF: its metadata and where each tensor came from. */
export function ggufSourceTables(source: GgufSource): string {
  const metadata = renderTable(
    ['GGUF key', 'value'],
    Object.entries(source.metadata).map(([key, value]) => [key, String(value)]),
  );
  const tensors = renderTable(
    ['tensor', 'stored', 'from (GGUF type, conversion)', 'added error (max abs / relative RMS)'],
    source.tensors.map((origin) => [
      origin.name,
      stored(origin),
      origin.from.map((p) => `${p.name} ${p.type} ${p.conversion}`).join('\n'),
      origin.from
        .map((p) =>
          p.error
            ? `${p.error.maxAbs.toExponential(2)} / ${p.error.relativeRms.toExponential(2)}`
            : '-',
        )
        .join('\n'),
    ]),
  );
  return `${source.file} (GGUF v${source.version}, ${source.architecture}, sha256 ${source.sha256.slice(0, 12)})\n${metadata}\n${tensors}`;
}

/** `model inspect FILE.gguf`: the file's metadata and tensors, before any import. */
export function ggufFileTables(file: GgufFile): string {
  const metadata = renderTable(
    ['GGUF key', 'value'],
    Object.entries(metadataSummary(file)).map(([key, value]) => [key, String(value)]),
  );
  const tensors = renderTable(
    ['tensor', 'type', 'shape (ggml order)', 'size'],
    file.tensors.map((t) => [
      t.name,
      ggmlTypeName(t.typeId),
      `[${t.ne.join(', ')}]`,
      formatBytes(t.bytes),
    ]),
  );
  return `${file.path} (GGUF v${file.version}, ${formatBytes(file.fileBytes)}, ${file.tensors.length} tensors)\n${metadata}\n${tensors}`;
}
