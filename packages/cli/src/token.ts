/** The cluster token: --token, else --token-file, else $SWARMBEE_TOKEN. Never logged. */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '@swarmbee/core';

export const TOKEN_ENV = 'SWARMBEE_TOKEN';

export function resolveToken(args: { token?: string; tokenFile?: string }): string {
  const token =
    args.token ??
    (args.tokenFile ? readFileSync(args.tokenFile, 'utf8').trim() : process.env[TOKEN_ENV]);
  if (!token)
    throw new InvalidArgumentError(
      `a cluster token is required: pass --token, --token-file or set ${TOKEN_ENV}`,
    );
  return token;
}

export const tokenOptions = {
  token: {
    type: 'string',
    describe: `Cluster join token (prefer --token-file or $${TOKEN_ENV}: flags show in ps)`,
  },
  'token-file': { type: 'string', describe: 'File holding the cluster join token' },
} as const;
