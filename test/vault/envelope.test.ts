import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { openBlob, openSecret, sealBlob, sealSecret } from '../../src/vault/envelope.ts';

const ID_A = '11111111-1111-4111-8111-111111111111';
const ID_B = '22222222-2222-4222-8222-222222222222';

describe('envelope encryption', () => {
  const kek = randomBytes(32);
  const value = Buffer.from('sk-live-value');

  it('round-trips a value and never stores it in the clear', () => {
    const sealed = sealSecret(kek, ID_A, 1, value);
    assert.equal(sealed.ciphertext.includes(value), false);
    assert.deepEqual(openSecret(kek, ID_A, 1, sealed), value);
  });

  it('uses a fresh data key and IV each time', () => {
    const a = sealSecret(kek, ID_A, 1, value);
    const b = sealSecret(kek, ID_A, 1, value);
    assert.notDeepEqual(a.ciphertext, b.ciphertext);
    assert.notDeepEqual(a.wrappedKey, b.wrappedKey);
  });

  for (const [label, id, version] of [['another secret id', ID_B, 1], ['another version', ID_A, 2]] as const) {
    it(`refuses to open a ciphertext moved to ${label}`, () => {
      const sealed = sealSecret(kek, ID_A, 1, value);
      assert.throws(() => openSecret(kek, id, version, sealed), (e) => isAivaultError(e, 'VAULT_DECRYPT_FAILED'));
    });
  }

  it('refuses a ciphertext whose data key belongs to another record', () => {
    const a = sealSecret(kek, ID_A, 1, value);
    const b = sealSecret(kek, ID_B, 1, Buffer.from('other'));
    assert.throws(() => openSecret(kek, ID_A, 1, { wrappedKey: a.wrappedKey, ciphertext: b.ciphertext }), (e) => isAivaultError(e, 'VAULT_DECRYPT_FAILED'));
  });

  it('refuses a flipped bit anywhere and a wrong key', () => {
    const sealed = sealSecret(kek, ID_A, 1, value);
    for (let i = 0; i < sealed.ciphertext.length; i++) {
      const tampered = Buffer.from(sealed.ciphertext);
      tampered[i]! ^= 0x01;
      assert.throws(() => openSecret(kek, ID_A, 1, { ...sealed, ciphertext: tampered }), (e) => isAivaultError(e, 'VAULT_DECRYPT_FAILED'));
    }
    assert.throws(() => openSecret(randomBytes(32), ID_A, 1, sealed), (e) => isAivaultError(e, 'VAULT_DECRYPT_FAILED'));
  });

  it('binds blobs to their context', () => {
    const sealed = sealBlob(kek, 'oauth:cred-1', Buffer.from('token'));
    assert.equal(openBlob(kek, 'oauth:cred-1', sealed).toString(), 'token');
    assert.throws(() => openBlob(kek, 'oauth:cred-2', sealed), (e) => isAivaultError(e, 'VAULT_DECRYPT_FAILED'));
  });
});
