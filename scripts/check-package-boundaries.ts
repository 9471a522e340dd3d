/**
 * Checks the boundaries between the workspace packages: run by `npm run lint`.
 *
 *     node --import tsx scripts/check-package-boundaries.ts [--json]
 *
 * The rules, so that a package's internals stay its own and package.json files are the
 * dependency graph:
 *
 * - `export-star`: a package's `src/index.ts` names what it exports; no `export *`.
 * - `deep-import`: another workspace package is imported only through an entry point its
 *   package.json `exports` map declares (`@swarmbee/engine`, `@swarmbee/engine/source-thread`),
 *   never `@swarmbee/engine/src/kv-cache.js` (Node refuses those anyway, but tsx and tsc
 *   under other settings may not).
 * - `relative-import`: no relative path into another package's `src/` (tests of one package
 *   may share another's test helpers, not its internals).
 * - `undeclared-dependency`: a package's `src/` imports only packages its package.json lists
 *   in `dependencies` (Node built-ins aside).
 * - `unused-dependency`: a workspace package listed in `dependencies` is imported by `src/`.
 * - `cycle`: the workspace packages' dependencies form no cycle.
 *
 * Type-unaware and fast: TypeScript's parser over every .ts file of packages/, test/ and
 * scripts/ (module specifiers of imports, re-exports and `import()` with a literal).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

export const REPO_ROOT = resolve(import.meta.dirname, '..');

export interface WorkspacePackage {
  /** `@swarmbee/engine` */
  name: string;
  /** Absolute directory. */
  dir: string;
  /** Subpaths its `exports` map declares: `.`, `./source-thread`, … */
  entryPoints: Map<string, string | undefined>;
  /** Names in its `dependencies`. */
  dependencies: Set<string>;
}

export interface BoundaryFinding {
  rule:
    | 'export-star'
    | 'deep-import'
    | 'relative-import'
    | 'undeclared-dependency'
    | 'unused-dependency'
    | 'cycle';
  /** Repository-relative file (package.json for graph rules). */
  file: string;
  line: number;
  message: string;
}

interface PackageJson {
  name: string;
  workspaces?: string[];
  exports?: Record<string, Record<string, string> | string>;
  dependencies?: Record<string, string>;
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as PackageJson;

/** The workspace packages of the repository at `root`, by name. */
export function workspacePackages(root = REPO_ROOT): Map<string, WorkspacePackage> {
  const out = new Map<string, WorkspacePackage>();
  for (const workspace of readJson(join(root, 'package.json')).workspaces ?? []) {
    const dir = join(root, workspace);
    const manifest = readJson(join(dir, 'package.json'));
    const entryPoints = new Map<string, string | undefined>();
    for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
      const source = typeof target === 'string' ? target : target['swarmbee:source'];
      entryPoints.set(subpath, source === undefined ? undefined : join(dir, source));
    }
    out.set(manifest.name, {
      name: manifest.name,
      dir,
      entryPoints,
      dependencies: new Set(Object.keys(manifest.dependencies ?? {})),
    });
  }
  return out;
}

/** Every .ts file under `dir` (node_modules, dist and dot-directories skipped). */
export function typeScriptFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.'))
      continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...typeScriptFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

export interface ModuleReference {
  specifier: string;
  line: number;
}

/** The module specifiers `source` imports or re-exports, with their lines. */
export function moduleReferences(source: ts.SourceFile): ModuleReference[] {
  const out: ModuleReference[] = [];
  const add = (node: ts.Expression) => {
    if (!ts.isStringLiteral(node)) return;
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    out.push({ specifier: node.text, line });
  };
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier)
      add(node.moduleSpecifier);
    else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0]
    )
      add(node.arguments[0]);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function parse(path: string): ts.SourceFile {
  return ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
}

/** `@swarmbee/engine/source-thread` → ['@swarmbee/engine', './source-thread']; `yargs/helpers` → ['yargs', …]. */
export function splitSpecifier(specifier: string): [name: string, subpath: string] {
  const parts = specifier.split('/');
  const length = specifier.startsWith('@') ? 2 : 1;
  const rest = parts.slice(length).join('/');
  return [parts.slice(0, length).join('/'), rest === '' ? '.' : `./${rest}`];
}

const BUILTINS = new Set(builtinModules);
const isBuiltin = (name: string) => name.startsWith('node:') || BUILTINS.has(name);

/** The package whose directory holds `file`, if any. */
function ownerOf(file: string, packages: Map<string, WorkspacePackage>) {
  for (const pkg of packages.values()) if (file.startsWith(pkg.dir + sep)) return pkg;
  return undefined;
}

export function findBoundaryViolations(root = REPO_ROOT): BoundaryFinding[] {
  const packages = workspacePackages(root);
  const findings: BoundaryFinding[] = [];
  const rel = (path: string) => relative(root, path);
  const files = ['packages', 'test', 'scripts'].flatMap((d) => typeScriptFiles(join(root, d)));
  const imported = new Map<string, Set<string>>([...packages.keys()].map((n) => [n, new Set()]));

  for (const file of files) {
    const owner = ownerOf(file, packages);
    const inSrc = owner !== undefined && file.startsWith(join(owner.dir, 'src') + sep);
    const source = parse(file);
    if (inSrc && file === join(owner.dir, 'src', 'index.ts')) {
      for (const statement of source.statements) {
        if (
          ts.isExportDeclaration(statement) &&
          !statement.exportClause &&
          statement.moduleSpecifier
        )
          findings.push({
            rule: 'export-star',
            file: rel(file),
            line: source.getLineAndCharacterOfPosition(statement.getStart(source)).line + 1,
            message: `${owner.name}'s index exports everything of ${statement.moduleSpecifier.getText(source)}: name what it exports`,
          });
      }
    }
    for (const { specifier, line } of moduleReferences(source)) {
      const at = { file: rel(file), line };
      if (specifier.startsWith('.')) {
        const target = resolve(dirname(file), specifier);
        const other = ownerOf(target, packages);
        if (other && other !== owner && target.startsWith(join(other.dir, 'src') + sep))
          findings.push({
            rule: 'relative-import',
            ...at,
            message: `${specifier} reaches into ${other.name}'s src/: import one of its entry points`,
          });
        continue;
      }
      if (isBuiltin(specifier)) continue;
      const [name, subpath] = splitSpecifier(specifier);
      const target = packages.get(name);
      if (target && !target.entryPoints.has(subpath))
        findings.push({
          rule: 'deep-import',
          ...at,
          message: `${specifier}: ${name} declares no entry point ${subpath} (it has ${[...target.entryPoints.keys()].join(', ')})`,
        });
      if (!inSrc || name === owner.name) continue;
      imported.get(owner.name)!.add(name);
      if (!owner.dependencies.has(name))
        findings.push({
          rule: 'undeclared-dependency',
          ...at,
          message: `${owner.name} imports ${name} without listing it in its package.json dependencies`,
        });
    }
  }

  for (const pkg of packages.values()) {
    const manifest = rel(join(pkg.dir, 'package.json'));
    for (const dependency of pkg.dependencies) {
      if (packages.has(dependency) && !imported.get(pkg.name)!.has(dependency))
        findings.push({
          rule: 'unused-dependency',
          file: manifest,
          line: 1,
          message: `${pkg.name} lists ${dependency} but its src/ never imports it`,
        });
    }
  }
  const cycle = findCycle(packages);
  if (cycle)
    findings.push({
      rule: 'cycle',
      file: 'package.json',
      line: 1,
      message: `the workspace packages depend on each other in a cycle: ${cycle.join(' → ')}`,
    });
  return findings;
}

/** A dependency cycle among the workspace packages, or undefined. */
export function findCycle(packages: Map<string, WorkspacePackage>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'visiting');
    path.push(name);
    for (const dependency of packages.get(name)?.dependencies ?? []) {
      if (!packages.has(dependency)) continue;
      const cycle = visit(dependency);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const name of packages.keys()) {
    const cycle = visit(name);
    if (cycle) return cycle;
  }
  return undefined;
}

/**
 * The workspace packages a module loads, directly or through any module it loads in turn:
 * relative imports are followed file by file, a workspace package's entry point into its
 * source (`swarmbee:source`). Type-only imports count too: they are still a dependency.
 */
export function packagesReachedFrom(entry: string, packages = workspacePackages()): Set<string> {
  const reached = new Set<string>();
  const seen = new Set<string>();
  const queue = [resolve(entry)];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    for (const { specifier } of moduleReferences(parse(file))) {
      if (specifier.startsWith('.')) {
        const target = resolve(dirname(file), specifier).replace(/\.js$/, '.ts');
        if (existsSync(target)) queue.push(target);
        continue;
      }
      const [name, subpath] = splitSpecifier(specifier);
      const pkg = packages.get(name);
      if (!pkg) continue;
      reached.add(name);
      const source = pkg.entryPoints.get(subpath);
      if (source) queue.push(source);
    }
  }
  return reached;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const findings = findBoundaryViolations();
  if (process.argv.includes('--json'))
    process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
  else
    for (const f of findings)
      process.stderr.write(`${f.file}:${f.line}: ${f.rule}: ${f.message}\n`);
  process.exitCode = findings.length === 0 ? 0 : 1;
}
