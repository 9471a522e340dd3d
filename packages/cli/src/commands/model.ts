/** `swarmbee model ...`: import (llama2c, hf, gguf, onnx), pull, synthesize, export, shard and inspect model dirs. */

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, type LlamaConfig } from '@swarmbee/core';
import {
  evenRanges,
  exportLlama2c,
  openGguf,
  openModelDir,
  SYNTH_PRESETS,
  type SynthPresetName,
  synthesizeModel,
  writeShard,
} from '@swarmbee/model';
import type { Argv } from 'yargs';
import { parseRanges } from '../options.js';
import { withProgress } from '../ui/progress.js';
import { formatBytes, renderTable } from '../ui/table.js';
import { ggufFileTables, ggufSourceTables, importGgufCommand } from './model-gguf.js';
import { modelImportCommands } from './model-import.js';
import { importOnnxCommand, onnxDecoderTables } from './model-onnx.js';
import { modelPullCommand } from './model-pull.js';
import { synthHfCommand } from './model-synth-hf.js';

const PRESET_NAMES = Object.keys(SYNTH_PRESETS) as SynthPresetName[];

export function modelCommand(yargs: Argv): Argv {
  return yargs.command(
    'model',
    'Import, pull, synthesize, export, shard and inspect model dirs',
    (y) =>
      modelPullCommand(y)
        .command(synthHfCommand)
        .command(
          'import',
          'Import a checkpoint into a model dir: llama2.c, Hugging Face, GGUF or ONNX',
          (i) =>
            modelImportCommands(i)
              .command(importGgufCommand)
              .command(importOnnxCommand)
              .demandCommand(1, 'choose what to import: llama2c, hf, gguf or onnx'),
        )
        .command(
          'synth',
          'Make a model dir with seeded random Llama weights',
          (c) =>
            c
              .option('preset', {
                choices: PRESET_NAMES,
                describe: 'Start from a preset shape; flags below override it',
              })
              .option('dim', { type: 'number', describe: 'Model width' })
              .option('hidden-dim', { type: 'number', describe: 'Feed-forward width' })
              .option('layers', { type: 'number', describe: 'Transformer layers' })
              .option('heads', { type: 'number', describe: 'Attention heads' })
              .option('kv-heads', {
                type: 'number',
                describe: 'Key/value heads (default: = heads)',
              })
              .option('vocab', {
                type: 'number',
                describe: 'Vocabulary size (354..1024 for the synthetic tokenizer)',
              })
              .option('seq-len', { type: 'number', describe: 'Context length in tokens' })
              .option('seed', { type: 'number', default: 0, describe: 'Weight seed' })
              .option('out', {
                type: 'string',
                demandOption: true,
                describe: 'Model dir to create',
              })
              .option('llama2c', {
                type: 'string',
                describe:
                  'Also write the weights as a llama2.c checkpoint here (tokenizer beside it, .tok.bin)',
              }),
          async (args) => {
            const base: Partial<LlamaConfig> = args.preset
              ? SYNTH_PRESETS[args.preset].config
              : { normEps: 1e-5, ropeTheta: 10_000, sharedClassifier: true };
            const pick = (
              flag: number | undefined,
              key: keyof LlamaConfig,
              name: string,
            ): number => {
              const value = flag ?? (base[key] as number | undefined);
              if (value === undefined)
                throw new InvalidArgumentError(`--${name} is required without --preset`);
              return value;
            };
            const heads = pick(args.heads, 'nHeads', 'heads');
            const config: LlamaConfig = {
              dim: pick(args.dim, 'dim', 'dim'),
              hiddenDim: pick(args.hiddenDim, 'hiddenDim', 'hidden-dim'),
              nLayers: pick(args.layers, 'nLayers', 'layers'),
              nHeads: heads,
              nKvHeads:
                args.kvHeads ?? (args.heads !== undefined ? heads : (base.nKvHeads ?? heads)),
              vocabSize: pick(args.vocab, 'vocabSize', 'vocab'),
              maxSeqLen: pick(args.seqLen, 'maxSeqLen', 'seq-len'),
              normEps: base.normEps ?? 1e-5,
              ropeTheta: base.ropeTheta ?? 10_000,
              sharedClassifier: base.sharedClassifier ?? true,
            };
            const dir = await withProgress((progress) =>
              synthesizeModel({
                config,
                seed: args.seed,
                out: args.out,
                preset: args.preset,
                progress,
              }),
            );
            process.stdout.write(
              `synthesized ${dir.manifest.name} into ${dir.path} (${formatBytes(dir.manifest.weights.bytes)} of weights)\n`,
            );
            if (args.llama2c) {
              await exportLlama2c(
                dir,
                args.llama2c,
                `${args.llama2c.replace(/\.bin$/, '')}.tok.bin`,
              );
              process.stdout.write(`wrote llama2.c checkpoint ${args.llama2c}\n`);
            }
          },
        )
        .command(
          'export llama2c <dir>',
          'Write a model dir as a llama2.c checkpoint (and tokenizer) for other runtimes',
          (c) =>
            c
              .positional('dir', { type: 'string', demandOption: true, describe: 'Model dir' })
              .option('out', {
                type: 'string',
                demandOption: true,
                describe: 'Checkpoint file to write',
              })
              .option('tokenizer-out', {
                type: 'string',
                describe: 'Also write the llama2.c tokenizer here',
              }),
          async (args) => {
            await exportLlama2c(await openModelDir(args.dir), args.out, args.tokenizerOut);
            process.stdout.write(
              `wrote ${args.out}${args.tokenizerOut ? ` and ${args.tokenizerOut}` : ''}\n`,
            );
          },
        )
        .command(
          'shard <dir>',
          'Write stage shards (ONNX graph + weights) for a split of the model',
          (c) =>
            c
              .positional('dir', { type: 'string', demandOption: true, describe: 'Model dir' })
              .option('stages', { type: 'number', describe: 'Even split into this many stages' })
              .option('ranges', {
                type: 'string',
                describe: 'Explicit layer ranges, e.g. 0-2,2-5 (end exclusive)',
              })
              .option('out', {
                type: 'string',
                demandOption: true,
                describe: 'Directory to write one sub-directory per shard into',
              })
              .conflicts('stages', 'ranges'),
          async (args) => {
            const dir = await openModelDir(args.dir);
            const ranges =
              args.ranges !== undefined
                ? parseRanges(args.ranges)
                : evenRanges(dir.manifest.config.nLayers, args.stages ?? 1);
            const rows: (string | number)[][] = [];
            for (const [i, range] of ranges.entries()) {
              const path = join(args.out, `stage-${i}-layers-${range.start}-${range.end}`);
              const shard = await withProgress((progress) =>
                writeShard(dir, range, path, progress),
              );
              const bytes = shard.files.reduce((n, f) => n + f.bytes, 0);
              rows.push([
                i,
                `[${range.start}, ${range.end})`,
                formatBytes(bytes),
                shard.shardId.slice(0, 16),
                path,
              ]);
            }
            process.stdout.write(
              `${renderTable(['stage', 'layers', 'size', 'shard id', 'path'], rows)}\n`,
            );
          },
        )
        .command(
          'inspect <dir>',
          "Print a model dir's manifest as tables (or a GGUF file's metadata and tensors)",
          (c) =>
            c
              .positional('dir', {
                type: 'string',
                demandOption: true,
                describe: 'Model dir, or a .gguf file',
              })
              .option('json', {
                type: 'boolean',
                default: false,
                describe: 'Print the manifest JSON instead',
              }),
          async (args) => {
            const isDir = await stat(args.dir).then(
              (s) => s.isDirectory(),
              () => false,
            );
            if (/\.gguf$/i.test(args.dir) && !isDir) {
              process.stdout.write(`${ggufFileTables(await openGguf(args.dir))}\n`);
              return;
            }
            const dir = await openModelDir(args.dir);
            const m = dir.manifest;
            if (args.json) {
              process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
              return;
            }
            if (m.architecture === 'onnx-decoder') {
              process.stdout.write(`${onnxDecoderTables(m)}\n`);
              return;
            }
            const c = m.config;
            const facts: (string | number)[][] = [
              ['name', m.name],
              ['architecture', `${m.architecture} (RoPE ${m.rope})`],
              ['dim / hidden', `${c.dim} / ${c.hiddenDim}`],
              ['layers', c.nLayers],
              ['heads / kv heads', `${c.nHeads} / ${c.nKvHeads}`],
              ['vocab', c.vocabSize],
              ['context', c.maxSeqLen],
              ['classifier', c.sharedClassifier ? 'shared with embedding' : 'separate'],
              ['q/k/v bias', c.qkvBias ? 'yes' : 'no'],
              ['norm eps / RoPE theta', `${c.normEps} / ${c.ropeTheta}`],
              ['weights', `${formatBytes(m.weights.bytes)} (${m.weights.tensors.length} tensors)`],
              ['tokenizer', m.tokenizer ? `${m.tokenizer.kind} (${m.tokenizer.file})` : 'none'],
              ...(m.tokenizer?.kind === 'hf'
                ? [
                    [
                      'chat template',
                      m.tokenizer.chatTemplate
                        ? `${m.tokenizer.chatTemplate.file} (from ${m.tokenizer.chatTemplate.source})`
                        : 'none (messages joined by lines)',
                    ],
                    [
                      'stop ids',
                      `${m.tokenizer.stopIds.join(', ')}${m.tokenizer.endOfTurnId === undefined ? '' : ` (end of turn ${m.tokenizer.endOfTurnId})`}`,
                    ],
                  ]
                : []),
              [
                'source',
                m.source.kind === 'hf' || m.source.kind === 'gguf'
                  ? `${m.source.kind} ${m.source.architecture}${m.source.repo ? ` (${m.source.repo})` : ''}`
                  : m.source.kind,
              ],
              ['model hash', m.modelHash],
            ];
            process.stdout.write(`${renderTable(['field', 'value'], facts)}\n`);
            const layers = m.layers.map((l, i) => [
              i,
              formatBytes(l.paramBytes),
              `${l.kvBytesPerToken} B`,
            ]);
            layers.unshift(['embedding', formatBytes(m.embeddingBytes), '-']);
            layers.push(['norm + head', formatBytes(m.headBytes), '-']);
            process.stdout.write(`${renderTable(['layer', 'weights', 'KV per token'], layers)}\n`);
            if (m.source.kind === 'gguf') process.stdout.write(`${ggufSourceTables(m.source)}\n`);
          },
        )
        .demandCommand(1, 'choose a model subcommand'),
  );
}
