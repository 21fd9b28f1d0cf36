// Built-in providers come alive from pinned secrets: a provider with at least one pinned
// secret has its credential provisioned and its capabilities enabled; a credential is
// ready once every secret its auth strategy requires exists. Derived on every read, so
// deleting or re-creating a secret takes effect at once and nothing can go stale.
//
// Which secrets a caller gets depends on its execution context (see vault/scopes.ts): the
// most specific scope holding any of the provider's secrets that serve the caller wins,
// and within it the highest-priority ready credential (the main one or an alternative).

import type { SecretRecord, Storage } from '../storage/types.ts';
import { isWildcard, splitOverride } from '../policy/tenants.ts';
import { GLOBAL_SCOPE, lookupChain, serves } from '../vault/scopes.ts';
import { neededPlaceholders } from './auth-inputs.ts';
import { credentialsOf, type ProviderCredential, type RegistryProvider } from './types.ts';

export interface BoundSecret {
  name: string;
  placeholder: string;
  required: boolean;
  secretId: string | null;
}

export interface BuiltinCredentialStatus {
  provider: string;
  /** The alternative chosen (null: the provider's main credential). */
  alternative: string | null;
  credential: ProviderCredential;
  /** The scope the secrets come from. */
  scope: string;
  /** At least one of the provider's secrets serves the caller: the credential is provisioned. */
  provisioned: boolean;
  ready: boolean;
  secrets: BoundSecret[];
  missing: string[];
  /** The provider's global secrets that exist but are not attached to the caller's group. */
  outOfScope: string[];
  /** Wildcard hosts the owner must bind to a tenant before the key goes anywhere (also in `missing`). */
  unboundTenants: string[];
}

function statusOf(provider: RegistryProvider, credential: ProviderCredential, scope: string, serving: readonly SecretRecord[], outOfScope: string[]): BuiltinCredentialStatus {
  const { required } = neededPlaceholders(credential.auth);
  const secrets: BoundSecret[] = Object.entries(credential.vaultSecrets).map(([name, placeholder]) => ({
    name,
    placeholder,
    required: required.includes(placeholder),
    secretId: serving.find((s) => s.name === name)?.id ?? null,
  }));
  const missing = secrets.filter((s) => s.required && s.secretId === null).map((s) => s.name);
  return {
    provider: provider.provider,
    alternative: credential.id,
    credential,
    scope,
    provisioned: secrets.some((s) => s.secretId !== null),
    ready: missing.length === 0 && secrets.length > 0,
    secrets,
    missing,
    outOfScope,
    unboundTenants: [],
  };
}

/** What provisioning reads: the pinned secrets, and a provider's endpoint override. */
export type ProvisioningReads = Pick<Storage, 'listSecrets' | 'getEndpointOverride'>;

export async function builtinCredentialStatus(reads: ProvisioningReads, provider: RegistryProvider, context: string = GLOBAL_SCOPE): Promise<BuiltinCredentialStatus> {
  const status = await secretsStatus(reads, provider, context);
  // A provider reached only through wildcards serves no one until its tenant is bound (src/policy/tenants.ts).
  const override = provider.hosts.every(isWildcard) ? await reads.getEndpointOverride(provider.provider) : undefined;
  const { tenants } = splitOverride(override);
  if (!provider.hosts.every(isWildcard) || provider.hosts.some((h) => tenants.has(h))) return status;
  const unboundTenants = [`tenant host for ${provider.hosts.join(', ')}`];
  return { ...status, unboundTenants, missing: [...status.missing, ...unboundTenants], ready: false };
}

async function secretsStatus(reads: ProvisioningReads, provider: RegistryProvider, context: string): Promise<BuiltinCredentialStatus> {
  const pinned = await reads.listSecrets({ pinnedProvider: provider.provider });
  const credentials = credentialsOf(provider);
  let outOfScope: string[] = [];
  for (const scope of lookupChain(context)) {
    const inScope = pinned.filter((s) => s.scope === scope);
    const serving = inScope.filter((s) => serves(s, context));
    if (serving.length === 0) {
      if (scope === GLOBAL_SCOPE) outOfScope = inScope.map((s) => s.name);
      continue;
    }
    const statuses = credentials.map((c) => statusOf(provider, c, scope, serving, inScope.filter((s) => !serving.includes(s)).map((s) => s.name)));
    // The highest-priority ready one; if none is ready, the highest-priority started one.
    return statuses.find((s) => s.ready) ?? statuses.find((s) => s.provisioned)!;
  }
  // Nothing stored: report the main credential's needs (what a newcomer stores first).
  return statusOf(provider, credentials.find((c) => c.id === null)!, GLOBAL_SCOPE, [], outOfScope);
}

/** Providers that have at least one pinned secret in any scope, sorted. */
export async function provisionedProviders(reads: Pick<Storage, 'listSecrets'>): Promise<string[]> {
  const pinned = (await reads.listSecrets()).map((s) => s.pinnedProvider).filter((p): p is string => p !== null);
  return [...new Set(pinned)].sort();
}
