// The records storage keeps, and the interfaces its engines implement. Each operation is
// atomic on its own: engines run it inside one transaction, so a crash leaves all of it or none.

export interface VaultMeta {
  /** Random id of this vault; salts key derivation so two vaults never share keys. */
  vaultId: string;
  formatVersion: number;
  /** JSON of the key provider's public configuration (never key material). */
  keyProvider: string;
  /** Base64 HMAC proving a candidate master key is this vault's key. */
  keyCheck: string;
  createdAt: string;
  /** The sealed keyring, once the master key has been rotated (see vault/keys.ts). */
  keyring?: string | null;
  /** A vault from before state seals, waiting for its first unlock to seal it. */
  unsealed?: boolean;
}

/** Everything a master-key rotation changes, written in one transaction. */
export interface Rekey {
  keyProvider: string;
  keyCheck: string;
  keyring: string;
  versions: Array<{ secretId: string; version: number; wrappedKey: Uint8Array }>;
}

export interface SecretRecord {
  id: string;
  name: string;
  scope: string;
  description: string | null;
  pinnedProvider: string | null;
  /** Other names people use for it (lower-case labels); unique within its scope. */
  aliases: string[];
  /** Groups (`W/G`) a global secret was attached to: it serves those groups' callers too. */
  groups: string[];
  /**
   * The owner acknowledged that the value may be shorter than the scrubber can protect
   * (MIN_SECRET_LENGTH): without this, a credential refuses to use a short value.
   */
  allowShort: boolean;
  currentVersion: number;
  createdAt: string;
  updatedAt: string;
}

export interface SecretVersionRecord {
  secretId: string;
  version: number;
  /** The per-version data key, sealed under the key-encryption key. */
  wrappedKey: Uint8Array;
  /** The secret value, sealed under the data key. */
  ciphertext: Uint8Array;
  /** Keyed, truncated digest of the value, for people to tell versions apart. */
  fingerprint: string;
  createdAt: string;
}

/** One write of a batch: a new secret with its first version, or a rotation (as rotateSecret). */
export type SecretWrite =
  | { kind: 'create'; secret: SecretRecord; first: SecretVersionRecord }
  | { kind: 'rotate'; secretId: string; expectedCurrent: number; next: SecretVersionRecord; updatedAt: string; allowShort?: boolean };

/** A version as listings show it: neither its key nor its ciphertext. */
export type SecretVersionMeta = Pick<SecretVersionRecord, 'version' | 'fingerprint' | 'createdAt'>;

/** A secret with its kept versions, oldest first. */
export interface SecretListing {
  secret: SecretRecord;
  versions: SecretVersionMeta[];
}

export interface SecretFilter {
  scope?: string;
  name?: string;
  pinnedProvider?: string;
}

/** A credential the owner defined with `credential create` (built-in ones are derived from pinned secrets). */
export interface CredentialRecord {
  name: string;
  provider: string;
  /** The auth strategy, in the registry's `auth` format. */
  auth: unknown;
  /** Template placeholder -> secret id. */
  bindings: Record<string, string>;
  hosts: string[];
  allowHttp: boolean;
  allowPrivateNetwork: boolean;
  createdAt: string;
}

export interface CapabilityLimits {
  timeoutMs?: number;
  connectTimeoutMs?: number;
  maxRequestBytes?: number;
  maxResponseBytes?: number;
}

/** A capability the owner defined with `capability create`. */
export interface CapabilityRecord {
  id: string;
  provider: string;
  credential: string;
  hosts: string[];
  methods: string[];
  pathPrefixes: string[];
  limits: CapabilityLimits;
  /** WebSocket upgrades (through the gateway) are allowed, besides plain requests. */
  websocket: boolean;
  createdAt: string;
}

/**
 * The owner's policy on one capability (built-in or custom), enforced for every caller:
 * a rate for the whole capability, body size limits, and literal strings redacted from
 * every response.
 */
export interface CapabilityPolicy {
  rateLimitPerMinute: number | null;
  maxRequestBodyBytes: number | null;
  maxResponseBodyBytes: number | null;
  responseBlock: string[];
  updatedAt: string;
}

/** Chain start: the prev_hash of record 1. */
export const AUDIT_GENESIS = '0'.repeat(64);

/** The hashed part of an audit record. Never a secret value, never a query value. */
export interface AuditEntry {
  at: string;
  actor: string;
  action: string;
  target: string | null;
  capability: string | null;
  method: string | null;
  host: string | null;
  path: string | null;
  decision: 'allow' | 'deny';
  reason: string | null;
}

/** What happened after an allowed action; MAC'd on its own and bound to the record's seq. */
export interface AuditOutcome {
  status?: number;
  bytesIn?: number;
  bytesOut?: number;
  durationMs?: number;
  error?: string;
}

export interface AuditRecord extends AuditEntry {
  seq: number;
  prevHash: string;
  hash: string;
  outcome: AuditOutcome | null;
  outcomeMac: string | null;
}

/** Where the chain ends after a commit: its last record and how many outcomes it holds. */
export interface HeadPosition {
  seq: number;
  hash: string;
  outcomes: number;
}

/**
 * The chain's head, MAC'd. Written to the audit log and, as the anchor, to the vault's own
 * storage in the same commit. `prev` is the head before that commit, so a commit that
 * reached only one of two files (SQLite commits each file on its own) is recognised.
 * Heads written before anchors existed have neither `outcomes` nor `prev`.
 */
export interface AuditHead {
  seq: number;
  hash: string;
  outcomes?: number;
  prev?: HeadPosition | null;
  mac: string;
}

/** Computes the chain values; holds the audit key so storage engines never see it. */
export interface AuditSealer {
  hash(prevHash: string, seq: number, entry: AuditEntry): string;
  outcomeMac(seq: number, outcome: AuditOutcome): string;
  headMac(head: Omit<AuditHead, 'mac'>): string;
}

/**
 * A keyed seal over the vault's state: a digest per table of what the owner controls
 * (secrets and their versions, credentials, capabilities, agents, grants, owners, ...).
 * Engines compute the digests; the sealer holds the key.
 */
export interface StateSealer {
  mac(tables: Readonly<Record<string, string>>): string;
}

export interface StateSeal {
  tables: Record<string, string>;
  mac: string;
}

/** What `checkState` finds: the stored seal, the state as it is now, and whether it awaits its first seal. */
export interface StateReading {
  seal: StateSeal | undefined;
  current: Record<string, string>;
  /** Carries the mark the seals' migration left on a vault from before seals. */
  unsealed: boolean;
  /** The audit anchor is present (a vault from before seals has none). */
  anchored: boolean;
}

export interface AuditAppend {
  entry: AuditEntry;
  outcome?: AuditOutcome;
}

export interface AuditOutcomeUpdate {
  seq: number;
  outcome: AuditOutcome;
}

export interface AuditFilter {
  afterSeq?: number;
  limit?: number;
  capability?: string;
  since?: string;
}

/** An OAuth access token sealed under the vault's cache key, with its expiry (ms since epoch). */
export interface SealedToken {
  sealed: Uint8Array;
  expiresAt: number;
}

/**
 * An owner's decision to send a built-in provider's traffic elsewhere (a gateway, a
 * regional endpoint, a local stand-in): original host -> replacement host[:port].
 */
export interface EndpointOverride {
  provider: string;
  hosts: Record<string, string>;
  tokenEndpoint: string | null;
  allowHttp: boolean;
  allowPrivateNetwork: boolean;
  createdAt: string;
}

/** An owner-defined HTTP exchange that sends and/or acquires a secret (see broker/flows.ts). */
export interface FlowRecord {
  id: string;
  mode: 'send_secret' | 'acquire_secret' | 'bidirectional_secret';
  target: string;
  method: string;
  visibility: 'passthrough' | 'shape_only';
  /** A built-in acquire kind (e.g. oauth_token_response.access_token), or null for storeField. */
  kind: string | null;
  storeField: string | null;
  storeAlias: string | null;
  overwrite: boolean;
  /** A custom credential whose secret is injected (send and bidirectional modes). */
  credential: string | null;
  allowHttp: boolean;
  allowPrivateNetwork: boolean;
  createdAt: string;
}

export interface OwnerRecord {
  id: string;
  name: string;
  /** Ed25519 public key (PEM); the private key stays with the owner. */
  publicKey: string;
  createdAt: string;
}

export interface AgentRecord {
  id: string;
  name: string;
  /** SHA-256 of the agent token; the token itself is shown once and never stored. */
  tokenHash: string | null;
  /** Ed25519 public key (PEM), for agents that sign their requests. */
  publicKey: string | null;
  status: 'active' | 'revoked';
  /** The execution context the owner bound the agent to (`workspace:W`, `group:W/G`); null: global. */
  context: string | null;
  createdAt: string;
  revokedAt: string | null;
}

export interface GrantRecord {
  agentId: string;
  capability: string;
  /** A subset of the capability's methods, or null for all of them. */
  methods: string[] | null;
  rate: { count: number; periodMs: number } | null;
  expiresAt: string | null;
  createdAt: string;
  /** Owner approval: for each invoke, for the first one only, or none. */
  approve: 'each' | 'first' | null;
  /** When the first invoke of an `approve: first` grant was approved. */
  firstApprovedAt: string | null;
}

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';

/** An invoke waiting for (or decided by) the owner. */
/**
 * What an approval shows of the request it would let go, minus aivault's own credential:
 * the owner decides on this, and the broker sends only a request with this digest.
 */
export interface ApprovalDetails {
  agentName: string;
  /** The URL as the agent addressed it, query values included. */
  url: string;
  /** The agent's headers as they will be sent (scrubbed). */
  headers: Array<[string, string]>;
  /** The body: length, SHA-256, and the start of it (scrubbed; base64 when not UTF-8). */
  body: { length: number; sha256: string; preview: string; encoding: 'utf8' | 'base64'; truncated: boolean } | null;
  /** SHA-256 over method, URL, headers and the whole body. */
  digest: string;
}

export interface ApprovalRecord {
  id: string;
  agentId: string;
  capability: string;
  method: string;
  host: string;
  path: string;
  status: ApprovalStatus;
  requestedAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  /** Absent on approvals recorded before aivault showed them. */
  details: ApprovalDetails | null;
}

/** A token bucket's state: tokens left as of `at` (ms since epoch). */
export interface BucketState {
  tokens: number;
  at: number;
}

// The storage engines' operations, one interface per concern. A consumer takes only the
// interfaces it uses, so a fake for a test implements a handful of methods, not all.

/** The vault itself: its meta, its master-key rotation, its state seal, its lifetime. */
export interface VaultStateStorage {
  readonly engine: string;
  /**
   * A counter bumped by every change to secrets, credentials or capabilities (in the same
   * transaction), so a broker can cache what it derived from them and notice any change,
   * made by any process, on its next request.
   */
  generation(): Promise<number>;
  readMeta(): Promise<VaultMeta | undefined>;
  /** Writes the vault's meta once; fails with VAULT_ALREADY_INITIALIZED after that. */
  initialize(meta: VaultMeta): Promise<void>;
  /**
   * Master-key rotation, all or nothing: new key provider, key check and keyring, every
   * data key rewrapped, sealed caches dropped. CONCURRENT_MODIFICATION (nothing written)
   * if anything changed since `expectedGeneration` or the key check is not `expectedKeyCheck`.
   */
  rekey(change: Rekey, expectedGeneration: number, expectedKeyCheck: string): Promise<void>;
  /** Every later change to the vault's state is sealed with `sealer`, in its own transaction. */
  useStateSealer(sealer: StateSealer): void;
  /** Seals the state as it is now (a new vault, or one from before seals) and clears the unsealed mark. */
  sealState(): Promise<void>;
  /** Reads the seal and the state's digests in one snapshot. */
  readState(): Promise<StateReading>;
  /** The engine's own check of its files or tables; empty when sound. */
  integrityCheck(): Promise<string[]>;
  close(): Promise<void>;
}

/** Secrets and their sealed versions. */
export interface SecretStorage {
  listSecrets(filter?: SecretFilter): Promise<SecretRecord[]>;
  /** The secrets `listSecrets` returns, each with its versions' metadata, in one statement (one consistent read). */
  listSecretsWithVersions(filter?: SecretFilter): Promise<SecretListing[]>;
  getSecret(id: string): Promise<SecretRecord | undefined>;
  listSecretVersions(secretId: string): Promise<SecretVersionRecord[]>;
  getSecretVersion(secretId: string, version: number): Promise<SecretVersionRecord | undefined>;
  /** Inserts the secret with its first version; SECRET_ALREADY_EXISTS if (name, scope) is taken. */
  createSecret(secret: SecretRecord, first: SecretVersionRecord, keyCheck?: string): Promise<void>;
  /**
   * Adds a version and makes it current, keeping the version that was current before it
   * and removing any older one. Fails if the secret's current version is no longer
   * `expectedCurrent` (a concurrent rotation won).
   */
  rotateSecret(secretId: string, expectedCurrent: number, next: SecretVersionRecord, updatedAt: string, keyCheck?: string): Promise<void>;
  /**
   * Creates and rotates several secrets in one transaction (a batch import): every write
   * lands, or none does, with the error the first failing one would have given alone.
   */
  writeSecrets(writes: readonly SecretWrite[], keyCheck?: string): Promise<void>;
  /** Makes `version` (which must exist) current. */
  setCurrentVersion(secretId: string, expectedCurrent: number, version: number, updatedAt: string): Promise<void>;
  /** Returns false when no such secret existed. */
  deleteSecret(secretId: string): Promise<boolean>;
  /**
   * Renames a secret and/or replaces its aliases. SECRET_ALREADY_EXISTS when the name, or
   * an alias, is taken by another secret of the same scope; SECRET_NOT_FOUND if it is gone.
   */
  updateSecretIdentity(secretId: string, change: { name?: string; aliases?: string[]; allowShort?: boolean }, updatedAt: string): Promise<void>;
  /** Adds or removes one group (`W/G`) of a secret's attachments; false when nothing changed. SECRET_NOT_FOUND if it is gone. */
  setSecretGroup(secretId: string, group: string, attached: boolean, updatedAt: string): Promise<boolean>;
}

/** What the owner defined beside secrets: credentials, capabilities and their policies, endpoint overrides, flows. */
export interface DefinitionStorage {
  listCredentials(): Promise<CredentialRecord[]>;
  getCredential(name: string): Promise<CredentialRecord | undefined>;
  /** CREDENTIAL_ALREADY_EXISTS when the name is taken. */
  createCredential(record: CredentialRecord): Promise<void>;
  /**
   * Replaces a credential's auth, bindings, hosts and opt-ins (its name, provider and creation
   * time stay), if the vault is still at `expectedGeneration` (what the caller checked the change
   * against, its capabilities included); CONCURRENT_MODIFICATION otherwise, CREDENTIAL_NOT_FOUND when gone.
   */
  updateCredential(record: CredentialRecord, expectedGeneration: number): Promise<void>;
  deleteCredential(name: string): Promise<boolean>;

  listCapabilities(): Promise<CapabilityRecord[]>;
  getCapability(id: string): Promise<CapabilityRecord | undefined>;
  /** CAPABILITY_ALREADY_EXISTS when the id is taken. */
  createCapability(record: CapabilityRecord): Promise<void>;
  /** As updateCredential, for a capability's credential, allow-lists, limits and websocket flag; CAPABILITY_NOT_FOUND when gone. */
  updateCapability(record: CapabilityRecord, expectedGeneration: number): Promise<void>;
  deleteCapability(id: string): Promise<boolean>;

  getCapabilityPolicy(capability: string): Promise<CapabilityPolicy | undefined>;
  /** Every capability's policy, by capability id. */
  listCapabilityPolicies(): Promise<Map<string, CapabilityPolicy>>;
  putCapabilityPolicy(capability: string, policy: CapabilityPolicy): Promise<void>;
  deleteCapabilityPolicy(capability: string): Promise<boolean>;

  listEndpointOverrides(): Promise<EndpointOverride[]>;
  getEndpointOverride(provider: string): Promise<EndpointOverride | undefined>;
  setEndpointOverride(override: EndpointOverride): Promise<void>;
  deleteEndpointOverride(provider: string): Promise<boolean>;

  putFlow(flow: FlowRecord): Promise<void>;
  getFlow(id: string): Promise<FlowRecord | undefined>;
  listFlows(): Promise<FlowRecord[]>;
  deleteFlow(id: string): Promise<boolean>;
}

/** Agents and what they are granted. */
export interface AgentStorage {
  createAgent(agent: AgentRecord): Promise<void>;
  listAgents(): Promise<AgentRecord[]>;
  getAgent(idOrName: string): Promise<AgentRecord | undefined>;
  findAgentByTokenHash(hash: string): Promise<AgentRecord | undefined>;
  revokeAgent(id: string, at: string): Promise<boolean>;
  /** Binds an agent to an execution context (null: global); false when there is no such agent. */
  setAgentContext(id: string, context: string | null): Promise<boolean>;
  /** Writes (or replaces) several grants in one transaction: all of them, or none. */
  putGrants(grants: readonly GrantRecord[]): Promise<void>;
  getGrant(agentId: string, capability: string): Promise<GrantRecord | undefined>;
  listGrants(agentId?: string): Promise<GrantRecord[]>;
  /** Deletes the agent's grants for `capabilities` in one transaction; how many there were. */
  deleteGrants(agentId: string, capabilities: readonly string[]): Promise<number>;
  /** Records the first approval of an `approve: first` grant (false when the grant is gone). */
  markGrantApproved(agentId: string, capability: string, at: string): Promise<boolean>;
}

/** The owners' public keys. */
export interface OwnerStorage {
  listOwners(): Promise<OwnerRecord[]>;
  getOwner(idOrName: string): Promise<OwnerRecord | undefined>;
  addOwner(owner: OwnerRecord): Promise<void>;
  /** LAST_OWNER when it would leave the vault without an owner. */
  removeOwner(id: string): Promise<boolean>;
}

/** Invokes waiting for, or decided by, the owner. */
export interface ApprovalStorage {
  putApproval(approval: ApprovalRecord): Promise<void>;
  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  listApprovals(status?: ApprovalStatus): Promise<ApprovalRecord[]>;
  /** Decides a pending approval; false when it was no longer pending (someone decided first). */
  decideApproval(id: string, status: Exclude<ApprovalStatus, 'pending'>, by: string, at: string): Promise<boolean>;
}

/**
 * Shared request state, so several daemons on one database act as one. Each is one
 * atomic step: a nonce is recorded once (false: already used and unexpired); a bucket is
 * read, changed by `step`, and written back with no other writer in between; a lease is
 * held by one holder at a time until it expires or is released; an OAuth token is cached
 * sealed, for every replica to reuse.
 */
export interface SharedStateStorage {
  rememberNonce(key: string, expiresAt: number, now: number): Promise<boolean>;
  updateBucket<T>(key: string, step: (state: BucketState | undefined) => { state: BucketState; result: T }): Promise<T>;
  acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean>;
  releaseLease(name: string, holder: string): Promise<void>;
  getOAuthToken(credential: string): Promise<SealedToken | undefined>;
  putOAuthToken(credential: string, token: SealedToken): Promise<void>;
  deleteOAuthToken(credential: string): Promise<void>;
}

/** The audit log's head and its anchor, as one read sees them. */
export interface AuditEnds {
  head: AuditHead | undefined;
  anchor: AuditHead | undefined;
}

/** The audit chain, its head and its anchor. */
export interface AuditStorage {
  /**
   * Appends records to the chain and records outcomes, all in one transaction: reads the
   * head, extends it with `sealer`, stores the new head. Returns the appended records' seqs.
   */
  writeAudit(appends: readonly AuditAppend[], outcomes: readonly AuditOutcomeUpdate[], sealer: AuditSealer): Promise<number[]>;
  readAudit(filter?: AuditFilter): Promise<AuditRecord[]>;
  /**
   * The log's head and its anchor (the copy kept in the vault's own storage, vault.db,
   * written with it), read together: one commit never shows in one and not the other.
   */
  readAuditEnds(): Promise<AuditEnds>;
  /** How many records hold an outcome (for heads written before they counted them). */
  countAuditOutcomes(): Promise<number>;
}

/** Everything an engine implements. Each method is atomic on its own. */
export interface Storage extends VaultStateStorage, SecretStorage, DefinitionStorage, AgentStorage, OwnerStorage, ApprovalStorage, SharedStateStorage, AuditStorage {}
