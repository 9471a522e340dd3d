/**
 * The command lines the README and docs/ tell people to type: every `swarmbee ...` (however
 * it is started: npx, node, docker run, npm run bench) in a shell block must be one the CLI
 * accepts — the command exists, its flags exist and take the values shown, required ones are
 * there. A renamed flag makes this fail rather than the docs go stale.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { checkCommandLine } from './helpers/cli-spec.js';
import { REPO_ROOT } from './helpers/shared-models.js';

interface DocCommand {
  file: string;
  line: number;
  text: string;
  /** The words after `swarmbee`. */
  argv: string[];
}

/** Shell blocks (```sh, ```bash, ```shell) as logical lines: backslash continuations joined. */
export function shellLines(markdown: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const lines = markdown.split('\n');
  let inShell = false;
  let pending: { line: number; text: string } | undefined;
  lines.forEach((raw, index) => {
    const fence = /^\s*```(\w*)/.exec(raw);
    if (fence) {
      inShell = !inShell && ['sh', 'bash', 'shell'].includes(fence[1]!);
      pending = undefined;
      return;
    }
    if (!inShell) return;
    const text = pending ? `${pending.text} ${raw.trim()}` : raw.trim();
    const line = pending?.line ?? index + 1;
    if (text.endsWith('\\')) pending = { line, text: text.slice(0, -1).trimEnd() };
    else {
      pending = undefined;
      out.push({ line, text });
    }
  });
  return out;
}

/**
 * Splits a shell line into simple commands of words: quotes and `$(...)` kept whole (quotes
 * removed), a `#` starting a word ends the line, `&&`, `||`, `;` and `|` separate commands.
 */
export function shellCommands(text: string): string[][] {
  const commands: string[][] = [[]];
  let word: string | undefined;
  const end = () => {
    if (word !== undefined) commands.at(-1)!.push(word);
    word = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'" || c === '"') {
      const close = text.indexOf(c, i + 1);
      if (close === -1) throw new Error(`unclosed ${c} in: ${text}`);
      word = (word ?? '') + text.slice(i + 1, close);
      i = close;
    } else if (c === '$' && text[i + 1] === '(') {
      let depth = 0;
      let j = i + 1;
      for (; j < text.length; j++) {
        if (text[j] === '(') depth++;
        else if (text[j] === ')' && --depth === 0) break;
      }
      word = (word ?? '') + text.slice(i, j + 1);
      i = j;
    } else if (c === '#' && word === undefined) {
      break;
    } else if (/\s/.test(c)) {
      end();
    } else if (c === ';' || c === '|' || c === '&') {
      end();
      if (text[i + 1] === c) i++;
      commands.push([]);
    } else {
      word = (word ?? '') + c;
    }
  }
  end();
  return commands.filter((words) => words.length > 0);
}

/** The words after `swarmbee` if this simple command runs the swarmbee CLI, else undefined. */
export function swarmbeeArgv(words: readonly string[]): string[] | undefined {
  let rest = [...words];
  while (rest.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(rest[0]!)) rest = rest.slice(1);
  if (rest[0] === 'sudo') {
    rest = rest.slice(1);
    while (rest[0]?.startsWith('-')) rest = rest.slice(rest[0] === '-u' ? 2 : 1);
  }
  if (rest[0] === 'npx' && rest[1] === 'swarmbee') return rest.slice(2);
  if (rest[0] === 'swarmbee') return rest.slice(1);
  if (rest[0] === 'node' && rest[1]?.endsWith('/swarmbee.js')) return rest.slice(2);
  if (rest[0] === 'npm' && rest[1] === 'run' && rest[2] === 'bench' && rest[3] === '--')
    return ['bench', '--suite', ...rest.slice(4)];
  if (rest[0] === 'docker' && rest[1] === 'run') {
    let i = 2;
    while (rest[i]?.startsWith('--')) i++;
    if (/(^|\/)swarmbee(:[\w.-]+)?$/.test(rest[i] ?? '')) return rest.slice(i + 1);
  }
  return undefined;
}

function docCommands(): DocCommand[] {
  const files = [
    'README.md',
    ...readdirSync(join(REPO_ROOT, 'docs'))
      .filter((name) => name.endsWith('.md'))
      .map((name) => `docs/${name}`),
  ];
  const found: DocCommand[] = [];
  for (const file of files) {
    for (const { line, text } of shellLines(readFileSync(join(REPO_ROOT, file), 'utf8'))) {
      for (const words of shellCommands(text)) {
        const argv = swarmbeeArgv(words);
        if (argv) found.push({ file, line, text, argv });
      }
    }
  }
  return found;
}

t.test('the shell splitter reads docs the way a shell would', async (t) => {
  t.same(
    shellCommands(
      'SWARMBEE_TOKEN=... npx swarmbee worker --name "pi 1"   # a comment && not a command',
    ),
    [['SWARMBEE_TOKEN=...', 'npx', 'swarmbee', 'worker', '--name', 'pi 1']],
  );
  t.same(shellCommands("npm ci && npx swarmbee up; echo 'a|b' | cat"), [
    ['npm', 'ci'],
    ['npx', 'swarmbee', 'up'],
    ['echo', 'a|b'],
    ['cat'],
  ]);
  t.same(shellCommands('x --token "$(openssl rand -hex 24)"'), [
    ['x', '--token', '$(openssl rand -hex 24)'],
  ]);
  t.same(shellLines('text\n```sh\na \\\n  b\nc\n```\n```js\nswarmbee up\n```\n'), [
    { line: 3, text: 'a b' },
    { line: 5, text: 'c' },
  ]);
  t.same(swarmbeeArgv(['npm', 'run', 'bench', '--', 'soak', '--quick']), [
    'bench',
    '--suite',
    'soak',
    '--quick',
  ]);
  t.same(swarmbeeArgv(['docker', 'run', '--rm', 'swarmbee', 'generate']), ['generate']);
  t.same(swarmbeeArgv(['sudo', '-u', 'swarmbee', 'node', '/opt/x/swarmbee.js', 'up']), ['up']);
  t.equal(swarmbeeArgv(['npm', 'ci']), undefined);
  const bad = await checkCommandLine(['bench', '--suite', 'nonsense']);
  t.ok(bad.problems.length > 0, 'a suite outside the choices is a problem');
});

t.test('every swarmbee command line in README.md and docs/ is one the CLI accepts', async (t) => {
  const commands = docCommands();
  t.ok(commands.length >= 30, `found ${commands.length} command lines`);
  const byCommand = new Set<string>();
  for (const command of commands) {
    const { parsed, problems } = await checkCommandLine(command.argv);
    byCommand.add(parsed.command.join(' '));
    t.same(problems, [], `${command.file}:${command.line}: ${command.text}`);
  }
  for (const needed of ['up', 'worker', 'coordinator', 'generate', 'profile', 'plan', 'bench'])
    t.ok(byCommand.has(needed), `the docs show swarmbee ${needed}`);
});
