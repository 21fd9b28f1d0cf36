// Subkeys derived from the master key with HKDF-SHA256, salted by the vault id.
// One master key never serves two purposes directly: wrapping data keys, keying the
// audit chain, fingerprinting values and proving the key are separate keys.

import { createHmac, createSecretKey, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';

export const MASTER_KEY_BYTES = 32;

// Subkeys are KeyObjects: their bytes live outside the JS heap, and node:crypto skips
// re-importing a raw key on every HMAC or cipher (several microseconds each time).
export interface VaultKeys {
  /** Wraps per-secret data keys. */
  kek: KeyObject;
  /** Keys the HMAC chain of the audit log. */
  audit: KeyObject;
  /** Keys the short fingerprints shown by `describe`, so they cannot be brute-forced offline. */
  fingerprint: KeyObject;
  /** Keys caches the broker keeps at rest (OAuth access tokens). */
  cache: KeyObject;
}

function derive(master: Uint8Array, vaultId: string, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.from(vaultId, 'utf8'), Buffer.from(`aivault ${label} v1`, 'utf8'), 32));
}

function deriveKey(master: Uint8Array, vaultId: string, label: string): KeyObject {
  const raw = derive(master, vaultId, label);
  const key = createSecretKey(raw);
  raw.fill(0);
  return key;
}

export function deriveVaultKeys(master: Uint8Array, vaultId: string): VaultKeys {
  return {
    kek: deriveKey(master, vaultId, 'kek'),
    audit: deriveKey(master, vaultId, 'audit'),
    fingerprint: deriveKey(master, vaultId, 'fingerprint'),
    cache: deriveKey(master, vaultId, 'cache'),
  };
}

/** A value stored in the vault's meta that proves a candidate master key without revealing it. */
export function computeKeyCheck(master: Uint8Array, vaultId: string): string {
  const checkKey = derive(master, vaultId, 'key-check');
  return createHmac('sha256', checkKey).update(`aivault key check\u0000${vaultId}`).digest('base64');
}

export function keyCheckMatches(master: Uint8Array, vaultId: string, stored: string): boolean {
  const expected = Buffer.from(computeKeyCheck(master, vaultId), 'base64');
  const actual = Buffer.from(stored, 'base64');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function fingerprintValue(fingerprintKey: KeyObject | Uint8Array, value: Uint8Array): string {
  return createHmac('sha256', fingerprintKey).update(value).digest('hex').slice(0, 16);
}
