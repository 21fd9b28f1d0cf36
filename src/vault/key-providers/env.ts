// Master key from an environment variable (base64 of 32 bytes), for containers and CI
// where a secrets manager injects it. Anything that can read the process environment
// can read the key: weaker than a passphrase, stronger than nothing.

import { AivaultError } from '../../errors.ts';
import { parseMasterKey } from './keyfile.ts';
import type { CreatedKey, KeyProviderContext } from './types.ts';

export const MASTER_KEY_ENV = 'AIVAULT_MASTER_KEY';

function read(ctx: KeyProviderContext, variable: string): Buffer {
  const value = ctx.env[variable];
  if (value === undefined || value.length === 0) {
    throw new AivaultError('VAULT_LOCKED', `${variable} is not set; it must hold 32 random bytes in base64 (e.g. from \`openssl rand -base64 32\`)`);
  }
  return parseMasterKey(value, variable);
}

export async function createEnvKey(ctx: KeyProviderContext): Promise<CreatedKey> {
  return { config: { kind: 'env', variable: MASTER_KEY_ENV }, masterKey: read(ctx, MASTER_KEY_ENV) };
}

export async function unlockEnvKey(variable: string, ctx: KeyProviderContext): Promise<Buffer> {
  return read(ctx, variable);
}
