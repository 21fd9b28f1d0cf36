// What every command needs: where the vault is and how to unlock it. The vault's code is
// imported when a command opens it, not when the command tree is built.

import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { AivaultError } from '../errors.ts';
import type { KeyProviderContext } from '../vault/key-providers/index.ts';
import type { Vault } from '../vault/vault.ts';
import { isInteractive, readHidden } from './prompt.ts';

export interface GlobalOptions {
  dir?: string;
  json?: boolean;
}

export function vaultDir(opts: GlobalOptions): string {
  if (opts.dir) return resolve(opts.dir);
  const fromEnv = process.env.AIVAULT_DIR;
  return fromEnv && fromEnv.length > 0 ? resolve(fromEnv) : join(homedir(), '.aivault');
}

export const readPassphrase: KeyProviderContext['readPassphrase'] = async ({ confirm }) => {
  const fromEnv = process.env.AIVAULT_PASSPHRASE;
  if (fromEnv !== undefined) return fromEnv;
  if (!isInteractive()) throw new AivaultError('VAULT_LOCKED', 'the vault is locked: set AIVAULT_PASSPHRASE or run from a terminal');
  const first = await readHidden('Vault passphrase: ');
  if (confirm) {
    const second = await readHidden('Repeat passphrase: ');
    if (first !== second) throw new AivaultError('INVALID_ARGUMENT', 'the passphrases differ');
  }
  return first;
};

/** Opens the vault, runs fn, and always closes it (wiping the derived keys). */
export async function withVault<T>(opts: GlobalOptions, fn: (vault: Vault) => Promise<T>, how: { toVerify?: boolean } = {}): Promise<T> {
  const { Vault } = await import('../vault/vault.ts');
  const vault = await Vault.open({ dir: vaultDir(opts), readPassphrase, ...how });
  try {
    return await fn(vault);
  } finally {
    await vault.close();
  }
}
