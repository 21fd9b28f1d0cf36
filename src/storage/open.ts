// Which engine a vault uses. The embedded SQLite database in the vault directory is the
// default; a PostgreSQL URL (given to `aivault init`, recorded in the directory's
// storage.json without its password, or from AIVAULT_DATABASE_URL) selects the server.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AivaultError } from '../errors.ts';
import { PostgresStorage, parseDatabaseUrl, redactDatabaseUrl } from './postgres.ts';

export const STORAGE_FILE = 'storage.json';

export function isDatabaseUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

/** The database URL for a vault directory, or undefined for the embedded engine. */
export function databaseUrlFor(dir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.AIVAULT_DATABASE_URL;
  if (fromEnv) return fromEnv;
  const file = join(dir, STORAGE_FILE);
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new AivaultError('VAULT_CORRUPTED', `${STORAGE_FILE} in the vault directory is not valid JSON`);
  }
  const url = (parsed as { url?: unknown })?.url;
  if (typeof url !== 'string' || !isDatabaseUrl(url)) throw new AivaultError('VAULT_CORRUPTED', `${STORAGE_FILE} names no postgres:// URL`);
  return url;
}

/** Records the engine choice in the vault directory (0600), never with the password. */
export function recordDatabaseUrl(dir: string, url: string): void {
  parseDatabaseUrl(url);
  writeFileSync(join(dir, STORAGE_FILE), JSON.stringify({ engine: 'postgres', url: redactDatabaseUrl(url) }, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
}

export function connectPostgres(url: string, create: boolean): Promise<PostgresStorage> {
  return PostgresStorage.connect(url, { create });
}
