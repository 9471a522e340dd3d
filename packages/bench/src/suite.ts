import type { ModelDir } from '@swarmbee/model';
import { machineInfo } from './machine.js';
import type { BenchResult } from './report/report.js';

export interface SuiteContext {
  /** Fewer repetitions, for a smoke run; figures are noisier. */
  quick: boolean;
  /** One line of progress (the CLI shows it on stderr). */
  progress: (line: string) => void;
  /** The command line that started the run, recorded in the report. */
  command: string;
  /** The `swarmbee` CLI entry point, for suites that start worker processes. */
  cliBin: string;
  /** gguf and engine suites: the directory of `*-f32.gguf`, `*-q8_0.gguf` and `*-q4_0.gguf` to measure. */
  ggufDir?: string;
  /** scale suite, transfer part: the shard sent whole over the shaped 100 Mbit/s link, MiB (default 4096; 256 when quick). */
  shardMib?: number;
  /** scale suite: its parts to run (steps, serve, transfer; default all); parallel suite: hop, allreduce, plan. */
  parts?: string[];
  /** scale suite: the model shapes (default llama3.2-1b, llama3.2-3b, llama3.1-8b; the 1B one when quick). */
  shapes?: string[];
  /** gguf and engine suites: where llama.cpp's `llama-bench` is (else PATH). */
  llamaCppDir?: string;
}

export interface Suite {
  name: string;
  describe: string;
  run(context: SuiteContext): Promise<BenchResult>;
}

/** What every suite's result starts with: the command, when it ran and for how long, where, on which model. */
/** What every result starts with: the command, when it ran, for how long, on what. */
export function runHeader(
  context: SuiteContext,
  startedAt: number,
): Pick<BenchResult, 'command' | 'startedAt' | 'durationMs' | 'machine'> {
  return {
    command: context.command,
    startedAt: new Date(startedAt).toISOString(),
    durationMs: Date.now() - startedAt,
    machine: machineInfo(),
  };
}

export function resultHeader(
  context: SuiteContext,
  startedAt: number,
  model: ModelDir,
  source: string,
): Pick<BenchResult, 'command' | 'startedAt' | 'durationMs' | 'machine' | 'model'> {
  return {
    ...runHeader(context, startedAt),
    model: {
      name: model.manifest.name,
      modelHash: model.manifest.modelHash,
      weightBytes: model.manifest.weights.bytes,
      source,
    },
  };
}
