// Every storage operation, once, with its rules (credential in use, alias collisions,
// last owner, generation bump, state seal, audit chain and anchor), over a Dialect that
// says how statements reach the engine. Each operation is one transaction or one atomic
// statement; writers that change the sealed state bump the generation and reseal in it.
//
// Lock order for PostgreSQL (SQLite serialises writers as a whole): the key check, the
// secret rows written, then the generation row; so no two writers deadlock.

import { AivaultError } from '../errors.ts';
import { anchorState, chainBatch, nextHead } from '../audit/chain.ts';
import type { Awaitable, Dialect, Statements } from './dialect.ts';
import { editGroups, parseJson, toAgent, toApproval, toAudit, toCapability, toCredential, toGrant, toMeta, toOverride, toOwner, toListings, toPolicy, toSecret, toVersion } from './rows.ts';
import { AUDIT_ANCHOR_KEY, SEALED_TABLES, STATE_SEAL_KEY, UNSEALED_KEY, UNSEALED_META, sealedQuery, tableDigest } from './state.ts';
import { AUDIT_GENESIS } from './types.ts';
import type {
  AgentRecord,
  ApprovalRecord,
  ApprovalStatus,
  AuditAppend,
  AuditFilter,
  AuditEnds,
  AuditHead,
  AuditOutcomeUpdate,
  AuditRecord,
  AuditSealer,
  BucketState,
  CapabilityPolicy,
  CapabilityRecord,
  CredentialRecord,
  EndpointOverride,
  FlowRecord,
  GrantRecord,
  OwnerRecord,
  Rekey,
  SealedToken,
  SecretFilter,
  SecretListing,
  SecretRecord,
  SecretVersionRecord,
  SecretWrite,
  StateReading,
  StateSeal,
  StateSealer,
  Storage,
  VaultMeta,
} from './types.ts';

/** Expired nonces are swept at most this often. */
const NONCE_PRUNE_MS = 60_000;
/** Lock keys (Dialect.lock): one chain writer at a time. */
const AUDIT_LOCK = 1;

/** A write transaction under way: whether it changed the sealed state (then it is resealed before it commits). */
interface Tx {
  s: Statements;
  changed: boolean;
}

const flag = (b: boolean): number => (b ? 1 : 0);

/**
 * A stored head the writer may extend the chain from: a position it could have written (the
 * MAC is anchorState's to judge). A seq below 1 would put the records it writes out of the
 * log's reach (`audit list` starts at 1).
 */
function parseHead(text: string | undefined, what: string): AuditHead | undefined {
  if (text === undefined) return undefined;
  const head = parseJson<AuditHead>(text, what);
  const sound = typeof head === 'object' && head !== null && Number.isSafeInteger(head.seq) && head.seq >= 1 && typeof head.hash === 'string' && (head.outcomes === undefined || (Number.isSafeInteger(head.outcomes) && head.outcomes >= 0));
  if (!sound) throw new AivaultError('VAULT_CORRUPTED', `the ${what} is not one aivault writes: the audit log was tampered with; nothing was written`);
  return head;
}

/** Whether `head` is behind `last` (a head the same writer committed before): fewer records, another last record, or fewer outcomes. */
function behind(head: AuditHead | undefined, last: AuditHead): boolean {
  if (head === undefined || head.seq < last.seq) return true;
  return head.seq === last.seq && (head.hash !== last.hash || (head.outcomes ?? 0) < (last.outcomes ?? 0));
}

export class StorageCore implements Storage {
  readonly engine: string;
  readonly #d: Dialect;
  readonly #log: string;
  readonly #auditMeta: string;
  /** After a text column in ORDER BY: byte order, whatever the database's collation (see Dialect.byteOrder). */
  readonly #b: string;
  #sealer: StateSealer | undefined;
  /** The audit head this instance last committed (as stored, and read), both copies of it. */
  #wroteHead: { text: string; head: AuditHead } | undefined;
  #lastNoncePrune = 0;

  protected constructor(dialect: Dialect) {
    this.#d = dialect;
    this.engine = dialect.engine;
    this.#log = dialect.auditTable.log;
    this.#auditMeta = dialect.auditTable.meta;
    this.#b = dialect.byteOrder;
  }

  /** A write transaction; resealed before it commits when it changed the sealed state. */
  #write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.#d.transaction(async (s) => {
      const tx: Tx = { s, changed: false };
      const result = await fn(tx);
      if (tx.changed) await this.#reseal(s);
      return result;
    });
  }

  /**
   * Every change to the sealed state bumps the generation (in PostgreSQL this also queues
   * writers on its row), and is resealed in its transaction.
   */
  async #bump(tx: Tx): Promise<void> {
    tx.changed = true;
    await tx.s.run("INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)");
  }

  /** A single-row insert whose unique violation means the name is taken. */
  async #insertUnique(s: Statements, sql: string, params: readonly unknown[], taken: () => AivaultError): Promise<void> {
    try {
      await s.run(sql, params);
    } catch (err) {
      if (this.#d.isUniqueViolation(err)) throw taken();
      throw err;
    }
  }

  async #one<T>(sql: string, params: readonly unknown[], map: (row: Record<string, unknown>) => T): Promise<T | undefined> {
    const row = await this.#d.read((s) => s.get(sql, params));
    return row ? map(row) : undefined;
  }

  async #many<T>(sql: string, params: readonly unknown[], map: (row: Record<string, unknown>) => T): Promise<T[]> {
    return (await this.#d.read((s) => s.all(sql, params))).map(map);
  }

  /** A transaction that bumps the generation and inserts one record whose key may be taken. */
  #create(sql: string, params: readonly unknown[], taken: () => AivaultError): Promise<void> {
    return this.#write(async (tx) => {
      await this.#bump(tx);
      await this.#insertUnique(tx.s, sql, params, taken);
    });
  }

  /**
   * A transaction that runs only if the vault is still at `expected`, the generation its caller
   * read before it read and checked what it now writes; CONCURRENT_MODIFICATION otherwise.
   */
  #writeAt<T>(expected: number, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.#write(async (tx) => {
      if ((await this.#generation(tx.s, this.#d.forUpdate)) !== expected) {
        throw new AivaultError('CONCURRENT_MODIFICATION', 'the vault changed while this change was checked; nothing was changed, run it again');
      }
      await this.#bump(tx);
      return fn(tx);
    });
  }

  /** A transaction that bumps the generation and runs one write; resolves to whether it changed a row. */
  #bumped(sql: string, params: readonly unknown[]): Promise<boolean> {
    return this.#write(async (tx) => {
      await this.#bump(tx);
      return (await tx.s.run(sql, params)) > 0;
    });
  }

  // --- the vault itself ---

  async #generation(s: Statements, lock = ''): Promise<number> {
    return Number((await s.get(`SELECT value FROM meta WHERE key = 'generation'${lock}`))?.value ?? 0);
  }

  generation(): Promise<number> {
    return this.#d.read((s) => this.#generation(s));
  }

  readMeta(): Promise<VaultMeta | undefined> {
    return this.#d.read(async (s) => toMeta(await s.all("SELECT key, value FROM meta WHERE key <> 'generation'")));
  }

  initialize(meta: VaultMeta): Promise<void> {
    return this.#write(async (tx) => {
      await this.#d.lockTable(tx.s, 'meta');
      const existing = await tx.s.get("SELECT count(*) AS n FROM meta WHERE key <> 'generation'");
      if (Number(existing?.n) > 0) throw new AivaultError('VAULT_ALREADY_INITIALIZED', 'this vault is already initialised');
      for (const [k, v] of [['vault_id', meta.vaultId], ['format_version', String(meta.formatVersion)], ['key_provider', meta.keyProvider], ['key_check', meta.keyCheck], ['created_at', meta.createdAt]]) {
        await tx.s.run('INSERT INTO meta (key, value) VALUES (?, ?)', [k, v]);
      }
      await this.#bump(tx);
    });
  }

  /** A writer sealing under a key the vault no longer uses (rotated by another process) is refused. */
  async #requireKeyCheck(s: Statements, keyCheck: string | undefined, lock: string): Promise<void> {
    if (keyCheck === undefined) return;
    // Locked: a rotation (which updates this row) cannot commit between the check and our write.
    const row = await s.get(`SELECT value FROM meta WHERE key = 'key_check'${lock}`);
    if (row?.value !== keyCheck) throw new AivaultError('VAULT_KEY_MISMATCH', 'the master key was rotated by another process; reopen the vault (restart the daemon) with the new key');
  }

  rekey(change: Rekey, expectedGeneration: number, expectedKeyCheck: string): Promise<void> {
    return this.#write(async (tx) => {
      // Key check first, then the generation (the lock order): writers then wait until we commit, and see the new key check.
      await this.#requireKeyCheck(tx.s, expectedKeyCheck, this.#d.forUpdate);
      if ((await this.#generation(tx.s, this.#d.forUpdate)) !== expectedGeneration) {
        throw new AivaultError('CONCURRENT_MODIFICATION', 'the vault changed during the rotation; nothing was changed, run it again');
      }
      const rewrapped = await this.#d.eachRow(
        tx.s,
        [['secret_id', 'text'], ['version', 'int'], ['wrapped_key', 'bytea']],
        change.versions.map((v) => [v.secretId, v.version, v.wrappedKey]),
        (v) => `UPDATE secret_versions AS t SET wrapped_key = v.wrapped_key FROM ${v} WHERE t.secret_id = v.secret_id AND t.version = v.version`,
      );
      if (rewrapped !== change.versions.length) throw new AivaultError('CONCURRENT_MODIFICATION', 'a secret version vanished during the rotation; nothing was changed');
      const total = Number((await tx.s.get('SELECT count(*) AS n FROM secret_versions'))?.n);
      if (total !== change.versions.length) throw new AivaultError('CONCURRENT_MODIFICATION', 'secret versions appeared during the rotation; nothing was changed');
      for (const [k, v] of [['key_provider', change.keyProvider], ['key_check', change.keyCheck], ['keyring', change.keyring]] as const) await this.#putMeta(tx.s, 'meta', k, v);
      // Sealed under the old cache key: unreadable now, and refreshed on demand.
      await tx.s.run('DELETE FROM oauth_tokens');
      await this.#bump(tx);
    });
  }

  useStateSealer(sealer: StateSealer): void {
    this.#sealer = sealer;
  }

  async #digests(s: Statements): Promise<Record<string, string>> {
    const tables: Record<string, string> = {};
    for (const table of SEALED_TABLES) tables[table] = tableDigest(await s.all(sealedQuery(table, (i) => `?${i}`), table === 'meta' ? UNSEALED_META : []));
    return tables;
  }

  /** Writes the seal over the state as this transaction leaves it (none without a sealer: verify then reports it stale). */
  async #reseal(s: Statements): Promise<void> {
    if (!this.#sealer) return;
    const tables = await this.#digests(s);
    await this.#putMeta(s, 'meta', STATE_SEAL_KEY, JSON.stringify({ tables, mac: this.#sealer.mac(tables) } satisfies StateSeal));
  }

  async sealState(): Promise<void> {
    if (!this.#sealer) throw new AivaultError('INTERNAL_ERROR', 'sealing the state needs the unlocked vault');
    await this.#write(async (tx) => {
      await this.#bump(tx);
      await tx.s.run('DELETE FROM meta WHERE key = ?', [UNSEALED_KEY]);
    });
  }

  readState(): Promise<StateReading> {
    // One snapshot: the seal and the tables as one writer left them.
    return this.#d.snapshot(async (s) => ({
      seal: await this.#metaJson<StateSeal>(s, 'meta', STATE_SEAL_KEY, 'state seal'),
      current: await this.#digests(s),
      unsealed: (await s.get('SELECT 1 AS x FROM meta WHERE key = ?', [UNSEALED_KEY])) !== undefined,
      anchored: (await s.get('SELECT 1 AS x FROM meta WHERE key = ?', [AUDIT_ANCHOR_KEY])) !== undefined,
    }));
  }

  integrityCheck(): Promise<string[]> {
    return this.#d.integrityCheck();
  }

  close(): Promise<void> {
    return this.#d.close();
  }

  // --- secrets ---

  /** The WHERE clause of a secrets listing (table alias `s`), and its parameters. */
  #secretsWhere(filter: SecretFilter): [string, unknown[]] {
    return [
      '(CAST(?1 AS TEXT) IS NULL OR s.scope = ?1) AND (CAST(?2 AS TEXT) IS NULL OR s.name = ?2) AND (CAST(?3 AS TEXT) IS NULL OR s.pinned_provider = ?3)',
      [filter.scope ?? null, filter.name ?? null, filter.pinnedProvider ?? null],
    ];
  }

  listSecrets(filter: SecretFilter = {}): Promise<SecretRecord[]> {
    const [where, params] = this.#secretsWhere(filter);
    return this.#many(`SELECT s.* FROM secrets s WHERE ${where} ORDER BY s.name${this.#b}, s.scope${this.#b}`, params, toSecret);
  }

  async listSecretsWithVersions(filter: SecretFilter = {}): Promise<SecretListing[]> {
    const [where, params] = this.#secretsWhere(filter);
    const rows = await this.#d.read((s) =>
      s.all(
        `SELECT s.*, v.version AS v_version, v.fingerprint AS v_fingerprint, v.created_at AS v_created_at
         FROM secrets s LEFT JOIN secret_versions v ON v.secret_id = s.id
         WHERE ${where} ORDER BY s.name${this.#b}, s.scope${this.#b}, v.version`,
        params,
      ),
    );
    return toListings(rows);
  }

  getSecret(id: string): Promise<SecretRecord | undefined> {
    return this.#one('SELECT * FROM secrets WHERE id = ?', [id], toSecret);
  }

  listSecretVersions(secretId: string): Promise<SecretVersionRecord[]> {
    return this.#many('SELECT * FROM secret_versions WHERE secret_id = ? ORDER BY version', [secretId], toVersion);
  }

  getSecretVersion(secretId: string, version: number): Promise<SecretVersionRecord | undefined> {
    return this.#one('SELECT * FROM secret_versions WHERE secret_id = ? AND version = ?', [secretId, version], toVersion);
  }

  createSecret(secret: SecretRecord, first: SecretVersionRecord, keyCheck?: string): Promise<void> {
    return this.writeSecrets([{ kind: 'create', secret, first }], keyCheck);
  }

  rotateSecret(secretId: string, expectedCurrent: number, next: SecretVersionRecord, updatedAt: string, keyCheck?: string): Promise<void> {
    return this.writeSecrets([{ kind: 'rotate', secretId, expectedCurrent, next, updatedAt }], keyCheck);
  }

  writeSecrets(writes: readonly SecretWrite[], keyCheck?: string): Promise<void> {
    return this.#write(async (tx) => {
      await this.#requireKeyCheck(tx.s, keyCheck, this.#d.forShare);
      // The rows rotated are locked before the generation (the lock order); each is checked in turn below,
      // so the batch fails with the error its first failing write would give alone.
      if (this.#d.forUpdate) for (const w of writes) if (w.kind === 'rotate') await tx.s.get(`SELECT 1 AS x FROM secrets WHERE id = ?${this.#d.forUpdate}`, [w.secretId]);
      await this.#bump(tx);
      for (const w of writes) {
        if (w.kind === 'create') await this.#insertSecret(tx.s, w.secret, w.first);
        else await this.#rotate(tx.s, w.secretId, w.expectedCurrent, w.next, w.updatedAt, w.allowShort);
      }
    });
  }

  async #insertSecret(s: Statements, secret: SecretRecord, first: SecretVersionRecord): Promise<void> {
    await this.#insertUnique(
      s,
      `INSERT INTO secrets (id, name, scope, description, pinned_provider, current_version, created_at, updated_at, aliases, allow_short)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [secret.id, secret.name, secret.scope, secret.description, secret.pinnedProvider, secret.currentVersion, secret.createdAt, secret.updatedAt, JSON.stringify(secret.aliases), flag(secret.allowShort)],
      () => new AivaultError('SECRET_ALREADY_EXISTS', `a secret named ${secret.name} already exists in scope ${secret.scope}`),
    );
    await this.#requireFreeAliases(s, secret.id, secret.scope, secret.aliases);
    await this.#insertVersion(s, first);
  }

  #insertVersion(s: Statements, v: SecretVersionRecord): Awaitable<number> {
    return s.run('INSERT INTO secret_versions (secret_id, version, wrapped_key, ciphertext, fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
      v.secretId, v.version, v.wrappedKey, v.ciphertext, v.fingerprint, v.createdAt,
    ]);
  }

  /** Locks the secret's row for the rest of the transaction and checks its current version. */
  async #requireCurrent(s: Statements, secretId: string, expectedCurrent: number): Promise<void> {
    const row = await s.get(`SELECT current_version FROM secrets WHERE id = ?${this.#d.forUpdate}`, [secretId]);
    if (!row) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${secretId}`);
    if (Number(row.current_version) !== expectedCurrent) throw new AivaultError('CONCURRENT_MODIFICATION', 'the secret changed while this command ran (another writer won); retry');
  }

  async #rotate(s: Statements, secretId: string, expectedCurrent: number, next: SecretVersionRecord, updatedAt: string, allowShort: boolean | undefined): Promise<void> {
    await this.#requireCurrent(s, secretId, expectedCurrent);
    await this.#insertVersion(s, next);
    await s.run('UPDATE secrets SET current_version = ?, updated_at = ? WHERE id = ?', [next.version, updatedAt, secretId]);
    if (allowShort !== undefined) await s.run('UPDATE secrets SET allow_short = ? WHERE id = ?', [flag(allowShort), secretId]);
    // Keep exactly the new version and the one it replaces (for rollback).
    await s.run('DELETE FROM secret_versions WHERE secret_id = ? AND version NOT IN (?, ?)', [secretId, next.version, expectedCurrent]);
  }

  setCurrentVersion(secretId: string, expectedCurrent: number, version: number, updatedAt: string): Promise<void> {
    return this.#write(async (tx) => {
      await this.#requireCurrent(tx.s, secretId, expectedCurrent);
      await this.#bump(tx);
      if (!(await tx.s.get('SELECT 1 AS x FROM secret_versions WHERE secret_id = ? AND version = ?', [secretId, version]))) {
        throw new AivaultError('NO_PREVIOUS_VERSION', `version ${version} of this secret is not kept`);
      }
      await tx.s.run('UPDATE secrets SET current_version = ?, updated_at = ? WHERE id = ?', [version, updatedAt, secretId]);
    });
  }

  deleteSecret(secretId: string): Promise<boolean> {
    return this.#bumped('DELETE FROM secrets WHERE id = ?', [secretId]);
  }

  async #requireFreeAliases(s: Statements, secretId: string, scope: string, aliases: readonly string[]): Promise<void> {
    if (aliases.length === 0) return;
    // Alias changes within a scope are serialised: two writers cannot both take one alias.
    await this.#d.lock(s, `aliases:${scope}`);
    for (const o of await s.all('SELECT name, aliases FROM secrets WHERE scope = ? AND id <> ?', [scope, secretId])) {
      const taken = parseJson<string[]>(o.aliases, 'secret aliases').find((a) => aliases.includes(a));
      if (taken) throw new AivaultError('SECRET_ALREADY_EXISTS', `the alias ${taken} already names ${o.name as string} in scope ${scope}`);
    }
  }

  setSecretGroup(secretId: string, group: string, attached: boolean, updatedAt: string): Promise<boolean> {
    return this.#write(async (tx) => {
      const row = await tx.s.get(`SELECT groups FROM secrets WHERE id = ?${this.#d.forUpdate}`, [secretId]);
      if (!row) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${secretId}`);
      const next = editGroups(parseJson<string[]>(row.groups, 'secret groups'), group, attached);
      if (!next) return false;
      await this.#bump(tx);
      await tx.s.run('UPDATE secrets SET groups = ?, updated_at = ? WHERE id = ?', [JSON.stringify(next), updatedAt, secretId]);
      return true;
    });
  }

  updateSecretIdentity(secretId: string, change: { name?: string; aliases?: string[]; allowShort?: boolean }, updatedAt: string): Promise<void> {
    return this.#write(async (tx) => {
      const row = await tx.s.get(`SELECT scope FROM secrets WHERE id = ?${this.#d.forUpdate}`, [secretId]);
      if (!row) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${secretId}`);
      const scope = row.scope as string;
      await this.#bump(tx);
      if (change.allowShort !== undefined) await tx.s.run('UPDATE secrets SET allow_short = ?, updated_at = ? WHERE id = ?', [flag(change.allowShort), updatedAt, secretId]);
      if (change.aliases) {
        await this.#requireFreeAliases(tx.s, secretId, scope, change.aliases);
        await tx.s.run('UPDATE secrets SET aliases = ?, updated_at = ? WHERE id = ?', [JSON.stringify(change.aliases), updatedAt, secretId]);
      }
      if (change.name !== undefined) {
        await this.#insertUnique(tx.s, 'UPDATE secrets SET name = ?, updated_at = ? WHERE id = ?', [change.name, updatedAt, secretId], () => new AivaultError('SECRET_ALREADY_EXISTS', `a secret named ${change.name} already exists in scope ${scope}`));
      }
    });
  }

  // --- definitions ---

  listCredentials(): Promise<CredentialRecord[]> {
    return this.#many(`SELECT * FROM credentials ORDER BY name${this.#b}`, [], toCredential);
  }

  getCredential(name: string): Promise<CredentialRecord | undefined> {
    return this.#one('SELECT * FROM credentials WHERE name = ?', [name], toCredential);
  }

  createCredential(c: CredentialRecord): Promise<void> {
    return this.#create(
      'INSERT INTO credentials (name, provider, auth, bindings, hosts, allow_http, allow_private_network, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [c.name, c.provider, JSON.stringify(c.auth), JSON.stringify(c.bindings), JSON.stringify(c.hosts), flag(c.allowHttp), flag(c.allowPrivateNetwork), c.createdAt],
      () => new AivaultError('CREDENTIAL_ALREADY_EXISTS', `a credential named ${c.name} already exists`),
    );
  }

  updateCredential(c: CredentialRecord, expectedGeneration: number): Promise<void> {
    return this.#writeAt(expectedGeneration, async (tx) => {
      const changed = await tx.s.run(
        'UPDATE credentials SET auth = ?, bindings = ?, hosts = ?, allow_http = ?, allow_private_network = ? WHERE name = ?',
        [JSON.stringify(c.auth), JSON.stringify(c.bindings), JSON.stringify(c.hosts), flag(c.allowHttp), flag(c.allowPrivateNetwork), c.name],
      );
      if (changed === 0) throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${c.name}`);
    });
  }

  deleteCredential(name: string): Promise<boolean> {
    return this.#write(async (tx) => {
      await this.#bump(tx);
      const users = await tx.s.all(`SELECT id FROM capabilities WHERE credential = ? ORDER BY id${this.#b}`, [name]);
      if (users.length > 0) throw new AivaultError('CREDENTIAL_IN_USE', `capabilities still use ${name}: ${users.map((u) => u.id as string).join(', ')}; delete them first`);
      return (await tx.s.run('DELETE FROM credentials WHERE name = ?', [name])) > 0;
    });
  }

  listCapabilities(): Promise<CapabilityRecord[]> {
    return this.#many(`SELECT * FROM capabilities ORDER BY id${this.#b}`, [], toCapability);
  }

  getCapability(id: string): Promise<CapabilityRecord | undefined> {
    return this.#one('SELECT * FROM capabilities WHERE id = ?', [id], toCapability);
  }

  createCapability(c: CapabilityRecord): Promise<void> {
    return this.#write(async (tx) => {
      await this.#bump(tx);
      // Held: the credential cannot be deleted under us before we commit.
      if (!(await tx.s.get(`SELECT 1 AS x FROM credentials WHERE name = ?${this.#d.forShare}`, [c.credential]))) {
        throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${c.credential}`);
      }
      await this.#insertUnique(
        tx.s,
        'INSERT INTO capabilities (id, provider, credential, hosts, methods, path_prefixes, limits, created_at, websocket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [c.id, c.provider, c.credential, JSON.stringify(c.hosts), JSON.stringify(c.methods), JSON.stringify(c.pathPrefixes), JSON.stringify(c.limits), c.createdAt, flag(c.websocket)],
        () => new AivaultError('CAPABILITY_ALREADY_EXISTS', `a capability ${c.id} already exists`),
      );
    });
  }

  updateCapability(c: CapabilityRecord, expectedGeneration: number): Promise<void> {
    return this.#writeAt(expectedGeneration, async (tx) => {
      const changed = await tx.s.run(
        'UPDATE capabilities SET credential = ?, hosts = ?, methods = ?, path_prefixes = ?, limits = ?, websocket = ? WHERE id = ?',
        [c.credential, JSON.stringify(c.hosts), JSON.stringify(c.methods), JSON.stringify(c.pathPrefixes), JSON.stringify(c.limits), flag(c.websocket), c.id],
      );
      if (changed === 0) throw new AivaultError('CAPABILITY_NOT_FOUND', `no capability "${c.id}"`);
    });
  }

  deleteCapability(id: string): Promise<boolean> {
    return this.#bumped('DELETE FROM capabilities WHERE id = ?', [id]);
  }

  getCapabilityPolicy(capability: string): Promise<CapabilityPolicy | undefined> {
    return this.#one('SELECT policy FROM capability_policies WHERE capability = ?', [capability], toPolicy);
  }

  async listCapabilityPolicies(): Promise<Map<string, CapabilityPolicy>> {
    return new Map(await this.#many('SELECT capability, policy FROM capability_policies', [], (r) => [r.capability as string, toPolicy(r)] as const));
  }

  async putCapabilityPolicy(capability: string, policy: CapabilityPolicy): Promise<void> {
    await this.#bumped('INSERT INTO capability_policies (capability, policy) VALUES (?, ?) ON CONFLICT (capability) DO UPDATE SET policy = excluded.policy', [capability, JSON.stringify(policy)]);
  }

  deleteCapabilityPolicy(capability: string): Promise<boolean> {
    return this.#bumped('DELETE FROM capability_policies WHERE capability = ?', [capability]);
  }

  listEndpointOverrides(): Promise<EndpointOverride[]> {
    return this.#many(`SELECT * FROM endpoint_overrides ORDER BY provider${this.#b}`, [], toOverride);
  }

  getEndpointOverride(provider: string): Promise<EndpointOverride | undefined> {
    return this.#one('SELECT * FROM endpoint_overrides WHERE provider = ?', [provider], toOverride);
  }

  async setEndpointOverride(o: EndpointOverride): Promise<void> {
    await this.#bumped(
      `INSERT INTO endpoint_overrides (provider, hosts, token_endpoint, allow_http, allow_private_network, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (provider) DO UPDATE SET hosts = excluded.hosts, token_endpoint = excluded.token_endpoint, allow_http = excluded.allow_http,
         allow_private_network = excluded.allow_private_network, created_at = excluded.created_at`,
      [o.provider, JSON.stringify(o.hosts), o.tokenEndpoint, flag(o.allowHttp), flag(o.allowPrivateNetwork), o.createdAt],
    );
  }

  deleteEndpointOverride(provider: string): Promise<boolean> {
    return this.#bumped('DELETE FROM endpoint_overrides WHERE provider = ?', [provider]);
  }

  putFlow(flow: FlowRecord): Promise<void> {
    return this.#create('INSERT INTO flows (id, definition, created_at) VALUES (?, ?, ?)', [flow.id, JSON.stringify(flow), flow.createdAt], () => new AivaultError('CAPABILITY_ALREADY_EXISTS', `a flow ${flow.id} already exists`));
  }

  getFlow(id: string): Promise<FlowRecord | undefined> {
    return this.#one('SELECT definition FROM flows WHERE id = ?', [id], (r) => parseJson<FlowRecord>(r.definition, 'flow'));
  }

  listFlows(): Promise<FlowRecord[]> {
    return this.#many(`SELECT definition FROM flows ORDER BY id${this.#b}`, [], (r) => parseJson<FlowRecord>(r.definition, 'flow'));
  }

  deleteFlow(id: string): Promise<boolean> {
    return this.#bumped('DELETE FROM flows WHERE id = ?', [id]);
  }

  // --- owners ---

  listOwners(): Promise<OwnerRecord[]> {
    return this.#many(`SELECT * FROM owners ORDER BY created_at${this.#b}, name${this.#b}`, [], toOwner);
  }

  getOwner(idOrName: string): Promise<OwnerRecord | undefined> {
    return this.#one('SELECT * FROM owners WHERE id = ?1 OR name = ?1', [idOrName], toOwner);
  }

  addOwner(o: OwnerRecord): Promise<void> {
    return this.#create('INSERT INTO owners (id, name, public_key, created_at) VALUES (?, ?, ?, ?)', [o.id, o.name, o.publicKey, o.createdAt], () => new AivaultError('OWNER_ALREADY_EXISTS', `an owner named ${o.name} already exists`));
  }

  removeOwner(id: string): Promise<boolean> {
    return this.#write(async (tx) => {
      // Checked with other writers kept out, so two removals at once cannot both pass.
      await this.#d.lockTable(tx.s, 'owners');
      const n = Number((await tx.s.get('SELECT count(*) AS n FROM owners'))?.n);
      if (n <= 1 && (await tx.s.get('SELECT 1 AS x FROM owners WHERE id = ?', [id]))) {
        throw new AivaultError('LAST_OWNER', 'the last owner cannot be removed; add another owner first');
      }
      await this.#bump(tx);
      return (await tx.s.run('DELETE FROM owners WHERE id = ?', [id])) > 0;
    });
  }

  // --- agents and grants ---

  createAgent(a: AgentRecord): Promise<void> {
    return this.#create(
      'INSERT INTO agents (id, name, token_hash, public_key, status, created_at, revoked_at, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [a.id, a.name, a.tokenHash, a.publicKey, a.status, a.createdAt, a.revokedAt, a.context],
      () => new AivaultError('AGENT_ALREADY_EXISTS', `an agent named ${a.name} already exists`),
    );
  }

  listAgents(): Promise<AgentRecord[]> {
    return this.#many(`SELECT * FROM agents ORDER BY name${this.#b}`, [], toAgent);
  }

  getAgent(idOrName: string): Promise<AgentRecord | undefined> {
    return this.#one('SELECT * FROM agents WHERE id = ?1 OR name = ?1', [idOrName], toAgent);
  }

  findAgentByTokenHash(hash: string): Promise<AgentRecord | undefined> {
    return this.#one('SELECT * FROM agents WHERE token_hash = ?', [hash], toAgent);
  }

  revokeAgent(id: string, at: string): Promise<boolean> {
    return this.#bumped("UPDATE agents SET status = 'revoked', revoked_at = ? WHERE id = ? AND status = 'active'", [at, id]);
  }

  setAgentContext(id: string, context: string | null): Promise<boolean> {
    return this.#bumped('UPDATE agents SET context = ? WHERE id = ?', [context, id]);
  }

  /** Writes (or replaces) every grant in one transaction: all of them, or none. */
  putGrants(grants: readonly GrantRecord[]): Promise<void> {
    return this.#write(async (tx) => {
      await this.#bump(tx);
      for (const g of grants) {
        await tx.s.run(
          `INSERT INTO grants (agent_id, capability, methods, rate_count, rate_period, expires_at, created_at, approve, first_approved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (agent_id, capability) DO UPDATE SET methods = excluded.methods, rate_count = excluded.rate_count, rate_period = excluded.rate_period,
             expires_at = excluded.expires_at, created_at = excluded.created_at, approve = excluded.approve, first_approved_at = excluded.first_approved_at`,
          [g.agentId, g.capability, g.methods ? JSON.stringify(g.methods) : null, g.rate?.count ?? null, g.rate?.periodMs ?? null, g.expiresAt, g.createdAt, g.approve, g.firstApprovedAt],
        );
      }
    });
  }

  getGrant(agentId: string, capability: string): Promise<GrantRecord | undefined> {
    return this.#one('SELECT * FROM grants WHERE agent_id = ? AND capability = ?', [agentId, capability], toGrant);
  }

  listGrants(agentId?: string): Promise<GrantRecord[]> {
    return this.#many(`SELECT * FROM grants WHERE CAST(?1 AS TEXT) IS NULL OR agent_id = ?1 ORDER BY agent_id${this.#b}, capability${this.#b}`, [agentId ?? null], toGrant);
  }

  /** Deletes the agent's grants for `capabilities` in one transaction; how many there were. */
  deleteGrants(agentId: string, capabilities: readonly string[]): Promise<number> {
    return this.#write(async (tx) => {
      await this.#bump(tx);
      let deleted = 0;
      for (const capability of capabilities) deleted += await tx.s.run('DELETE FROM grants WHERE agent_id = ? AND capability = ?', [agentId, capability]);
      return deleted;
    });
  }

  markGrantApproved(agentId: string, capability: string, at: string): Promise<boolean> {
    return this.#bumped('UPDATE grants SET first_approved_at = ? WHERE agent_id = ? AND capability = ? AND first_approved_at IS NULL', [at, agentId, capability]);
  }

  // --- approvals ---

  async putApproval(a: ApprovalRecord): Promise<void> {
    await this.#d.atomic((s) =>
      s.run('INSERT INTO approvals (id, agent_id, capability, method, host, path, status, requested_at, expires_at, decided_at, decided_by, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
        a.id, a.agentId, a.capability, a.method, a.host, a.path, a.status, a.requestedAt, a.expiresAt, a.decidedAt, a.decidedBy, a.details ? JSON.stringify(a.details) : null,
      ]),
    );
  }

  getApproval(id: string): Promise<ApprovalRecord | undefined> {
    return this.#one('SELECT * FROM approvals WHERE id = ?', [id], toApproval);
  }

  listApprovals(status?: ApprovalStatus): Promise<ApprovalRecord[]> {
    return this.#many(`SELECT * FROM approvals WHERE CAST(?1 AS TEXT) IS NULL OR status = ?1 ORDER BY requested_at${this.#b}, id${this.#b}`, [status ?? null], toApproval);
  }

  async decideApproval(id: string, status: Exclude<ApprovalStatus, 'pending'>, by: string, at: string): Promise<boolean> {
    return (await this.#d.atomic((s) => s.run("UPDATE approvals SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = 'pending'", [status, by, at, id]))) > 0;
  }

  // --- shared request state ---

  rememberNonce(key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.#d.atomic(async (s) => {
      if (now - this.#lastNoncePrune > NONCE_PRUNE_MS) {
        this.#lastNoncePrune = now;
        await s.run('DELETE FROM nonces WHERE expires_at <= ?', [now]);
      }
      // One statement, replacing only an expired record: two racing on one nonce cannot both record it.
      return (await s.run('INSERT INTO nonces (key, expires_at) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?3', [key, expiresAt, now])) > 0;
    });
  }

  updateBucket<T>(key: string, step: (state: BucketState | undefined) => { state: BucketState; result: T }): Promise<T> {
    return this.#d.transaction(async (s) => {
      // Where writers lock rows, the row must exist to be locked: an empty one (tokens NULL) is made first.
      if (this.#d.forUpdate) await s.run('INSERT INTO rate_buckets (key, tokens, at) VALUES (?, NULL, 0) ON CONFLICT (key) DO NOTHING', [key]);
      const row = await s.get(`SELECT tokens, at FROM rate_buckets WHERE key = ?${this.#d.forUpdate}`, [key]);
      const { state, result } = step(row?.tokens == null ? undefined : { tokens: Number(row.tokens), at: Number(row.at) });
      await s.run('INSERT INTO rate_buckets (key, tokens, at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at', [key, state.tokens, state.at]);
      return result;
    });
  }

  async acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    const sql = 'INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at WHERE leases.expires_at <= ?4 OR leases.holder = excluded.holder';
    return (await this.#d.atomic((s) => s.run(sql, [name, holder, now + ttlMs, now]))) > 0;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.#d.atomic((s) => s.run('DELETE FROM leases WHERE name = ? AND holder = ?', [name, holder]));
  }

  getOAuthToken(credential: string): Promise<SealedToken | undefined> {
    return this.#one('SELECT sealed, expires_at FROM oauth_tokens WHERE credential = ?', [credential], (r) => ({ sealed: r.sealed as Uint8Array, expiresAt: Number(r.expires_at) }));
  }

  async putOAuthToken(credential: string, token: SealedToken): Promise<void> {
    await this.#d.atomic((s) =>
      s.run('INSERT INTO oauth_tokens (credential, sealed, expires_at) VALUES (?, ?, ?) ON CONFLICT (credential) DO UPDATE SET sealed = excluded.sealed, expires_at = excluded.expires_at', [credential, token.sealed, token.expiresAt]),
    );
  }

  async deleteOAuthToken(credential: string): Promise<void> {
    await this.#d.atomic((s) => s.run('DELETE FROM oauth_tokens WHERE credential = ?', [credential]));
  }

  // --- the audit chain ---

  #table(which: 'meta' | 'audit'): string {
    return which === 'meta' ? 'meta' : this.#auditMeta;
  }

  async #metaText(s: Statements, which: 'meta' | 'audit', key: string): Promise<string | undefined> {
    return (await s.get(`SELECT value FROM ${this.#table(which)} WHERE key = ?`, [key]))?.value as string | undefined;
  }

  async #metaJson<T>(s: Statements, which: 'meta' | 'audit', key: string, what: string): Promise<T | undefined> {
    const text = await this.#metaText(s, which, key);
    return text === undefined ? undefined : parseJson<T>(text, what);
  }

  #putMeta(s: Statements, which: 'meta' | 'audit', key: string, value: string): Awaitable<number> {
    return s.run(`INSERT INTO ${this.#table(which)} (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [key, value]);
  }

  async #countOutcomes(s: Statements): Promise<number> {
    return Number((await s.get(`SELECT count(*) AS n FROM ${this.#log} WHERE outcome IS NOT NULL`))?.n);
  }

  /**
   * One chain for every writer: appenders are serialised, so each batch extends the head
   * the previous one (from any process) committed. The anchor, a copy of the head in the
   * vault's own storage, is written in the same transaction (SQLite commits each file on
   * its own: see anchorState for what a crash between the two leaves).
   */
  async writeAudit(appends: readonly AuditAppend[], outcomes: readonly AuditOutcomeUpdate[], sealer: AuditSealer): Promise<number[]> {
    let committed: { text: string; head: AuditHead } | undefined;
    const seqs = await this.#d.transaction(async (s) => {
      // Outcomes move the head too (it counts them): every batch takes the lock.
      await this.#d.lock(s, AUDIT_LOCK);
      const headText = await this.#metaText(s, 'audit', 'head');
      const anchorText = await this.#metaText(s, 'meta', AUDIT_ANCHOR_KEY);
      // Both copies exactly as this instance committed them (MAC'd under the key it holds):
      // nothing to check again. Anything else (another writer, a change on disk) is checked.
      const wrote = this.#wroteHead;
      const ours = wrote !== undefined && headText === wrote.text && anchorText === headText ? wrote.head : undefined;
      const head = ours ?? parseHead(headText, 'audit head');
      const anchor = ours ?? parseHead(anchorText, 'audit anchor');
      // Writers only ever move the head on: one behind what this instance committed means the
      // log (with its head and anchor, which the state seal does not cover) was put back.
      const state = ours ? 'same' : wrote !== undefined && behind(head, wrote.head) ? 'mismatch' : anchorState(sealer, head, anchor);
      const batch = chainBatch(sealer, head, anchor, appends, AUDIT_GENESIS, state);
      const columns = ['seq', 'at', 'actor', 'action', 'target', 'capability', 'method', 'host', 'path', 'decision', 'reason', 'prev_hash', 'hash', 'outcome', 'outcome_mac'] as const;
      await this.#d.eachRow(
        s,
        columns.map((c) => [c, c === 'seq' ? 'bigint' : 'text'] as const),
        batch.rows.map(({ seq, entry: e, prevHash, hash, outcome, outcomeMac }) => [seq, e.at, e.actor, e.action, e.target, e.capability, e.method, e.host, e.path, e.decision, e.reason, prevHash, hash, outcome ? JSON.stringify(outcome) : null, outcomeMac]),
        (v) => `INSERT INTO ${this.#log} (${columns.join(', ')}) SELECT ${columns.join(', ')} FROM ${v}`,
      );
      const written =
        batch.outcomes +
        (await this.#d.eachRow(
          s,
          [['seq', 'bigint'], ['outcome', 'text'], ['mac', 'text']],
          outcomes.map((o) => [o.seq, JSON.stringify(o.outcome), sealer.outcomeMac(o.seq, o.outcome)]),
          (v) => `UPDATE ${this.#log} AS a SET outcome = v.outcome, outcome_mac = v.mac FROM ${v} WHERE a.seq = v.seq AND a.outcome IS NULL`,
        ));
      if (batch.rows.length > 0 || written > 0) {
        const before = head?.outcomes ?? (head ? (await this.#countOutcomes(s)) - written : 0);
        const last = batch.rows.at(-1) ?? head ?? { seq: 0, hash: AUDIT_GENESIS };
        const after = nextHead(sealer, head, last, before + written, before);
        const text = JSON.stringify(after);
        await this.#putMeta(s, 'audit', 'head', text);
        await this.#putMeta(s, 'meta', AUDIT_ANCHOR_KEY, text);
        committed = { text, head: after };
      }
      return batch.seqs;
    });
    // Once committed: a rolled-back batch leaves the head this instance wrote before.
    if (committed) this.#wroteHead = committed;
    return seqs;
  }

  readAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const limit = filter.limit === undefined ? '' : ' LIMIT ?4';
    return this.#many(
      `SELECT * FROM ${this.#log} WHERE seq > ?1 AND (CAST(?2 AS TEXT) IS NULL OR capability = ?2) AND (CAST(?3 AS TEXT) IS NULL OR at >= ?3) ORDER BY seq${limit}`,
      [filter.afterSeq ?? 0, filter.capability ?? null, filter.since ?? null, ...(limit ? [filter.limit] : [])],
      toAudit,
    );
  }

  readAuditEnds(): Promise<AuditEnds> {
    return this.#d.snapshot(async (s) => ({
      head: await this.#metaJson<AuditHead>(s, 'audit', 'head', 'audit head'),
      anchor: await this.#metaJson<AuditHead>(s, 'meta', AUDIT_ANCHOR_KEY, 'audit anchor'),
    }));
  }

  countAuditOutcomes(): Promise<number> {
    return this.#d.read((s) => this.#countOutcomes(s));
  }
}
