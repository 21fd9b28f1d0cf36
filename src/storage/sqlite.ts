// The embedded engine: one SQLite file through node:sqlite (no native addon).
// WAL with synchronous=FULL: an acknowledged write survives a crash or power loss,
// and readers in other processes never block the writer.

import { existsSync } from 'node:fs';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { AivaultError } from '../errors.ts';
import type { SecretFilter, SecretRecord, SecretVersionRecord, Storage, VaultMeta } from './types.ts';

/** Schema version this code reads and writes (PRAGMA user_version). */
export const SQLITE_SCHEMA_VERSION = 1;

const BUSY_TIMEOUT_MS = 15_000;

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_CORRUPT = 11;
const SQLITE_CANTOPEN = 14;
const SQLITE_CONSTRAINT = 19;
const SQLITE_NOTADB = 26;

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
];

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

function toSecret(row: Row): SecretRecord {
  return {
    id: row.id as string,
    name: row.name as string,
    scope: row.scope as string,
    description: (row.description as string | null) ?? null,
    pinnedProvider: (row.pinned_provider as string | null) ?? null,
    currentVersion: Number(row.current_version),
    createdAt: row.created_at as string,
    updatedAt: row.updated_at as string,
  };
}

function toVersion(row: Row): SecretVersionRecord {
  return {
    secretId: row.secret_id as string,
    version: Number(row.version),
    wrappedKey: row.wrapped_key as Uint8Array,
    ciphertext: row.ciphertext as Uint8Array,
    fingerprint: row.fingerprint as string,
    createdAt: row.created_at as string,
  };
}

export interface SqliteOpenOptions {
  /** Create the file and its schema when missing (only `aivault init` does this). */
  create?: boolean;
}

export class SqliteStorage implements Storage {
  readonly engine = 'sqlite';
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  static open(path: string, options: SqliteOpenOptions = {}): SqliteStorage {
    if (!options.create && !existsSync(path)) {
      throw new AivaultError('VAULT_NOT_INITIALIZED', 'no vault here: run `aivault init` first (or set AIVAULT_DIR)');
    }
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS, enableForeignKeyConstraints: true, defensive: true });
      const storage = new SqliteStorage(db);
      storage.#prepareConnection(options.create === true);
      return storage;
    } catch (err) {
      db?.close();
      throw translate(err);
    }
  }

  #prepareConnection(create: boolean): void {
    const version = Number((this.#db.prepare('PRAGMA user_version').get() as Row).user_version);
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new AivaultError('VAULT_VERSION_UNSUPPORTED', `this vault uses storage schema ${version}; this aivault reads up to ${SQLITE_SCHEMA_VERSION}`);
    }
    if (version === 0 && !create) {
      throw new AivaultError('VAULT_CORRUPTED', 'the vault database has no schema: it was not created by `aivault init` or is damaged');
    }
    // Only a fresh file changes journal mode; an existing vault is already in WAL,
    // so opening one (even with a wrong key) writes nothing.
    if (version === 0) this.#db.exec('PRAGMA journal_mode = WAL');
    this.#db.exec('PRAGMA synchronous = FULL');
    if (version < SQLITE_SCHEMA_VERSION) this.#migrate();
  }

  #migrate(): void {
    this.#write(() => {
      // Re-read inside the write lock: another process may have migrated meanwhile.
      const current = Number((this.#db.prepare('PRAGMA user_version').get() as Row).user_version);
      for (let v = current; v < SQLITE_SCHEMA_VERSION; v++) {
        this.#db.exec(MIGRATIONS[v]!);
      }
      this.#db.exec(`PRAGMA user_version = ${SQLITE_SCHEMA_VERSION}`);
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
    try {
      const result = fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  #run<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(translate(err));
    }
  }

  readMeta(): Promise<VaultMeta | undefined> {
    return this.#run(() => {
      const rows = this.#stmt('SELECT key, value FROM meta').all() as Row[];
      if (rows.length === 0) return undefined;
      const map = new Map(rows.map((r) => [r.key as string, r.value as string]));
      const get = (k: string): string => {
        const v = map.get(k);
        if (v === undefined) throw new AivaultError('VAULT_CORRUPTED', `the vault's metadata lacks "${k}"`);
        return v;
      };
      return {
        vaultId: get('vault_id'),
        formatVersion: Number(get('format_version')),
        keyProvider: get('key_provider'),
        keyCheck: get('key_check'),
        createdAt: get('created_at'),
      };
    });
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

  createSecret(secret: SecretRecord, first: SecretVersionRecord): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        try {
          this.#stmt(
            `INSERT INTO secrets (id, name, scope, description, pinned_provider, current_version, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(secret.id, secret.name, secret.scope, secret.description, secret.pinnedProvider, secret.currentVersion, secret.createdAt, secret.updatedAt);
        } catch (err) {
          if (isConstraint(err)) {
            throw new AivaultError('SECRET_ALREADY_EXISTS', `a secret named ${secret.name} already exists in scope ${secret.scope}`);
          }
          throw err;
        }
        this.#insertVersion(first);
      }),
    );
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

  rotateSecret(secretId: string, expectedCurrent: number, next: SecretVersionRecord, updatedAt: string): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#requireCurrent(secretId, expectedCurrent);
        this.#insertVersion(next);
        this.#stmt('UPDATE secrets SET current_version = ?, updated_at = ? WHERE id = ?').run(next.version, updatedAt, secretId);
        // Keep exactly the new version and the one it replaces (for rollback).
        this.#stmt('DELETE FROM secret_versions WHERE secret_id = ? AND version NOT IN (?, ?)').run(secretId, next.version, expectedCurrent);
      }),
    );
  }

  setCurrentVersion(secretId: string, expectedCurrent: number, version: number, updatedAt: string): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
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
        const result = this.#stmt('DELETE FROM secrets WHERE id = ?').run(secretId);
        return Number(result.changes) > 0;
      }),
    );
  }

  /** Full page-level check; used by `aivault doctor`, not on every open. */
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
