import { AivaultError } from '../../errors.ts';
import { createEnvKey, unlockEnvKey } from './env.ts';
import { createKeyFileKey, unlockKeyFileKey } from './keyfile.ts';
import { createPassphraseKey, unlockPassphraseKey } from './passphrase.ts';
import type { CreatedKey, KeyProviderConfig, KeyProviderContext, KeyProviderKind } from './types.ts';

export * from './types.ts';

export interface CreateKeyOptions {
  kind: KeyProviderKind;
  keyFile?: string;
}

export function createMasterKey(ctx: KeyProviderContext, options: CreateKeyOptions): Promise<CreatedKey> {
  switch (options.kind) {
    case 'passphrase':
      return createPassphraseKey(ctx);
    case 'keyfile':
      return createKeyFileKey(ctx, options.keyFile);
    case 'env':
      return createEnvKey(ctx);
  }
}

export function unlockMasterKey(config: KeyProviderConfig, ctx: KeyProviderContext): Promise<Buffer> {
  switch (config.kind) {
    case 'passphrase':
      return unlockPassphraseKey(config.kdf, ctx);
    case 'keyfile':
      return unlockKeyFileKey(config.path, ctx);
    case 'env':
      return unlockEnvKey(config.variable, ctx);
  }
}

export function parseKeyProviderConfig(json: string): KeyProviderConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new AivaultError('VAULT_CORRUPTED', "the vault's key provider record is not JSON");
  }
  const c = parsed as Partial<KeyProviderConfig> | null;
  if (c?.kind === 'passphrase' && typeof c.kdf === 'object' && c.kdf !== null) return c as KeyProviderConfig;
  if (c?.kind === 'keyfile' && typeof c.path === 'string') return c as KeyProviderConfig;
  if (c?.kind === 'env' && typeof c.variable === 'string' && /^AIVAULT_[A-Z0-9_]{1,64}$/.test(c.variable)) return c as KeyProviderConfig;
  throw new AivaultError('VAULT_CORRUPTED', "the vault's key provider record is not one aivault knows");
}
