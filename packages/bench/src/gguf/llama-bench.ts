/**
 * llama.cpp's own benchmark, `llama-bench`, as the same-run peer of the gguf suite: found in
 * a directory given (`--llama-cpp DIR`, or $SWARMBEE_LLAMA_CPP) or on PATH, run on the same
 * GGUF file with the same threads, its JSON read back. llama.cpp is never a dependency: when
 * it is absent the suite says so.
 */
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One llama-bench measurement: prompt processing or text generation, tokens per second. */
export interface LlamaBenchFigure {
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
}

/** The llama-bench binary: in `dir` when given, else on PATH; undefined when there is none. */
export async function findLlamaBench(dir?: string, env = process.env): Promise<string | undefined> {
  const candidates = dir
    ? [
        join(dir, 'llama-bench'),
        join(dir, 'bin', 'llama-bench'),
        join(dir, 'build', 'bin', 'llama-bench'),
      ]
    : (env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((p) => join(p, 'llama-bench'));
  for (const path of candidates) {
    if (
      await access(path, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return path;
  }
  return undefined;
}

/** `llama-bench -m FILE -p PROMPT -n GEN -t THREADS -r 1 -o json`: one repetition of each test. */
export async function runLlamaBench(
  binary: string,
  file: string,
  options: { promptTokens: number; decodeTokens: number; threads: number },
): Promise<LlamaBenchFigure> {
  const { stdout } = await run(
    binary,
    [
      '-m',
      file,
      '-p',
      String(options.promptTokens),
      '-n',
      String(options.decodeTokens),
      '-t',
      String(options.threads),
      '-r',
      '1',
      '-o',
      'json',
    ],
    { maxBuffer: 16 << 20 },
  );
  return parseLlamaBench(stdout);
}

/** Reads llama-bench's JSON: one entry with `n_prompt` > 0 (prefill), one with `n_gen` > 0 (decode). */
export function parseLlamaBench(json: string): LlamaBenchFigure {
  const entries = JSON.parse(json) as { n_prompt: number; n_gen: number; avg_ts: number }[];
  const prefill = entries.find((e) => e.n_prompt > 0 && e.n_gen === 0);
  const decode = entries.find((e) => e.n_gen > 0 && e.n_prompt === 0);
  if (!prefill || !decode)
    throw new Error(`llama-bench gave no prefill and decode figures: ${json.slice(0, 200)}`);
  return { prefillTokensPerSecond: prefill.avg_ts, decodeTokensPerSecond: decode.avg_ts };
}
