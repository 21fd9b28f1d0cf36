// Built-in providers come alive from pinned secrets: a provider with at least one pinned
// (global) secret has its credential provisioned and its capabilities enabled; they are
// ready once every secret the auth strategy requires exists. Derived on every read, so
// deleting or re-creating a secret takes effect at once and nothing can go stale.

import { GLOBAL_SCOPE } from '../vault/names.ts';
import type { Vault } from '../vault/vault.ts';
import { neededPlaceholders } from './auth-inputs.ts';
import type { RegistryProvider } from './types.ts';

export interface BoundSecret {
  name: string;
  placeholder: string;
  required: boolean;
  secretId: string | null;
}

export interface BuiltinCredentialStatus {
  provider: string;
  /** At least one of the provider's secrets exists: the credential is provisioned. */
  provisioned: boolean;
  ready: boolean;
  secrets: BoundSecret[];
  missing: string[];
}

export async function builtinCredentialStatus(vault: Vault, provider: RegistryProvider): Promise<BuiltinCredentialStatus> {
  const pinned = await vault.storage.listSecrets({ pinnedProvider: provider.provider, scope: GLOBAL_SCOPE });
  const { required } = neededPlaceholders(provider.auth);
  const secrets: BoundSecret[] = Object.entries(provider.vaultSecrets ?? {}).map(([name, placeholder]) => ({
    name,
    placeholder,
    required: required.includes(placeholder),
    secretId: pinned.find((s) => s.name === name)?.id ?? null,
  }));
  const missing = secrets.filter((s) => s.required && s.secretId === null).map((s) => s.name);
  return { provider: provider.provider, provisioned: secrets.some((s) => s.secretId !== null), ready: missing.length === 0 && secrets.length > 0, secrets, missing };
}

/** Providers that have at least one pinned global secret, sorted. */
export async function provisionedProviders(vault: Vault): Promise<string[]> {
  const pinned = (await vault.storage.listSecrets({ scope: GLOBAL_SCOPE })).map((s) => s.pinnedProvider).filter((p): p is string => p !== null);
  return [...new Set(pinned)].sort();
}
