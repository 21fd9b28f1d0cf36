// Passphrase → master key with argon2id (node:crypto). The parameters are stored
// beside the salt so they can be raised for new vaults without breaking old ones.

import { argon2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { AivaultError } from '../../errors.ts';
import { MASTER_KEY_BYTES } from '../keys.ts';
import type { Argon2idParams, CreatedKey, KeyProviderContext } from './types.ts';

const argon2Async = promisify(argon2);

export const MIN_PASSPHRASE_LENGTH = 10;

// RFC 9106's second recommended option: 64 MiB, 3 passes.
const DEFAULT_PARAMS = { memory: 65536, passes: 3, parallelism: 1 } as const;
const MAX_MEMORY_KIB = 4 * 1024 * 1024;
const MAX_PASSES = 64;

async function derive(passphrase: string, params: Argon2idParams): Promise<Buffer> {
  if (
    params.algorithm !== 'argon2id' ||
    !Number.isInteger(params.memory) || params.memory < 8192 || params.memory > MAX_MEMORY_KIB ||
    !Number.isInteger(params.passes) || params.passes < 1 || params.passes > MAX_PASSES ||
    !Number.isInteger(params.parallelism) || params.parallelism < 1 || params.parallelism > 16
  ) {
    throw new AivaultError('VAULT_CORRUPTED', 'the vault records passphrase parameters outside the accepted range');
  }
  const salt = Buffer.from(params.salt, 'base64');
  if (salt.length < 16) throw new AivaultError('VAULT_CORRUPTED', 'the vault records a passphrase salt that is too short');
  return Buffer.from(
    await argon2Async('argon2id', {
      message: Buffer.from(passphrase.normalize('NFC'), 'utf8'),
      nonce: salt,
      memory: params.memory,
      passes: params.passes,
      parallelism: params.parallelism,
      tagLength: MASTER_KEY_BYTES,
    }),
  );
}

export async function createPassphraseKey(ctx: KeyProviderContext): Promise<CreatedKey> {
  const passphrase = await ctx.readPassphrase({ confirm: true });
  if ([...passphrase].length < MIN_PASSPHRASE_LENGTH) {
    throw new AivaultError('INVALID_ARGUMENT', `the passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters`);
  }
  const kdf: Argon2idParams = { algorithm: 'argon2id', ...DEFAULT_PARAMS, salt: randomBytes(16).toString('base64') };
  return { config: { kind: 'passphrase', kdf }, masterKey: await derive(passphrase, kdf) };
}

export async function unlockPassphraseKey(kdf: Argon2idParams, ctx: KeyProviderContext): Promise<Buffer> {
  const passphrase = await ctx.readPassphrase({ confirm: false });
  if (passphrase.length === 0) throw new AivaultError('VAULT_LOCKED', 'no passphrase given');
  return derive(passphrase, kdf);
}
