/** What a `swarmbee` process does before its command runs. */
import { skipHelpPrerender } from '@swarmbee/cli';
import t from 'tap';
import yargs, { type Argv } from 'yargs';

interface UsageProbe {
  getInternalMethods(): { getUsageInstance(): { hasCachedHelpMessage(): boolean } };
}

function greeter(): Argv {
  return yargs(['hello', '--name', 'bee'])
    .command(
      'hello',
      'greets',
      (y) => y.option('name', { type: 'string', describe: 'who' }),
      () => {},
    )
    .strict();
}

t.test('a command runs without yargs laying out its help page first', async (t) => {
  const plain = greeter();
  await plain.parseAsync();
  t.ok(
    (plain as unknown as UsageProbe).getInternalMethods().getUsageInstance().hasCachedHelpMessage(),
    'yargs renders the help page before a command handler runs',
  );

  const skipped = greeter();
  t.ok(skipHelpPrerender(skipped), 'this yargs has the hook the CLI turns off');
  await skipped.parseAsync();
  t.notOk(
    (skipped as unknown as UsageProbe)
      .getInternalMethods()
      .getUsageInstance()
      .hasCachedHelpMessage(),
    'with it turned off, no page is rendered',
  );
});
