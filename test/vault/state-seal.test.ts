// The vault's state against its seal: an attacker with write access to vault.db (and not
// the vault key) edits it with plain SQL; `aivault secrets verify` must say so.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { createSealer } from '../../src/audit/chain.ts';
import { deriveVaultKeys } from '../../src/vault/keys.ts';
import { Vault } from '../../src/vault/vault.ts';
import { runCli } from '../helpers/cli.ts';

// Copies of a vault must be private like the original (the vault directory rule).
process.umask(0o077);
const root = mkdtempSync(join(tmpdir(), 'aivault-seal-'));
const master = randomBytes(32);
const env = { AIVAULT_MASTER_KEY: master.toString('base64') };
const pristine = join(root, 'pristine');
after(() => rmSync(root, { recursive: true, force: true }));

function copy(name: string, edit?: (db: DatabaseSync) => void): string {
  const dir = join(root, name);
  cpSync(pristine, dir, { recursive: true });
  if (edit) {
    const db = new DatabaseSync(join(dir, 'vault.db'));
    edit(db);
    db.close();
  }
  return dir;
}

async function secretsVerify(dir: string): Promise<{ code: number; problems: string[] }> {
  const r = await runCli(['secrets', 'verify', '--json'], { env: { ...env, AIVAULT_DIR: dir } });
  const out = r.stdout ? (JSON.parse(r.stdout) as { problems: string[] }) : { problems: [] };
  if (r.code !== 0) assert.equal(JSON.parse(r.stderr).error.code, 'VAULT_TAMPERED', r.stderr);
  return { code: r.code, problems: out.problems };
}

describe('vault state seal', () => {
  before(async () => {
    const vault = await Vault.init({ dir: pristine, keyProvider: 'env', env });
    await vault.createSecret({ name: 'SEAL_A', value: Buffer.from('seal-a-value-1') });
    await vault.createSecret({ name: 'SEAL_B', value: Buffer.from('seal-b-value-1') });
    await vault.rotateSecret('SEAL_A', Buffer.from('seal-a-value-2'));
    await vault.close();
  });

  it('a vault changed only by aivault verifies', async () => {
    const r = await secretsVerify(copy('clean'));
    assert.deepEqual(r, { code: 0, problems: [] });
  });

  const attacks: Array<[string, (db: DatabaseSync) => void, RegExp]> = [
    ["a secret's row deleted", (db) => db.exec("DELETE FROM secrets WHERE name = 'SEAL_B'"), /secrets, secret_versions/],
    ['a secret rolled back to its previous version', (db) => db.exec("UPDATE secrets SET current_version = 1 WHERE name = 'SEAL_A'"), /: secrets$/],
    ["a secret's scope widened", (db) => db.exec("UPDATE secrets SET groups = '[\"w/g\"]' WHERE name = 'SEAL_B'"), /: secrets$/],
    ['an agent added', (db) => db.prepare("INSERT INTO agents (id, name, token_hash, status, created_at) VALUES (?, 'planted', 'x', 'active', '2026-01-01')").run(randomUUID()), /: agents$/],
    ['the seal itself deleted', (db) => db.exec("DELETE FROM meta WHERE key = 'state_seal'"), /seal is missing/],
    ["the seal's MAC altered", (db) => db.exec("UPDATE meta SET value = replace(value, '\"mac\":\"', '\"mac\":\"0') WHERE key = 'state_seal'"), /forged or damaged/],
  ];
  for (const [i, [name, edit, problem]] of attacks.entries()) {
    it(`secrets verify fails after ${name}`, async () => {
      const dir = copy(name.replace(/\W+/g, '-'), edit);
      // The command once (exit code and error), the vault's own check for the rest: same code, faster.
      if (i === 0) {
        const r = await secretsVerify(dir);
        assert.equal(r.code, 6);
        assert.match(r.problems.join('\n'), problem);
        return;
      }
      const vault = await Vault.open({ dir, env });
      try {
        assert.match((await vault.verifySecrets()).problems.join('\n'), problem);
      } finally {
        await vault.close();
      }
    });
  }

  it('secrets verify fails when an older vault.db (a consistent older state) is put back beside the current audit.db', async () => {
    const older = join(root, 'older');
    cpSync(pristine, older, { recursive: true });
    const vault = await Vault.open({ dir: older, env });
    await vault.rotateSecret('SEAL_B', Buffer.from('seal-b-value-2'));
    await vault.close();
    cpSync(join(pristine, 'vault.db'), join(older, 'vault.db'));
    const r = await secretsVerify(older);
    assert.equal(r.code, 6);
    assert.match(r.problems.join('\n'), /^audit anchor: the log ends at \d+ but the vault's storage anchors \d+/m);
  });

  it('`secrets verify` runs SQLite\'s integrity check and reports a zeroed page instead of saying ok', async () => {
    const dir = copy('zeroed');
    const db = new DatabaseSync(join(dir, 'vault.db'));
    const { rootpage } = db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'owners'").get() as { rootpage: number };
    const { page_size: pageSize } = db.prepare('PRAGMA page_size').get() as { page_size: number };
    db.close();
    const fd = openSync(join(dir, 'vault.db'), 'r+');
    writeSync(fd, Buffer.alloc(pageSize), 0, pageSize, (rootpage - 1) * pageSize);
    closeSync(fd);
    const r = await secretsVerify(dir);
    assert.equal(r.code, 6);
    assert.match(r.problems.join('\n'), /^storage: /m);
  });

  it('a vault from before seals is sealed (and its log anchored) on its first unlock; later tampering shows', async () => {
    const dir = copy('legacy', (db) => {
      // What schema 14 left: no seal, no anchor, a head without an outcome count (MAC'd the old way).
      db.exec("DELETE FROM meta WHERE key IN ('state_seal', 'audit_anchor'); PRAGMA user_version = 14");
    });
    const audit = new DatabaseSync(join(dir, 'audit.db'));
    const vaultId = (new DatabaseSync(join(dir, 'vault.db'), { readOnly: true }).prepare("SELECT value FROM meta WHERE key = 'vault_id'").get() as { value: string }).value;
    const head = JSON.parse((audit.prepare("SELECT value FROM audit_meta WHERE key = 'head'").get() as { value: string }).value) as { seq: number; hash: string };
    const sealer = createSealer(deriveVaultKeys(master, vaultId).audit);
    audit.prepare("UPDATE audit_meta SET value = ? WHERE key = 'head'").run(JSON.stringify({ seq: head.seq, hash: head.hash, mac: sealer.headMac({ seq: head.seq, hash: head.hash }) }));
    audit.close();

    const vault = await Vault.open({ dir, env });
    try {
      assert.deepEqual((await vault.verifySecrets()).problems, []);
      assert.deepEqual(await vault.audit.verify(), { ok: true, count: head.seq + 1 });
      assert.equal((await vault.audit.list()).at(-1)!.action, 'vault.seal');
    } finally {
      await vault.close();
    }
    const db = new DatabaseSync(join(dir, 'vault.db'));
    db.exec("DELETE FROM secrets WHERE name = 'SEAL_A'");
    db.close();
    assert.equal((await secretsVerify(dir)).code, 6);
  });
});
