// The vault's state against its seal: an attacker with write access to vault.db (and not
// the vault key) edits it with plain SQL; `aivault secrets verify` must say so.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { createSealer } from '../../src/audit/chain.ts';
import { deriveVaultKeys } from '../../src/vault/keys.ts';
import { isAivaultError } from '../../src/errors.ts';
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

  it("a change made outside aivault is never sealed by the owner's next write: the vault refuses to open for it", async () => {
    const dir = copy('laundered', (db) => db.prepare("INSERT INTO agents (id, name, token_hash, status, created_at) VALUES (?, 'planted', 'x', 'active', '2026-01-01')").run(randomUUID()));
    const write = await runCli(['agent', 'create', 'helper', '--json'], { env: { ...env, AIVAULT_DIR: dir } });
    assert.equal(write.code, 6, write.stderr);
    assert.equal(JSON.parse(write.stderr).error.code, 'VAULT_TAMPERED');
    const after = await secretsVerify(dir);
    assert.equal(after.code, 6);
    assert.match(after.problems.join('\n'), /: agents$/, 'still reported: nothing resealed it');
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
      await assert.rejects(Vault.open({ dir, env }), (e) => isAivaultError(e, 'VAULT_TAMPERED'), 'a tampered vault does not open for use');
      const vault = await Vault.open({ dir, env, toVerify: true });
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

describe('vault state seal: an emptied log is no pre-seal vault', () => {
  it('seal, anchor and every audit record removed and the mark planted: refused, nothing sealed', async () => {
    const dir = copy('emptied', (db) => {
      db.exec("DELETE FROM meta WHERE key IN ('state_seal', 'audit_anchor'); INSERT INTO meta (key, value) VALUES ('unsealed', '1')");
      db.prepare("INSERT INTO agents (id, name, token_hash, status, created_at) VALUES (?, 'planted', 'x', 'active', '2026-01-01')").run(randomUUID());
    });
    const audit = new DatabaseSync(join(dir, 'audit.db'));
    audit.exec('DELETE FROM audit_meta; DELETE FROM audit_log');
    audit.close();
    const write = await runCli(['agent', 'create', 'helper', '--json'], { env: { ...env, AIVAULT_DIR: dir } });
    assert.equal(write.code, 6, write.stderr);
    assert.equal(JSON.parse(write.stderr).error.code, 'VAULT_TAMPERED');
    assert.equal((await secretsVerify(dir)).code, 6, 'still reported: nothing sealed it');
  });
});

// Attacks that make aivault itself seal (or hide) a tampered state.
describe('vault state seal: what aivault must not seal or run', () => {
  const planted = (db: DatabaseSync) => {
    // An agent whose token the attacker knows (its hash is plain SHA-256), and a grant for it.
    const id = randomUUID();
    db.prepare("INSERT INTO agents (id, name, token_hash, status, created_at) VALUES (?, 'planted', ?, 'active', '2026-01-01')").run(id, createHash('sha256').update('attacker-token').digest('hex'));
    db.prepare("INSERT INTO grants (agent_id, capability, created_at) VALUES (?, 'github/repos.read', '2026-01-01')").run(id);
  };
  const cli = (dir: string, args: string[]) => runCli(args, { env: { ...env, AIVAULT_DIR: dir }, timeoutMs: 20_000 });
  const errorOf = (r: { stderr: string }) => (JSON.parse(r.stderr) as { error: { code: string; message: string } }).error;

  it('the pre-seal mark planted beside a seal is reported, never resealed, and ordinary commands refuse the vault', async () => {
    const dir = copy('planted-mark', (db) => {
      planted(db);
      db.exec("INSERT INTO meta VALUES ('unsealed', '1')");
    });
    for (let i = 0; i < 2; i++) {
      // Twice: the first verify must not have resealed what the second then finds.
      const r = await secretsVerify(dir);
      assert.equal(r.code, 6);
      assert.match(r.problems.join('\n'), /planted to have the state resealed/);
      assert.match(r.problems.join('\n'), /: agents, grants$/m);
    }
    const list = await cli(dir, ['agent', 'list', '--json']);
    assert.equal(list.code, 6, list.stderr);
    assert.equal(errorOf(list).code, 'VAULT_TAMPERED');
    assert.match(errorOf(list).message, /secrets verify/);
    assert.equal((await cli(dir, ['audit', 'verify', '--json'])).code, 0, 'audit verify opens it (the chain itself is intact)');
    assert.equal((await secretsVerify(dir)).code, 6);
  });

  it('a migration re-run (user_version put back to 14) does not mark a sealed vault for resealing', async () => {
    const dir = copy('rerun-migration', (db) => {
      planted(db);
      db.exec('PRAGMA user_version = 14');
    });
    for (let i = 0; i < 2; i++) {
      const r = await secretsVerify(dir);
      assert.equal(r.code, 6);
      assert.match(r.problems.join('\n'), /: agents, grants$/m);
    }
    const db = new DatabaseSync(join(dir, 'vault.db'), { readOnly: true });
    assert.equal(db.prepare("SELECT 1 FROM meta WHERE key = 'unsealed'").get(), undefined);
    db.close();
  });

  const objects: Array<[string, 'vault.db' | 'audit.db', string, RegExp]> = [
    [
      'a trigger that plants an agent inside the owner\'s next write',
      'vault.db',
      `CREATE TRIGGER sneak AFTER UPDATE ON meta WHEN NEW.key = 'generation' BEGIN
         INSERT OR IGNORE INTO agents (id, name, token_hash, status, created_at) VALUES ('a-sneak', 'sneak', 'x', 'active', '2026-01-01');
         UPDATE secrets SET current_version = 1 WHERE name = 'SEAL_A';
       END`,
      /vault\.db holds a trigger named "sneak"/,
    ],
    ['a trigger that undoes agent revoke', 'vault.db', "CREATE TRIGGER unrevoke AFTER UPDATE OF status ON agents BEGIN UPDATE agents SET status = 'active' WHERE id = NEW.id; END", /trigger named "unrevoke"/],
    ['a trigger in the audit log', 'audit.db', 'CREATE TRIGGER hush BEFORE INSERT ON audit_log BEGIN SELECT 1; END', /audit\.db holds a trigger named "hush"/],
    [
      'a view that never ends standing in for a table',
      'vault.db',
      `PRAGMA foreign_keys = OFF; DROP TABLE owners;
       CREATE VIEW owners AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)
         SELECT 'o' || i AS id, 'o' || i AS name, '' AS public_key, '' AS created_at FROM n`,
      /holds a view named "owners"/,
    ],
    [
      'a view that never ends standing in for the audit log',
      'audit.db',
      `DROP TABLE audit_log;
       CREATE VIEW audit_log AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)
         SELECT i AS seq, '' AS at, '' AS actor, '' AS action, NULL AS target, NULL AS capability, NULL AS method, NULL AS host, NULL AS path,
                'allow' AS decision, NULL AS reason, '' AS prev_hash, '' AS hash, NULL AS outcome, NULL AS outcome_mac FROM n`,
      /audit\.db holds a view named "audit_log"/,
    ],
  ];
  for (const [name, file, sql, message] of objects) {
    it(`${name}: every open refuses the vault, and both verifies report it (quickly)`, async () => {
      const dir = copy(name.replace(/\W+/g, '-'));
      const db = new DatabaseSync(join(dir, file));
      db.exec(sql);
      db.close();
      // The verify that reads the file the object sits in runs as a command (a hang is a kill, not a stall).
      const args = file === 'audit.db' ? ['audit', 'verify', '--json'] : ['secrets', 'verify', '--json'];
      const r = await cli(dir, args);
      assert.equal(r.code, 6, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(errorOf(r).code, 'VAULT_TAMPERED');
      assert.match(errorOf(r).message, message);
      await assert.rejects(Vault.open({ dir, env }), (err: Error & { code?: string }) => err.code === 'VAULT_TAMPERED' && message.test(err.message));
    });
  }

  it('a trigger planted while a process holds the vault open does not ride in its next write', async () => {
    const dir = copy('live-trigger');
    const vault = await Vault.open({ dir, env });
    try {
      const db = new DatabaseSync(join(dir, 'vault.db'));
      db.exec("CREATE TRIGGER sneak AFTER UPDATE ON meta WHEN NEW.key = 'generation' BEGIN UPDATE secrets SET current_version = 1 WHERE name = 'SEAL_A'; END");
      db.close();
      await assert.rejects(vault.createSecret({ name: 'SEAL_C', value: Buffer.from('seal-c-value-1') }), { code: 'VAULT_TAMPERED' });
    } finally {
      await vault.close();
    }
    const db = new DatabaseSync(join(dir, 'vault.db'), { readOnly: true });
    assert.equal((db.prepare("SELECT current_version AS v FROM secrets WHERE name = 'SEAL_A'").get() as { v: number }).v, 2);
    db.close();
  });

  it('a version row of the wrong type (table rebuilt without STRICT) is a finding, not a crash', async () => {
    const dir = copy('not-strict', (db) => {
      db.exec(`PRAGMA foreign_keys = OFF;
        CREATE TABLE sv (secret_id TEXT NOT NULL, version INTEGER NOT NULL, wrapped_key, ciphertext, fingerprint TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (secret_id, version));
        INSERT INTO sv SELECT * FROM secret_versions; UPDATE sv SET wrapped_key = 'text, not bytes';
        DROP TABLE secret_versions; ALTER TABLE sv RENAME TO secret_versions;`);
    });
    const r = await cli(dir, ['secrets', 'verify', '--json']);
    assert.equal(r.code, 6, r.stderr);
    assert.equal(errorOf(r).code, 'VAULT_TAMPERED');
    const out = JSON.parse(r.stdout) as { checks: Array<{ ok: boolean; code?: string }> };
    assert.ok(out.checks.length > 0 && out.checks.every((c) => !c.ok && c.code === 'VAULT_TAMPERED'), r.stdout);
  });
});
