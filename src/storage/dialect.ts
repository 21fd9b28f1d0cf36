// What really differs between the storage engines, and nothing else: how statements reach
// the database, how writers are serialised, how errors read. The operations and their
// rules are written once, in core.ts, over this interface.
//
// SQL in core.ts is written for both: `?` or `?N` placeholders (never both in one
// statement), CAST rather than `::`, flags as 0/1, JSON as text.

import type { Row } from './rows.ts';

export type Params = readonly unknown[];

/** A value now (an in-process engine) or later (a server's); the core awaits either. */
export type Awaitable<T> = T | Promise<T>;

/** Statements on one connection: inside a transaction, or each committed on its own. */
export interface Statements {
  all(sql: string, params?: Params): Awaitable<Row[]>;
  get(sql: string, params?: Params): Awaitable<Row | undefined>;
  /** Runs a write; resolves to the number of rows it changed. */
  run(sql: string, params?: Params): Awaitable<number>;
}

/** A column of a batch (see Dialect.eachRow), typed for engines that send columns as arrays. */
export type Column = readonly [name: string, type: 'bigint' | 'int' | 'text' | 'bytea'];

export interface Dialect {
  readonly engine: string;
  /** Locks the rows a SELECT reads until the transaction ends; '' where a write transaction already excludes every other writer. */
  readonly forUpdate: string;
  /** Keeps the rows a SELECT reads from changing until the transaction ends; '' as forUpdate. */
  readonly forShare: string;
  /** Follows a text column in ORDER BY so lists sort by bytes (SQLite's BINARY) whatever the database's collation. */
  readonly byteOrder: string;
  /** How core.ts names the audit tables (SQLite keeps them in a file of their own). */
  readonly auditTable: { log: string; meta: string };

  /** Reads, each statement on its own. */
  read<T>(fn: (s: Statements) => Awaitable<T>): Promise<T>;
  /** Reads that must see one committed state. */
  snapshot<T>(fn: (s: Statements) => Awaitable<T>): Promise<T>;
  /** A write transaction: all of fn's statements commit, or none. */
  transaction<T>(fn: (s: Statements) => Awaitable<T>): Promise<T>;
  /** Writes whose statements are each atomic alone (no read-then-write): no transaction needed where the engine can skip it. */
  atomic<T>(fn: (s: Statements) => Awaitable<T>): Promise<T>;

  /** Serialises the transactions that take `key` (a number: a fixed lock; a string: one per name); a no-op where writers are serialised anyway. */
  lock(s: Statements, key: number | string): Promise<void>;
  /** Keeps other writers out of `table` until the transaction ends; a no-op as lock. */
  lockTable(s: Statements, table: string): Promise<void>;
  /**
   * Runs a statement over a batch of rows, in as few round trips as the engine allows.
   * `sql` receives the row source to read from (`v`, with the columns' names).
   * Resolves to the rows changed.
   */
  eachRow(s: Statements, columns: readonly Column[], rows: readonly (readonly unknown[])[], sql: (source: string) => string): Promise<number>;

  /** The error is a unique or primary-key violation (the name is taken). */
  isUniqueViolation(err: unknown): boolean;
  /** The engine's own check of its files or tables; empty when sound. */
  integrityCheck(): Promise<string[]>;
  close(): Promise<void>;
}
