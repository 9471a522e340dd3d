/**
 * Type-checks the sources, tests and scripts (tsconfig.check.json), then finds held promises
 * on the same program: run by `npm run typecheck`.
 *
 *     node --import tsx scripts/check-types.ts
 *
 * The diagnostics are the ones `tsc -p tsconfig.check.json` reports (pre-emit: syntax,
 * options, global and semantic). The held-promise rule (scripts/check-held-promises.ts) needs
 * the type checker over that same program; asking it here, where every type is resolved
 * already, costs about a second, where a program of its own cost a second full type check.
 */
import { resolve } from 'node:path';
import ts from 'typescript';
import { findHeldPromises, loadProgram } from './check-held-promises.js';

const root = resolve(import.meta.dirname, '..');

function main(): void {
  const program = loadProgram();
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const host: ts.FormatDiagnosticsHost = {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => root,
    getNewLine: () => '\n',
  };
  if (diagnostics.length > 0) {
    const format = process.stdout.isTTY
      ? ts.formatDiagnosticsWithColorAndContext
      : ts.formatDiagnostics;
    process.stdout.write(format(diagnostics, host));
    process.stdout.write(`\nFound ${diagnostics.length} type error(s).\n`);
    process.exitCode = 1;
    return;
  }
  const findings = findHeldPromises(program);
  for (const f of findings)
    process.stderr.write(`${f.file}:${f.line}: promise \`${f.name}\` ${f.why}\n`);
  if (findings.length > 0) {
    process.stderr.write(
      `held promises: ${findings.length} (see scripts/check-held-promises.ts)\n`,
    );
    process.exitCode = 1;
  }
}

main();
