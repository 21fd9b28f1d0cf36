// What the vault's state seal covers, and how a table is digested: the same for both
// engines. The seal covers what the owner controls and the broker obeys; it leaves out
// what changes on every request (rate buckets, nonces, leases, approvals) and caches
// sealed on their own (OAuth access tokens).

import { createHash } from 'node:crypto';
import { canonicalJson } from '../registry/canonical.ts';
import type { Row } from './rows.ts';

export const SEALED_TABLES = ['meta', 'secrets', 'secret_versions', 'credentials', 'capabilities', 'capability_policies', 'endpoint_overrides', 'agents', 'grants', 'owners', 'flows'] as const;

/** Meta keys that are not state: the change counter, the seal, the audit anchor, the unsealed mark. */
export const STATE_SEAL_KEY = 'state_seal';
export const AUDIT_ANCHOR_KEY = 'audit_anchor';
/** Set by the migration that introduced seals, on a vault that existed before it. */
export const UNSEALED_KEY = 'unsealed';
export const UNSEALED_META = ['generation', STATE_SEAL_KEY, AUDIT_ANCHOR_KEY, UNSEALED_KEY] as const;

/** The query that reads a sealed table (meta without the keys that are not state). */
export function sealedQuery(table: (typeof SEALED_TABLES)[number], placeholder: (i: number) => string): string {
  if (table !== 'meta') return `SELECT * FROM ${table}`;
  return `SELECT key, value FROM meta WHERE key NOT IN (${UNSEALED_META.map((_, i) => placeholder(i + 1)).join(', ')})`;
}

function cell(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return `b64:${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}`;
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

/** SHA-256 over the table's rows, each canonical (columns by name, bytes as base64), in a fixed order. */
export function tableDigest(rows: readonly Row[]): string {
  const lines = rows.map((r) => canonicalJson(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, cell(v)])))).sort();
  const hash = createHash('sha256');
  for (const line of lines) hash.update(line).update('\n');
  return hash.digest('hex');
}
