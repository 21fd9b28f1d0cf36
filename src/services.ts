// The one place the services are built from an open vault and the registry: the daemon and
// the CLI compose them here, so both run the same objects over the same storage.

import { Broker } from './broker/broker.ts';
import { Catalog, DEFAULT_LIMITS } from './broker/catalog.ts';
import { Definitions } from './broker/definitions.ts';
import { OAuthTokens } from './broker/oauth-tokens.ts';
import { UpstreamClient } from './broker/upstream.ts';
import { Agents } from './policy/agents.ts';
import { Approvals } from './policy/approvals.ts';
import { Owners } from './policy/owners.ts';
import type { Registry } from './registry/registry.ts';
import { GenerationCache } from './storage/generation-cache.ts';
import type { Vault } from './vault/vault.ts';

export interface Services {
  readonly vault: Vault;
  readonly registry: Registry;
  /** Hot-path resolution: capabilities and credentials as an invoke sees them. */
  readonly catalog: Catalog;
  /** The owner's definitions: credentials, capabilities, endpoints, flows, policy. */
  readonly definitions: Definitions;
  readonly agents: Agents;
  readonly approvals: Approvals;
  readonly owners: Owners;
  readonly oauth: OAuthTokens;
  readonly broker: Broker;
  /** Hot-path reads, kept while the vault's generation stands. */
  readonly reads: GenerationCache;
  /** Closes what the services hold (connection pools); the vault stays the caller's to close. */
  close(): Promise<void>;
}

export function composeServices(vault: Vault, registry: Registry): Services {
  vault.useRegistry(registry);
  const upstream = new UpstreamClient();
  const catalog = new Catalog(vault, registry);
  const definitions = new Definitions(vault, registry, catalog);
  const agents = new Agents(vault);
  const approvals = new Approvals(vault);
  const owners = new Owners(vault);
  // Token requests go through the same checked connector as every upstream call.
  const oauth = new OAuthTokens(vault, { dispatcher: (allowPrivate) => upstream.agent(allowPrivate, DEFAULT_LIMITS.connectTimeoutMs) });
  const reads = new GenerationCache(() => vault.storage.generation());
  const broker = new Broker({ vault, catalog, agents, approvals, oauth, upstream, reads });
  return { vault, registry, catalog, definitions, agents, approvals, owners, oauth, broker, reads, close: () => broker.close() };
}
