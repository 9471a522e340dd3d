/**
 * What the `swarmbee` command accepts, read from the CLI's own `--help` (made in this
 * process by the very yargs set-up the command runs), and
 * a checker for the command lines that deployment files run. Nothing here knows a
 * flag by heart: a renamed or removed flag makes the deployment tests fail.
 */
import { helpText } from '@swarmbee/cli';

export type OptionType = 'string' | 'number' | 'boolean' | 'array' | 'count';

export interface OptionSpec {
  name: string;
  type?: OptionType;
  required: boolean;
  choices?: string[];
  /** The option's whole help entry (description and tags). */
  help: string;
}

export interface HelpPage {
  /** Command words after `swarmbee`, e.g. ['model', 'import', 'llama2c']. */
  words: string[];
  /** Subcommands as listed, each split into words after `swarmbee`. */
  commands: string[][];
  positionals: string[];
  options: Map<string, OptionSpec>;
  text: string;
}

const pages = new Map<string, Promise<HelpPage>>();

/** `swarmbee WORDS --help`, parsed; cached per test process. */
export function helpPage(words: string[]): Promise<HelpPage> {
  const key = words.join(' ');
  let page = pages.get(key);
  if (!page) {
    page = helpText(words).then((text) => parseHelp(words, text));
    pages.set(key, page);
  }
  return page;
}

/** Splits yargs' help into sections; an entry's wrapped lines are joined. */
export function parseHelp(words: string[], text: string): HelpPage {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const heading = /^(Commands|Positionals|Options):$/.exec(line);
    if (heading) {
      current = [];
      sections.set(heading[1]!, current);
    } else if (line.trim() === '') {
      current = undefined;
    } else if (current) {
      current.push(line);
    }
  }
  const entries = (lines: string[] = [], start: RegExp): string[] => {
    const out: string[] = [];
    for (const line of lines) {
      if (start.test(line)) out.push(line.trim());
      else if (out.length > 0) out[out.length - 1] += ` ${line.trim()}`;
    }
    return out;
  };
  const commands = entries(sections.get('Commands'), /^ {2}swarmbee /).map((entry) =>
    // "swarmbee model import llama2c <checkpoint>  Import a ..." -> its words
    entry
      .split(/\s{2,}/)[0]!
      .split(' ')
      .slice(1),
  );
  const positionals = entries(sections.get('Positionals'), /^ {2}\S/).map(
    (entry) => entry.split(/\s+/)[0]!,
  );
  const options = new Map<string, OptionSpec>();
  for (const entry of entries(sections.get('Options'), /^ {2}(-\w, )?--[\w-]+/)) {
    const name = /--([\w-]+)/.exec(entry)![1]!;
    const type = /\[(string|number|boolean|array|count)\]/.exec(entry)?.[1] as
      | OptionType
      | undefined;
    const choices = /\[choices: ([^\]]+)\]/
      .exec(entry)?.[1]
      ?.split(/,\s*/)
      .map((choice) => choice.replace(/^"|"$/g, ''));
    options.set(name, {
      name,
      type,
      required: /\[required\]/.test(entry),
      ...(choices ? { choices } : {}),
      help: entry,
    });
  }
  return { words, commands, positionals, options, text };
}

export interface ParsedCommandLine {
  /** The command's words, e.g. ['worker'] or ['model', 'import', 'llama2c']. */
  command: string[];
  positionals: string[];
  /** Flag name (without --) to its values, in order. */
  flags: Map<string, string[]>;
}

/**
 * Checks `argv` (the words after `swarmbee`) against the CLI: the command exists,
 * every flag exists and has a value of its type (numbers parse, choices hold),
 * required flags and positionals are there, nothing is left over. Resolves to the
 * parsed command line and the problems found (none when it is fine).
 */
export async function checkCommandLine(
  argv: readonly string[],
): Promise<{ parsed: ParsedCommandLine; problems: string[] }> {
  const problems: string[] = [];
  let page = await helpPage([]);
  let i = 0;
  const positionals: string[] = [];
  // Walk down the command tree: a listed command whose literal words come next.
  for (;;) {
    const depth = page.words.length;
    const match = page.commands.find((words) => {
      const literal = words.slice(depth).filter((w) => !/^[<[]/.test(w));
      return literal.length > 0 && literal.every((w, k) => argv[i + k] === w);
    });
    if (!match) break;
    const rest = match.slice(depth);
    const literal = rest.filter((w) => !/^[<[]/.test(w));
    i += literal.length;
    for (const word of rest.filter((w) => /^[<[]/.test(w))) {
      const value = argv[i];
      if (value !== undefined && !value.startsWith('--')) {
        positionals.push(value);
        i++;
      } else if (word.startsWith('<')) {
        problems.push(`swarmbee ${match.join(' ')}: the positional ${word} is missing`);
      }
    }
    page = await helpPage([...page.words, ...literal]);
  }
  const command = page.words;
  const where = `swarmbee ${command.join(' ') || '(no command)'}`;
  if (command.length === 0) problems.push(`"${argv[0] ?? ''}" is not a swarmbee command`);
  else if (page.commands.length > 0)
    problems.push(
      `${where} needs a subcommand: ${page.commands.map((c) => c.join(' ')).join(', ')}`,
    );

  const flags = new Map<string, string[]>();
  while (i < argv.length) {
    const word = argv[i++]!;
    if (!word.startsWith('--')) {
      problems.push(`${where}: unexpected argument "${word}"`);
      continue;
    }
    const eq = word.indexOf('=');
    let name = eq === -1 ? word.slice(2) : word.slice(2, eq);
    let value: string | undefined = eq === -1 ? undefined : word.slice(eq + 1);
    let option = page.options.get(name);
    if (!option && name.startsWith('no-') && page.options.get(name.slice(3))?.type === 'boolean') {
      name = name.slice(3);
      option = page.options.get(name);
      value = 'false';
    }
    if (!option) {
      problems.push(`${where} has no --${name}`);
      continue;
    }
    if (value === undefined) {
      const next = argv[i];
      if (option.type === 'boolean') {
        value = next === 'true' || next === 'false' ? argv[i++]! : 'true';
      } else if (next === undefined || next.startsWith('--')) {
        problems.push(`${where}: --${name} needs a value`);
        continue;
      } else {
        value = argv[i++]!;
      }
    }
    const values = [value];
    // An array option takes every word up to the next flag.
    while (option.type === 'array' && argv[i] !== undefined && !argv[i]!.startsWith('--'))
      values.push(argv[i++]!);
    if (option.type === 'number' && !Number.isFinite(Number(value)))
      problems.push(`${where}: --${name} takes a number, got "${value}"`);
    if (option.choices && !option.choices.includes(value))
      problems.push(`${where}: --${name} is one of ${option.choices.join(', ')}, got "${value}"`);
    flags.set(name, [...(flags.get(name) ?? []), ...values]);
  }
  for (const option of page.options.values())
    if (option.required && !flags.has(option.name))
      problems.push(`${where}: --${option.name} is required`);
  return { parsed: { command, positionals, flags }, problems };
}

/** The single value of a flag, or undefined. */
export function flag(parsed: ParsedCommandLine, name: string): string | undefined {
  return parsed.flags.get(name)?.at(-1);
}

/** "0.0.0.0:7071" -> 7071; "ws://coordinator:7070" -> 7070; "http://h:8080/x" -> 8080. */
export function portOf(address: string): number {
  const match = /:(\d{1,5})(?:\/.*)?$/.exec(address);
  if (!match) throw new Error(`no port in "${address}"`);
  return Number(match[1]);
}

/** "ws://coordinator:7070" -> "coordinator". */
export function hostOf(url: string): string {
  return new URL(url).hostname;
}
