import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { Vault } from '../../src/vault/vault.ts';

const root = mkdtempSync(join(tmpdir(), 'aivault-vault-'));
after(() => rmSync(root, { recursive: true, force: true }));

function envKey(): NodeJS.ProcessEnv {
  return { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') };
}

describe('Vault', () => {
  let vault: Vault;
  const env = envKey();
  const dir = join(root, 'main');

  before(async () => {
    vault = await Vault.init({ dir, keyProvider: 'env', env });
  });
  after(() => vault.close());

  it('creates the directory 0700 and the database 0600', () => {
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(Vault.databasePath(dir)).mode & 0o077, 0);
  });

  it('stores, reveals to the broker, rotates and rolls back', async () => {
    const info = await vault.createSecret({ name: 'ROLL_KEY', value: Buffer.from('value-one') });
    assert.equal(info.ref, `vault:secret:${info.id}`);
    assert.equal((await vault.revealSecret(info.id)).toString(), 'value-one');
    await vault.rotateSecret('ROLL_KEY', Buffer.from('value-two'));
    assert.equal((await vault.revealSecret(info.id)).toString(), 'value-two');
    const third = await vault.rotateSecret(info.ref, Buffer.from('value-three'));
    assert.deepEqual(third.versions.map((v) => v.version), [2, 3], 'keeps current and previous only');
    const back = await vault.rollbackSecret('ROLL_KEY');
    assert.equal(back.currentVersion, 2);
    assert.equal((await vault.revealSecret(info.id)).toString(), 'value-two');
    await vault.rollbackSecret('ROLL_KEY');
    assert.equal((await vault.revealSecret(info.id)).toString(), 'value-three');
  });

  it('refuses bad names, scopes, empty and oversized values', async () => {
    for (const name of ['lower', '1ABC', 'A-B', '', 'A'.repeat(129), 'ÄB']) {
      await assert.rejects(vault.createSecret({ name, value: Buffer.from('x-value-1') }), (e) => isAivaultError(e, 'INVALID_NAME'), name);
    }
    for (const scope of ['Global', 'group:', 'team:x', 'group:A', 'group:team-a', 'group:a/b/c', 'workspace:a/b']) {
      await assert.rejects(vault.createSecret({ name: 'OK_NAME', value: Buffer.from('x-value-1'), scope }), (e) => isAivaultError(e, 'INVALID_SCOPE'), scope);
    }
    await assert.rejects(vault.createSecret({ name: 'OK_NAME', value: Buffer.alloc(0) }), (e) => isAivaultError(e, 'SECRET_EMPTY'));
    await assert.rejects(vault.createSecret({ name: 'OK_NAME', value: Buffer.alloc(64 * 1024 + 1) }), (e) => isAivaultError(e, 'SECRET_TOO_LARGE'));
    assert.equal((await vault.listSecrets()).some((s) => s.name === 'OK_NAME'), false);
  });

  it('imports many secrets in one transaction, each checked and audited as a create or rotate would be', async () => {
    await vault.createSecret({ name: 'IMPORT_OLD', value: Buffer.from('old-value-1') });
    const names = async () => (await vault.listSecrets()).map((s) => s.name).filter((n) => n.startsWith('IMPORT_'));
    const g0 = await vault.storage.generation();
    const batch = [{ name: 'IMPORT_A', value: Buffer.from('import-a-value') }, { name: 'IMPORT_OLD', value: Buffer.from('new-value-2') }];
    await assert.rejects(vault.importSecrets(batch), (e) => isAivaultError(e, 'SECRET_ALREADY_EXISTS'));
    await assert.rejects(vault.importSecrets([batch[0]!, { name: 'IMPORT_B', value: Buffer.from('short') }]), (e) => isAivaultError(e, 'SECRET_TOO_SHORT'));
    await assert.rejects(vault.importSecrets([batch[0]!, batch[0]!]), (e) => isAivaultError(e, 'INVALID_ARGUMENT'));
    assert.deepEqual(await names(), ['IMPORT_OLD']);
    assert.equal(await vault.storage.generation(), g0, 'refused imports wrote nothing');
    const done = await vault.importSecrets([...batch, { name: 'IMPORT_C', value: Buffer.from('c') }], { overwrite: true, allowShort: true });
    assert.deepEqual(done.map((d) => [d.info.name, d.action, d.info.currentVersion]), [['IMPORT_A', 'created', 1], ['IMPORT_OLD', 'rotated', 2], ['IMPORT_C', 'created', 1]]);
    assert.equal(await vault.storage.generation(), g0 + 1, 'one transaction for the whole import');
    assert.equal((await vault.revealSecret(done[1]!.info.id)).toString(), 'new-value-2');
    await vault.audit.flush();
    const audited = (await vault.audit.list({})).map((r) => `${r.action} ${r.target}`);
    for (const line of ['secret.create secret:IMPORT_A@global', 'secret.rotate secret:IMPORT_OLD@global', 'secret.create secret:IMPORT_C@global']) assert.ok(audited.includes(line), line);
  });

  it('keeps names unique per scope and asks for a scope when ambiguous', async () => {
    await vault.createSecret({ name: 'SHARED', value: Buffer.from('global-value') });
    await assert.rejects(vault.createSecret({ name: 'SHARED', value: Buffer.from('global-value-2') }), (e) => isAivaultError(e, 'SECRET_ALREADY_EXISTS'));
    await vault.createSecret({ name: 'SHARED', value: Buffer.from('team-value'), scope: 'group:acme/team-a' });
    await assert.rejects(vault.describeSecret('SHARED'), (e) => isAivaultError(e, 'SECRET_AMBIGUOUS'));
    assert.equal((await vault.describeSecret('SHARED', 'group:acme/team-a')).scope, 'group:acme/team-a');
    assert.equal((await vault.listSecrets('group:acme/team-a')).length, 1);
  });

  it('deletes a secret with all its versions', async () => {
    const info = await vault.createSecret({ name: 'GONE', value: Buffer.from('bye-value') });
    await vault.rotateSecret('GONE', Buffer.from('bye-value-2'));
    await vault.deleteSecret('GONE');
    await assert.rejects(vault.describeSecret('GONE'), (e) => isAivaultError(e, 'SECRET_NOT_FOUND'));
    assert.equal((await vault.storage.listSecretVersions(info.id)).length, 0);
    await assert.rejects(vault.rollbackSecret('GONE'), (e) => isAivaultError(e, 'SECRET_NOT_FOUND'));
  });

  it('refuses a rollback with nothing to roll back to', async () => {
    await vault.createSecret({ name: 'SINGLE', value: Buffer.from('single-value') });
    await assert.rejects(vault.rollbackSecret('SINGLE'), (e) => isAivaultError(e, 'NO_PREVIOUS_VERSION'));
  });

  it('refuses to open with a wrong key, and a second init of the same directory', async () => {
    await assert.rejects(Vault.open({ dir, env: envKey() }), (e) => isAivaultError(e, 'VAULT_KEY_MISMATCH'));
    await assert.rejects(Vault.open({ dir, env: {} }), (e) => isAivaultError(e, 'VAULT_LOCKED'));
    await assert.rejects(Vault.open({ dir, env: { AIVAULT_MASTER_KEY: 'c2hvcnQ=' } }), (e) => isAivaultError(e, 'VAULT_LOCKED'));
    await assert.rejects(Vault.init({ dir, keyProvider: 'env', env }), (e) => isAivaultError(e, 'VAULT_ALREADY_INITIALIZED'));
    const reopened = await Vault.open({ dir, env });
    assert.equal(reopened.vaultId, vault.vaultId);
    await reopened.close();
  });

  it('detects a ciphertext swapped between two secrets and rewrites nothing', async () => {
    const a = await vault.createSecret({ name: 'SWAP_A', value: Buffer.from('swap-value-a') });
    const b = await vault.createSecret({ name: 'SWAP_B', value: Buffer.from('swap-value-b') });
    const db = new DatabaseSync(Vault.databasePath(dir));
    const rowA = db.prepare('SELECT wrapped_key, ciphertext FROM secret_versions WHERE secret_id = ?').get(a.id) as { wrapped_key: Uint8Array; ciphertext: Uint8Array };
    const rowB = db.prepare('SELECT wrapped_key, ciphertext FROM secret_versions WHERE secret_id = ?').get(b.id) as { wrapped_key: Uint8Array; ciphertext: Uint8Array };
    const swap = db.prepare('UPDATE secret_versions SET wrapped_key = ?, ciphertext = ? WHERE secret_id = ?');
    swap.run(rowB.wrapped_key, rowB.ciphertext, a.id);
    swap.run(rowA.wrapped_key, rowA.ciphertext, b.id);
    db.close();

    await assert.rejects(vault.revealSecret(a.id), (e) => isAivaultError(e, 'VAULT_DECRYPT_FAILED'));
    await assert.rejects(vault.revealSecret(b.id), (e) => isAivaultError(e, 'VAULT_DECRYPT_FAILED'));
    await assert.rejects(vault.rollbackSecret('SWAP_A'), (e) => isAivaultError(e, 'NO_PREVIOUS_VERSION'));
    const { checks, problems } = await vault.verifySecrets(['SWAP_A', 'SWAP_B']);
    assert.match(problems.join('\n'), /secret_versions/, 'the swap is also a change to the sealed state');
    assert.deepEqual(checks.map((c) => [c.name, c.ok, c.code]), [['SWAP_A', false, 'VAULT_DECRYPT_FAILED'], ['SWAP_B', false, 'VAULT_DECRYPT_FAILED']]);
    // The swapped rows are still as the attacker left them: nothing was "repaired" or overwritten.
    const after = new DatabaseSync(Vault.databasePath(dir), { readOnly: true });
    const nowA = after.prepare('SELECT ciphertext FROM secret_versions WHERE secret_id = ?').get(a.id) as { ciphertext: Uint8Array };
    after.close();
    assert.deepEqual(Buffer.from(nowA.ciphertext), Buffer.from(rowB.ciphertext));
  });
});

describe('passphrase key provider', () => {
  it('derives the key with argon2id and refuses a wrong passphrase', async () => {
    const dir = join(root, 'pass');
    const good = 'correct horse battery staple';
    const vault = await Vault.init({ dir, keyProvider: 'passphrase', readPassphrase: async () => good });
    assert.equal(vault.keyProvider.kind, 'passphrase');
    if (vault.keyProvider.kind === 'passphrase') assert.equal(vault.keyProvider.kdf.algorithm, 'argon2id');
    const { id } = await vault.createSecret({ name: 'P', value: Buffer.from('passphrase-value') });
    await vault.close();
    await assert.rejects(Vault.open({ dir, readPassphrase: async () => 'wrong horse battery staple' }), (e) => isAivaultError(e, 'VAULT_KEY_MISMATCH'));
    const reopened = await Vault.open({ dir, readPassphrase: async () => good });
    assert.equal((await reopened.revealSecret(id)).toString(), 'passphrase-value');
    await reopened.close();
  });

  it('refuses a short passphrase at init', async () => {
    await assert.rejects(Vault.init({ dir: join(root, 'short'), keyProvider: 'passphrase', readPassphrase: async () => 'short' }), (e) => isAivaultError(e, 'INVALID_ARGUMENT'));
  });
});
