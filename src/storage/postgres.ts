// The PostgreSQL engine's dialect (see core.ts for the operations): one database that
// several daemons share, through a pool. Writers lock the rows they change; those that
// must not interleave (the audit chain, alias changes, migrations) take an advisory lock
// inside their transaction. Losing
// the server fails closed with STORAGE_UNAVAILABLE, and the pool reconnects on its own
// once the server is back.

import { userInfo } from 'node:os';
import type pg from 'pg';
import { AivaultError } from '../errors.ts';
import { StorageCore } from './core.ts';
import type { Awaitable, Column, Dialect, Params, Statements } from './dialect.ts';
import type { Row } from './rows.ts';
import { POSTGRES_MIGRATIONS } from './postgres-schema.ts';

export const POSTGRES_SCHEMA_VERSION = POSTGRES_MIGRATIONS.length;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** Advisory lock id (second key; the first is the schema's hash) of migrations; core.ts numbers its own from 1. */
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

/** Bytes go to pg as Buffers (a plain Uint8Array in an array parameter would not). */
function bytes(value: unknown): unknown {
  return value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value;
}

/** `?` and `?N` placeholders as PostgreSQL's `$N`. */
function numbered(sql: string): string {
  let next = 0;
  return sql.replace(/\?(\d*)/g, (_, n: string) => `$${n || ++next}`);
}

class PostgresDialect implements Dialect {
  readonly engine = 'postgres';
  readonly forUpdate = ' FOR UPDATE';
  readonly forShare = ' FOR SHARE';
  readonly byteOrder = ' COLLATE "C"';
  readonly auditTable = { log: 'audit_log', meta: 'audit_meta' };
  readonly schema: string;
  readonly #pool: pg.Pool;
  /** Each statement's server-side name and $N text: parsed once per connection. */
  readonly #prepared = new Map<string, { name: string; text: string }>();

  constructor(pool: pg.Pool, schema: string) {
    this.#pool = pool;
    this.schema = schema;
  }

  #q(client: Client, sql: string, params: Params = []): Promise<pg.QueryResult<Row>> {
    let prepared = this.#prepared.get(sql);
    if (!prepared) {
      prepared = { name: `aivault_${this.#prepared.size}`, text: numbered(sql) };
      this.#prepared.set(sql, prepared);
    }
    return client.query<Row>({ ...prepared, values: params.map(bytes) });
  }

  #statements(client: Client): Statements {
    return {
      all: async (sql, params) => (await this.#q(client, sql, params)).rows,
      get: async (sql, params) => (await this.#q(client, sql, params)).rows[0],
      run: async (sql, params) => (await this.#q(client, sql, params)).rowCount ?? 0,
    };
  }

  async read<T>(fn: (s: Statements) => Awaitable<T>): Promise<T> {
    try {
      return await fn(this.#statements(this.#pool));
    } catch (err) {
      throw translate(err);
    }
  }

  /** Each statement commits on its own: no BEGIN/COMMIT round trips. */
  atomic<T>(fn: (s: Statements) => Awaitable<T>): Promise<T> {
    return this.read(fn);
  }

  transaction<T>(fn: (s: Statements) => Awaitable<T>): Promise<T> {
    return this.tx(async (c) => fn(this.#statements(c)));
  }

  snapshot<T>(fn: (s: Statements) => Awaitable<T>): Promise<T> {
    return this.tx(async (c) => {
      await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      return fn(this.#statements(c));
    });
  }

  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
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
      const result = await fn(client);
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
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /** Transaction-scoped advisory locks, keyed within this schema. */
  async lock(s: Statements, key: number | string): Promise<void> {
    if (typeof key === 'number') await s.get('SELECT pg_advisory_xact_lock(hashtext(?1), ?2)', [this.schema, key]);
    else await s.get('SELECT pg_advisory_xact_lock(hashtext(?1), hashtext(?2))', [this.schema, key]);
  }

  async lockTable(s: Statements, table: string): Promise<void> {
    await s.run(`LOCK TABLE ${table} IN EXCLUSIVE MODE`);
  }

  /** One statement for the whole batch, over a typed array per column. */
  async eachRow(s: Statements, columns: readonly Column[], rows: readonly (readonly unknown[])[], sql: (source: string) => string): Promise<number> {
    if (rows.length === 0) return 0;
    const source = `unnest(${columns.map(([, type], i) => `?${i + 1}::${type}[]`).join(', ')}) AS v(${columns.map(([name]) => name).join(', ')})`;
    return s.run(sql(source), columns.map((_, i) => rows.map((row) => bytes(row[i]))));
  }

  isUniqueViolation(err: unknown): boolean {
    return (err as { code?: unknown })?.code === '23505';
  }

  /** The server checks its own pages; nothing for aivault to run here. */
  async integrityCheck(): Promise<string[]> {
    return [];
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }

  /** Applies pending migrations under an advisory lock, so replicas starting together apply each once. */
  async migrate(create: boolean): Promise<void> {
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1), $2)', [this.schema, MIGRATION_LOCK]);
      const exists = await c.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [this.schema, 'schema_version']);
      let version = 0;
      if (exists.rowCount) version = Number((await c.query('SELECT version FROM schema_version')).rows[0]?.version ?? 0);
      if (version === 0 && !create) throw new AivaultError('VAULT_NOT_INITIALIZED', `no aivault vault in schema "${this.schema}" of this database: initialize it first`);
      if (version > POSTGRES_SCHEMA_VERSION) throw new AivaultError('VAULT_VERSION_UNSUPPORTED', `this vault uses storage schema ${version}; this aivault reads up to ${POSTGRES_SCHEMA_VERSION}`);
      await this.#refuseForeignObjects(c);
      if (version === POSTGRES_SCHEMA_VERSION) return;
      if (version === 0) {
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
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
      [this.schema],
    );
    const row = found.rows[0];
    if (row) {
      throw new AivaultError('VAULT_TAMPERED', `schema "${this.schema}" holds a ${String(row.kind)} named ${JSON.stringify(row.name)}, which aivault never creates: the vault was tampered with; nothing was written`);
    }
  }
}

export class PostgresStorage extends StorageCore {
  /** The schema that holds this vault's tables. */
  readonly schema: string;

  private constructor(dialect: PostgresDialect) {
    super(dialect);
    this.schema = dialect.schema;
  }

  static async connect(url: string, options: PostgresOptions = {}): Promise<PostgresStorage> {
    const { connectionString, schema } = parseDatabaseUrl(url);
    // pg is loaded by the vaults that use it, not by every process that can open a vault.
    const { default: { Pool } } = await import('pg');
    const pool = new Pool({
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
    const dialect = new PostgresDialect(pool, schema);
    try {
      await dialect.migrate(options.create === true);
      return new PostgresStorage(dialect);
    } catch (err) {
      await pool.end().catch(() => {});
      throw translate(err);
    }
  }
}
