// What the owner sees of a credential, a capability and an agent: everything but secret values
// and token hashes (bindings are references).

import { credentialReady, type Catalog, type ResolvedCapability, type ResolvedCredential } from '../broker/catalog.ts';
import { authKind } from '../registry/types.ts';
import type { AgentRecord } from '../storage/types.ts';
import { GLOBAL_SCOPE } from '../vault/scopes.ts';

export function credentialView(c: ResolvedCredential) {
  return {
    name: c.name,
    provider: c.provider,
    source: c.source,
    auth: authKind(c.auth),
    config: c.auth,
    hosts: c.hosts,
    allowHttp: c.allowHttp,
    allowPrivateNetwork: c.allowPrivateNetwork,
    bindings: Object.fromEntries([...c.bindings].map(([p, id]) => [p, `vault:secret:${id}`])),
    ready: c.missing.length === 0,
    missing: c.missing,
    endpointOverrides: Object.fromEntries(c.hostMap),
    tenants: Object.fromEntries(c.tenants),
  };
}

export function capabilityView(c: ResolvedCapability, enabled = true) {
  return {
    id: c.id,
    provider: c.provider,
    source: c.source,
    description: c.description,
    credential: c.credential.name,
    auth: authKind(c.credential.auth),
    enabled,
    ready: enabled && credentialReady(c.credential),
    missingSecrets: c.credential.missing,
    secretScope: c.credential.scope,
    outOfScope: c.credential.outOfScope,
    hosts: c.hosts,
    methods: c.methods,
    pathPrefixes: c.pathPrefixes,
    limits: c.limits,
    websocket: c.websocket,
    policy: c.policy,
    endpointOverrides: Object.fromEntries(c.credential.hostMap),
    tenants: Object.fromEntries(c.credential.tenants),
  };
}

/** One capability as callers in `context` get it. */
export async function describeCapability(catalog: Catalog, id: string, context?: string) {
  const cap = await catalog.resolveCapability(id, context);
  // A built-in capability exists before its provider is provisioned, but is not enabled until then.
  const enabled = cap.source === 'custom' || cap.credential.bindings.size > 0;
  return capabilityView(cap, enabled);
}

export function agentView(a: AgentRecord) {
  return { id: a.id, name: a.name, auth: a.publicKey ? 'ed25519' : 'token', context: a.context ?? GLOBAL_SCOPE, status: a.status, createdAt: a.createdAt, revokedAt: a.revokedAt };
}
