/**
 * @swarmbee/cli — the `swarmbee` command.
 *
 * @example
 * ```ts
 * import { main } from '@swarmbee/cli';
 * process.exitCode = await main(['generate', '--prompt', 'Once upon a time', '--steps', '64']);
 * ```
 */
export { describeError, helpText, main, skipHelpPrerender } from './main.js';
