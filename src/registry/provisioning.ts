// Built-in providers come alive from pinned secrets: a provider with at least one pinned
// (global) secret has its credential provisioned and its capabilities enabled; they are
// ready once every secret the auth strategy requires exists. Derived on every read, so
// deleting or re-creating a secret takes effect at once and nothing can go stale.

import { GLOBAL_SCOPE } from '../vault/names.ts';
import type { Vault } from '../vault/vault.ts';
import { neededPlaceholders } from './auth-inputs.ts';
import type { Registry } from './registry.ts';
import type { RegistryCapability, RegistryProvider } from './types.ts';

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

export interface BuiltinCapabilityView {
  capability: RegistryCapability;
  credential: BuiltinCredentialStatus;
}

/** The built-in capabilities whose provider has been provisioned, with readiness. */
export async function enabledBuiltinCapabilities(vault: Vault, registry: Registry): Promise<BuiltinCapabilityView[]> {
  const pinnedProviders = new Set(
    (await vault.storage.listSecrets({ scope: GLOBAL_SCOPE })).map((s) => s.pinnedProvider).filter((p): p is string => p !== null),
  );
  const views: BuiltinCapabilityView[] = [];
  for (const id of [...pinnedProviders].sort()) {
    const provider = registry.providers.get(id);
    if (!provider) continue; // pinned to a provider this build no longer ships
    const credential = await builtinCredentialStatus(vault, provider);
    for (const capability of provider.capabilities) views.push({ capability, credential });
  }
  return views;
}
