/**
 * The `swarmbee` command. `main(argv)` runs one invocation and resolves to the
 * exit code: 0 on success, 1 for a failure SwarmBee reports with an error code,
 * 2 for a command line it cannot parse.
 */
import { SWARMBEE_VERSION, SwarmBeeError } from '@swarmbee/core';
import yargs, { type Argv } from 'yargs';

type Registrar = (cli: Argv) => Argv;

/**
 * The top-level commands in `--help` order, each loaded when needed: a command's module
 * imports the packages it runs (a worker loads the engine, the coordinator its HTTP server),
 * and loading all of them made every `swarmbee` process start on ~0.3 s more CPU.
 */
const COMMANDS: Record<string, () => Promise<Registrar>> = {
  up: async () => (await import('./commands/up.js')).upCommand,
  model: async () => (await import('./commands/model.js')).modelCommand,
  optimize: async () => (await import('./commands/optimize.js')).optimizeCommand,
  generate: async () => (await import('./commands/generate.js')).generateCommand,
  finetune: async () => (await import('./commands/finetune.js')).finetuneCommand,
  chat: async () => (await import('./commands/chat.js')).chatCommand,
  worker: async () => (await import('./commands/worker.js')).workerCommand,
  coordinator: async () => (await import('./commands/coordinator.js')).coordinatorCommand,
  profile: async () => (await import('./commands/profile.js')).profileCommand,
  plan: async () => (await import('./commands/plan.js')).planCommand,
  replan: async () => (await import('./commands/replan.js')).replanCommand,
  bench: async () => (await import('./commands/bench.js')).benchCommand,
};

/**
 * The registrars `argv` needs: the command its first argument names, or every command when
 * that is something else (`swarmbee --help`, a typo yargs suggests a command for). A command
 * is parsed the same with or without the others registered beside it.
 */
async function registrarsFor(argv: readonly string[]): Promise<Registrar[]> {
  const first = argv[0];
  const names =
    first !== undefined && Object.hasOwn(COMMANDS, first) ? [first] : Object.keys(COMMANDS);
  return Promise.all(names.map((name) => COMMANDS[name]!()));
}

/** A command line yargs could not parse; thrown from its fail hook so no handler runs. */
class UsageError extends Error {}

/** The part of yargs' internals that renders a help page ahead of need. */
interface YargsUsageInternals {
  getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } };
}

/**
 * Stops yargs rendering a command's whole help page every time the command runs. yargs
 * does so before each command's handler (`cacheHelpMessage`), in case the handler later
 * shows it; the fail hook above throws instead and `main` prints its own hint, so the page
 * was never read, and laying out a `worker` or `coordinator` page (40 options, wrapped)
 * cost 0.2-0.35 s of CPU at every start. `--help` renders its page as before. Returns
 * whether yargs had the hook (test/cli-start.test.ts holds it to true).
 */
export function skipHelpPrerender(cli: Argv): boolean {
  const usage = (cli as unknown as YargsUsageInternals).getInternalMethods?.().getUsageInstance?.();
  if (typeof usage?.cacheHelpMessage !== 'function') return false;
  usage.cacheHelpMessage = () => {};
  return true;
}

/** The `swarmbee` command line with the commands `argv` needs registered, not yet parsed. */
export async function swarmbeeCli(argv: string[]): Promise<Argv> {
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
  for (const register of await registrarsFor(argv)) register(cli);
  skipHelpPrerender(cli);
  return cli;
}

/**
 * The help page `swarmbee WORDS --help` prints, made in this process (no process started,
 * nothing printed): what tests read the CLI's commands and flags from.
 */
export async function helpText(words: readonly string[]): Promise<string> {
  const argv = [...words, '--help'];
  const cli = await swarmbeeCli(argv);
  return new Promise((resolve, reject) => {
    cli
      .exitProcess(false)
      .parse(argv, {}, (error, _args, output) => (error ? reject(error) : resolve(output)));
  });
}

export async function main(argv: string[]): Promise<number> {
  try {
    await (await swarmbeeCli(argv)).parseAsync();
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
