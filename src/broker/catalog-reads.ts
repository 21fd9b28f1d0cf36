// The reads the catalog resolves capabilities and credentials from. One capability (an
// invoke) reads storage itself; a listing reads each table once up front and resolves
// every entry from those rows, so it costs the same few reads however long it is.

import type { CapabilityRecord, CredentialRecord, SecretFilter, SecretRecord, Storage } from '../storage/types.ts';

export type CatalogReads = Pick<Storage, 'getSecret' | 'listSecrets' | 'getEndpointOverride' | 'getCapabilityPolicy' | 'getCapability' | 'getCredential'>;

/** What a listing reads once: the tables behind CatalogReads, and the custom definitions to list. */
export interface Preloaded extends CatalogReads {
  credentials: CredentialRecord[];
  capabilities: CapabilityRecord[];
}

const matches = (filter: SecretFilter, s: SecretRecord): boolean =>
  (filter.scope === undefined || s.scope === filter.scope) && (filter.name === undefined || s.name === filter.name) && (filter.pinnedProvider === undefined || s.pinnedProvider === filter.pinnedProvider);

export async function preload(storage: Storage): Promise<Preloaded> {
  const secrets = await storage.listSecrets();
  const overrides = new Map((await storage.listEndpointOverrides()).map((o) => [o.provider, o]));
  const policies = await storage.listCapabilityPolicies();
  const credentials = await storage.listCredentials();
  const capabilities = await storage.listCapabilities();
  const secretsById = new Map(secrets.map((s) => [s.id, s]));
  const credentialsByName = new Map(credentials.map((c) => [c.name, c]));
  const capabilitiesById = new Map(capabilities.map((c) => [c.id, c]));
  return {
    credentials,
    capabilities,
    getSecret: async (id) => secretsById.get(id),
    // In listSecrets' order, which filtering keeps.
    listSecrets: async (filter = {}) => secrets.filter((s) => matches(filter, s)),
    getEndpointOverride: async (provider) => overrides.get(provider),
    getCapabilityPolicy: async (id) => policies.get(id),
    getCapability: async (id) => capabilitiesById.get(id),
    getCredential: async (name) => credentialsByName.get(name),
  };
}
