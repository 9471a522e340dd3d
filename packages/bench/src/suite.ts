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
}

export interface Suite {
  name: string;
  describe: string;
  run(context: SuiteContext): Promise<BenchResult>;
}
