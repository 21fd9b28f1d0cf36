// The embedded engine: one SQLite file through node:sqlite (no native addon).
// WAL with synchronous=FULL: an acknowledged write survives a crash or power loss,
// and readers in other processes never block the writer.

import { closeSync, existsSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { AivaultError } from '../errors.ts';
import { AUDIT_GENESIS } from './types.ts';
import { chainBatch, nextHead } from '../audit/chain.ts';
import { AUDIT_ANCHOR_KEY, SEALED_TABLES, STATE_SEAL_KEY, UNSEALED_KEY, UNSEALED_META, sealedQuery, tableDigest } from './state.ts';
import { editGroups, parseJson, toMeta, toAgent, toApproval, toAudit, toCapability, toCredential, toGrant, toOverride, toOwner, toSecret, toVersion } from './rows.ts';
import type {
  AgentRecord,
  AuditAppend,
  AuditFilter,
  AuditHead,
  AuditOutcome,
  AuditOutcomeUpdate,
  AuditRecord,
  AuditSealer,
  CapabilityPolicy,
  CapabilityRecord,
  CredentialRecord,
  EndpointOverride,
  FlowRecord,
  GrantRecord,
  ApprovalRecord,
  ApprovalStatus,
  Rekey,
  BucketState,
  OwnerRecord,
  SecretFilter,
  SecretRecord,
  SealedToken,
  SecretVersionRecord,
  SecretWrite,
  StateReading,
  StateSeal,
  StateSealer,
  Storage,
  VaultMeta,
} from './types.ts';

/** Schema version this code reads and writes (PRAGMA user_version). */
export const SQLITE_SCHEMA_VERSION = 15;

const BUSY_TIMEOUT_MS = 15_000;
/** Expired nonces are swept at most this often. */
const NONCE_PRUNE_MS = 60_000;

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_CORRUPT = 11;
const SQLITE_CANTOPEN = 14;
const SQLITE_CONSTRAINT = 19;
const SQLITE_NOTADB = 26;

/**
 * The audit log lives in a file of its own (audit.db, attached as `audit`): its constant
 * appends then never disturb the pages and write-ahead log the broker reads secrets and
 * capabilities from, and never hold up a secret's write.
 */
export const AUDIT_FILE = 'audit.db';
const AUDIT_SCHEMA_VERSION = 1;
const AUDIT_SCHEMA = `
  CREATE TABLE audit.audit_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    capability  TEXT,
    method      TEXT,
    host        TEXT,
    path        TEXT,
    decision    TEXT NOT NULL,
    reason      TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    outcome     TEXT,
    outcome_mac TEXT
  ) STRICT;
  CREATE INDEX audit.audit_log_capability ON audit_log (capability, seq);
  CREATE TABLE audit.audit_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
`;

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
  CREATE TABLE secrets (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    scope           TEXT NOT NULL,
    description     TEXT,
    pinned_provider TEXT,
    current_version INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (name, scope)
  ) STRICT;
  CREATE TABLE secret_versions (
    secret_id   TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (secret_id, version)
  ) STRICT;
  `,
  `
  CREATE TABLE credentials (
    name                  TEXT PRIMARY KEY,
    provider              TEXT NOT NULL,
    auth                  TEXT NOT NULL,
    bindings              TEXT NOT NULL,
    hosts                 TEXT NOT NULL,
    allow_http            INTEGER NOT NULL,
    allow_private_network INTEGER NOT NULL,
    created_at            TEXT NOT NULL
  ) STRICT;
  CREATE TABLE capabilities (
    id            TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    credential    TEXT NOT NULL REFERENCES credentials(name),
    hosts         TEXT NOT NULL,
    methods       TEXT NOT NULL,
    path_prefixes TEXT NOT NULL,
    limits        TEXT NOT NULL,
    created_at    TEXT NOT NULL
  ) STRICT;
  `,
  `
  CREATE TABLE oauth_tokens (
    credential TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
  `,
  `
  CREATE TABLE endpoint_overrides (
    provider              TEXT PRIMARY KEY,
    hosts                 TEXT NOT NULL,
    token_endpoint        TEXT,
    allow_http            INTEGER NOT NULL,
    allow_private_network INTEGER NOT NULL,
    created_at            TEXT NOT NULL
  ) STRICT;
  `,
  `
  CREATE TABLE agents (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    token_hash TEXT UNIQUE,
    public_key TEXT,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
  ) STRICT;
  CREATE TABLE grants (
    agent_id     TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    capability   TEXT NOT NULL,
    methods      TEXT,
    rate_count   INTEGER,
    rate_period  INTEGER,
    expires_at   TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (agent_id, capability)
  ) STRICT;
  `,
  `
  CREATE TABLE owners (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL
  ) STRICT;
  `,
  `
  CREATE TABLE flows (
    id         TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL
  ) STRICT;
  `,
  `
  ALTER TABLE grants ADD COLUMN approve TEXT;
  ALTER TABLE grants ADD COLUMN first_approved_at TEXT;
  CREATE TABLE approvals (
    id           TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL,
    capability   TEXT NOT NULL,
    method       TEXT NOT NULL,
    host         TEXT NOT NULL,
    path         TEXT NOT NULL,
    status       TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    decided_at   TEXT,
    decided_by   TEXT
  ) STRICT;
  CREATE INDEX approvals_by_status ON approvals (status, requested_at);
  `,
  `
  CREATE TABLE nonces (
    key        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE rate_buckets (
    key    TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    at     INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
  `,
  `
  CREATE TABLE capability_policies (
    capability TEXT PRIMARY KEY,
    policy     TEXT NOT NULL
  ) STRICT;
  `,
  `
  ALTER TABLE secrets ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';
  `,
  `
  ALTER TABLE secrets ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE agents ADD COLUMN context TEXT;
  ALTER TABLE capabilities ADD COLUMN websocket INTEGER NOT NULL DEFAULT 0;
  `,
  `
  ALTER TABLE secrets ADD COLUMN allow_short INTEGER NOT NULL DEFAULT 0;
  `,
  `
  ALTER TABLE approvals ADD COLUMN details TEXT;
  `,
  // State seals and the audit anchor: a vault from before them is marked, and sealed by the
  // first process that unlocks it (a new vault has no meta yet, and is sealed by init).
  `
  INSERT INTO meta (key, value) SELECT 'unsealed', '1'
  WHERE EXISTS (SELECT 1 FROM meta) AND NOT EXISTS (SELECT 1 FROM meta WHERE key IN ('state_seal', 'audit_anchor'));
  `,
];

/**
 * aivault creates no triggers or views. One planted in either file would run inside the
 * owner's next write (and be covered by its seal), or stand in for a table; so an open,
 * and every write transaction, refuses a file that holds one. One query over both files.
 */
const FOREIGN_OBJECTS = `
  SELECT 'vault.db' AS file, type, name FROM main.sqlite_master WHERE type IN ('trigger', 'view')
  UNION ALL SELECT '${AUDIT_FILE}', type, name FROM audit.sqlite_master WHERE type IN ('trigger', 'view')
  LIMIT 1`;

interface SqliteError extends Error {
  code?: string;
  errcode?: number;
}

/** Maps SQLite failures onto our stable codes; anything else is rethrown as is. */
function translate(err: unknown): unknown {
  const e = err as SqliteError;
  if (e?.code !== 'ERR_SQLITE_ERROR' || typeof e.errcode !== 'number') return err;
  const primary = e.errcode & 0xff;
  if (primary === SQLITE_CORRUPT || primary === SQLITE_NOTADB) {
    return new AivaultError('VAULT_CORRUPTED', 'the vault database is damaged (SQLite reports it malformed); restore it from a backup', { cause: err });
  }
  if (primary === SQLITE_BUSY || primary === SQLITE_LOCKED) {
    return new AivaultError('STORAGE_UNAVAILABLE', 'the vault database stayed locked by another process', { cause: err });
  }
  if (primary === SQLITE_CANTOPEN) {
    return new AivaultError('STORAGE_UNAVAILABLE', 'the vault database cannot be opened', { cause: err });
  }
  return err;
}

function isConstraint(err: unknown): boolean {
  const e = err as SqliteError;
  return e?.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number' && (e.errcode & 0xff) === SQLITE_CONSTRAINT;
}

type Row = Record<string, SQLInputValue>;

export interface SqliteOpenOptions {
  /** Create the file and its schema when missing (only `aivault init` does this). */
  create?: boolean;
  /**
   * FULL (default): every commit is flushed to disk before it returns. NORMAL: commits reach
   * the WAL (they survive a process crash) and the disk at the next checkpoint, so a power
   * loss can drop the last ones. Only an audit connection may opt into NORMAL.
   */
  synchronous?: 'FULL' | 'NORMAL';
}

export class SqliteStorage implements Storage {
  readonly engine = 'sqlite';
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #lastNoncePrune = 0;
  #sealer: StateSealer | undefined;
  /** The write transaction under way changed the sealed state: it is resealed before it commits. */
  #stateChanged = false;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  static open(path: string, options: SqliteOpenOptions = {}): SqliteStorage {
    if (!options.create && !existsSync(path)) {
      throw new AivaultError('VAULT_NOT_INITIALIZED', 'no vault here: run `aivault init` first (or set AIVAULT_DIR)');
    }
    const auditPath = join(dirname(path), AUDIT_FILE);
    if (options.create) {
      if (!existsSync(auditPath)) closeSync(openSync(auditPath, 'wx', 0o600));
    } else if (!existsSync(auditPath)) {
      // ATTACH would quietly create an empty log; a missing log is a removed one.
      throw new AivaultError('VAULT_CORRUPTED', `the audit log file (${AUDIT_FILE}) is missing from the vault`);
    }
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS, enableForeignKeyConstraints: true, defensive: true });
      const storage = new SqliteStorage(db);
      db.prepare('ATTACH DATABASE ? AS audit').run(auditPath);
      storage.#prepareConnection(options.create === true, options.synchronous ?? 'FULL');
      return storage;
    } catch (err) {
      db?.close();
      throw translate(err);
    }
  }

  #prepareConnection(create: boolean, synchronous: 'FULL' | 'NORMAL'): void {
    const version = Number((this.#db.prepare('PRAGMA main.user_version').get() as Row).user_version);
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new AivaultError('VAULT_VERSION_UNSUPPORTED', `this vault uses storage schema ${version}; this aivault reads up to ${SQLITE_SCHEMA_VERSION}`);
    }
    if (version === 0 && !create) {
      throw new AivaultError('VAULT_CORRUPTED', 'the vault database has no schema: it was not created by `aivault init` or is damaged');
    }
    const auditVersion = Number((this.#db.prepare('PRAGMA audit.user_version').get() as Row).user_version);
    if (auditVersion > AUDIT_SCHEMA_VERSION) {
      throw new AivaultError('VAULT_VERSION_UNSUPPORTED', `this vault's audit log uses schema ${auditVersion}; this aivault reads up to ${AUDIT_SCHEMA_VERSION}`);
    }
    if (auditVersion === 0 && !create) throw new AivaultError('VAULT_CORRUPTED', 'the audit log file has no schema: it is damaged or was replaced');
    this.#refuseForeignObjects();
    // Only fresh files change journal mode; an existing vault is already in WAL, so
    // opening one (even with a wrong key) writes nothing.
    if (version === 0) this.#db.exec('PRAGMA main.journal_mode = WAL');
    if (auditVersion === 0) this.#db.exec('PRAGMA audit.journal_mode = WAL');
    const sync = synchronous === 'NORMAL' ? 'NORMAL' : 'FULL';
    this.#db.exec(`PRAGMA main.synchronous = ${sync}; PRAGMA audit.synchronous = ${sync}`);
    if (version < SQLITE_SCHEMA_VERSION) this.#migrate();
    if (auditVersion === 0) {
      this.#write(() => {
        if (Number((this.#db.prepare('PRAGMA audit.user_version').get() as Row).user_version) !== 0) return;
        this.#db.exec(AUDIT_SCHEMA);
        this.#db.exec(`PRAGMA audit.user_version = ${AUDIT_SCHEMA_VERSION}`);
      });
    }
  }

  #refuseForeignObjects(): void {
    const found = this.#stmt(FOREIGN_OBJECTS).get() as Row | undefined;
    if (found) {
      throw new AivaultError('VAULT_TAMPERED', `${found.file} holds a ${String(found.type)} named ${JSON.stringify(found.name)}, which aivault never creates: the vault was tampered with; nothing was written`);
    }
  }

  #migrate(): void {
    this.#write(() => {
      // Re-read inside the write lock: another process may have migrated meanwhile.
      const current = Number((this.#db.prepare('PRAGMA main.user_version').get() as Row).user_version);
      for (let v = current; v < SQLITE_SCHEMA_VERSION; v++) {
        this.#db.exec(MIGRATIONS[v]!);
      }
      this.#db.exec(`PRAGMA main.user_version = ${SQLITE_SCHEMA_VERSION}`);
    });
  }

  #stmt(sql: string): StatementSync {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  /** Runs fn in a write transaction taken up front (BEGIN IMMEDIATE), so concurrent writers queue instead of deadlocking. */
  #write<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    this.#stateChanged = false;
    try {
      // A trigger planted while this process runs (a daemon) must not ride in its writes.
      this.#refuseForeignObjects();
      const result = fn();
      if (this.#stateChanged) this.#reseal();
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    } finally {
      this.#stateChanged = false;
    }
  }

  #run<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(translate(err));
    }
  }

  /** Every change to the sealed state bumps the generation, and is resealed in its transaction. */
  #bump(): void {
    this.#stateChanged = true;
    this.#stmt(
      "INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
    ).run();
  }

  generation(): Promise<number> {
    return this.#run(() => Number((this.#stmt("SELECT value FROM meta WHERE key = 'generation'").get() as Row | undefined)?.value ?? 0));
  }

  readMeta(): Promise<VaultMeta | undefined> {
    return this.#run(() => toMeta((this.#stmt("SELECT key, value FROM meta WHERE key <> 'generation'").all() as Row[])));
  }

  initialize(meta: VaultMeta): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        const existing = this.#stmt('SELECT count(*) AS n FROM meta').get() as Row;
        if (Number(existing.n) > 0) throw new AivaultError('VAULT_ALREADY_INITIALIZED', 'this vault is already initialised');
        const insert = this.#stmt('INSERT INTO meta (key, value) VALUES (?, ?)');
        insert.run('vault_id', meta.vaultId);
        insert.run('format_version', String(meta.formatVersion));
        insert.run('key_provider', meta.keyProvider);
        insert.run('key_check', meta.keyCheck);
        insert.run('created_at', meta.createdAt);
      }),
    );
  }

  listSecrets(filter: SecretFilter = {}): Promise<SecretRecord[]> {
    return this.#run(() => {
      const rows = this.#stmt(
        `SELECT * FROM secrets
         WHERE (?1 IS NULL OR scope = ?1) AND (?2 IS NULL OR name = ?2) AND (?3 IS NULL OR pinned_provider = ?3)
         ORDER BY name, scope`,
      ).all(filter.scope ?? null, filter.name ?? null, filter.pinnedProvider ?? null) as Row[];
      return rows.map(toSecret);
    });
  }

  getSecret(id: string): Promise<SecretRecord | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT * FROM secrets WHERE id = ?').get(id) as Row | undefined;
      return row ? toSecret(row) : undefined;
    });
  }

  listSecretVersions(secretId: string): Promise<SecretVersionRecord[]> {
    return this.#run(() =>
      (this.#stmt('SELECT * FROM secret_versions WHERE secret_id = ? ORDER BY version').all(secretId) as Row[]).map(toVersion),
    );
  }

  getSecretVersion(secretId: string, version: number): Promise<SecretVersionRecord | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT * FROM secret_versions WHERE secret_id = ? AND version = ?').get(secretId, version) as Row | undefined;
      return row ? toVersion(row) : undefined;
    });
  }

  /** A writer sealing under a key the vault no longer uses (rotated by another process) is refused. */
  #requireKeyCheck(keyCheck: string | undefined): void {
    if (keyCheck === undefined) return;
    const row = this.#stmt("SELECT value FROM meta WHERE key = 'key_check'").get() as Row | undefined;
    if (row?.value !== keyCheck) throw new AivaultError('VAULT_KEY_MISMATCH', 'the master key was rotated by another process; reopen the vault (restart the daemon) with the new key');
  }

  createSecret(secret: SecretRecord, first: SecretVersionRecord, keyCheck?: string): Promise<void> {
    return this.writeSecrets([{ kind: 'create', secret, first }], keyCheck);
  }

  writeSecrets(writes: readonly SecretWrite[], keyCheck?: string): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#requireKeyCheck(keyCheck);
        this.#bump();
        for (const w of writes) {
          if (w.kind === 'create') this.#insertSecret(w.secret, w.first);
          else this.#rotate(w.secretId, w.expectedCurrent, w.next, w.updatedAt, w.allowShort);
        }
      }),
    );
  }

  #insertSecret(secret: SecretRecord, first: SecretVersionRecord): void {
    try {
      this.#stmt(
        `INSERT INTO secrets (id, name, scope, description, pinned_provider, current_version, created_at, updated_at, aliases, allow_short)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(secret.id, secret.name, secret.scope, secret.description, secret.pinnedProvider, secret.currentVersion, secret.createdAt, secret.updatedAt, JSON.stringify(secret.aliases), secret.allowShort ? 1 : 0);
    } catch (err) {
      if (isConstraint(err)) {
        throw new AivaultError('SECRET_ALREADY_EXISTS', `a secret named ${secret.name} already exists in scope ${secret.scope}`);
      }
      throw err;
    }
    this.#requireFreeAliases(secret.id, secret.scope, secret.aliases);
    this.#insertVersion(first);
  }

  #insertVersion(v: SecretVersionRecord): void {
    this.#stmt(
      `INSERT INTO secret_versions (secret_id, version, wrapped_key, ciphertext, fingerprint, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(v.secretId, v.version, v.wrappedKey, v.ciphertext, v.fingerprint, v.createdAt);
  }

  #requireCurrent(secretId: string, expectedCurrent: number): void {
    const row = this.#stmt('SELECT current_version FROM secrets WHERE id = ?').get(secretId) as Row | undefined;
    if (!row) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${secretId}`);
    if (Number(row.current_version) !== expectedCurrent) {
      throw new AivaultError('CONCURRENT_MODIFICATION', 'the secret changed while this command ran (another writer won); retry');
    }
  }

  rotateSecret(secretId: string, expectedCurrent: number, next: SecretVersionRecord, updatedAt: string, keyCheck?: string): Promise<void> {
    return this.writeSecrets([{ kind: 'rotate', secretId, expectedCurrent, next, updatedAt }], keyCheck);
  }

  #rotate(secretId: string, expectedCurrent: number, next: SecretVersionRecord, updatedAt: string, allowShort: boolean | undefined): void {
    this.#requireCurrent(secretId, expectedCurrent);
    this.#insertVersion(next);
    this.#stmt('UPDATE secrets SET current_version = ?, updated_at = ? WHERE id = ?').run(next.version, updatedAt, secretId);
    if (allowShort !== undefined) this.#stmt('UPDATE secrets SET allow_short = ? WHERE id = ?').run(allowShort ? 1 : 0, secretId);
    // Keep exactly the new version and the one it replaces (for rollback).
    this.#stmt('DELETE FROM secret_versions WHERE secret_id = ? AND version NOT IN (?, ?)').run(secretId, next.version, expectedCurrent);
  }

  setCurrentVersion(secretId: string, expectedCurrent: number, version: number, updatedAt: string): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        this.#requireCurrent(secretId, expectedCurrent);
        const exists = this.#stmt('SELECT 1 AS x FROM secret_versions WHERE secret_id = ? AND version = ?').get(secretId, version);
        if (!exists) throw new AivaultError('NO_PREVIOUS_VERSION', `version ${version} of this secret is not kept`);
        this.#stmt('UPDATE secrets SET current_version = ?, updated_at = ? WHERE id = ?').run(version, updatedAt, secretId);
      }),
    );
  }

  deleteSecret(secretId: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        const result = this.#stmt('DELETE FROM secrets WHERE id = ?').run(secretId);
        return Number(result.changes) > 0;
      }),
    );
  }

  #requireFreeAliases(secretId: string, scope: string, aliases: readonly string[]): void {
    if (aliases.length === 0) return;
    const others = this.#stmt('SELECT name, aliases FROM secrets WHERE scope = ? AND id <> ?').all(scope, secretId) as Row[];
    for (const o of others) {
      const taken = parseJson<string[]>(o.aliases, 'secret aliases').find((a) => aliases.includes(a));
      if (taken) throw new AivaultError('SECRET_ALREADY_EXISTS', `the alias ${taken} already names ${o.name as string} in scope ${scope}`);
    }
  }

  setSecretGroup(secretId: string, group: string, attached: boolean, updatedAt: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        const row = this.#stmt('SELECT groups FROM secrets WHERE id = ?').get(secretId) as Row | undefined;
        if (!row) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${secretId}`);
        const next = editGroups(parseJson<string[]>(row.groups, 'secret groups'), group, attached);
        if (!next) return false;
        this.#bump();
        this.#stmt('UPDATE secrets SET groups = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(next), updatedAt, secretId);
        return true;
      }),
    );
  }

  updateSecretIdentity(secretId: string, change: { name?: string; aliases?: string[]; allowShort?: boolean }, updatedAt: string): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        const row = this.#stmt('SELECT scope FROM secrets WHERE id = ?').get(secretId) as Row | undefined;
        if (!row) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${secretId}`);
        this.#bump();
        if (change.allowShort !== undefined) this.#stmt('UPDATE secrets SET allow_short = ?, updated_at = ? WHERE id = ?').run(change.allowShort ? 1 : 0, updatedAt, secretId);
        if (change.aliases) {
          this.#requireFreeAliases(secretId, row.scope as string, change.aliases);
          this.#stmt('UPDATE secrets SET aliases = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(change.aliases), updatedAt, secretId);
        }
        if (change.name !== undefined) {
          try {
            this.#stmt('UPDATE secrets SET name = ?, updated_at = ? WHERE id = ?').run(change.name, updatedAt, secretId);
          } catch (err) {
            if (isConstraint(err)) throw new AivaultError('SECRET_ALREADY_EXISTS', `a secret named ${change.name} already exists in scope ${row.scope as string}`);
            throw err;
          }
        }
      }),
    );
  }

  rekey(change: Rekey, expectedGeneration: number, expectedKeyCheck: string): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        const generation = Number((this.#stmt("SELECT value FROM meta WHERE key = 'generation'").get() as Row | undefined)?.value ?? 0);
        if (generation !== expectedGeneration) throw new AivaultError('CONCURRENT_MODIFICATION', 'the vault changed during the rotation; nothing was changed, run it again');
        this.#requireKeyCheck(expectedKeyCheck);
        const update = this.#stmt('UPDATE secret_versions SET wrapped_key = ? WHERE secret_id = ? AND version = ?');
        for (const v of change.versions) {
          if (Number(update.run(v.wrappedKey, v.secretId, v.version).changes) !== 1) throw new AivaultError('CONCURRENT_MODIFICATION', 'a secret version vanished during the rotation; nothing was changed');
        }
        const total = Number((this.#stmt('SELECT count(*) AS n FROM secret_versions').get() as Row).n);
        if (total !== change.versions.length) throw new AivaultError('CONCURRENT_MODIFICATION', 'secret versions appeared during the rotation; nothing was changed');
        const set = this.#stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
        set.run('key_provider', change.keyProvider);
        set.run('key_check', change.keyCheck);
        set.run('keyring', change.keyring);
        // Sealed under the old cache key: unreadable now, and refreshed on demand.
        this.#stmt('DELETE FROM oauth_tokens').run();
        this.#bump();
      }),
    );
  }

  listCredentials(): Promise<CredentialRecord[]> {
    return this.#run(() => (this.#stmt('SELECT * FROM credentials ORDER BY name').all() as Row[]).map(toCredential));
  }

  getCredential(name: string): Promise<CredentialRecord | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT * FROM credentials WHERE name = ?').get(name) as Row | undefined;
      return row ? toCredential(row) : undefined;
    });
  }

  createCredential(c: CredentialRecord): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        try {
          this.#stmt(
            `INSERT INTO credentials (name, provider, auth, bindings, hosts, allow_http, allow_private_network, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(c.name, c.provider, JSON.stringify(c.auth), JSON.stringify(c.bindings), JSON.stringify(c.hosts), c.allowHttp ? 1 : 0, c.allowPrivateNetwork ? 1 : 0, c.createdAt);
        } catch (err) {
          if (isConstraint(err)) throw new AivaultError('CREDENTIAL_ALREADY_EXISTS', `a credential named ${c.name} already exists`);
          throw err;
        }
      }),
    );
  }

  deleteCredential(name: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        const users = this.#stmt('SELECT id FROM capabilities WHERE credential = ? ORDER BY id').all(name) as Row[];
        if (users.length > 0) {
          throw new AivaultError('CREDENTIAL_IN_USE', `capabilities still use ${name}: ${users.map((u) => u.id as string).join(', ')}; delete them first`);
        }
        return Number(this.#stmt('DELETE FROM credentials WHERE name = ?').run(name).changes) > 0;
      }),
    );
  }

  getCapabilityPolicy(capability: string): Promise<CapabilityPolicy | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT policy FROM capability_policies WHERE capability = ?').get(capability) as Row | undefined;
      return row ? parseJson<CapabilityPolicy>(row.policy, 'capability policy') : undefined;
    });
  }

  putCapabilityPolicy(capability: string, policy: CapabilityPolicy): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        this.#stmt('INSERT INTO capability_policies (capability, policy) VALUES (?, ?) ON CONFLICT (capability) DO UPDATE SET policy = excluded.policy').run(capability, JSON.stringify(policy));
      }),
    );
  }

  deleteCapabilityPolicy(capability: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        return Number(this.#stmt('DELETE FROM capability_policies WHERE capability = ?').run(capability).changes) > 0;
      }),
    );
  }

  listCapabilities(): Promise<CapabilityRecord[]> {
    return this.#run(() => (this.#stmt('SELECT * FROM capabilities ORDER BY id').all() as Row[]).map(toCapability));
  }

  getCapability(id: string): Promise<CapabilityRecord | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT * FROM capabilities WHERE id = ?').get(id) as Row | undefined;
      return row ? toCapability(row) : undefined;
    });
  }

  createCapability(c: CapabilityRecord): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        if (!this.#stmt('SELECT 1 AS x FROM credentials WHERE name = ?').get(c.credential)) {
          throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${c.credential}`);
        }
        try {
          this.#stmt(
            `INSERT INTO capabilities (id, provider, credential, hosts, methods, path_prefixes, limits, created_at, websocket)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(c.id, c.provider, c.credential, JSON.stringify(c.hosts), JSON.stringify(c.methods), JSON.stringify(c.pathPrefixes), JSON.stringify(c.limits), c.createdAt, c.websocket ? 1 : 0);
        } catch (err) {
          if (isConstraint(err)) throw new AivaultError('CAPABILITY_ALREADY_EXISTS', `a capability ${c.id} already exists`);
          throw err;
        }
      }),
    );
  }

  deleteCapability(id: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        return Number(this.#stmt('DELETE FROM capabilities WHERE id = ?').run(id).changes) > 0;
      }),
    );
  }

  listEndpointOverrides(): Promise<EndpointOverride[]> {
    return this.#run(() => (this.#stmt('SELECT * FROM endpoint_overrides ORDER BY provider').all() as Row[]).map(toOverride));
  }

  getEndpointOverride(provider: string): Promise<EndpointOverride | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT * FROM endpoint_overrides WHERE provider = ?').get(provider) as Row | undefined;
      return row ? toOverride(row) : undefined;
    });
  }

  setEndpointOverride(o: EndpointOverride): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        this.#stmt(
          `INSERT INTO endpoint_overrides (provider, hosts, token_endpoint, allow_http, allow_private_network, created_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (provider) DO UPDATE SET hosts = excluded.hosts, token_endpoint = excluded.token_endpoint, allow_http = excluded.allow_http,
             allow_private_network = excluded.allow_private_network, created_at = excluded.created_at`,
        ).run(o.provider, JSON.stringify(o.hosts), o.tokenEndpoint, o.allowHttp ? 1 : 0, o.allowPrivateNetwork ? 1 : 0, o.createdAt);
      }),
    );
  }

  deleteEndpointOverride(provider: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        return Number(this.#stmt('DELETE FROM endpoint_overrides WHERE provider = ?').run(provider).changes) > 0;
      }),
    );
  }

  putFlow(flow: FlowRecord): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        try {
          this.#stmt('INSERT INTO flows (id, definition, created_at) VALUES (?, ?, ?)').run(flow.id, JSON.stringify(flow), flow.createdAt);
        } catch (err) {
          if (isConstraint(err)) throw new AivaultError('CAPABILITY_ALREADY_EXISTS', `a flow ${flow.id} already exists`);
          throw err;
        }
      }),
    );
  }

  getFlow(id: string): Promise<FlowRecord | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT definition FROM flows WHERE id = ?').get(id) as Row | undefined;
      return row ? parseJson<FlowRecord>(row.definition, 'flow') : undefined;
    });
  }

  listFlows(): Promise<FlowRecord[]> {
    return this.#run(() => (this.#stmt('SELECT definition FROM flows ORDER BY id').all() as Row[]).map((r) => parseJson<FlowRecord>(r.definition, 'flow')));
  }

  deleteFlow(id: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        return Number(this.#stmt('DELETE FROM flows WHERE id = ?').run(id).changes) > 0;
      }),
    );
  }

  listOwners(): Promise<OwnerRecord[]> {
    return this.#run(() => (this.#stmt('SELECT * FROM owners ORDER BY created_at, name').all() as Row[]).map(toOwner));
  }

  getOwner(idOrName: string): Promise<OwnerRecord | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT * FROM owners WHERE id = ?1 OR name = ?1').get(idOrName) as Row | undefined;
      return row ? toOwner(row) : undefined;
    });
  }

  addOwner(o: OwnerRecord): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        try {
          this.#stmt('INSERT INTO owners (id, name, public_key, created_at) VALUES (?, ?, ?, ?)').run(o.id, o.name, o.publicKey, o.createdAt);
        } catch (err) {
          if (isConstraint(err)) throw new AivaultError('OWNER_ALREADY_EXISTS', `an owner named ${o.name} already exists`);
          throw err;
        }
      }),
    );
  }

  removeOwner(id: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        // Checked inside the write lock, so two removals at once cannot both pass.
        const n = Number((this.#stmt('SELECT count(*) AS n FROM owners').get() as Row).n);
        if (n <= 1 && this.#stmt('SELECT 1 AS x FROM owners WHERE id = ?').get(id)) {
          throw new AivaultError('LAST_OWNER', 'the last owner cannot be removed; add another owner first');
        }
        this.#bump();
        return Number(this.#stmt('DELETE FROM owners WHERE id = ?').run(id).changes) > 0;
      }),
    );
  }

  createAgent(a: AgentRecord): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        try {
          this.#stmt('INSERT INTO agents (id, name, token_hash, public_key, status, created_at, revoked_at, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
            a.id, a.name, a.tokenHash, a.publicKey, a.status, a.createdAt, a.revokedAt, a.context,
          );
        } catch (err) {
          if (isConstraint(err)) throw new AivaultError('AGENT_ALREADY_EXISTS', `an agent named ${a.name} already exists`);
          throw err;
        }
      }),
    );
  }

  listAgents(): Promise<AgentRecord[]> {
    return this.#run(() => (this.#stmt('SELECT * FROM agents ORDER BY name').all() as Row[]).map(toAgent));
  }

  getAgent(idOrName: string): Promise<AgentRecord | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT * FROM agents WHERE id = ?1 OR name = ?1').get(idOrName) as Row | undefined;
      return row ? toAgent(row) : undefined;
    });
  }

  findAgentByTokenHash(hash: string): Promise<AgentRecord | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT * FROM agents WHERE token_hash = ?').get(hash) as Row | undefined;
      return row ? toAgent(row) : undefined;
    });
  }

  revokeAgent(id: string, at: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        return Number(this.#stmt("UPDATE agents SET status = 'revoked', revoked_at = ? WHERE id = ? AND status = 'active'").run(at, id).changes) > 0;
      }),
    );
  }

  setAgentContext(id: string, context: string | null): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        return Number(this.#stmt('UPDATE agents SET context = ? WHERE id = ?').run(context, id).changes) > 0;
      }),
    );
  }

  putGrant(g: GrantRecord): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        this.#stmt(
          `INSERT INTO grants (agent_id, capability, methods, rate_count, rate_period, expires_at, created_at, approve, first_approved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (agent_id, capability) DO UPDATE SET methods = excluded.methods, rate_count = excluded.rate_count,
             rate_period = excluded.rate_period, expires_at = excluded.expires_at, created_at = excluded.created_at,
             approve = excluded.approve, first_approved_at = excluded.first_approved_at`,
        ).run(g.agentId, g.capability, g.methods ? JSON.stringify(g.methods) : null, g.rate?.count ?? null, g.rate?.periodMs ?? null, g.expiresAt, g.createdAt, g.approve, g.firstApprovedAt);
      }),
    );
  }

  getGrant(agentId: string, capability: string): Promise<GrantRecord | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT * FROM grants WHERE agent_id = ? AND capability = ?').get(agentId, capability) as Row | undefined;
      return row ? toGrant(row) : undefined;
    });
  }

  listGrants(agentId?: string): Promise<GrantRecord[]> {
    return this.#run(() => (this.#stmt('SELECT * FROM grants WHERE ?1 IS NULL OR agent_id = ?1 ORDER BY agent_id, capability').all(agentId ?? null) as Row[]).map(toGrant));
  }

  deleteGrant(agentId: string, capability: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        return Number(this.#stmt('DELETE FROM grants WHERE agent_id = ? AND capability = ?').run(agentId, capability).changes) > 0;
      }),
    );
  }

  markGrantApproved(agentId: string, capability: string, at: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#bump();
        return Number(this.#stmt('UPDATE grants SET first_approved_at = ? WHERE agent_id = ? AND capability = ? AND first_approved_at IS NULL').run(at, agentId, capability).changes) > 0;
      }),
    );
  }

  putApproval(a: ApprovalRecord): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#stmt(
          `INSERT INTO approvals (id, agent_id, capability, method, host, path, status, requested_at, expires_at, decided_at, decided_by, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(a.id, a.agentId, a.capability, a.method, a.host, a.path, a.status, a.requestedAt, a.expiresAt, a.decidedAt, a.decidedBy, a.details ? JSON.stringify(a.details) : null);
      }),
    );
  }

  getApproval(id: string): Promise<ApprovalRecord | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT * FROM approvals WHERE id = ?').get(id) as Row | undefined;
      return row ? toApproval(row) : undefined;
    });
  }

  listApprovals(status?: ApprovalStatus): Promise<ApprovalRecord[]> {
    return this.#run(() => (this.#stmt('SELECT * FROM approvals WHERE ?1 IS NULL OR status = ?1 ORDER BY requested_at, id').all(status ?? null) as Row[]).map(toApproval));
  }

  decideApproval(id: string, status: Exclude<ApprovalStatus, 'pending'>, by: string, at: string): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => Number(this.#stmt("UPDATE approvals SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = 'pending'").run(status, by, at, id).changes) > 0),
    );
  }

  rememberNonce(key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        if (now - this.#lastNoncePrune > NONCE_PRUNE_MS) {
          this.#stmt('DELETE FROM nonces WHERE expires_at <= ?').run(now);
          this.#lastNoncePrune = now;
        }
        // Replaces only an expired record: an unexpired one means the nonce was used.
        return Number(this.#stmt('INSERT INTO nonces (key, expires_at) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?3').run(key, expiresAt, now).changes) > 0;
      }),
    );
  }

  updateBucket<T>(key: string, step: (state: BucketState | undefined) => { state: BucketState; result: T }): Promise<T> {
    return this.#run(() =>
      this.#write(() => {
        const row = this.#stmt('SELECT tokens, at FROM rate_buckets WHERE key = ?').get(key) as Row | undefined;
        const { state, result } = step(row ? { tokens: Number(row.tokens), at: Number(row.at) } : undefined);
        this.#stmt('INSERT INTO rate_buckets (key, tokens, at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at').run(key, state.tokens, state.at);
        return result;
      }),
    );
  }

  acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    return this.#run(() =>
      this.#write(
        () =>
          Number(
            this.#stmt(
              'INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at WHERE leases.expires_at <= ?4 OR leases.holder = excluded.holder',
            ).run(name, holder, now + ttlMs, now).changes,
          ) > 0,
      ),
    );
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#stmt('DELETE FROM leases WHERE name = ? AND holder = ?').run(name, holder);
      }),
    );
  }

  getOAuthToken(credential: string): Promise<SealedToken | undefined> {
    return this.#run(() => {
      const row = this.#stmt('SELECT sealed, expires_at FROM oauth_tokens WHERE credential = ?').get(credential) as Row | undefined;
      return row ? { sealed: row.sealed as Uint8Array, expiresAt: Number(row.expires_at) } : undefined;
    });
  }

  putOAuthToken(credential: string, token: SealedToken): Promise<void> {
    return this.#run(() => {
      this.#stmt(
        'INSERT INTO oauth_tokens (credential, sealed, expires_at) VALUES (?, ?, ?) ON CONFLICT (credential) DO UPDATE SET sealed = excluded.sealed, expires_at = excluded.expires_at',
      ).run(credential, token.sealed, token.expiresAt);
    });
  }

  deleteOAuthToken(credential: string): Promise<void> {
    return this.#run(() => {
      this.#stmt('DELETE FROM oauth_tokens WHERE credential = ?').run(credential);
    });
  }

  #metaJson<T>(schema: 'audit.audit_meta' | 'meta', key: string, what: string): T | undefined {
    const row = this.#stmt(`SELECT value FROM ${schema} WHERE key = ?`).get(key) as Row | undefined;
    return row ? parseJson<T>(row.value, what) : undefined;
  }

  #putMeta(schema: 'audit.audit_meta' | 'meta', key: string, value: string): void {
    this.#stmt(`INSERT INTO ${schema} (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(key, value);
  }

  #auditHead(): AuditHead | undefined {
    return this.#metaJson<AuditHead>('audit.audit_meta', 'head', 'audit head');
  }

  #countOutcomes(): number {
    return Number((this.#stmt('SELECT count(*) AS n FROM audit.audit_log WHERE outcome IS NOT NULL').get() as Row).n);
  }

  /**
   * One transaction over both files: the records and the head in audit.db, the anchor (a
   * copy of the head) in vault.db. SQLite makes each file's commit atomic, not the pair:
   * see anchorState for what a crash between the two leaves.
   */
  writeAudit(appends: readonly AuditAppend[], outcomes: readonly AuditOutcomeUpdate[], sealer: AuditSealer): Promise<number[]> {
    return this.#run(() =>
      this.#write(() => {
        const head = this.#auditHead();
        const anchor = this.#metaJson<AuditHead>('meta', AUDIT_ANCHOR_KEY, 'audit anchor');
        const batch = chainBatch(sealer, head, anchor, appends, AUDIT_GENESIS);
        const insert = this.#stmt(
          `INSERT INTO audit.audit_log (seq, at, actor, action, target, capability, method, host, path, decision, reason, prev_hash, hash, outcome, outcome_mac)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        for (const { seq, entry: e, prevHash, hash, outcome, outcomeMac } of batch.rows) {
          insert.run(seq, e.at, e.actor, e.action, e.target, e.capability, e.method, e.host, e.path, e.decision, e.reason, prevHash, hash, outcome ? JSON.stringify(outcome) : null, outcomeMac);
        }
        const update = this.#stmt('UPDATE audit.audit_log SET outcome = ?, outcome_mac = ? WHERE seq = ? AND outcome IS NULL');
        let written = batch.outcomes;
        for (const { seq: s, outcome } of outcomes) written += Number(update.run(JSON.stringify(outcome), sealer.outcomeMac(s, outcome), s).changes);
        if (batch.rows.length > 0 || written > 0) {
          const before = head?.outcomes ?? (head ? this.#countOutcomes() - written : 0);
          const last = batch.rows.at(-1) ?? head ?? { seq: 0, hash: AUDIT_GENESIS };
          const next = JSON.stringify(nextHead(sealer, head, last, before + written, before));
          this.#putMeta('audit.audit_meta', 'head', next);
          this.#putMeta('meta', AUDIT_ANCHOR_KEY, next);
        }
        return batch.seqs;
      }),
    );
  }

  readAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    return this.#run(() =>
      (
        this.#stmt(
          `SELECT * FROM audit.audit_log
           WHERE seq > ?1 AND (?2 IS NULL OR capability = ?2) AND (?3 IS NULL OR at >= ?3)
           ORDER BY seq LIMIT ?4`,
        ).all(filter.afterSeq ?? 0, filter.capability ?? null, filter.since ?? null, filter.limit ?? -1) as Row[]
      ).map(toAudit),
    );
  }

  readAuditHead(): Promise<AuditHead | undefined> {
    return this.#run(() => this.#auditHead());
  }

  readAuditAnchor(): Promise<AuditHead | undefined> {
    return this.#run(() => this.#metaJson<AuditHead>('meta', AUDIT_ANCHOR_KEY, 'audit anchor'));
  }

  countAuditOutcomes(): Promise<number> {
    return this.#run(() => this.#countOutcomes());
  }

  useStateSealer(sealer: StateSealer): void {
    this.#sealer = sealer;
  }

  #digests(): Record<string, string> {
    const tables: Record<string, string> = {};
    for (const table of SEALED_TABLES) tables[table] = tableDigest(this.#stmt(sealedQuery(table, (i) => `?${i}`)).all(...(table === 'meta' ? UNSEALED_META : [])) as Row[]);
    return tables;
  }

  /** Writes the seal over the state as this transaction leaves it (none without a sealer: verify then reports it stale). */
  #reseal(): void {
    if (!this.#sealer) return;
    const tables = this.#digests();
    this.#putMeta('meta', STATE_SEAL_KEY, JSON.stringify({ tables, mac: this.#sealer.mac(tables) } satisfies StateSeal));
  }

  sealState(): Promise<void> {
    return this.#run(() => {
      if (!this.#sealer) throw new AivaultError('INTERNAL_ERROR', 'sealing the state needs the unlocked vault');
      this.#write(() => {
        this.#bump();
        this.#stmt('DELETE FROM meta WHERE key = ?').run(UNSEALED_KEY);
      });
    });
  }

  readState(): Promise<StateReading> {
    return this.#run(() => {
      // One read transaction: the seal and the tables as one writer left them.
      this.#db.exec('BEGIN');
      try {
        return {
          seal: this.#metaJson<StateSeal>('meta', STATE_SEAL_KEY, 'state seal'),
          current: this.#digests(),
          unsealed: this.#stmt('SELECT 1 AS x FROM meta WHERE key = ?').get(UNSEALED_KEY) !== undefined,
          anchored: this.#stmt('SELECT 1 AS x FROM meta WHERE key = ?').get(AUDIT_ANCHOR_KEY) !== undefined,
        };
      } finally {
        this.#db.exec('COMMIT');
      }
    });
  }

  /** SQLite's full page-level check of both files (vault.db and audit.db); not run on every open. */
  integrityCheck(): Promise<string[]> {
    return this.#run(() => {
      const rows = this.#db.prepare('PRAGMA integrity_check').all() as Row[];
      const messages = rows.map((r) => String(Object.values(r)[0]));
      return messages.length === 1 && messages[0] === 'ok' ? [] : messages;
    });
  }

  close(): Promise<void> {
    return this.#run(() => {
      this.#statements.clear();
      if (this.#db.isOpen) this.#db.close();
    });
  }
}
