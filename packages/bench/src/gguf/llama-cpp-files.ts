/**
 * The GGUF files llama.cpp runs as the same-run peer: one model at F32, Q8_0 and Q4_0. Either
 * a directory that holds them (`<name>-f32.gguf`, `<name>-q8_0.gguf`, `<name>-q4_0.gguf`), or
 * made from a SwarmBee model dir with llama.cpp's own tools, found beside `llama-bench`:
 * the model written as a llama2.c checkpoint (`exportLlama2c`), converted by
 * `llama-convert-llama2c-to-ggml`, quantized by `llama-quantize` — so both runtimes hold the
 * very same fp32 weights. Made files are cached by the model's hash.
 */
import { execFile } from 'node:child_process';
import { access, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { cacheRoot, exportLlama2c, type LlamaModelDir } from '@swarmbee/model';

const run = promisify(execFile);

export const GGUF_QUANTS = ['f32', 'q8_0', 'q4_0'] as const;
export type GgufQuant = (typeof GGUF_QUANTS)[number];
export type GgufFiles = Record<GgufQuant, string>;

/** The F32, Q8_0 and Q4_0 files of one model in `dir`. */
export async function findGgufFiles(dir: string): Promise<GgufFiles> {
  const names = await readdir(dir);
  const prefixes = names.flatMap((n) =>
    n.toLowerCase().endsWith('-f32.gguf') ? [n.slice(0, -'-f32.gguf'.length)] : [],
  );
  const prefix = prefixes.find((p) => GGUF_QUANTS.every((q) => names.includes(`${p}-${q}.gguf`)));
  if (prefix === undefined)
    throw new Error(
      `${dir} has no <name>-f32.gguf, <name>-q8_0.gguf and <name>-q4_0.gguf of one model; the suite needs all three`,
    );
  return Object.fromEntries(
    GGUF_QUANTS.map((q) => [q, join(dir, `${prefix}-${q}.gguf`)]),
  ) as GgufFiles;
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * `model` as GGUF files made by llama.cpp's tools beside `llamaBench`, in the cache
 * (`<cache>/bench/gguf-<model hash>/`), made on first use.
 */
export async function llamaCppGgufFiles(
  model: LlamaModelDir,
  llamaBench: string,
  progress: (line: string) => void,
): Promise<GgufFiles> {
  const dir = join(cacheRoot(), 'bench', `gguf-${model.manifest.modelHash.slice(0, 16)}`);
  const files = Object.fromEntries(
    GGUF_QUANTS.map((q) => [q, join(dir, `model-${q}.gguf`)]),
  ) as GgufFiles;
  if ((await Promise.all(Object.values(files).map(exists))).every(Boolean)) return files;
  const tools = dirname(llamaBench);
  const convert = join(tools, 'llama-convert-llama2c-to-ggml');
  const quantize = join(tools, 'llama-quantize');
  for (const tool of [convert, quantize])
    if (!(await exists(tool)))
      throw new Error(
        `${tool} is missing: it makes the GGUF files llama.cpp runs (or pass --gguf-dir)`,
      );
  const work = `${dir}.partial`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  progress(`making GGUF files with llama.cpp's tools in ${dir} (once)`);
  const checkpoint = join(work, 'model.bin');
  const tokenizer = join(work, 'model.tok.bin');
  await exportLlama2c(model, checkpoint, tokenizer);
  const f32 = join(work, 'model-f32.gguf');
  await run(convert, [
    '--copy-vocab-from-model',
    tokenizer,
    '--llama2c-model',
    checkpoint,
    '--llama2c-output-model',
    f32,
  ]);
  for (const q of ['q8_0', 'q4_0'] as const)
    await run(quantize, [f32, join(work, `model-${q}.gguf`), q.toUpperCase()]);
  await rm(checkpoint);
  await rm(dir, { recursive: true, force: true });
  await rename(work, dir);
  return files;
}
