/** `swarmbee model import onnx`, and how `model inspect` shows an imported decoder. */
import type { OnnxDecoderManifest } from '@swarmbee/core';
import { importOnnxDecoder } from '@swarmbee/model';
import type { Argv, CommandModule } from 'yargs';
import { withProgress } from '../ui/progress.js';
import { formatBytes, renderTable } from '../ui/table.js';

interface ImportOnnxArgs {
  model: string;
  out: string;
  name?: string;
  context?: number;
}

/** `model import onnx <model>`, as a command module `model import` mounts. */
export const importOnnxCommand: CommandModule<object, ImportOnnxArgs> = {
  command: 'onnx <model>',
  describe:
    'Import an ONNX decoder export with a KV cache (Optimum, onnxruntime GPT-2 tooling); its layers are found and cut on demand',
  builder: (c) =>
    c
      .positional('model', {
        type: 'string',
        demandOption: true,
        describe:
          'Decoder-with-past graph (.onnx); external data files, and a tokenizer.json with its tokenizer_config.json and chat template, are read from beside it',
      })
      .option('out', {
        type: 'string',
        demandOption: true,
        describe: 'Model dir to create (must not exist or be empty)',
      })
      .option('name', {
        type: 'string',
        describe: 'Model name (default: the name of the directory holding the graph)',
      })
      .option('context', {
        type: 'number',
        describe:
          'Context length in tokens (default: genai_config.json or config.json beside the graph, else its position table)',
      }) as Argv<ImportOnnxArgs>,
  handler: async (args) => {
    const dir = await withProgress((progress) =>
      importOnnxDecoder({
        model: args.model,
        out: args.out,
        name: args.name,
        context: args.context,
        progress,
      }),
    );
    const m = dir.manifest;
    process.stdout.write(
      `imported ${m.name} into ${dir.path}: ${m.config.nLayers} layers found (${m.decoder.patterns[0]}), model hash ${m.modelHash.slice(0, 12)}\n`,
    );
  },
};

/** The `model inspect` rows of an imported decoder: its shape, then what the splitter found. */
export function onnxDecoderTables(m: OnnxDecoderManifest): string {
  const c = m.config;
  const d = m.decoder;
  const facts: (string | number)[][] = [
    ['name', m.name],
    [
      'architecture',
      `${m.architecture} (from ${m.source.file}, ${m.source.producer || 'unknown exporter'})`,
    ],
    ['dim', c.dim],
    ['layers', c.nLayers],
    ['heads / kv heads / head dim', `${c.nHeads} / ${c.nKvHeads} / ${c.headDim}`],
    ['vocab', c.vocabSize],
    ['context', c.maxSeqLen],
    ['dtype (weights / kv / residual)', `${c.weightDtype} / ${d.kv.dtype} / ${d.hiddenDtype}`],
    ['classifier', d.tiedEmbedding ? 'shared with embedding' : 'separate'],
    ['weights', `${formatBytes(m.weights.bytes)} (${m.weights.tensors.length} tensors)`],
    [
      'tokenizer',
      m.tokenizer ? `${m.tokenizer.kind} (${m.tokenizer.file})` : 'none (token ids only)',
    ],
    ...d.patterns.map((p, i) => [i === 0 ? 'recognised' : '', p]),
    ['model hash', m.modelHash],
  ];
  const cuts = d.cuts.map((cut) => [
    cut.layer,
    cut.residual,
    cut.boundaryOp,
    cut.normalized ? `${cut.normalized.replay} -> ${cut.normalized.tensor}` : '-',
  ]);
  const layers = m.layers.map((l, i) => [i, formatBytes(l.paramBytes), `${l.kvBytesPerToken} B`]);
  layers.unshift(['embedding', formatBytes(m.embeddingBytes), '-']);
  layers.push(['norm + head', formatBytes(m.headBytes), '-']);
  return [
    renderTable(['field', 'value'], facts),
    renderTable(
      ['cut before layer', 'residual tensor', 'ends previous layer', 'replayed norm'],
      cuts,
    ),
    renderTable(['layer', 'weights', 'KV per token'], layers),
  ].join('\n');
}
