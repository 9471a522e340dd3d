/** The package doc comment's example must run as written and print what it says. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

t.test('the example in src/index.ts runs and prints the sampled token', async (t) => {
  const doc = readFileSync(join(packageDir, 'src/index.ts'), 'utf8');
  const block = /@example\n \* ```ts\n([\s\S]*?)\n \* ```/.exec(doc)?.[1];
  if (block === undefined) throw new Error('no example block');
  const code = block.replace(/^ \* ?/gm, '');
  const expected = /console\.log\(.*\); \/\/ (.*)$/m.exec(code)?.[1];
  // Run from the package directory so '@swarmbee/protocol' resolves as it would for a user.
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import=tsx', '--conditions=swarmbee:source', '--input-type=module', '--eval', code],
    { cwd: packageDir, timeout: 20_000 },
  );
  t.equal(stdout.trim(), expected);
});
