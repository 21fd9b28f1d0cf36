import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { computeKeyCheck, deriveVaultKeys, fingerprintValue, keyCheckMatches } from '../../src/vault/keys.ts';

describe('key derivation', () => {
  it('derives distinct subkeys per purpose and per vault', () => {
    const master = randomBytes(32);
    const a = deriveVaultKeys(master, 'vault-a');
    const b = deriveVaultKeys(master, 'vault-b');
    const all = [a.kek, a.audit, a.fingerprint, a.cache, b.kek].map((k) => k.export().toString('hex'));
    assert.equal(new Set(all).size, all.length);
    assert.ok(all.every((k) => k !== master.toString('hex')));
  });

  it('checks a candidate key without storing it', () => {
    const master = randomBytes(32);
    const check = computeKeyCheck(master, 'v');
    assert.equal(keyCheckMatches(master, 'v', check), true);
    assert.equal(keyCheckMatches(randomBytes(32), 'v', check), false);
    assert.equal(keyCheckMatches(master, 'other-vault', check), false);
    assert.equal(keyCheckMatches(master, 'v', 'garbage'), false);
    assert.equal(check.includes(master.toString('base64')), false);
  });

  it('fingerprints are keyed: same value, different vault key, different fingerprint', () => {
    const value = Buffer.from('hunter2');
    const f1 = fingerprintValue(randomBytes(32), value);
    const f2 = fingerprintValue(randomBytes(32), value);
    assert.match(f1, /^[0-9a-f]{16}$/);
    assert.notEqual(f1, f2);
  });
});
