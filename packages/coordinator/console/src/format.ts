/** How the console writes numbers and colours devices, the same in every view. */

/** A stable colour per device name, so a device looks the same in every view. */
export function deviceColour(name: string, all: readonly string[]): string {
  const index = Math.max(0, [...all].sort().indexOf(name));
  return `hsl(${(index * 137.5 + 200) % 360} 65% 50%)`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function fixed(n: number | null | undefined, digits = 1): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
