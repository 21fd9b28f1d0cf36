// The embedded engine: one SQLite file through node:sqlite (no native addon), with the
// audit log in a file of its own. WAL with synchronous=FULL: an acknowledged write survives
// a crash or power loss, and readers in other processes never block the writer.
//
// node:sqlite is synchronous but the core (core.ts) awaits between statements: the
// process's connections therefore run one operation at a time, in turn. So an operation
// never lands inside another's open transaction on its connection (nor reads what that
// has not committed), and a second connection to the file (the audit's) never blocks the
// thread in BEGIN IMMEDIATE while the first holds the lock between two awaits.

import { closeSync, existsSync, fstatSync, openSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { AivaultError } from '../errors.ts';
import { StorageCore } from './core.ts';
import type { Awaitable, Column, Dialect, Statements } from './dialect.ts';
import type { Row } from './rows.ts';
import { AUDIT_SCHEMA, AUDIT_SCHEMA_VERSION, SQLITE_MIGRATIONS } from './sqlite-schema.ts';

/** Schema version this code reads and writes (PRAGMA user_version). */
export const SQLITE_SCHEMA_VERSION = SQLITE_MIGRATIONS.length;

/** How long a writer waits for another process's write lock before it gives up. */
export const BUSY_TIMEOUT_MS = 15_000;

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_PROTOCOL = 15;
const SQLITE_CORRUPT = 11;
const SQLITE_CANTOPEN = 14;
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;
const SQLITE_NOTADB = 26;

/**
 * The audit log lives in a file of its own (audit.db, attached as `audit`): its constant
 * appends then never disturb the pages and write-ahead log the broker reads secrets and
 * capabilities from, and never hold up a secret's write.
 */
export const AUDIT_FILE = 'audit.db';

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

function errcode(err: unknown): number | undefined {
  const e = err as SqliteError;
  return e?.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number' ? e.errcode : undefined;
}

/** Whether `err` (as translated) is another process holding the write lock. */
export function isBusy(err: unknown): boolean {
  const primary = (errcode((err as { cause?: unknown })?.cause) ?? 0) & 0xff;
  return primary === SQLITE_BUSY || primary === SQLITE_LOCKED;
}

/** Maps SQLite failures onto our stable codes; anything else is rethrown as is. */
function translate(err: unknown): unknown {
  const primary = (errcode(err) ?? 0) & 0xff;
  if (primary === SQLITE_CORRUPT || primary === SQLITE_NOTADB) {
    return new AivaultError('VAULT_CORRUPTED', 'the vault database is damaged (SQLite reports it malformed); restore it from a backup', { cause: err });
  }
  // PROTOCOL: SQLite gave up waiting for the write-ahead log's read marks (held by another process).
  if (primary === SQLITE_BUSY || primary === SQLITE_LOCKED || primary === SQLITE_PROTOCOL) {
    return new AivaultError('STORAGE_UNAVAILABLE', 'the vault database stayed locked by another process', { cause: err });
  }
  if (primary === SQLITE_CANTOPEN) {
    return new AivaultError('STORAGE_UNAVAILABLE', 'the vault database cannot be opened', { cause: err });
  }
  return err;
}

export interface SqliteOpenOptions {
  /** Create the file and its schema when missing (only `aivault init` does this). */
  create?: boolean;
  /**
   * FULL (default): every commit is flushed to disk before it returns. NORMAL: commits reach
   * the WAL (they survive a process crash) and the disk at the next checkpoint, so a power
   * loss can drop the last ones. Only an audit connection may opt into NORMAL.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /**
   * Wait for another process's write lock inside SQLite (blocking the thread), up to
   * BUSY_TIMEOUT_MS (default); or not at all, so the caller waits without blocking (see isBusy).
   */
  waitForLock?: boolean;
}

interface FileId {
  dev: number;
  ino: number;
}

function replaced(path: string, present: boolean): AivaultError {
  return new AivaultError('VAULT_TAMPERED', `${path} was ${present ? 'replaced' : 'removed'} while this process had it open; nothing was read or written, nor will be: restart it on the vault as it now is`);
}

/** This process's open descriptors and what each names (Linux's /proc/self/fd; elsewhere none are known). */
function descriptors(): Array<{ fd: number; target: string }> {
  if (process.platform !== 'linux') return [];
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [{ fd: Number(fd), target: readlinkSync(`/proc/self/fd/${fd}`) }];
    } catch {
      return []; // closed meanwhile
    }
  });
}

/**
 * What this process holds open of `paths`, among `fds`, each with the file's identity and
 * whether it was unlinked since.
 */
function heldFiles(paths: readonly string[], fds: ReadonlyArray<{ fd: number; target: string }>): Map<string, Array<FileId & { deleted: boolean }>> {
  const held = new Map<string, Array<FileId & { deleted: boolean }>>();
  if (fds.length === 0) return held;
  // /proc names files by their real path.
  const real = new Map(paths.map((p) => [join(realpathSync(dirname(p)), basename(p)), p]));
  for (const { fd, target } of fds) {
    const deleted = target.endsWith(' (deleted)');
    const path = real.get(deleted ? target.slice(0, -' (deleted)'.length) : target);
    if (path === undefined) continue;
    try {
      const st = fstatSync(fd);
      // The descriptor may have been closed and reused meanwhile: only a same-target answer counts.
      if (readlinkSync(`/proc/self/fd/${fd}`) !== target) continue;
      held.set(path, [...(held.get(path) ?? []), { dev: st.dev, ino: st.ino, deleted }]);
    } catch {
      // closed meanwhile
    }
  }
  return held;
}

/**
 * A shared mapping of a file on the vault's device (`dev`; Linux's /proc/self/maps) that is
 * not a live `-shm` beside a database the process holds open (among `fds`) at that very path:
 * SQLite's WAL index moved (or unlinked) while an open waited inside SQLite, which waits on
 * some locks by itself whatever its busy timeout. A file moved stays on its device; only
 * SQLite maps files shared in this process.
 */
function strayWalIndexes(dev: number, fds: ReadonlyArray<{ fd: number; target: string }>): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const held = new Set(fds.map((d) => d.target));
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    // address perms offset major:minor inode path
    const m = /^\S+ \S{3}s \S+ ([\da-f]+):([\da-f]+) [1-9]\d* +(\/.*)$/.exec(line);
    if (!m || devNumber(parseInt(m[1]!, 16), parseInt(m[2]!, 16)) !== dev) continue;
    const path = m[3]!;
    if (path.endsWith(' (deleted)') || !path.endsWith('-shm') || !held.has(path.slice(0, -'-shm'.length))) return path;
  }
  return undefined;
}

/** glibc's makedev: how stat reports a device /proc/self/maps writes as major:minor. */
function devNumber(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 0x100 + (minor & ~0xff) * 0x1000 + Math.floor(major / 0x1000) * 0x100000000;
}

/** How long a read may trust the last check that the files are the ones opened. */
const READ_CHECK_MS = 10;

/** The last operation queued on any of the process's connections, and how many are queued or under way. */
let tail: Promise<void> = Promise.resolve();
let queued = 0;
const settle = () => {
  queued--;
};

/** Runs fn when every operation queued before it has settled (at once when there is none). */
function inTurn<T>(fn: () => Promise<T>): Promise<T> {
  let started: Promise<T>;
  try {
    started = queued++ === 0 ? fn() : tail.then(fn);
  } catch (err) {
    started = Promise.reject(err); // still settles, so the turns go on
  }
  const result = started.catch((err: unknown) => {
    throw translate(err);
  });
  tail = result.then(settle, settle);
  return result;
}

class SqliteDialect implements Dialect {
  readonly engine = 'sqlite';
  // BEGIN IMMEDIATE excludes every other writer for the whole transaction.
  readonly forUpdate = '';
  readonly forShare = '';
  readonly byteOrder = '';
  readonly auditTable = { log: 'audit.audit_log', meta: 'audit.audit_meta' };
  readonly #db: DatabaseSync;
  /** The files as opened (vault.db, audit.db and their write-ahead logs), by device and inode. */
  #files: ReadonlyArray<{ path: string; dev: number; ino: number }> = [];
  #checkedAt = 0;
  /** Once a file was found replaced, this connection stays refused (putting it back is no cure). */
  #tampered: AivaultError | undefined;
  readonly #statements = new Map<string, StatementSync>();
  readonly #s: Statements = {
    // Synchronous: an await of a plain value costs a tick, not a promise per statement.
    all: (sql, params = []) => this.#stmt(sql).all(...(params as SQLInputValue[])) as Row[],
    get: (sql, params = []) => this.#stmt(sql).get(...(params as SQLInputValue[])) as Row | undefined,
    run: (sql, params = []) => Number(this.#stmt(sql).run(...(params as SQLInputValue[])).changes),
  };

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /**
   * Notes the files this connection now holds: `paths` and each one's `-wal` and `-shm`
   * (which SQLite removes only when the last connection to the file closes). `before`: the
   * databases' identities taken before opening them. A file replaced while the connection
   * was being opened (an attacker can stall the open on a lock) is found here: the path
   * must still be what was there before, and, where the process's descriptors can be read
   * (Linux), every descriptor held on one of these files must be the file at its path.
   * Returns the first such path (the caller opens again; nothing was served), or undefined.
   */
  pinFiles(paths: readonly string[], before: ReadonlyMap<string, FileId>): string | undefined {
    const all = paths.flatMap((p) => [p, `${p}-wal`, `${p}-shm`]);
    const fds = descriptors();
    const held = heldFiles(all, fds);
    const files: Array<{ path: string; dev: number; ino: number }> = [];
    for (const path of all) {
      const st = statSync(path, { throwIfNoEntry: false });
      const pre = before.get(path);
      const stale = (pre !== undefined && (st?.dev !== pre.dev || st.ino !== pre.ino)) || (held.get(path) ?? []).some((h) => h.deleted || st?.dev !== h.dev || st.ino !== h.ino);
      if (stale) return path;
      if (st) files.push({ path, dev: st.dev, ino: st.ino });
    }
    this.#files = files;
    const strayShm = strayWalIndexes(statSync(paths[0]!).dev, fds);
    if (strayShm !== undefined) throw (this.#tampered = new AivaultError('VAULT_TAMPERED', `this process maps ${strayShm}, which is no longer the write-ahead index beside a database it holds: a vault's files were moved while it opened them; nothing was read or written, nor will be: restart it`));
    return undefined;
  }

  /**
   * Refuses to go on when a file this connection holds is no longer the one at its path
   * (replaced or removed while a daemon ran): every read and write would go to a file no one
   * else sees, a revocation made in the new one would never reach this process, and its
   * audit records would be lost with the old inode.
   */
  #assertSameFiles(): void {
    if (this.#tampered) throw this.#tampered;
    this.#checkedAt = performance.now();
    for (const f of this.#files) {
      const now = statSync(f.path, { throwIfNoEntry: false });
      if (now?.dev !== f.dev || now.ino !== f.ino) throw (this.#tampered = replaced(f.path, now !== undefined));
    }
  }

  #stmt(sql: string): StatementSync {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  refuseForeignObjects(): void {
    const found = this.#stmt(FOREIGN_OBJECTS).get() as Row | undefined;
    if (found) {
      throw new AivaultError('VAULT_TAMPERED', `${found.file as string} holds a ${String(found.type)} named ${JSON.stringify(found.name)}, which aivault never creates: the vault was tampered with; nothing was written`);
    }
  }

  /** Takes the write lock up front (BEGIN IMMEDIATE), so writers in other processes queue instead of deadlocking. */
  #begin(): void {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      // A trigger planted while this process runs (a daemon) must not ride in its writes.
      this.refuseForeignObjects();
    } catch (err) {
      this.#rollback();
      throw err;
    }
  }

  #rollback(): void {
    if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
  }

  /** A write transaction outside the turns (opening the file, before any operation). */
  writeSync(fn: () => void): void {
    this.#begin();
    try {
      fn();
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#rollback();
      throw err;
    }
  }

  /** Reads check the files at most every few milliseconds (two stats cost a request's read again); writes every time. */
  #assertSameFilesSoon(): void {
    if (performance.now() - this.#checkedAt >= READ_CHECK_MS) this.#assertSameFiles();
  }

  read<T>(fn: (s: Statements) => Awaitable<T>): Promise<T> {
    return inTurn(async () => {
      this.#assertSameFilesSoon();
      return fn(this.#s);
    });
  }

  snapshot<T>(fn: (s: Statements) => Awaitable<T>): Promise<T> {
    return inTurn(async () => {
      this.#assertSameFilesSoon();
      this.#db.exec('BEGIN');
      try {
        return await fn(this.#s);
      } finally {
        this.#db.exec('COMMIT');
      }
    });
  }

  transaction<T>(fn: (s: Statements) => Awaitable<T>): Promise<T> {
    return inTurn(async () => {
      this.#assertSameFiles();
      this.#begin();
      try {
        const result = await fn(this.#s);
        this.#db.exec('COMMIT');
        return result;
      } catch (err) {
        this.#rollback();
        throw err;
      }
    });
  }

  /** A transaction all the same: it costs one commit, like a statement alone, and keeps the check for planted objects. */
  atomic<T>(fn: (s: Statements) => Awaitable<T>): Promise<T> {
    return this.transaction(fn);
  }

  async lock(): Promise<void> {}

  async lockTable(): Promise<void> {}

  /** One cached statement per row over a one-row source: no round trips to save in-process. */
  async eachRow(s: Statements, columns: readonly Column[], rows: readonly (readonly unknown[])[], sql: (source: string) => string): Promise<number> {
    if (rows.length === 0) return 0;
    const text = sql(`(SELECT ${columns.map(([name], i) => `?${i + 1} AS ${name}`).join(', ')}) AS v`);
    let changed = 0;
    for (const row of rows) changed += await s.run(text, row);
    return changed;
  }

  isUniqueViolation(err: unknown): boolean {
    const code = errcode(err);
    return code === SQLITE_CONSTRAINT_UNIQUE || code === SQLITE_CONSTRAINT_PRIMARYKEY;
  }

  /** SQLite's full page-level check of both files (vault.db and audit.db); not run on every open. */
  integrityCheck(): Promise<string[]> {
    return inTurn(async () => {
      const rows = this.#db.prepare('PRAGMA integrity_check').all() as Row[];
      const messages = rows.map((r) => String(Object.values(r)[0]));
      return messages.length === 1 && messages[0] === 'ok' ? [] : messages;
    });
  }

  close(): Promise<void> {
    return inTurn(async () => {
      this.#statements.clear();
      if (this.#db.isOpen) this.#db.close();
    });
  }

  pragma(name: string): number {
    return Number(Object.values(this.#db.prepare(`PRAGMA ${name}`).get() as Row)[0]);
  }

  exec(sql: string): void {
    this.#db.exec(sql);
  }
}

export class SqliteStorage extends StorageCore {
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
    // The open never waits on a lock while it holds the files: a busy vault makes it let go of
    // everything and start again (the files may be swapped while another process holds a
    // lock, and a connection that waited would go on with the old ones). Once the files are
    // pinned, the connection waits for locks as asked.
    const giveUp = performance.now() + (options.waitForLock === false ? 0 : BUSY_TIMEOUT_MS);
    for (let attempt = 0; ; attempt++) {
      // What is at the paths before SQLite opens them (see pinFiles).
      const before = new Map<string, FileId>();
      for (const p of [path, auditPath]) {
        const st = statSync(p, { throwIfNoEntry: false });
        if (st) before.set(p, { dev: st.dev, ino: st.ino });
      }
      let db: DatabaseSync | undefined;
      try {
        db = new DatabaseSync(path, { timeout: 0, enableForeignKeyConstraints: true, defensive: true });
        db.prepare('ATTACH DATABASE ? AS audit').run(auditPath);
        const dialect = new SqliteDialect(db);
        prepareConnection(dialect, options.create === true, options.synchronous ?? 'FULL');
        // A file replaced while this attempt opened it: let go of everything and open the
        // files as they now are, as after a busy answer (an attempt that keeps meeting
        // swaps gives up as a locked one does, refusing).
        const swapped = dialect.pinFiles([path, auditPath], before);
        if (swapped !== undefined) {
          db.close();
          db = undefined;
          if (performance.now() >= giveUp) throw replaced(swapped, existsSync(swapped));
        } else {
          if (options.waitForLock !== false) db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
          return new SqliteStorage(dialect);
        }
      } catch (err) {
        db?.close();
        if (!(isBusy({ cause: err }) && performance.now() < giveUp)) throw translate(err);
      }
      sleepSync(Math.min(OPEN_RETRY_MAX_MS, 2 ** attempt));
    }
  }
}

/** The longest wait between attempts to open a busy vault. */
const OPEN_RETRY_MAX_MS = 50;

/** Blocks the thread for `ms` (an open is synchronous, as SQLite's own busy wait was). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Checks both files' schema versions, refuses planted objects, sets durability, migrates. */
function prepareConnection(d: SqliteDialect, create: boolean, synchronous: 'FULL' | 'NORMAL'): void {
  const version = d.pragma('main.user_version');
  if (version > SQLITE_SCHEMA_VERSION) {
    throw new AivaultError('VAULT_VERSION_UNSUPPORTED', `this vault uses storage schema ${version}; this aivault reads up to ${SQLITE_SCHEMA_VERSION}`);
  }
  if (version === 0 && !create) {
    throw new AivaultError('VAULT_CORRUPTED', 'the vault database has no schema: it was not created by `aivault init` or is damaged');
  }
  const auditVersion = d.pragma('audit.user_version');
  if (auditVersion > AUDIT_SCHEMA_VERSION) {
    throw new AivaultError('VAULT_VERSION_UNSUPPORTED', `this vault's audit log uses schema ${auditVersion}; this aivault reads up to ${AUDIT_SCHEMA_VERSION}`);
  }
  if (auditVersion === 0 && !create) throw new AivaultError('VAULT_CORRUPTED', 'the audit log file has no schema: it is damaged or was replaced');
  d.refuseForeignObjects();
  // Only fresh files change journal mode; an existing vault is already in WAL, so
  // opening one (even with a wrong key) writes nothing.
  if (version === 0) d.exec('PRAGMA main.journal_mode = WAL');
  if (auditVersion === 0) d.exec('PRAGMA audit.journal_mode = WAL');
  const sync = synchronous === 'NORMAL' ? 'NORMAL' : 'FULL';
  d.exec(`PRAGMA main.synchronous = ${sync}; PRAGMA audit.synchronous = ${sync}`);
  if (version < SQLITE_SCHEMA_VERSION) {
    d.writeSync(() => {
      // Re-read inside the write lock: another process may have migrated meanwhile.
      for (let v = d.pragma('main.user_version'); v < SQLITE_SCHEMA_VERSION; v++) d.exec(SQLITE_MIGRATIONS[v]!);
      d.exec(`PRAGMA main.user_version = ${SQLITE_SCHEMA_VERSION}`);
    });
  }
  if (auditVersion === 0) {
    d.writeSync(() => {
      if (d.pragma('audit.user_version') !== 0) return;
      d.exec(AUDIT_SCHEMA);
      d.exec(`PRAGMA audit.user_version = ${AUDIT_SCHEMA_VERSION}`);
    });
  }
}
