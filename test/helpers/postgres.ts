// The machine's PostgreSQL server (127.0.0.1:5432, trust auth, database `test`), one
// fresh schema per test vault so tests never see each other's data.
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import pg from 'pg';

export const PG_BASE_URL = process.env.AIVAULT_TEST_DATABASE_URL ?? `postgres://${encodeURIComponent(userInfo().username)}@127.0.0.1:5432/test`;

export function schemaUrl(schema: string): string {
  const url = new URL(PG_BASE_URL);
  url.searchParams.set('schema', schema);
  return url.href;
}

export function freshSchema(label = 't'): string {
  return `${label}_${randomBytes(6).toString('hex')}`;
}

/** Runs one statement on the test database as an administrator would (psql). */
export async function adminQuery(sql: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: PG_BASE_URL });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}
