import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { Vault } from '../../src/vault/vault.ts';
import { runCli } from '../helpers/cli.ts';

// Copies of a vault must be private like the original (the vault directory rule).
process.umask(0o077);
const root = mkdtempSync(join(tmpdir(), 'aivault-audit-'));
const env = { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') };
const pristine = join(root, 'pristine');
/** The same vault, copied whole (every file) after its first three records: an older backup. */
const older = join(root, 'older');
const OLDER_RECORDS = 3;
after(() => rmSync(root, { recursive: true, force: true }));

/** A copy of the pristine vault, tampered with by `edit` through raw SQL. */
function tampered(name: string, edit: (db: DatabaseSync) => void, file = 'audit.db'): string {
  const dir = join(root, name);
  cpSync(pristine, dir, { recursive: true });
  const db = new DatabaseSync(join(dir, file));
  edit(db);
  db.close();
  return dir;
}

/** A copy of the pristine vault with one of its files put back from the older backup. */
function withOlder(file: string): string {
  const dir = join(root, `older-${file}`);
  cpSync(pristine, dir, { recursive: true });
  cpSync(join(older, file), join(dir, file));
  return dir;
}

function headOf(dir: string): string {
  const db = new DatabaseSync(join(dir, 'audit.db'), { readOnly: true });
  const row = db.prepare("SELECT value FROM audit_meta WHERE key = 'head'").get() as { value: string };
  db.close();
  return row.value;
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
    let vault = await Vault.init({ dir: pristine, keyProvider: 'env', env });
    for (let i = 0; i < 6; i++) {
      if (i === OLDER_RECORDS - 1) {
        await vault.close();
        cpSync(pristine, older, { recursive: true });
        vault = await Vault.open({ dir: pristine, env });
      }
      await vault.createSecret({ name: `AUDIT_${i}`, value: Buffer.from(`v${i}-${randomBytes(4).toString('hex')}`) });
    }
    await vault.rotateSecret('AUDIT_0', Buffer.from('rotated-value'));
    await vault.deleteSecret('AUDIT_5');
    await vault.close();
  });

  it('verifies a whole chain and counts its records', async () => {
    assert.deepEqual(await verify(pristine), { ok: true, count: 9 });
    const r = await runCli(['audit', 'verify'], { env: { ...env, AIVAULT_DIR: pristine } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok: 9 records/);
  });

  it('records owner changes with their outcome', async () => {
    const vault = await Vault.open({ dir: pristine, env });
    const records = await vault.audit.list();
    await vault.close();
    assert.deepEqual(records.map((r) => r.action), ['vault.init', 'secret.create', 'secret.create', 'secret.create', 'secret.create', 'secret.create', 'secret.create', 'secret.rotate', 'secret.delete']);
    assert.ok(records.every((r) => r.actor === 'owner:local' && r.outcome !== null && r.outcome.error === undefined));
    assert.equal(records[7]!.target, 'secret:AUDIT_0@global');
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
    ['a rewritten head', (db) => db.exec("UPDATE audit_meta SET value = replace(value, '\"seq\":9', '\"seq\":7') WHERE key = 'head'"), 10],
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
    db.prepare("INSERT INTO audit_log (seq, at, actor, action, decision, prev_hash, hash) VALUES (10, '2026-01-01T00:00:00.000Z', 'owner:local', 'secret.create', 'allow', ?, ?)").run(last.hash, 'f'.repeat(64));
    db.close();
    const result = await verify(dir);
    assert.equal(result.brokenAt, 10);
  });

  // Rollbacks: each leaves a chain that is sound by itself; the head's count of outcomes
  // and the anchor in vault.db are what give them away.
  const rollbacks: Array<[string, () => string, RegExp]> = [
    ['every record and the head deleted', () => tampered('emptied', (db) => db.exec("DELETE FROM audit_log; DELETE FROM audit_meta")), /the log is empty/],
    ['every outcome and outcome MAC cleared', () => tampered('no-outcomes', (db) => db.exec('UPDATE audit_log SET outcome = NULL, outcome_mac = NULL')), /outcomes were removed/],
    ['one outcome cleared', () => tampered('one-outcome', (db) => db.exec('UPDATE audit_log SET outcome = NULL, outcome_mac = NULL WHERE seq = 8')), /counts 9 outcomes but the chain holds 8/],
    ['the newest records cut and an older head put back', () => {
      const head = headOf(older);
      return tampered('cut', (db) => {
        db.prepare('DELETE FROM audit_log WHERE seq > ?').run((JSON.parse(head) as { seq: number }).seq);
        db.prepare("UPDATE audit_meta SET value = ? WHERE key = 'head'").run(head);
      });
    }, /the log ends at 3 but the vault's storage anchors 9/],
    ['the whole older audit.db put back', () => withOlder('audit.db'), /the log ends at 3 but the vault's storage anchors 9/],
    ['the anchor deleted from vault.db', () => tampered('no-anchor', (db) => db.exec("DELETE FROM meta WHERE key = 'audit_anchor'"), 'vault.db'), /anchors nothing/],
    ['the older vault.db put back (audit.db kept)', () => withOlder('vault.db'), /the log ends at 9 but the vault's storage anchors 3/],
  ];
  for (const [name, make, problem] of rollbacks) {
    it(`verify fails after ${name}, and a later write keeps the evidence`, async () => {
      const dir = make();
      const result = await verify(dir);
      assert.equal(result.ok, false);
      assert.match(result.problem!, problem);
      // The next writer does not build over the rollback quietly: it records it, in the chain.
      const vault = await Vault.open({ dir, env });
      try {
        await vault.createSecret({ name: 'AFTER_ROLLBACK', value: Buffer.from('after-rollback-value') }).catch(() => {});
        const result = await vault.audit.verify();
        assert.equal(result.ok, false, 'still broken after a write');
      } finally {
        await vault.close();
      }
    });
  }

  it('`aivault audit verify` exits 6 on an emptied log', async () => {
    const dir = tampered('emptied-cli', (db) => db.exec('DELETE FROM audit_log; DELETE FROM audit_meta'));
    const r = await runCli(['audit', 'verify', '--json'], { env: { ...env, AIVAULT_DIR: dir } });
    assert.equal(r.code, 6, r.stdout);
    assert.equal(JSON.parse(r.stderr).error.code, 'AUDIT_CHAIN_BROKEN');
    assert.match(JSON.parse(r.stdout).problem, /the log is empty/);
  });

  for (const lagging of ['audit.db', 'vault.db']) {
    it(`a commit that reached only one file (${lagging} missed it, as after a crash between the two) fails verify until the next write records it`, async () => {
      const dir = join(root, `interrupted-${lagging}`);
      cpSync(pristine, dir, { recursive: true });
      cpSync(join(dir, lagging), join(root, `saved-${lagging}`));
      // One commit (one record), then the file that "missed" it put back as it was before.
      let vault = await Vault.open({ dir, env });
      await vault.audit.append({ actor: 'owner:local', action: 'test.last-commit', decision: 'allow' });
      await vault.close();
      cpSync(join(root, `saved-${lagging}`), join(dir, lagging));
      vault = await Vault.open({ dir, env });
      try {
        const first = await vault.audit.verify();
        assert.equal(first.ok, false);
        assert.match(first.problem!, /one commit apart/);
        // The next write says so in the chain (visible in `audit list`), and the chain verifies again.
        await vault.audit.append({ actor: 'owner:local', action: 'test.next', decision: 'allow' });
        assert.deepEqual((await vault.audit.verify()).ok, true);
        const records = await vault.audit.list();
        const note = records.find((r) => r.action === 'audit.discontinuity');
        assert.equal(note?.reason, 'COMMIT_INTERRUPTED');
      } finally {
        await vault.close();
      }
    });
  }

  it('`audit head` signs the head; `audit verify --against` catches a whole-vault restore that plain verify cannot', async () => {
    const dir = join(root, 'kept');
    cpSync(pristine, dir, { recursive: true });
    const cliEnv = { ...env, AIVAULT_DIR: dir };
    const head = await runCli(['audit', 'head'], { env: cliEnv });
    assert.equal(head.code, 0, head.stderr);
    const kept = JSON.parse(head.stdout) as { seq: number; hash: string; mac: string };
    assert.equal(kept.seq, 9);
    const file = join(root, 'kept-head.json');
    writeFileSync(file, head.stdout);
    const ok = await runCli(['audit', 'verify', '--against', file], { env: cliEnv });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /holds the kept head \(record 9\)/);
    // Every file of the vault put back from the older backup: consistent, so plain verify passes.
    rmSync(dir, { recursive: true });
    cpSync(older, dir, { recursive: true });
    assert.equal((await runCli(['audit', 'verify'], { env: cliEnv })).code, 0);
    const caught = await runCli(['audit', 'verify', '--against', file, '--json'], { env: cliEnv });
    assert.equal(caught.code, 6);
    assert.match(JSON.parse(caught.stdout).problem, /before the head kept outside \(9\)/);
    // A head not signed by this vault is refused, not trusted.
    writeFileSync(file, JSON.stringify({ ...kept, seq: 2 }));
    const forged = await runCli(['audit', 'verify', '--against', file, '--json'], { env: cliEnv });
    assert.equal(JSON.parse(forged.stderr).error.code, 'INVALID_ARGUMENT');
  });
});
