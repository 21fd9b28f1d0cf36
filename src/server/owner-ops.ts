// What an owner can do through the daemon (`POST /v1/owner/rpc`, signed by an owner key):
// the owner commands of the CLI, as named operations with validated arguments. Secret
// values may go in; none ever comes out.

import { z } from 'zod';
import type { Broker } from '../broker/broker.ts';
import { AivaultError } from '../errors.ts';
import { parseExpiry } from '../policy/agents.ts';
import { Owners } from '../policy/owners.ts';
import type { AuthConfig } from '../registry/types.ts';
import { credentialReady } from '../broker/catalog.ts';

const str = z.string().min(1).max(256);

const OPS = {
  'secrets.create': z.strictObject({ name: str, value: z.string().min(1).max(64 * 1024), scope: str.optional(), description: z.string().max(1024).optional(), allowShort: z.boolean().optional() }),
  'secrets.list': z.strictObject({ scope: str.optional() }),
  'secrets.rotate': z.strictObject({ secret: str, value: z.string().min(1).max(64 * 1024), allowShort: z.boolean().optional() }),
  'secrets.delete': z.strictObject({ secret: str }),
  'secrets.attach-group': z.strictObject({ secret: str, workspaceId: str, groupId: str, scope: str.optional() }),
  'secrets.detach-group': z.strictObject({ secret: str, workspaceId: str, groupId: str, scope: str.optional() }),
  'credential.list': z.strictObject({}),
  'credential.create': z.strictObject({
    name: str,
    provider: str,
    auth: z.unknown(),
    secretRefs: z.record(z.string(), str),
    hosts: z.array(str).min(1),
    allowHttp: z.boolean().optional(),
    allowPrivateNetwork: z.boolean().optional(),
    anyTenant: z.boolean().optional(),
  }),
  'credential.delete': z.strictObject({ name: str }),
  'capability.list': z.strictObject({}),
  'capability.create': z.strictObject({
    id: str,
    provider: str,
    credential: str,
    methods: z.array(str).min(1),
    pathPrefixes: z.array(str).min(1),
    hosts: z.array(str).optional(),
    limits: z.strictObject({ timeoutMs: z.number().int().optional(), connectTimeoutMs: z.number().int().optional(), maxRequestBytes: z.number().int().optional(), maxResponseBytes: z.number().int().optional() }).optional(),
    websocket: z.boolean().optional(),
  }),
  'capability.delete': z.strictObject({ id: str }),
  'endpoint.set': z.strictObject({ provider: str, hosts: z.record(z.string(), str).default({}), tenants: z.array(str).max(64).optional(), tokenEndpoint: str.optional(), allowHttp: z.boolean().optional(), allowPrivateNetwork: z.boolean().optional() }),
  'endpoint.clear': z.strictObject({ provider: str }),
  'audit.list': z.strictObject({ capability: str.optional(), since: str.optional(), afterSeq: z.number().int().min(0).optional(), limit: z.number().int().min(1).max(10_000).optional() }),
  'agent.create': z.strictObject({ name: str, publicKey: z.string().max(4096).optional(), context: str.optional() }),
  'agent.list': z.strictObject({}),
  'agent.revoke': z.strictObject({ agent: str }),
  'agent.context': z.strictObject({ agent: str, context: str.nullable() }),
  'grant.create': z.strictObject({ agent: str, capability: str, expires: str.optional(), rate: str.optional(), methods: z.array(str).optional(), approve: z.enum(['each', 'first']).optional() }),
  'grant.list': z.strictObject({ agent: str.optional() }),
  'grant.revoke': z.strictObject({ agent: str, capability: str }),
  'owner.list': z.strictObject({}),
  'owner.add': z.strictObject({ name: str, publicKey: z.string().max(4096) }),
  'owner.remove': z.strictObject({ owner: str }),
  'audit.verify': z.strictObject({ against: z.strictObject({ seq: z.number().int().min(1), hash: z.string().max(128), at: z.string().max(64), mac: z.string().max(128) }).optional() }),
  'audit.head': z.strictObject({}),
  'capability.policy.set': z.strictObject({
    id: str,
    rateLimitPerMinute: z.number().int().optional(),
    maxRequestBodyBytes: z.number().int().optional(),
    maxResponseBodyBytes: z.number().int().optional(),
    responseBlock: z.array(z.string().max(1024)).max(64).optional(),
  }),
  'capability.policy.clear': z.strictObject({ id: str }),
  'approval.list': z.strictObject({ all: z.boolean().optional() }),
  'approval.approve': z.strictObject({ id: str }),
  'approval.deny': z.strictObject({ id: str }),
} as const;

export type OwnerOp = keyof typeof OPS;

export const OwnerCall = z.strictObject({ op: z.string().max(64), args: z.record(z.string(), z.unknown()).default({}) });

function argsOf<K extends OwnerOp>(op: K, raw: unknown): z.infer<(typeof OPS)[K]> {
  const parsed = OPS[op].safeParse(raw);
  if (!parsed.success) throw new AivaultError('INVALID_ARGUMENT', `invalid arguments for ${op}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(args)'} ${i.message}`).join('; ')}`);
  return parsed.data as z.infer<(typeof OPS)[K]>;
}

export async function runOwnerOp(broker: Broker, op: string, raw: unknown): Promise<unknown> {
  if (!(op in OPS)) throw new AivaultError('INVALID_ARGUMENT', `unknown owner operation; one of ${Object.keys(OPS).join(', ')}`);
  const vault = broker.vault;
  const owners = new Owners(vault);
  switch (op as OwnerOp) {
    case 'secrets.create': {
      const v = argsOf('secrets.create', raw);
      return vault.createSecret({ name: v.name, value: Buffer.from(v.value, 'utf8'), ...(v.scope ? { scope: v.scope } : {}), description: v.description ?? null, allowShort: v.allowShort === true });
    }
    case 'secrets.list':
      return vault.listSecrets(argsOf('secrets.list', raw).scope);
    case 'secrets.rotate': {
      const v = argsOf('secrets.rotate', raw);
      return vault.rotateSecret(v.secret, Buffer.from(v.value, 'utf8'), undefined, v.allowShort ? { allowShort: true } : {});
    }
    case 'secrets.delete':
      return vault.deleteSecret(argsOf('secrets.delete', raw).secret);
    case 'secrets.attach-group':
    case 'secrets.detach-group': {
      const v = argsOf('secrets.attach-group', raw); // both take the same arguments
      return vault.setSecretGroup(v.secret, v.workspaceId, v.groupId, op === 'secrets.attach-group', v.scope);
    }
    case 'credential.list':
      return (await broker.catalog.listCredentials()).map((c) => ({ name: c.name, provider: c.provider, source: c.source, hosts: c.hosts, ready: c.missing.length === 0 }));
    case 'credential.create': {
      const v = argsOf('credential.create', raw);
      const c = await broker.definitions.createCredential({ ...v, auth: v.auth as AuthConfig });
      return { name: c.name, provider: c.provider, hosts: c.hosts, ready: c.missing.length === 0 };
    }
    case 'credential.delete':
      await broker.definitions.deleteCredential(argsOf('credential.delete', raw).name);
      return { deleted: true };
    case 'capability.create': {
      const v = argsOf('capability.create', raw);
      const c = await broker.definitions.createCapability({ ...v, hosts: v.hosts ?? [], ...(v.limits ? { limits: v.limits } : {}) });
      return { id: c.id, methods: c.methods, pathPrefixes: c.pathPrefixes, hosts: c.hosts };
    }
    case 'capability.delete':
      await broker.definitions.deleteCapability(argsOf('capability.delete', raw).id);
      return { deleted: true };
    case 'endpoint.set': {
      const v = argsOf('endpoint.set', raw);
      return broker.definitions.setEndpointOverride({ provider: v.provider, hosts: v.hosts, ...(v.tenants ? { tenants: v.tenants } : {}), ...(v.tokenEndpoint ? { tokenEndpoint: v.tokenEndpoint } : {}), allowHttp: v.allowHttp === true, allowPrivateNetwork: v.allowPrivateNetwork === true });
    }
    case 'endpoint.clear':
      await broker.definitions.clearEndpointOverride(argsOf('endpoint.clear', raw).provider);
      return { cleared: true };
    case 'audit.list': {
      const v = argsOf('audit.list', raw);
      return vault.audit.list({ ...(v.capability ? { capability: v.capability } : {}), ...(v.since ? { since: v.since } : {}), ...(v.afterSeq !== undefined ? { afterSeq: v.afterSeq } : {}), limit: v.limit ?? 1000 });
    }
    case 'capability.list':
      return (await broker.catalog.listCapabilities()).map((c) => ({ id: c.id, provider: c.provider, source: c.source, ready: credentialReady(c.credential), methods: c.methods, pathPrefixes: c.pathPrefixes }));
    case 'agent.create': {
      const v = argsOf('agent.create', raw);
      const created = await broker.agents.create(v.name, { ...(v.publicKey ? { publicKey: v.publicKey } : {}), ...(v.context ? { context: v.context } : {}) });
      return { id: created.agent.id, name: created.agent.name, ...(created.token ? { token: created.token } : {}) };
    }
    case 'capability.policy.set': {
      const { id, ...change } = argsOf('capability.policy.set', raw);
      return broker.definitions.setPolicy(id, change);
    }
    case 'capability.policy.clear':
      await broker.definitions.clearPolicy(argsOf('capability.policy.clear', raw).id);
      return { cleared: true };
    case 'approval.list':
      return broker.approvals.list(argsOf('approval.list', raw).all ? undefined : 'pending');
    case 'approval.approve':
      return broker.approvals.decide(argsOf('approval.approve', raw).id, 'approve');
    case 'approval.deny':
      return broker.approvals.decide(argsOf('approval.deny', raw).id, 'deny');
    case 'agent.list':
      return (await broker.agents.list()).map(({ id, name, status, createdAt }) => ({ id, name, status, createdAt }));
    case 'agent.revoke':
      return broker.agents.revoke(argsOf('agent.revoke', raw).agent);
    case 'agent.context': {
      const v = argsOf('agent.context', raw);
      const a = await broker.agents.setContext(v.agent, v.context ?? undefined);
      return { id: a.id, name: a.name, context: a.context ?? 'global' };
    }
    case 'grant.create': {
      const v = argsOf('grant.create', raw);
      const cap = await broker.grantable(v.capability);
      return broker.agents.grant({ agent: v.agent, capability: cap.id, expiresAt: v.expires ? parseExpiry(v.expires) : null, rate: v.rate ?? null, methods: v.methods ?? null, approve: v.approve ?? null }, cap.methods);
    }
    case 'grant.list':
      return broker.agents.listGrants(argsOf('grant.list', raw).agent);
    case 'grant.revoke': {
      const v = argsOf('grant.revoke', raw);
      await broker.agents.revokeGrant(v.agent, v.capability);
      return { revoked: true };
    }
    case 'owner.list':
      return (await owners.list()).map(({ id, name, createdAt }) => ({ id, name, createdAt }));
    case 'owner.add': {
      const v = argsOf('owner.add', raw);
      const added = await owners.add(v.name, v.publicKey);
      return { id: added.id, name: added.name };
    }
    case 'owner.remove': {
      const removed = await owners.remove(argsOf('owner.remove', raw).owner);
      return { id: removed.id, name: removed.name };
    }
    case 'audit.verify': {
      const v = argsOf('audit.verify', raw);
      return vault.audit.verify(v.against ? { against: v.against } : {});
    }
    case 'audit.head':
      argsOf('audit.head', raw);
      return vault.audit.keptHead();
  }
}
