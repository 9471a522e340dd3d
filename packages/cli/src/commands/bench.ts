/** `swarmbee bench`: benchmark suites with tables on the terminal and reports on disk. */
import { join } from 'node:path';
import { type BenchResult, SUITES, writeReport } from '@swarmbee/bench';
import { InvalidArgumentError } from '@swarmbee/core';
import type { Argv } from 'yargs';
import { renderTable } from '../ui/table.js';
import { CLI_BIN } from './up.js';

export function benchCommand(yargs: Argv): Argv {
  return yargs.command(
    'bench',
    'Run a benchmark suite and write its report (JSON, Markdown, SVG charts)',
    (y) =>
      y
        .option('suite', {
          type: 'string',
          choices: Object.keys(SUITES),
          demandOption: true,
          describe: 'Benchmark suite to run',
        })
        .option('out', {
          type: 'string',
          describe: 'Report directory (default: bench-results/<suite>-<timestamp>)',
        })
        .option('quick', {
          type: 'boolean',
          default: false,
          describe: 'Fewer repetitions: a smoke run with noisier figures',
        }),
    async (args) => {
      const suite = SUITES[args.suite];
      if (!suite) throw new InvalidArgumentError(`no benchmark suite named ${args.suite}`);
      const result = await suite.run({
        quick: args.quick,
        progress: (line) => process.stderr.write(`${line}\n`),
        command: `swarmbee bench --suite ${args.suite}${args.quick ? ' --quick' : ''}`,
        cliBin: CLI_BIN,
      });
      process.stdout.write(formatResult(result));
      const out =
        args.out ??
        join('bench-results', `${suite.name}-${result.startedAt.replace(/[:.]/g, '-')}`);
      const files = await writeReport(out, result);
      process.stdout.write(`\nreport: ${files.join(', ')}\n`);
    },
  );
}

export function formatResult(result: BenchResult): string {
  const parts = [`${result.title}\n`];
  for (const table of result.tables)
    parts.push(`${table.title}\n${renderTable(table.head, table.rows)}\n`);
  if (result.checks.length > 0) {
    const rows = result.checks.map((c) => [
      c.name,
      c.value.toFixed(3),
      c.target,
      c.pass ? 'pass' : 'FAIL',
      c.how,
    ]);
    parts.push(
      `Checks (ratios against baselines from this run)\n${renderTable(['check', 'value', 'target', 'result', 'how'], rows)}\n`,
    );
  }
  parts.push(result.notes.map((n) => `- ${n}`).join('\n'));
  return `${parts.join('\n')}\n`;
}
