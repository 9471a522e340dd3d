/** Parsers for option values shared by several commands; each throws a coded error naming the flag. */

import type { PlanningOptions } from '@swarmbee/coordinator';
import { InvalidArgumentError, type KvDtype } from '@swarmbee/core';
import type { LayerRange } from '@swarmbee/model';

/** "0-2,2-5" -> [{start 0, end 2}, {start 2, end 5}] (half-open ranges). */
export function parseRanges(text: string): LayerRange[] {
  return text.split(',').map((part) => {
    const match = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(part);
    if (!match)
      throw new InvalidArgumentError(
        `--ranges: "${part}" is not START-END (e.g. 0-3,3-5; END is exclusive)`,
      );
    return { start: Number(match[1]), end: Number(match[2]) };
  });
}

/** "1,403;1,52" -> [[1, 403], [1, 52]]: comma-separated ids, `;` between the sequences of a batch. */
export function parsePromptIds(text: string): number[][] {
  return text.split(';').map((sequence) =>
    sequence.split(',').map((id) => {
      const value = Number(id.trim());
      if (id.trim() === '' || !Number.isInteger(value) || value < 0) {
        throw new InvalidArgumentError(
          `--prompt-ids: "${id}" is not a non-negative integer token id`,
        );
      }
      return value;
    }),
  );
}

/** "127.0.0.1:7070" -> { host, port }; "[::1]:7070" for IPv6. Port 0 means any free port. */
export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65_535)
    throw new InvalidArgumentError(
      `--${flag}: "${text}" is not HOST:PORT (e.g. 127.0.0.1:7070; port 0 picks a free one)`,
    );
  return { host: match[1] ?? match[2]!, port };
}

/** Planning flags (--planner, --objective, --pin-first, --pin-last, --context, --kv-dtype) as coordinator options. */
export function planningFrom(args: {
  planner?: string;
  objective?: string;
  parallelism?: string;
  pinFirst?: string;
  pinLast?: string;
  context?: number;
  kvDtype?: KvDtype;
}): PlanningOptions {
  const planning: PlanningOptions = {};
  if (args.planner !== undefined) planning.planner = args.planner as PlanningOptions['planner'];
  if (args.objective !== undefined)
    planning.objective = args.objective as PlanningOptions['objective'];
  // pipeline is the default: left out, so plans remembered before the flag existed still match.
  if (args.parallelism !== undefined && args.parallelism !== 'pipeline')
    planning.parallelism = args.parallelism as PlanningOptions['parallelism'];
  if (args.pinFirst !== undefined) planning.pinFirst = args.pinFirst;
  if (args.pinLast !== undefined) planning.pinLast = args.pinLast;
  const workload: PlanningOptions['workload'] = {};
  if (args.context !== undefined) workload.contextTokens = args.context;
  // float32 is the default: left out, so plans remembered before the flag existed still match.
  if (args.kvDtype === 'float16') workload.kvDtype = args.kvDtype;
  if (Object.keys(workload).length > 0) planning.workload = workload;
  return planning;
}
