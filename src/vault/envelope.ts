// Envelope encryption for secret values: each version gets a fresh random data key
// (AES-256-GCM), and that data key is sealed under the vault's key-encryption key.
// Both seals bind the secret id and version as additional authenticated data, so a
// ciphertext or wrapped key copied into another record fails to open.

import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { AivaultError } from '../errors.ts';

const ALGORITHM = 'aes-256-gcm';
const FORMAT = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

type Key = KeyObject | Uint8Array;

function seal(key: Key, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(FORMAT), iv, cipher.getAuthTag(), body]);
}

function open(key: Key, sealed: Uint8Array, aad: Uint8Array): Buffer {
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (buf.length < 1 + IV_BYTES + TAG_BYTES || buf[0] !== FORMAT) {
    throw new AivaultError('VAULT_DECRYPT_FAILED', 'a sealed value has an unknown format');
  }
  const iv = buf.subarray(1, 1 + IV_BYTES);
  const tag = buf.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(buf.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch (err) {
    throw new AivaultError('VAULT_DECRYPT_FAILED', 'a sealed value failed authentication (wrong record, altered bytes or wrong key)', { cause: err });
  }
}

function secretAad(secretId: string, version: number, part: 'key' | 'value'): Buffer {
  return Buffer.from(`aivault/secret/v1\u0000${part}\u0000${secretId}\u0000${version}`, 'utf8');
}

export interface SealedSecret {
  wrappedKey: Buffer;
  ciphertext: Buffer;
}

export function sealSecret(kek: Key, secretId: string, version: number, value: Uint8Array): SealedSecret {
  const dataKey = randomBytes(KEY_BYTES);
  try {
    return {
      wrappedKey: seal(kek, dataKey, secretAad(secretId, version, 'key')),
      ciphertext: seal(dataKey, value, secretAad(secretId, version, 'value')),
    };
  } finally {
    dataKey.fill(0);
  }
}

export function openSecret(kek: Key, secretId: string, version: number, sealed: { wrappedKey: Uint8Array; ciphertext: Uint8Array }): Buffer {
  const dataKey = open(kek, sealed.wrappedKey, secretAad(secretId, version, 'key'));
  try {
    if (dataKey.length !== KEY_BYTES) throw new AivaultError('VAULT_DECRYPT_FAILED', 'a wrapped data key has the wrong length');
    return open(dataKey, sealed.ciphertext, secretAad(secretId, version, 'value'));
  } finally {
    dataKey.fill(0);
  }
}

/** The same data key, sealed under another key-encryption key (master-key rotation). */
export function rewrapDataKey(oldKek: Key, newKek: Key, secretId: string, version: number, wrappedKey: Uint8Array): Buffer {
  const aad = secretAad(secretId, version, 'key');
  const dataKey = open(oldKek, wrappedKey, aad);
  try {
    if (dataKey.length !== KEY_BYTES) throw new AivaultError('VAULT_DECRYPT_FAILED', 'a wrapped data key has the wrong length');
    return seal(newKek, dataKey, aad);
  } finally {
    dataKey.fill(0);
  }
}

/** Seals an arbitrary blob (e.g. a cached OAuth token) under a key with a caller-chosen context label. */
export function sealBlob(key: Key, context: string, plaintext: Uint8Array): Buffer {
  return seal(key, plaintext, Buffer.from(`aivault/blob/v1\u0000${context}`, 'utf8'));
}

export function openBlob(key: Key, context: string, sealed: Uint8Array): Buffer {
  return open(key, sealed, Buffer.from(`aivault/blob/v1\u0000${context}`, 'utf8'));
}
