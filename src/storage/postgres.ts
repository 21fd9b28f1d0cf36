// The PostgreSQL engine: the same records as the embedded one, in one database that
// several daemons share. Every method is one transaction; writers that must not
// interleave (the audit chain, migrations) take an advisory lock inside theirs. Losing
// the server fails closed with STORAGE_UNAVAILABLE, and the pool reconnects on its own
// once the server is back.

import { userInfo } from 'node:os';
import pg from 'pg';
import { AivaultError } from '../errors.ts';
import { editGroups, parseJson, toMeta, toAgent, toApproval, toAudit, toCapability, toCredential, toGrant, toOverride, toOwner, toSecret, toVersion, type Row } from './rows.ts';
import { AUDIT_GENESIS } from './types.ts';
import { chainBatch, nextHead } from '../audit/chain.ts';
import { AUDIT_ANCHOR_KEY, SEALED_TABLES, STATE_SEAL_KEY, UNSEALED_KEY, UNSEALED_META, sealedQuery, tableDigest } from './state.ts';
import type {
  AgentRecord,
  ApprovalRecord,
  ApprovalStatus,
  Rekey,
  AuditAppend,
  AuditFilter,
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
  SealedToken,
  SecretFilter,
  SecretRecord,
  SecretVersionRecord,
  SecretWrite,
  StateReading,
  StateSeal,
  StateSealer,
  Storage,
  VaultMeta,
} from './types.ts';
import { POSTGRES_MIGRATIONS } from './postgres-schema.ts';

export const POSTGRES_SCHEMA_VERSION = POSTGRES_MIGRATIONS.length;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const NONCE_PRUNE_MS = 60_000;
/** Advisory lock ids (second key; the first is the schema's hash): one chain writer at a time. */
const AUDIT_LOCK = 1;
const MIGRATION_LOCK = 2;

type Client = pg.PoolClient | pg.Pool;

export interface PostgresOptions {
  /** Create the schema when missing (only `aivault init` does this). */
  create?: boolean;
  /** Pool size per process. */
  maxConnections?: number;
}

/** The parts of an `AIVAULT_DATABASE_URL` we use: the connection, and our own `schema` parameter. */
export function parseDatabaseUrl(url: string): { connectionString: string; schema: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AivaultError('INVALID_ARGUMENT', 'the database URL is not a URL (postgres://user@host:5432/db)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new AivaultError('INVALID_ARGUMENT', 'the database URL must start with postgres://');
  const schema = parsed.searchParams.get('schema') ?? 'aivault';
  if (!SCHEMA_NAME.test(schema)) throw new AivaultError('INVALID_ARGUMENT', 'the schema parameter is a lower-case SQL identifier (a-z, 0-9, _)');
  parsed.searchParams.delete('schema');
  return { connectionString: parsed.href, schema };
}

/** The URL with any password removed: what may be written to disk, printed or logged. */
/** Query parameters that carry a credential in a PostgreSQL URL (libpq, pg); paths such as `sslkey` do not. */
const CREDENTIAL_PARAMS = /^(ssl)?password$/i;

/** The URL without anything that authenticates: the userinfo password and credential parameters. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    for (const name of [...parsed.searchParams.keys()]) if (CREDENTIAL_PARAMS.test(name)) parsed.searchParams.delete(name);
    return parsed.href;
  } catch {
    return 'postgres://(unparseable)';
  }
}

const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Server gone, restarting, unreachable or refusing connections: the caller may retry later. */
function isUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  if (UNAVAILABLE_NODE_CODES.has(code)) return true;
  // SQLSTATE 08xxx connection exceptions, 57P01-03 shutdown/crash/starting, 53300 too many connections.
  if (/^08/.test(code) || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Connection ended/i.test(message);
}

function translate(err: unknown): unknown {
  if (err instanceof AivaultError) return err;
  if (isUnavailable(err)) return new AivaultError('STORAGE_UNAVAILABLE', 'the PostgreSQL server is unreachable or restarting', { cause: err });
  const code = (err as { code?: unknown })?.code;
  // Serialisation failures and deadlocks: nothing was written; the caller may retry.
  if (code === '40001' || code === '40P01') return new AivaultError('STORAGE_UNAVAILABLE', 'the database aborted a conflicting transaction; retry', { cause: err });
  if (code === '28000' || code === '28P01' || code === '3D000') return new AivaultError('STORAGE_UNAVAILABLE', 'the PostgreSQL server refused the login or has no such database', { cause: err });
  return err;
}

/** libpq's default when the URL names no user: the OS user (pg itself only reads $USER). */
function withDefaultUser(connectionString: string): string {
  const url = new URL(connectionString);
  if (!url.username && !process.env.PGUSER && !process.env.USER) url.username = userInfo().username;
  return url.href;
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown })?.code === '23505';
}

function bytes(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export class PostgresStorage implements Storage {
  readonly engine = 'postgres';
  readonly #pool: pg.Pool;
  readonly #schema: string;
  readonly #names = new Map<string, string>();
  #lastNoncePrune = 0;
  #sealer: StateSealer | undefined;
  /** Transactions that changed the sealed state: each is resealed before it commits. */
  readonly #stateChanged = new WeakSet<Client>();

  private constructor(pool: pg.Pool, schema: string) {
    this.#pool = pool;
    this.#schema = schema;
  }

  get schema(): string {
    return this.#schema;
  }

  static async connect(url: string, options: PostgresOptions = {}): Promise<PostgresStorage> {
    const { connectionString, schema } = parseDatabaseUrl(url);
    const pool = new pg.Pool({
      connectionString: withDefaultUser(connectionString),
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      query_timeout: 15_000,
      // Unqualified names resolve in our schema only.
      options: `-c search_path=${schema}`,
      application_name: 'aivault',
    });
    // An idle connection dropped by a restarting server must not crash the process: the
    // pool discards it, and the next query opens a new one.
    pool.on('error', () => {});
    const storage = new PostgresStorage(pool, schema);
    try {
      await storage.#migrate(options.create === true);
      return storage;
    } catch (err) {
      await pool.end().catch(() => {});
      throw translate(err);
    }
  }

  /** Applies pending migrations under an advisory lock, so replicas starting together apply each once. */
  async #migrate(create: boolean): Promise<void> {
    await this.#tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1), $2)', [this.#schema, MIGRATION_LOCK]);
      const exists = await c.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [this.#schema, 'schema_version']);
      let version = 0;
      if (exists.rowCount) version = Number((await c.query('SELECT version FROM schema_version')).rows[0]?.version ?? 0);
      if (version === 0 && !create) throw new AivaultError('VAULT_NOT_INITIALIZED', `no aivault vault in schema "${this.#schema}" of this database: initialize it first`);
      if (version > POSTGRES_SCHEMA_VERSION) throw new AivaultError('VAULT_VERSION_UNSUPPORTED', `this vault uses storage schema ${version}; this aivault reads up to ${POSTGRES_SCHEMA_VERSION}`);
      await this.#refuseForeignObjects(c);
      if (version === POSTGRES_SCHEMA_VERSION) return;
      if (version === 0) {
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.#schema}`);
        await c.query('CREATE TABLE schema_version (version INTEGER NOT NULL)');
        await c.query('INSERT INTO schema_version (version) VALUES (0)');
      }
      for (let v = version; v < POSTGRES_SCHEMA_VERSION; v++) await c.query(POSTGRES_MIGRATIONS[v]!);
      await c.query('UPDATE schema_version SET version = $1', [POSTGRES_SCHEMA_VERSION]);
    });
  }

  /**
   * aivault creates no triggers (beyond the server's own for foreign keys), rules or views.
   * One planted in our schema would run inside the owner's next write (and be covered by its
   * seal), or stand in for a table: connecting refuses a schema that holds one.
   */
  async #refuseForeignObjects(c: Client): Promise<void> {
    const found = await c.query<Row>(
      `SELECT kind, name FROM (
         SELECT 'trigger' AS kind, t.tgname::text AS name FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace
           WHERE n.nspname = $1 AND NOT t.tgisinternal
         UNION ALL SELECT 'rule', rulename::text FROM pg_rules WHERE schemaname = $1
         UNION ALL SELECT 'view', r.relname::text FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = $1 AND r.relkind IN ('v', 'm')
       ) AS o LIMIT 1`,
      [this.#schema],
    );
    const row = found.rows[0];
    if (row) {
      throw new AivaultError('VAULT_TAMPERED', `schema "${this.#schema}" holds a ${String(row.kind)} named ${JSON.stringify(row.name)}, which aivault never creates: the vault was tampered with; nothing was written`);
    }
  }

  /** A named (server-side prepared) query: parsed once per connection. */
  #q(client: Client, text: string, values: unknown[] = []): Promise<pg.QueryResult<Row>> {
    let name = this.#names.get(text);
    if (!name) {
      name = `aivault_${this.#names.size}`;
      this.#names.set(text, name);
    }
    return client.query<Row>({ name, text, values });
  }

  async #read<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#pool);
    } catch (err) {
      throw translate(err);
    }
  }

  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw translate(err);
    }
    let broken = false;
    // A checked-out client has no listener of the pool's: a server that goes away mid-
    // transaction makes pg emit 'error' on it, which would otherwise crash the process.
    // The pending query rejects on its own; the connection is discarded on release.
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      this.#stateChanged.delete(client);
      const result = await fn(client);
      if (this.#stateChanged.has(client)) await this.#reseal(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true; // the connection is gone; the server rolls back on its own
      }
      throw translate(err);
    } finally {
      this.#stateChanged.delete(client);
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /**
   * Every change to the sealed state bumps the generation, which also queues writers on its
   * row; the transaction is resealed before it commits, so the last writer's seal covers all.
   */
  #bump(c: Client): Promise<unknown> {
    this.#stateChanged.add(c);
    return this.#q(c, "INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text");
  }

  generation(): Promise<number> {
    return this.#read(async (c) => Number((await this.#q(c, "SELECT value FROM meta WHERE key = 'generation'")).rows[0]?.value ?? 0));
  }

  readMeta(): Promise<VaultMeta | undefined> {
    return this.#read(async (c) => {
      return toMeta((await this.#q(c, "SELECT key, value FROM meta WHERE key <> 'generation'")).rows);
    });
  }

  initialize(meta: VaultMeta): Promise<void> {
    return this.#tx(async (c) => {
      await c.query('LOCK TABLE meta IN EXCLUSIVE MODE');
      const existing = await c.query("SELECT count(*)::int AS n FROM meta WHERE key <> 'generation'");
      if (Number(existing.rows[0].n) > 0) throw new AivaultError('VAULT_ALREADY_INITIALIZED', 'this database already holds a vault (in this schema)');
      for (const [k, v] of [['vault_id', meta.vaultId], ['format_version', String(meta.formatVersion)], ['key_provider', meta.keyProvider], ['key_check', meta.keyCheck], ['created_at', meta.createdAt]]) {
        await c.query('INSERT INTO meta (key, value) VALUES ($1, $2)', [k, v]);
      }
      await this.#bump(c);
    });
  }

  listSecrets(filter: SecretFilter = {}): Promise<SecretRecord[]> {
    return this.#read(async (c) =>
      (
        await this.#q(
          c,
          `SELECT * FROM secrets WHERE ($1::text IS NULL OR scope = $1) AND ($2::text IS NULL OR name = $2) AND ($3::text IS NULL OR pinned_provider = $3) ORDER BY name, scope`,
          [filter.scope ?? null, filter.name ?? null, filter.pinnedProvider ?? null],
        )
      ).rows.map(toSecret),
    );
  }

  getSecret(id: string): Promise<SecretRecord | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT * FROM secrets WHERE id = $1', [id])).rows[0];
      return row ? toSecret(row) : undefined;
    });
  }

  listSecretVersions(secretId: string): Promise<SecretVersionRecord[]> {
    return this.#read(async (c) => (await this.#q(c, 'SELECT * FROM secret_versions WHERE secret_id = $1 ORDER BY version', [secretId])).rows.map(toVersion));
  }

  getSecretVersion(secretId: string, version: number): Promise<SecretVersionRecord | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT * FROM secret_versions WHERE secret_id = $1 AND version = $2', [secretId, version])).rows[0];
      return row ? toVersion(row) : undefined;
    });
  }

  /** A writer sealing under a key the vault no longer uses (rotated elsewhere) is refused. */
  async #requireKeyCheck(c: Client, keyCheck: string | undefined): Promise<void> {
    if (keyCheck === undefined) return;
    // FOR SHARE: a rotation (which updates this row) cannot commit between the check and our write.
    const row = (await this.#q(c, "SELECT value FROM meta WHERE key = 'key_check' FOR SHARE")).rows[0];
    if (row?.value !== keyCheck) throw new AivaultError('VAULT_KEY_MISMATCH', 'the master key was rotated by another process; reopen the vault (restart the daemon) with the new key');
  }

  createSecret(secret: SecretRecord, first: SecretVersionRecord, keyCheck?: string): Promise<void> {
    return this.writeSecrets([{ kind: 'create', secret, first }], keyCheck);
  }

  writeSecrets(writes: readonly SecretWrite[], keyCheck?: string): Promise<void> {
    return this.#tx(async (c) => {
      await this.#requireKeyCheck(c, keyCheck);
      // Lock order as in every secret writer: key check, the rows rotated, then the generation.
      for (const w of writes) if (w.kind === 'rotate') await this.#requireCurrent(c, w.secretId, w.expectedCurrent);
      await this.#bump(c);
      for (const w of writes) {
        if (w.kind === 'create') await this.#insertSecret(c, w.secret, w.first);
        else await this.#rotate(c, w.secretId, w.expectedCurrent, w.next, w.updatedAt, w.allowShort);
      }
    });
  }

  async #insertSecret(c: Client, secret: SecretRecord, first: SecretVersionRecord): Promise<void> {
    try {
      await this.#q(c, 'INSERT INTO secrets (id, name, scope, description, pinned_provider, current_version, created_at, updated_at, aliases, allow_short) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)', [
        secret.id, secret.name, secret.scope, secret.description, secret.pinnedProvider, secret.currentVersion, secret.createdAt, secret.updatedAt, JSON.stringify(secret.aliases), secret.allowShort ? 1 : 0,
      ]);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AivaultError('SECRET_ALREADY_EXISTS', `a secret named ${secret.name} already exists in scope ${secret.scope}`);
      throw err;
    }
    await this.#requireFreeAliases(c, secret.id, secret.scope, secret.aliases);
    await this.#insertVersion(c, first);
  }

  #insertVersion(c: Client, v: SecretVersionRecord): Promise<unknown> {
    return this.#q(c, 'INSERT INTO secret_versions (secret_id, version, wrapped_key, ciphertext, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
      v.secretId, v.version, bytes(v.wrappedKey), bytes(v.ciphertext), v.fingerprint, v.createdAt,
    ]);
  }

  /** Locks the secret's row for the rest of the transaction and checks its current version. */
  async #requireCurrent(c: Client, secretId: string, expectedCurrent: number): Promise<void> {
    const row = (await this.#q(c, 'SELECT current_version FROM secrets WHERE id = $1 FOR UPDATE', [secretId])).rows[0];
    if (!row) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${secretId}`);
    if (Number(row.current_version) !== expectedCurrent) throw new AivaultError('CONCURRENT_MODIFICATION', 'the secret changed while this command ran (another writer won); retry');
  }

  rotateSecret(secretId: string, expectedCurrent: number, next: SecretVersionRecord, updatedAt: string, keyCheck?: string): Promise<void> {
    return this.writeSecrets([{ kind: 'rotate', secretId, expectedCurrent, next, updatedAt }], keyCheck);
  }

  /** A rotation whose row #requireCurrent already locked and checked. */
  async #rotate(c: Client, secretId: string, expectedCurrent: number, next: SecretVersionRecord, updatedAt: string, allowShort: boolean | undefined): Promise<void> {
    await this.#insertVersion(c, next);
    await this.#q(c, 'UPDATE secrets SET current_version = $1, updated_at = $2 WHERE id = $3', [next.version, updatedAt, secretId]);
    if (allowShort !== undefined) await this.#q(c, 'UPDATE secrets SET allow_short = $1 WHERE id = $2', [allowShort ? 1 : 0, secretId]);
    await this.#q(c, 'DELETE FROM secret_versions WHERE secret_id = $1 AND version NOT IN ($2, $3)', [secretId, next.version, expectedCurrent]);
  }

  setCurrentVersion(secretId: string, expectedCurrent: number, version: number, updatedAt: string): Promise<void> {
    return this.#tx(async (c) => {
      await this.#requireCurrent(c, secretId, expectedCurrent);
      await this.#bump(c);
      const exists = await this.#q(c, 'SELECT 1 FROM secret_versions WHERE secret_id = $1 AND version = $2', [secretId, version]);
      if (!exists.rowCount) throw new AivaultError('NO_PREVIOUS_VERSION', `version ${version} of this secret is not kept`);
      await this.#q(c, 'UPDATE secrets SET current_version = $1, updated_at = $2 WHERE id = $3', [version, updatedAt, secretId]);
    });
  }

  deleteSecret(secretId: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      return ((await this.#q(c, 'DELETE FROM secrets WHERE id = $1', [secretId])).rowCount ?? 0) > 0;
    });
  }

  async #requireFreeAliases(c: Client, secretId: string, scope: string, aliases: readonly string[]): Promise<void> {
    if (aliases.length === 0) return;
    // Serialise alias changes within the scope: two writers cannot both take one alias.
    await this.#q(c, 'SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [this.#schema, `aliases:${scope}`]);
    const others = (await this.#q(c, 'SELECT name, aliases FROM secrets WHERE scope = $1 AND id <> $2', [scope, secretId])).rows;
    for (const o of others) {
      const taken = parseJson<string[]>(o.aliases, 'secret aliases').find((a) => aliases.includes(a));
      if (taken) throw new AivaultError('SECRET_ALREADY_EXISTS', `the alias ${taken} already names ${o.name as string} in scope ${scope}`);
    }
  }

  setSecretGroup(secretId: string, group: string, attached: boolean, updatedAt: string): Promise<boolean> {
    return this.#tx(async (c) => {
      const row = (await this.#q(c, 'SELECT groups FROM secrets WHERE id = $1 FOR UPDATE', [secretId])).rows[0];
      if (!row) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${secretId}`);
      const next = editGroups(parseJson<string[]>(row.groups, 'secret groups'), group, attached);
      if (!next) return false;
      await this.#bump(c);
      await this.#q(c, 'UPDATE secrets SET groups = $1, updated_at = $2 WHERE id = $3', [JSON.stringify(next), updatedAt, secretId]);
      return true;
    });
  }

  updateSecretIdentity(secretId: string, change: { name?: string; aliases?: string[]; allowShort?: boolean }, updatedAt: string): Promise<void> {
    return this.#tx(async (c) => {
      const row = (await this.#q(c, 'SELECT scope FROM secrets WHERE id = $1 FOR UPDATE', [secretId])).rows[0];
      if (!row) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${secretId}`);
      await this.#bump(c);
      if (change.allowShort !== undefined) await this.#q(c, 'UPDATE secrets SET allow_short = $1, updated_at = $2 WHERE id = $3', [change.allowShort ? 1 : 0, updatedAt, secretId]);
      if (change.aliases) {
        await this.#requireFreeAliases(c, secretId, row.scope as string, change.aliases);
        await this.#q(c, 'UPDATE secrets SET aliases = $1, updated_at = $2 WHERE id = $3', [JSON.stringify(change.aliases), updatedAt, secretId]);
      }
      if (change.name !== undefined) {
        try {
          await this.#q(c, 'UPDATE secrets SET name = $1, updated_at = $2 WHERE id = $3', [change.name, updatedAt, secretId]);
        } catch (err) {
          if (isUniqueViolation(err)) throw new AivaultError('SECRET_ALREADY_EXISTS', `a secret named ${change.name} already exists in scope ${row.scope as string}`);
          throw err;
        }
      }
    });
  }

  rekey(change: Rekey, expectedGeneration: number, expectedKeyCheck: string): Promise<void> {
    return this.#tx(async (c) => {
      // Lock order as in every secret writer (key check, then generation), so none deadlocks with us;
      // writers then wait until we commit and see the new key check.
      const check = (await this.#q(c, "SELECT value FROM meta WHERE key = 'key_check' FOR UPDATE")).rows[0];
      if (check?.value !== expectedKeyCheck) throw new AivaultError('VAULT_KEY_MISMATCH', 'the master key was rotated by another process');
      const generation = Number((await this.#q(c, "SELECT value FROM meta WHERE key = 'generation' FOR UPDATE")).rows[0]?.value ?? 0);
      if (generation !== expectedGeneration) throw new AivaultError('CONCURRENT_MODIFICATION', 'the vault changed during the rotation; nothing was changed, run it again');
      if (change.versions.length > 0) {
        const r = await this.#q(c, 'UPDATE secret_versions s SET wrapped_key = v.wrapped FROM unnest($1::text[], $2::int[], $3::bytea[]) AS v(secret_id, version, wrapped) WHERE s.secret_id = v.secret_id AND s.version = v.version', [
          change.versions.map((v) => v.secretId), change.versions.map((v) => v.version), change.versions.map((v) => bytes(v.wrappedKey)),
        ]);
        if (r.rowCount !== change.versions.length) throw new AivaultError('CONCURRENT_MODIFICATION', 'a secret version vanished during the rotation; nothing was changed');
      }
      const total = Number((await this.#q(c, 'SELECT count(*)::int AS n FROM secret_versions')).rows[0]!.n);
      if (total !== change.versions.length) throw new AivaultError('CONCURRENT_MODIFICATION', 'secret versions appeared during the rotation; nothing was changed');
      for (const [k, v] of [['key_provider', change.keyProvider], ['key_check', change.keyCheck], ['keyring', change.keyring]] as const) {
        await this.#q(c, 'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [k, v]);
      }
      await this.#q(c, 'DELETE FROM oauth_tokens');
      await this.#bump(c);
    });
  }

  listCredentials(): Promise<CredentialRecord[]> {
    return this.#read(async (c) => (await this.#q(c, 'SELECT * FROM credentials ORDER BY name')).rows.map(toCredential));
  }

  getCredential(name: string): Promise<CredentialRecord | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT * FROM credentials WHERE name = $1', [name])).rows[0];
      return row ? toCredential(row) : undefined;
    });
  }

  createCredential(r: CredentialRecord): Promise<void> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      try {
        await this.#q(c, 'INSERT INTO credentials (name, provider, auth, bindings, hosts, allow_http, allow_private_network, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
          r.name, r.provider, JSON.stringify(r.auth), JSON.stringify(r.bindings), JSON.stringify(r.hosts), r.allowHttp ? 1 : 0, r.allowPrivateNetwork ? 1 : 0, r.createdAt,
        ]);
      } catch (err) {
        if (isUniqueViolation(err)) throw new AivaultError('CREDENTIAL_ALREADY_EXISTS', `a credential named ${r.name} already exists`);
        throw err;
      }
    });
  }

  deleteCredential(name: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      const users = (await this.#q(c, 'SELECT id FROM capabilities WHERE credential = $1 ORDER BY id', [name])).rows;
      if (users.length > 0) throw new AivaultError('CREDENTIAL_IN_USE', `capabilities still use ${name}: ${users.map((u) => u.id as string).join(', ')}; delete them first`);
      return ((await this.#q(c, 'DELETE FROM credentials WHERE name = $1', [name])).rowCount ?? 0) > 0;
    });
  }

  getCapabilityPolicy(capability: string): Promise<CapabilityPolicy | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT policy FROM capability_policies WHERE capability = $1', [capability])).rows[0];
      return row ? parseJson<CapabilityPolicy>(row.policy, 'capability policy') : undefined;
    });
  }

  putCapabilityPolicy(capability: string, policy: CapabilityPolicy): Promise<void> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      await this.#q(c, 'INSERT INTO capability_policies (capability, policy) VALUES ($1, $2) ON CONFLICT (capability) DO UPDATE SET policy = EXCLUDED.policy', [capability, JSON.stringify(policy)]);
    });
  }

  deleteCapabilityPolicy(capability: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      return ((await this.#q(c, 'DELETE FROM capability_policies WHERE capability = $1', [capability])).rowCount ?? 0) > 0;
    });
  }

  listCapabilities(): Promise<CapabilityRecord[]> {
    return this.#read(async (c) => (await this.#q(c, 'SELECT * FROM capabilities ORDER BY id')).rows.map(toCapability));
  }

  getCapability(id: string): Promise<CapabilityRecord | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT * FROM capabilities WHERE id = $1', [id])).rows[0];
      return row ? toCapability(row) : undefined;
    });
  }

  createCapability(r: CapabilityRecord): Promise<void> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      // FOR SHARE: the credential cannot be deleted under us before we commit.
      if (!(await this.#q(c, 'SELECT 1 FROM credentials WHERE name = $1 FOR SHARE', [r.credential])).rowCount) {
        throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${r.credential}`);
      }
      try {
        await this.#q(c, 'INSERT INTO capabilities (id, provider, credential, hosts, methods, path_prefixes, limits, created_at, websocket) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
          r.id, r.provider, r.credential, JSON.stringify(r.hosts), JSON.stringify(r.methods), JSON.stringify(r.pathPrefixes), JSON.stringify(r.limits), r.createdAt, r.websocket,
        ]);
      } catch (err) {
        if (isUniqueViolation(err)) throw new AivaultError('CAPABILITY_ALREADY_EXISTS', `a capability ${r.id} already exists`);
        throw err;
      }
    });
  }

  deleteCapability(id: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      return ((await this.#q(c, 'DELETE FROM capabilities WHERE id = $1', [id])).rowCount ?? 0) > 0;
    });
  }

  listEndpointOverrides(): Promise<EndpointOverride[]> {
    return this.#read(async (c) => (await this.#q(c, 'SELECT * FROM endpoint_overrides ORDER BY provider')).rows.map(toOverride));
  }

  getEndpointOverride(provider: string): Promise<EndpointOverride | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT * FROM endpoint_overrides WHERE provider = $1', [provider])).rows[0];
      return row ? toOverride(row) : undefined;
    });
  }

  setEndpointOverride(o: EndpointOverride): Promise<void> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      await this.#q(
        c,
        `INSERT INTO endpoint_overrides (provider, hosts, token_endpoint, allow_http, allow_private_network, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (provider) DO UPDATE SET hosts = EXCLUDED.hosts, token_endpoint = EXCLUDED.token_endpoint, allow_http = EXCLUDED.allow_http,
           allow_private_network = EXCLUDED.allow_private_network, created_at = EXCLUDED.created_at`,
        [o.provider, JSON.stringify(o.hosts), o.tokenEndpoint, o.allowHttp ? 1 : 0, o.allowPrivateNetwork ? 1 : 0, o.createdAt],
      );
    });
  }

  deleteEndpointOverride(provider: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      return ((await this.#q(c, 'DELETE FROM endpoint_overrides WHERE provider = $1', [provider])).rowCount ?? 0) > 0;
    });
  }

  putFlow(flow: FlowRecord): Promise<void> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      try {
        await this.#q(c, 'INSERT INTO flows (id, definition, created_at) VALUES ($1, $2, $3)', [flow.id, JSON.stringify(flow), flow.createdAt]);
      } catch (err) {
        if (isUniqueViolation(err)) throw new AivaultError('CAPABILITY_ALREADY_EXISTS', `a flow ${flow.id} already exists`);
        throw err;
      }
    });
  }

  getFlow(id: string): Promise<FlowRecord | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT definition FROM flows WHERE id = $1', [id])).rows[0];
      return row ? parseJson<FlowRecord>(row.definition, 'flow') : undefined;
    });
  }

  listFlows(): Promise<FlowRecord[]> {
    return this.#read(async (c) => (await this.#q(c, 'SELECT definition FROM flows ORDER BY id')).rows.map((r) => parseJson<FlowRecord>(r.definition, 'flow')));
  }

  deleteFlow(id: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      return ((await this.#q(c, 'DELETE FROM flows WHERE id = $1', [id])).rowCount ?? 0) > 0;
    });
  }

  listOwners(): Promise<OwnerRecord[]> {
    return this.#read(async (c) => (await this.#q(c, 'SELECT * FROM owners ORDER BY created_at, name')).rows.map(toOwner));
  }

  getOwner(idOrName: string): Promise<OwnerRecord | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT * FROM owners WHERE id = $1 OR name = $1', [idOrName])).rows[0];
      return row ? toOwner(row) : undefined;
    });
  }

  addOwner(o: OwnerRecord): Promise<void> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      try {
        await this.#q(c, 'INSERT INTO owners (id, name, public_key, created_at) VALUES ($1, $2, $3, $4)', [o.id, o.name, o.publicKey, o.createdAt]);
      } catch (err) {
        if (isUniqueViolation(err)) throw new AivaultError('OWNER_ALREADY_EXISTS', `an owner named ${o.name} already exists`);
        throw err;
      }
    });
  }

  removeOwner(id: string): Promise<boolean> {
    return this.#tx(async (c) => {
      // The table lock makes two concurrent removals queue, so they cannot both leave one owner.
      await c.query('LOCK TABLE owners IN EXCLUSIVE MODE');
      const n = Number((await this.#q(c, 'SELECT count(*)::int AS n FROM owners')).rows[0]!.n);
      if (n <= 1 && (await this.#q(c, 'SELECT 1 FROM owners WHERE id = $1', [id])).rowCount) {
        throw new AivaultError('LAST_OWNER', 'the last owner cannot be removed; add another owner first');
      }
      await this.#bump(c);
      return ((await this.#q(c, 'DELETE FROM owners WHERE id = $1', [id])).rowCount ?? 0) > 0;
    });
  }

  createAgent(a: AgentRecord): Promise<void> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      try {
        await this.#q(c, 'INSERT INTO agents (id, name, token_hash, public_key, status, created_at, revoked_at, context) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
          a.id, a.name, a.tokenHash, a.publicKey, a.status, a.createdAt, a.revokedAt, a.context,
        ]);
      } catch (err) {
        if (isUniqueViolation(err)) throw new AivaultError('AGENT_ALREADY_EXISTS', `an agent named ${a.name} already exists`);
        throw err;
      }
    });
  }

  listAgents(): Promise<AgentRecord[]> {
    return this.#read(async (c) => (await this.#q(c, 'SELECT * FROM agents ORDER BY name')).rows.map(toAgent));
  }

  getAgent(idOrName: string): Promise<AgentRecord | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT * FROM agents WHERE id = $1 OR name = $1', [idOrName])).rows[0];
      return row ? toAgent(row) : undefined;
    });
  }

  findAgentByTokenHash(hash: string): Promise<AgentRecord | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT * FROM agents WHERE token_hash = $1', [hash])).rows[0];
      return row ? toAgent(row) : undefined;
    });
  }

  revokeAgent(id: string, at: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      return ((await this.#q(c, "UPDATE agents SET status = 'revoked', revoked_at = $1 WHERE id = $2 AND status = 'active'", [at, id])).rowCount ?? 0) > 0;
    });
  }

  setAgentContext(id: string, context: string | null): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      return ((await this.#q(c, 'UPDATE agents SET context = $1 WHERE id = $2', [context, id])).rowCount ?? 0) > 0;
    });
  }

  putGrant(g: GrantRecord): Promise<void> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      await this.#q(
        c,
        `INSERT INTO grants (agent_id, capability, methods, rate_count, rate_period, expires_at, created_at, approve, first_approved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (agent_id, capability) DO UPDATE SET methods = EXCLUDED.methods, rate_count = EXCLUDED.rate_count, rate_period = EXCLUDED.rate_period,
           expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at, approve = EXCLUDED.approve, first_approved_at = EXCLUDED.first_approved_at`,
        [g.agentId, g.capability, g.methods ? JSON.stringify(g.methods) : null, g.rate?.count ?? null, g.rate?.periodMs ?? null, g.expiresAt, g.createdAt, g.approve, g.firstApprovedAt],
      );
    });
  }

  getGrant(agentId: string, capability: string): Promise<GrantRecord | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT * FROM grants WHERE agent_id = $1 AND capability = $2', [agentId, capability])).rows[0];
      return row ? toGrant(row) : undefined;
    });
  }

  listGrants(agentId?: string): Promise<GrantRecord[]> {
    return this.#read(async (c) => (await this.#q(c, 'SELECT * FROM grants WHERE $1::text IS NULL OR agent_id = $1 ORDER BY agent_id, capability', [agentId ?? null])).rows.map(toGrant));
  }

  deleteGrant(agentId: string, capability: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      return ((await this.#q(c, 'DELETE FROM grants WHERE agent_id = $1 AND capability = $2', [agentId, capability])).rowCount ?? 0) > 0;
    });
  }

  markGrantApproved(agentId: string, capability: string, at: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#bump(c);
      return ((await this.#q(c, 'UPDATE grants SET first_approved_at = $1 WHERE agent_id = $2 AND capability = $3 AND first_approved_at IS NULL', [at, agentId, capability])).rowCount ?? 0) > 0;
    });
  }

  putApproval(a: ApprovalRecord): Promise<void> {
    return this.#read(async (c) => {
      await this.#q(c, 'INSERT INTO approvals (id, agent_id, capability, method, host, path, status, requested_at, expires_at, decided_at, decided_by, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)', [
        a.id, a.agentId, a.capability, a.method, a.host, a.path, a.status, a.requestedAt, a.expiresAt, a.decidedAt, a.decidedBy, a.details ? JSON.stringify(a.details) : null,
      ]);
    });
  }

  getApproval(id: string): Promise<ApprovalRecord | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT * FROM approvals WHERE id = $1', [id])).rows[0];
      return row ? toApproval(row) : undefined;
    });
  }

  listApprovals(status?: ApprovalStatus): Promise<ApprovalRecord[]> {
    return this.#read(async (c) => (await this.#q(c, 'SELECT * FROM approvals WHERE $1::text IS NULL OR status = $1 ORDER BY requested_at, id', [status ?? null])).rows.map(toApproval));
  }

  decideApproval(id: string, status: Exclude<ApprovalStatus, 'pending'>, by: string, at: string): Promise<boolean> {
    return this.#read(async (c) => ((await this.#q(c, "UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3 WHERE id = $4 AND status = 'pending'", [status, by, at, id])).rowCount ?? 0) > 0);
  }

  rememberNonce(key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.#read(async (c) => {
      if (now - this.#lastNoncePrune > NONCE_PRUNE_MS) {
        this.#lastNoncePrune = now;
        await this.#q(c, 'DELETE FROM nonces WHERE expires_at <= $1', [now]);
      }
      // One statement: two replicas racing on one nonce cannot both insert it.
      const r = await this.#q(c, 'INSERT INTO nonces (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE nonces.expires_at <= $3', [key, expiresAt, now]);
      return (r.rowCount ?? 0) > 0;
    });
  }

  updateBucket<T>(key: string, step: (state: BucketState | undefined) => { state: BucketState; result: T }): Promise<T> {
    return this.#tx(async (c) => {
      // Make sure the row exists, then lock it: replicas taking from one bucket queue here.
      await this.#q(c, 'INSERT INTO rate_buckets (key, tokens, at) VALUES ($1, NULL, 0) ON CONFLICT (key) DO NOTHING', [key]);
      const row = (await this.#q(c, 'SELECT tokens, at FROM rate_buckets WHERE key = $1 FOR UPDATE', [key])).rows[0]!;
      const { state, result } = step(row.tokens == null ? undefined : { tokens: Number(row.tokens), at: Number(row.at) });
      await this.#q(c, 'UPDATE rate_buckets SET tokens = $2, at = $3 WHERE key = $1', [key, state.tokens, state.at]);
      return result;
    });
  }

  acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    return this.#read(async (c) => {
      const r = await this.#q(
        c,
        'INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at WHERE leases.expires_at <= $4 OR leases.holder = EXCLUDED.holder',
        [name, holder, now + ttlMs, now],
      );
      return (r.rowCount ?? 0) > 0;
    });
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return this.#read(async (c) => {
      await this.#q(c, 'DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]);
    });
  }

  getOAuthToken(credential: string): Promise<SealedToken | undefined> {
    return this.#read(async (c) => {
      const row = (await this.#q(c, 'SELECT sealed, expires_at FROM oauth_tokens WHERE credential = $1', [credential])).rows[0];
      return row ? { sealed: row.sealed as Uint8Array, expiresAt: Number(row.expires_at) } : undefined;
    });
  }

  putOAuthToken(credential: string, token: SealedToken): Promise<void> {
    return this.#read(async (c) => {
      await this.#q(c, 'INSERT INTO oauth_tokens (credential, sealed, expires_at) VALUES ($1, $2, $3) ON CONFLICT (credential) DO UPDATE SET sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at', [
        credential, bytes(token.sealed), token.expiresAt,
      ]);
    });
  }

  deleteOAuthToken(credential: string): Promise<void> {
    return this.#read(async (c) => {
      await this.#q(c, 'DELETE FROM oauth_tokens WHERE credential = $1', [credential]);
    });
  }

  async #metaJson<T>(c: Client, table: 'audit_meta' | 'meta', key: string, what: string): Promise<T | undefined> {
    const row = (await this.#q(c, `SELECT value FROM ${table} WHERE key = $1`, [key])).rows[0];
    return row ? parseJson<T>(row.value, what) : undefined;
  }

  #putMeta(c: Client, table: 'audit_meta' | 'meta', key: string, value: string): Promise<unknown> {
    return this.#q(c, `INSERT INTO ${table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, [key, value]);
  }

  #auditHead(c: Client): Promise<AuditHead | undefined> {
    return this.#metaJson<AuditHead>(c, 'audit_meta', 'head', 'audit head');
  }

  async #countOutcomes(c: Client): Promise<number> {
    return Number((await this.#q(c, 'SELECT count(*)::int AS n FROM audit_log WHERE outcome IS NOT NULL')).rows[0]!.n);
  }

  /**
   * One chain for every replica: the advisory lock serialises appenders, so each batch
   * extends the head the previous one (from any process) committed. The anchor is written
   * with the head (one transaction here, so the two never differ but by tampering).
   */
  writeAudit(appends: readonly AuditAppend[], outcomes: readonly AuditOutcomeUpdate[], sealer: AuditSealer): Promise<number[]> {
    return this.#tx(async (c) => {
      // Outcomes move the head too (it counts them): every batch takes the lock.
      await this.#q(c, 'SELECT pg_advisory_xact_lock(hashtext($1), $2)', [this.#schema, AUDIT_LOCK]);
      const head = await this.#auditHead(c);
      const anchor = await this.#metaJson<AuditHead>(c, 'meta', AUDIT_ANCHOR_KEY, 'audit anchor');
      const batch = chainBatch(sealer, head, anchor, appends, AUDIT_GENESIS);
      if (batch.rows.length > 0) {
        // One statement for the whole batch: a column of values per field.
        const columns: unknown[][] = Array.from({ length: 15 }, () => []);
        for (const { seq, entry: e, prevHash, hash, outcome, outcomeMac } of batch.rows) {
          [seq, e.at, e.actor, e.action, e.target, e.capability, e.method, e.host, e.path, e.decision, e.reason, prevHash, hash, outcome ? JSON.stringify(outcome) : null, outcomeMac].forEach((v, i) => columns[i]!.push(v));
        }
        await this.#q(
          c,
          `INSERT INTO audit_log (seq, at, actor, action, target, capability, method, host, path, decision, reason, prev_hash, hash, outcome, outcome_mac)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])`,
          columns,
        );
      }
      let written = batch.outcomes;
      if (outcomes.length > 0) {
        const r = await this.#q(c, 'UPDATE audit_log a SET outcome = v.outcome, outcome_mac = v.mac FROM unnest($1::bigint[], $2::text[], $3::text[]) AS v(seq, outcome, mac) WHERE a.seq = v.seq AND a.outcome IS NULL', [
          outcomes.map((o) => o.seq), outcomes.map((o) => JSON.stringify(o.outcome)), outcomes.map((o) => sealer.outcomeMac(o.seq, o.outcome)),
        ]);
        written += r.rowCount ?? 0;
      }
      if (batch.rows.length > 0 || written > 0) {
        const before = head?.outcomes ?? (head ? (await this.#countOutcomes(c)) - written : 0);
        const last = batch.rows.at(-1) ?? head ?? { seq: 0, hash: AUDIT_GENESIS };
        const next = JSON.stringify(nextHead(sealer, head, last, before + written, before));
        await this.#putMeta(c, 'audit_meta', 'head', next);
        await this.#putMeta(c, 'meta', AUDIT_ANCHOR_KEY, next);
      }
      return batch.seqs;
    });
  }

  readAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    return this.#read(async (c) =>
      (
        await this.#q(c, 'SELECT * FROM audit_log WHERE seq > $1 AND ($2::text IS NULL OR capability = $2) AND ($3::text IS NULL OR at >= $3) ORDER BY seq LIMIT $4', [
          filter.afterSeq ?? 0, filter.capability ?? null, filter.since ?? null, filter.limit ?? null,
        ])
      ).rows.map(toAudit),
    );
  }

  readAuditHead(): Promise<AuditHead | undefined> {
    return this.#read((c) => this.#auditHead(c));
  }

  readAuditAnchor(): Promise<AuditHead | undefined> {
    return this.#read((c) => this.#metaJson<AuditHead>(c, 'meta', AUDIT_ANCHOR_KEY, 'audit anchor'));
  }

  countAuditOutcomes(): Promise<number> {
    return this.#read((c) => this.#countOutcomes(c));
  }

  useStateSealer(sealer: StateSealer): void {
    this.#sealer = sealer;
  }

  async #digests(c: Client): Promise<Record<string, string>> {
    const tables: Record<string, string> = {};
    for (const table of SEALED_TABLES) tables[table] = tableDigest((await this.#q(c, sealedQuery(table, (i) => `$${i}`), table === 'meta' ? [...UNSEALED_META] : [])).rows);
    return tables;
  }

  /** Writes the seal over the state as this transaction leaves it (none without a sealer: verify then reports it stale). */
  async #reseal(c: Client): Promise<void> {
    if (!this.#sealer) return;
    const tables = await this.#digests(c);
    await this.#putMeta(c, 'meta', STATE_SEAL_KEY, JSON.stringify({ tables, mac: this.#sealer.mac(tables) } satisfies StateSeal));
  }

  async sealState(): Promise<void> {
    if (!this.#sealer) throw new AivaultError('INTERNAL_ERROR', 'sealing the state needs the unlocked vault');
    await this.#tx(async (c) => {
      await this.#bump(c);
      await this.#q(c, 'DELETE FROM meta WHERE key = $1', [UNSEALED_KEY]);
    });
  }

  readState(): Promise<StateReading> {
    return this.#tx(async (c) => {
      // One snapshot: the seal and the tables as one writer left them.
      await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      return {
        seal: await this.#metaJson<StateSeal>(c, 'meta', STATE_SEAL_KEY, 'state seal'),
        current: await this.#digests(c),
        unsealed: ((await this.#q(c, 'SELECT 1 FROM meta WHERE key = $1', [UNSEALED_KEY])).rowCount ?? 0) > 0,
        anchored: ((await this.#q(c, 'SELECT 1 FROM meta WHERE key = $1', [AUDIT_ANCHOR_KEY])).rowCount ?? 0) > 0,
      };
    });
  }

  /** The server checks its own pages; nothing for aivault to run here. */
  async integrityCheck(): Promise<string[]> {
    return [];
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }
}
