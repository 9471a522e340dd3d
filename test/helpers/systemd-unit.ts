/** A systemd unit file read as sections of settings, and its ExecStart= as argv. */

export type Unit = Map<string, Map<string, string[]>>;

/** Sections to settings; a setting given twice keeps both values; `\` continues a line. */
export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.replace(/\\\n\s*/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const heading = /^\[(.+)\]$/.exec(line);
    if (heading) {
      section = unit.get(heading[1]!) ?? new Map();
      unit.set(heading[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq === -1) throw new Error(`not a unit file line: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

export function setting(unit: Unit, section: string, key: string): string[] {
  return unit.get(section)?.get(key) ?? [];
}

/**
 * ExecStart= as systemd runs it: `${VAR}` is one word, `$VAR` splits at spaces
 * (zero words when empty). Returns the argv and the variables it used.
 */
export function expandExecStart(
  command: string,
  env: ReadonlyMap<string, string>,
): { argv: string[]; used: string[]; missing: string[] } {
  const used: string[] = [];
  const missing: string[] = [];
  const lookup = (name: string): string => {
    used.push(name);
    const value = env.get(name);
    if (value === undefined) missing.push(name);
    return value ?? '';
  };
  const argv: string[] = [];
  for (const word of command.split(/\s+/).filter((w) => w !== '')) {
    const split = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (split) {
      argv.push(
        ...lookup(split[1]!)
          .split(/\s+/)
          .filter((w) => w !== ''),
      );
      continue;
    }
    argv.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => lookup(name)));
  }
  return { argv, used, missing };
}
