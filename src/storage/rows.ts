// Stored rows -> records, shared by both engines: they use the same column names and
// store JSON as text and flags as 0/1, so a record reads the same from either.

import { AivaultError } from '../errors.ts';
import type { AgentRecord, ApprovalDetails, ApprovalRecord, ApprovalStatus, AuditOutcome, AuditRecord, CapabilityPolicy, CapabilityRecord, CredentialRecord, EndpointOverride, GrantRecord, OwnerRecord, SecretListing, SecretRecord, SecretVersionRecord, VaultMeta } from './types.ts';

export type Row = Record<string, unknown>;

/** The vault's meta rows (key, value); undefined when there are none. */
export function toMeta(rows: readonly Row[]): VaultMeta | undefined {
  if (rows.length === 0) return undefined;
  const map = new Map(rows.map((r) => [r.key as string, r.value as string]));
  const get = (k: string): string => {
    const v = map.get(k);
    if (v === undefined) throw new AivaultError('VAULT_CORRUPTED', `the vault's metadata lacks "${k}"`);
    return v;
  };
  return { vaultId: get('vault_id'), formatVersion: Number(get('format_version')), keyProvider: get('key_provider'), keyCheck: get('key_check'), createdAt: get('created_at'), keyring: map.get('keyring') ?? null, ...(map.has('unsealed') ? { unsealed: true } : {}) };
}

/** A secret's group list with `group` added or removed; undefined when that changes nothing. */
export function editGroups(groups: readonly string[], group: string, attached: boolean): string[] | undefined {
  if (groups.includes(group) === attached) return undefined;
  return attached ? [...groups, group].sort() : groups.filter((g) => g !== group);
}

export function toSecret(row: Row): SecretRecord {
  return {
    id: row.id as string,
    name: row.name as string,
    scope: row.scope as string,
    description: (row.description as string | null) ?? null,
    pinnedProvider: (row.pinned_provider as string | null) ?? null,
    aliases: row.aliases == null ? [] : parseJson<string[]>(row.aliases, 'secret aliases'),
    groups: row.groups == null ? [] : parseJson<string[]>(row.groups, 'secret groups'),
    allowShort: Number(row.allow_short ?? 0) === 1,
    currentVersion: Number(row.current_version),
    createdAt: row.created_at as string,
    updatedAt: row.updated_at as string,
  };
}

export function toVersion(row: Row): SecretVersionRecord {
  return {
    secretId: row.secret_id as string,
    version: Number(row.version),
    wrappedKey: row.wrapped_key as Uint8Array,
    ciphertext: row.ciphertext as Uint8Array,
    fingerprint: row.fingerprint as string,
    createdAt: row.created_at as string,
  };
}

/**
 * Secrets joined with their versions' metadata (`v_`-prefixed columns, NULL for a secret
 * without versions), the rows of one secret next to each other, into one listing each.
 */
export function toListings(rows: readonly Row[]): SecretListing[] {
  const out: SecretListing[] = [];
  for (const row of rows) {
    if (out.at(-1)?.secret.id !== row.id) out.push({ secret: toSecret(row), versions: [] });
    if (row.v_version != null) out.at(-1)!.versions.push({ version: Number(row.v_version), fingerprint: row.v_fingerprint as string, createdAt: row.v_created_at as string });
  }
  return out;
}

export function toPolicy(row: Row): CapabilityPolicy {
  return parseJson<CapabilityPolicy>(row.policy, 'capability policy');
}

export function parseJson<T>(text: unknown, what: string): T {
  try {
    return JSON.parse(String(text)) as T;
  } catch {
    throw new AivaultError('VAULT_CORRUPTED', `a stored ${what} is not valid JSON`);
  }
}

export function toCredential(row: Row): CredentialRecord {
  return {
    name: row.name as string,
    provider: row.provider as string,
    auth: parseJson(row.auth, 'credential auth'),
    bindings: parseJson(row.bindings, 'credential binding'),
    hosts: parseJson(row.hosts, 'credential host list'),
    allowHttp: Number(row.allow_http) === 1,
    allowPrivateNetwork: Number(row.allow_private_network) === 1,
    createdAt: row.created_at as string,
  };
}

export function toCapability(row: Row): CapabilityRecord {
  return {
    id: row.id as string,
    provider: row.provider as string,
    credential: row.credential as string,
    hosts: parseJson(row.hosts, 'capability host list'),
    methods: parseJson(row.methods, 'capability method list'),
    pathPrefixes: parseJson(row.path_prefixes, 'capability path list'),
    limits: parseJson(row.limits, 'capability limits'),
    websocket: Number(row.websocket) === 1,
    createdAt: row.created_at as string,
  };
}

export function toAudit(row: Row): AuditRecord {
  return {
    seq: Number(row.seq),
    at: row.at as string,
    actor: row.actor as string,
    action: row.action as string,
    target: (row.target as string | null) ?? null,
    capability: (row.capability as string | null) ?? null,
    method: (row.method as string | null) ?? null,
    host: (row.host as string | null) ?? null,
    path: (row.path as string | null) ?? null,
    decision: row.decision as 'allow' | 'deny',
    reason: (row.reason as string | null) ?? null,
    prevHash: row.prev_hash as string,
    hash: row.hash as string,
    outcome: row.outcome == null ? null : parseJson<AuditOutcome>(row.outcome, 'audit outcome'),
    outcomeMac: (row.outcome_mac as string | null) ?? null,
  };
}

export function toOwner(row: Row): OwnerRecord {
  return { id: row.id as string, name: row.name as string, publicKey: row.public_key as string, createdAt: row.created_at as string };
}

export function toAgent(row: Row): AgentRecord {
  return {
    id: row.id as string,
    name: row.name as string,
    tokenHash: (row.token_hash as string | null) ?? null,
    publicKey: (row.public_key as string | null) ?? null,
    status: row.status === 'active' ? 'active' : 'revoked',
    context: (row.context as string | null) ?? null,
    createdAt: row.created_at as string,
    revokedAt: (row.revoked_at as string | null) ?? null,
  };
}

export function toGrant(row: Row): GrantRecord {
  return {
    agentId: row.agent_id as string,
    capability: row.capability as string,
    methods: row.methods == null ? null : parseJson<string[]>(row.methods, 'grant methods'),
    rate: row.rate_count == null ? null : { count: Number(row.rate_count), periodMs: Number(row.rate_period) },
    expiresAt: (row.expires_at as string | null) ?? null,
    createdAt: row.created_at as string,
    approve: (row.approve as 'each' | 'first' | null) ?? null,
    firstApprovedAt: (row.first_approved_at as string | null) ?? null,
  };
}

export function toApproval(row: Row): ApprovalRecord {
  return {
    id: row.id as string,
    agentId: row.agent_id as string,
    capability: row.capability as string,
    method: row.method as string,
    host: row.host as string,
    path: row.path as string,
    status: row.status as ApprovalStatus,
    requestedAt: row.requested_at as string,
    expiresAt: row.expires_at as string,
    decidedAt: (row.decided_at as string | null) ?? null,
    decidedBy: (row.decided_by as string | null) ?? null,
    details: row.details == null ? null : parseJson<ApprovalDetails>(row.details, 'approval details'),
  };
}

export function toOverride(row: Row): EndpointOverride {
  return {
    provider: row.provider as string,
    hosts: parseJson(row.hosts, 'endpoint override'),
    tokenEndpoint: (row.token_endpoint as string | null) ?? null,
    allowHttp: Number(row.allow_http) === 1,
    allowPrivateNetwork: Number(row.allow_private_network) === 1,
    createdAt: row.created_at as string,
  };
}
