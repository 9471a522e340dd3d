/**
 * Finds promises held in a local variable while other code runs: run by `npm run typecheck`
 * (scripts/check-types.ts, on the program it type-checks), or alone:
 *
 *     node --import tsx scripts/check-held-promises.ts [--json]
 *
 * Biome's `noFloatingPromises` catches a promise nobody keeps. It cannot see this shape:
 *
 *     const ready = link.expect('stage.ready');   // a promise that may reject
 *     link.channel.send(load);                    // throws on a closing channel...
 *     await ready;                                // ...so this never runs
 *
 * If anything between creating the promise and observing it throws, returns or awaits
 * something else, the promise can reject with no handler attached, and Node ends the
 * process on an unhandled rejection. The rule: a local variable whose type is a promise
 * (or a union holding one) is referenced by the statement right after its declaration —
 * awaited, returned, handed to `Promise.all`, given a handler — or, better, is not a
 * variable at all. Send-then-wait pairs belong in one function that owns the promise
 * (`WorkerLink.exchange`, `Channel.request`).
 *
 * Promises that cannot reject are exempt: `new Promise((resolve) => ...)` (an executor that
 * takes no `reject`), and calls or properties whose declaration carries the JSDoc tag
 * `@neverRejects` (`Channel.closed`, `untilSignal()`). Anything else that is safe for a
 * reason the rule cannot see says so on the line before it: `// held-promise: <why>`.
 * Type-aware (the TypeScript checker over tsconfig.check.json's program). It checks the
 * packages' sources, not their tests: a test that provokes something and then awaits the
 * answer holds a promise on purpose, and an unobserved rejection there fails the test run.
 */
import { relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');
const MARKER = 'held-promise:';

export interface Finding {
  file: string;
  line: number;
  name: string;
  why: string;
}

/** tsconfig.check.json's program (what `npm run typecheck` checks), with its config's errors. */
export function loadProgram(): ts.Program {
  const configPath = resolve(root, 'tsconfig.check.json');
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!parsed) throw new Error(`cannot read ${configPath}`);
  return ts.createProgram({
    rootNames: parsed.fileNames,
    options: parsed.options,
    configFileParsingDiagnostics: parsed.errors,
  });
}

/** A Promise (or a union holding one); other thenables (a Fastify instance) are not promises that reject. */
function isPromise(type: ts.Type): boolean {
  if (type.isUnion()) return type.types.some(isPromise);
  return type.getSymbol()?.getName() === 'Promise';
}

/** Statement lists inside functions: module-level state is long-lived, not a step in between. */
function statementsOf(node: ts.Node): readonly ts.Statement[] | undefined {
  if (ts.isBlock(node) || ts.isCaseClause(node) || ts.isDefaultClause(node)) return node.statements;
  return undefined;
}

function references(node: ts.Node, symbol: ts.Symbol, checker: ts.TypeChecker): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isIdentifier(n) && checker.getSymbolAtLocation(n) === symbol) {
      found = true;
      return;
    }
    if (
      ts.isShorthandPropertyAssignment(n) &&
      checker.getShorthandAssignmentValueSymbol(n) === symbol
    ) {
      found = true;
      return;
    }
    ts.forEachChild(n, visit);
  };
  visit(node);
  return found;
}

/** `new Promise((resolve) => ...)`, or a call or property declared `@neverRejects`. */
function neverRejects(initializer: ts.Expression, checker: ts.TypeChecker): boolean {
  let expression = initializer;
  while (ts.isParenthesizedExpression(expression)) expression = expression.expression;
  if (ts.isNewExpression(expression)) {
    const executor = expression.arguments?.[0];
    return (
      ts.isIdentifier(expression.expression) &&
      expression.expression.text === 'Promise' &&
      executor !== undefined &&
      (ts.isArrowFunction(executor) || ts.isFunctionExpression(executor)) &&
      executor.parameters.length < 2
    );
  }
  const target = ts.isCallExpression(expression) ? expression.expression : expression;
  let symbol = checker.getSymbolAtLocation(
    ts.isPropertyAccessExpression(target) ? target.name : target,
  );
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  return (
    symbol
      ?.getDeclarations()
      ?.some((d) => ts.getJSDocTags(d).some((tag) => tag.tagName.text === 'neverRejects')) ?? false
  );
}

function hasMarker(statement: ts.Statement, source: ts.SourceFile): boolean {
  const ranges = ts.getLeadingCommentRanges(source.text, statement.getFullStart()) ?? [];
  return ranges.some((r) => source.text.slice(r.pos, r.end).includes(MARKER));
}

/** Packages' sources; tests hold promises on purpose (provoke, then await the answer). */
const SOURCES = /\/packages\/[^/]+\/src\//;

/** Every held promise in the program's files that `include` selects. */
export function findHeldPromises(
  program: ts.Program,
  include: (fileName: string) => boolean = (name) => SOURCES.test(name),
): Finding[] {
  const checker = program.getTypeChecker();
  const findings: Finding[] = [];
  for (const source of program.getSourceFiles()) {
    if (source.isDeclarationFile || !include(source.fileName)) continue;
    const visit = (node: ts.Node): void => {
      const statements = statementsOf(node);
      statements?.forEach((statement, index) => {
        if (!ts.isVariableStatement(statement) || hasMarker(statement, source)) return;
        for (const declaration of statement.declarationList.declarations) {
          if (!declaration.initializer || !ts.isIdentifier(declaration.name)) continue;
          const type = checker.getTypeAtLocation(declaration.name);
          if (!isPromise(type) || neverRejects(declaration.initializer, checker)) continue;
          const symbol = checker.getSymbolAtLocation(declaration.name);
          if (!symbol) continue;
          const later = statements.slice(index + 1);
          const first = later.findIndex((s) => references(s, symbol, checker));
          if (first === 0) continue;
          const { line } = source.getLineAndCharacterOfPosition(declaration.getStart());
          findings.push({
            file: relative(root, source.fileName),
            line: line + 1,
            name: declaration.name.text,
            why:
              first < 0
                ? 'is never referenced again in its block: nothing observes it'
                : `is first used ${first + 1} statements later: if anything in between throws, returns or awaits, its rejection has no handler`,
          });
        }
      });
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return findings;
}

function main(): void {
  const findings = findHeldPromises(loadProgram());
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
  } else {
    for (const f of findings)
      process.stderr.write(`${f.file}:${f.line}: promise \`${f.name}\` ${f.why}\n`);
    process.stderr.write(
      findings.length === 0
        ? 'held promises: none\n'
        : `held promises: ${findings.length} (see scripts/check-held-promises.ts)\n`,
    );
  }
  process.exitCode = findings.length === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) main();
