/**
 * A benchmark run's result: what ran where, the measured figures with their
 * spread, the ratios against baselines measured in the same run, and charts.
 * Printed as tables; written as JSON, Markdown and SVG.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Summary } from '@swarmbee/optimize';
import type { MachineInfo } from '../machine.js';

export interface BenchTable {
  title: string;
  head: string[];
  rows: (string | number)[][];
}

/** A ratio against a baseline from the same run, with the target it is held to. */
export interface BenchCheck {
  name: string;
  value: number;
  /** Human-readable target, e.g. ">= 0.8". */
  target: string;
  pass: boolean;
  /** How the value was computed, e.g. "ctx256 tok/s / ctx16 tok/s". */
  how: string;
}

export interface BenchChart {
  file: string;
  title: string;
  svg: string;
}

export interface BenchResult {
  suite: string;
  title: string;
  command: string;
  startedAt: string;
  durationMs: number;
  machine: MachineInfo;
  model?: { name: string; modelHash: string; weightBytes: number; source: string };
  options: Record<string, unknown>;
  /** What the figures mean and what they exclude (warm-up, for one). */
  notes: string[];
  metrics: Record<string, { unit: string; summary: Summary; samples?: number[] }>;
  tables: BenchTable[];
  checks: BenchCheck[];
  charts: BenchChart[];
}

export function check(
  name: string,
  value: number,
  target: number,
  how: string,
  direction: '>=' | '<=' = '>=',
): BenchCheck {
  const pass = direction === '>=' ? value >= target : value <= target;
  return { name, value, target: `${direction} ${target}`, pass, how };
}

export function markdownReport(result: BenchResult): string {
  const lines = [
    `# ${result.title}`,
    '',
    `\`${result.command}\` — ${result.startedAt}, ${(result.durationMs / 1000).toFixed(1)} s`,
    '',
  ];
  const m = result.machine;
  lines.push(
    `Machine: ${m.cpuModel}, ${m.cpus} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.platform} ${m.arch}; Node ${m.node}, onnxruntime ${m.onnxruntime}, SwarmBee ${m.swarmbee}.`,
  );
  if (result.model)
    lines.push(
      `Model: ${result.model.name} (${result.model.source}, ${(result.model.weightBytes / 2 ** 20).toFixed(1)} MiB of weights, hash ${result.model.modelHash.slice(0, 12)}).`,
    );
  lines.push('', ...result.notes.map((n) => `- ${n}`), '');
  for (const table of result.tables)
    lines.push(`## ${table.title}`, '', ...markdownTable(table.head, table.rows), '');
  if (result.checks.length > 0) {
    lines.push('## Checks (ratios against baselines from this run)', '');
    lines.push(
      ...markdownTable(
        ['check', 'value', 'target', 'result', 'how'],
        result.checks.map((c) => [
          c.name,
          c.value.toFixed(3),
          c.target,
          c.pass ? 'pass' : 'FAIL',
          c.how,
        ]),
      ),
      '',
    );
  }
  for (const chart of result.charts) lines.push(`![${chart.title}](${chart.file})`, '');
  return lines.join('\n');
}

function markdownTable(head: string[], rows: (string | number)[][]): string[] {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

/** Writes result.json, report.md and the charts into `dir`. */
export async function writeReport(dir: string, result: BenchResult): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = { ...result, charts: result.charts.map(({ file, title }) => ({ file, title })) };
  const files = [join(dir, 'result.json'), join(dir, 'report.md')];
  await writeFile(files[0]!, `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(files[1]!, `${markdownReport(result)}\n`);
  for (const chart of result.charts) {
    await writeFile(join(dir, chart.file), chart.svg);
    files.push(join(dir, chart.file));
  }
  return files;
}
