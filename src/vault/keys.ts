// Subkeys derived from the master key with HKDF-SHA256, salted by the vault id.
// One master key never serves two purposes directly: wrapping data keys, keying the
// audit chain, fingerprinting values and proving the key are separate keys.

import { createHmac, createSecretKey, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { AivaultError } from '../errors.ts';
import { openBlob, sealBlob } from './envelope.ts';

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
  /** Keys the seal over the vault's state; derived from the audit key, so it outlives master-key rotations as the chain does. */
  state: KeyObject;
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

/**
 * After a master-key rotation the vault's keys no longer come from the master key: they
 * come from a keyring sealed under it — a random root (for the key-encryption and cache
 * keys, new at each rotation) and the audit and fingerprint keys (kept, so the audit chain
 * and fingerprints still verify). Rotating the master again only reseals the keyring.
 */
export interface Keyring {
  root: Buffer;
  audit: Buffer;
  fingerprint: Buffer;
}

const KEYRING_VERSION = 1;

export function sealKeyring(master: Uint8Array, vaultId: string, ring: Keyring): string {
  const wrap = derive(master, vaultId, 'keyring');
  try {
    const sealed = sealBlob(wrap, `keyring:${vaultId}`, Buffer.concat([ring.root, ring.audit, ring.fingerprint]));
    return JSON.stringify({ v: KEYRING_VERSION, sealed: sealed.toString('base64') });
  } finally {
    wrap.fill(0);
  }
}

function openKeyring(master: Uint8Array, vaultId: string, stored: string): Keyring {
  let parsed: { v?: unknown; sealed?: unknown };
  try {
    parsed = JSON.parse(stored) as typeof parsed;
  } catch {
    throw new AivaultError('VAULT_CORRUPTED', "the vault's keyring record is not JSON");
  }
  if (parsed.v !== KEYRING_VERSION || typeof parsed.sealed !== 'string') throw new AivaultError('VAULT_VERSION_UNSUPPORTED', "the vault's keyring has a format this aivault does not read");
  const wrap = derive(master, vaultId, 'keyring');
  try {
    const bytes = openBlob(wrap, `keyring:${vaultId}`, Buffer.from(parsed.sealed, 'base64'));
    if (bytes.length !== 3 * MASTER_KEY_BYTES) throw new AivaultError('VAULT_CORRUPTED', "the vault's keyring has the wrong length");
    return { root: bytes.subarray(0, 32), audit: bytes.subarray(32, 64), fingerprint: bytes.subarray(64, 96) };
  } finally {
    wrap.fill(0);
  }
}

export function keysFromKeyring(ring: Keyring, vaultId: string): VaultKeys {
  return {
    kek: deriveKey(ring.root, vaultId, 'kek'),
    audit: createSecretKey(ring.audit),
    fingerprint: createSecretKey(ring.fingerprint),
    cache: deriveKey(ring.root, vaultId, 'cache'),
    state: deriveKey(ring.audit, vaultId, 'state'),
  };
}

/** The vault's keys for an unlocked master key: from its keyring, or (never rotated) derived directly. */
export function unlockVaultKeys(master: Uint8Array, vaultId: string, keyring: string | null | undefined): VaultKeys {
  if (!keyring) return deriveVaultKeys(master, vaultId);
  const ring = openKeyring(master, vaultId, keyring);
  try {
    return keysFromKeyring(ring, vaultId);
  } finally {
    ring.root.fill(0);
    ring.audit.fill(0);
    ring.fingerprint.fill(0);
  }
}

export function deriveVaultKeys(master: Uint8Array, vaultId: string): VaultKeys {
  const audit = derive(master, vaultId, 'audit');
  try {
    return {
      kek: deriveKey(master, vaultId, 'kek'),
      audit: createSecretKey(audit),
      fingerprint: deriveKey(master, vaultId, 'fingerprint'),
      cache: deriveKey(master, vaultId, 'cache'),
      state: deriveKey(audit, vaultId, 'state'),
    };
  } finally {
    audit.fill(0);
  }
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
