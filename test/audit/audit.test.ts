import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { Vault } from '../../src/vault/vault.ts';
import { runCli } from '../helpers/cli.ts';

const root = mkdtempSync(join(tmpdir(), 'aivault-audit-'));
const env = { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') };
const pristine = join(root, 'pristine');
after(() => rmSync(root, { recursive: true, force: true }));

/** A copy of the pristine vault, tampered with by `edit` through raw SQL. */
function tampered(name: string, edit: (db: DatabaseSync) => void): string {
  const dir = join(root, name);
  cpSync(pristine, dir, { recursive: true });
  const db = new DatabaseSync(join(dir, 'audit.db'));
  edit(db);
  db.close();
  return dir;
}

async function verify(dir: string) {
  const vault = await Vault.open({ dir, env });
  try {
    return await vault.audit.verify();
  } finally {
    await vault.close();
  }
}

describe('audit chain', () => {
  before(async () => {
    const vault = await Vault.init({ dir: pristine, keyProvider: 'env', env });
    for (let i = 0; i < 6; i++) await vault.createSecret({ name: `AUDIT_${i}`, value: Buffer.from(`v${i}-${randomBytes(4).toString('hex')}`) });
    await vault.rotateSecret('AUDIT_0', Buffer.from('rotated-value'));
    await vault.deleteSecret('AUDIT_5');
    await vault.close();
  });

  it('verifies a whole chain and counts its records', async () => {
    assert.deepEqual(await verify(pristine), { ok: true, count: 8 });
    const r = await runCli(['audit', 'verify'], { env: { ...env, AIVAULT_DIR: pristine } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok: 8 records/);
  });

  it('records owner changes with their outcome', async () => {
    const vault = await Vault.open({ dir: pristine, env });
    const records = await vault.audit.list();
    await vault.close();
    assert.deepEqual(records.map((r) => r.action), ['secret.create', 'secret.create', 'secret.create', 'secret.create', 'secret.create', 'secret.create', 'secret.rotate', 'secret.delete']);
    assert.ok(records.every((r) => r.actor === 'owner:local' && r.outcome !== null && r.outcome.error === undefined));
    assert.equal(records[6]!.target, 'secret:AUDIT_0@global');
    assert.equal(JSON.stringify(records).includes('rotated-value'), false);
  });

  const cases: Array<[string, (db: DatabaseSync) => void, number]> = [
    ['a changed byte in a record', (db) => db.exec("UPDATE audit_log SET path = '/v1/other' WHERE seq = 3"), 3],
    ['a changed actor', (db) => db.exec("UPDATE audit_log SET actor = 'agent:evil' WHERE seq = 5"), 5],
    ['a forged outcome', (db) => db.exec(`UPDATE audit_log SET outcome = '{"error":"NONE"}' WHERE seq = 2`), 2],
    ['a deleted record', (db) => db.exec('DELETE FROM audit_log WHERE seq = 4'), 4],
    ['two swapped records', (db) => {
      db.exec('UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = -1');
    }, 2],
    ['records cut off the end', (db) => db.exec('DELETE FROM audit_log WHERE seq >= 7'), 7],
    ['a rewritten head', (db) => db.exec("UPDATE audit_meta SET value = replace(value, '\"seq\":8', '\"seq\":6') WHERE key = 'head'"), 9],
  ];
  for (const [name, edit, brokenAt] of cases) {
    it(`fails at record ${brokenAt} after ${name}`, async () => {
      const dir = tampered(name.replace(/\W+/g, '-'), edit);
      const result = await verify(dir);
      assert.equal(result.ok, false);
      assert.equal(result.brokenAt, brokenAt, result.problem);
    });
  }

  it('a vault whose audit log file was removed refuses to open', async () => {
    const dir = join(root, 'no-audit');
    cpSync(pristine, dir, { recursive: true });
    rmSync(join(dir, 'audit.db'));
    await assert.rejects(Vault.open({ dir, env }), (e: unknown) => (e as { code?: string }).code === 'VAULT_CORRUPTED');
  });

  it('`aivault audit verify` exits 6 with the first broken sequence number', async () => {
    const dir = tampered('cli', (db) => db.exec("UPDATE audit_log SET action = 'secret.read' WHERE seq = 6"));
    const r = await runCli(['audit', 'verify', '--json'], { env: { ...env, AIVAULT_DIR: dir } });
    assert.equal(r.code, 6);
    assert.equal(JSON.parse(r.stdout).brokenAt, 6);
    assert.equal(JSON.parse(r.stderr).error.code, 'AUDIT_CHAIN_BROKEN');
  });

  it('a process without the vault key cannot extend the chain: a record appended with another key is caught', async () => {
    const dir = join(root, 'forged-extension');
    cpSync(pristine, dir, { recursive: true });
    const otherEnv = { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') };
    // Same data, different key: what an attacker without the key would produce.
    const forger = await Vault.init({ dir: join(root, 'forger'), keyProvider: 'env', env: otherEnv });
    await forger.close();
    const db = new DatabaseSync(join(dir, 'audit.db'));
    const last = db.prepare('SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as { hash: string };
    db.prepare("INSERT INTO audit_log (seq, at, actor, action, decision, prev_hash, hash) VALUES (9, '2026-01-01T00:00:00.000Z', 'owner:local', 'secret.create', 'allow', ?, ?)").run(last.hash, 'f'.repeat(64));
    db.close();
    const result = await verify(dir);
    assert.equal(result.brokenAt, 9);
  });
});
