/**
 * The `swarmbee` command. `main(argv)` runs one invocation and resolves to the
 * exit code: 0 on success, 1 for a failure SwarmBee reports with an error code,
 * 2 for a command line it cannot parse.
 */
import { SWARMBEE_VERSION, SwarmBeeError } from '@swarmbee/core';
import yargs, { type Argv } from 'yargs';
import { benchCommand } from './commands/bench.js';
import { chatCommand } from './commands/chat.js';
import { coordinatorCommand } from './commands/coordinator.js';
import { finetuneCommand } from './commands/finetune.js';
import { generateCommand } from './commands/generate.js';
import { modelCommand } from './commands/model.js';
import { optimizeCommand } from './commands/optimize.js';
import { planCommand } from './commands/plan.js';
import { profileCommand } from './commands/profile.js';
import { replanCommand } from './commands/replan.js';
import { upCommand } from './commands/up.js';
import { workerCommand } from './commands/worker.js';

/** A command line yargs could not parse; thrown from its fail hook so no handler runs. */
class UsageError extends Error {}

/** The `swarmbee` command line, every command registered, not yet parsed. */
export function swarmbeeCli(argv: string[]): Argv {
  const cli = yargs(argv)
    .scriptName('swarmbee')
    .version(SWARMBEE_VERSION)
    .strict()
    .demandCommand(1, 'choose a command')
    .recommendCommands()
    .wrap(Math.min(120, process.stdout.columns ?? 100))
    .fail((message, error) => {
      if (error) throw error;
      throw new UsageError(message);
    });
  upCommand(cli);
  modelCommand(cli);
  optimizeCommand(cli);
  generateCommand(cli);
  finetuneCommand(cli);
  chatCommand(cli);
  workerCommand(cli);
  coordinatorCommand(cli);
  profileCommand(cli);
  planCommand(cli);
  replanCommand(cli);
  benchCommand(cli);
  return cli;
}

/**
 * The help page `swarmbee WORDS --help` prints, made in this process (no process started,
 * nothing printed): what tests read the CLI's commands and flags from.
 */
export async function helpText(words: readonly string[]): Promise<string> {
  const argv = [...words, '--help'];
  return new Promise((resolve, reject) => {
    swarmbeeCli(argv)
      .exitProcess(false)
      .parse(argv, {}, (error, _args, output) => (error ? reject(error) : resolve(output)));
  });
}

export async function main(argv: string[]): Promise<number> {
  const cli = swarmbeeCli(argv);
  try {
    await cli.parseAsync();
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`swarmbee: ${error.message}\nRun "swarmbee --help" for usage.\n`);
      return 2;
    }
    process.stderr.write(`${describeError(error)}\n`);
    return 1;
  }
  return 0;
}

export function describeError(error: unknown): string {
  if (error instanceof SwarmBeeError) return `swarmbee: error ${error.code}: ${error.message}`;
  if (error instanceof Error) return `swarmbee: unexpected error: ${error.stack ?? error.message}`;
  return `swarmbee: unexpected error: ${String(error)}`;
}
