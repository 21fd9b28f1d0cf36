// The daemon's audit writer on the embedded engine: a commit that waits (for the disk, or for
// another process's lock) holds no other request up; nothing counts as written before it is
// flushed (with `full`); and it still fails closed.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { Vault } from '../../src/vault/vault.ts';
import { keptFileSync, sqliteAuditWriter } from '../../src/audit/writer.ts';
import { createSealer } from '../../src/audit/chain.ts';
import { createSecretKey } from 'node:crypto';

process.umask(0o077);
const root = mkdtempSync(join(tmpdir(), 'aivault-audit-writer-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function vaultAt(name: string, durability: 'full' | 'crash-safe'): Promise<Vault> {
  const vault = await Vault.init({ dir: join(root, name), keyProvider: 'env', env: { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') } });
  await vault.setAuditDurability(durability);
  return vault;
}

describe("the daemon's audit writer", () => {
  for (const durability of ['full', 'crash-safe'] as const) {
    it(`commits before the append resolves, and chains what it commits (${durability})`, async () => {
      const vault = await vaultAt(`commit-${durability}`, durability);
      const seqs = await Promise.all(Array.from({ length: 50 }, (_, i) => vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow', reason: String(i) })));
      assert.equal(new Set(seqs).size, 50);
      // A connection of the test's own sees the last record the moment its append resolved.
      const db = new DatabaseSync(join(root, `commit-${durability}`, 'audit.db'), { readOnly: true });
      const last = db.prepare('SELECT max(seq) AS seq FROM audit_log').get() as { seq: number };
      db.close();
      assert.equal(last.seq, Math.max(...seqs));
      assert.deepEqual(await vault.audit.verify(), { ok: true, count: Math.max(...seqs) });
      await vault.close();
    });
  }

  it('keeps the event loop free while a commit waits for the write lock', async () => {
    const vault = await vaultAt('lock', 'full');
    // Another writer holds vault.db (where the log's anchor is) for a while.
    const other = new DatabaseSync(join(root, 'lock', 'vault.db'));
    other.exec('BEGIN IMMEDIATE');
    let committed = false;
    const append = vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' }).then((seq) => {
      committed = true;
      return seq;
    });
    // Timers still fire on this thread while the append waits; a commit on the event loop
    // would have blocked it in SQLite's busy wait until the lock was gone.
    const ticks: number[] = [];
    for (let i = 0; i < 5; i++) {
      await sleep(20);
      ticks.push(i);
    }
    assert.equal(committed, false, 'the record cannot be committed while another writer holds the lock');
    assert.equal(ticks.length, 5);
    other.exec('ROLLBACK');
    other.close();
    assert.equal(await append, 2);
    await vault.close();
  });

  it('with full durability, a batch counts as written only once both logs are flushed', async () => {
    const dir = join(root, 'flush');
    const vault = await Vault.init({ dir, keyProvider: 'env', env: { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') } });
    await vault.close();
    const flushing: Array<{ path: string; done: () => void }> = [];
    const writer = sqliteAuditWriter(join(dir, 'vault.db'), 'full', createSealer(createSecretKey(randomBytes(32))), { sync: (path) => new Promise<void>((done) => flushing.push({ path, done })), close: async () => {} });
    let written = false;
    const write = writer.write([{ entry: { at: new Date().toISOString(), actor: 'a', action: 'x', target: null, capability: null, method: null, host: null, path: null, decision: 'allow', reason: null } }], []).then((seqs) => {
      written = true;
      return seqs;
    });
    while (flushing.length < 2) await sleep(5);
    assert.deepEqual(flushing.map((f) => f.path).sort(), [join(dir, 'audit.db-wal'), join(dir, 'vault.db-wal')]);
    flushing[0]!.done();
    await sleep(20);
    assert.equal(written, false, 'acknowledged before the second log was flushed');
    flushing[1]!.done();
    assert.equal((await write).length, 1);
    await writer.close();
  });

  it('flushes through a handle kept open, opened again when its file was replaced', async () => {
    const path = join(root, 'kept-log');
    /** What this process holds open of `path`: its current file, or one since unlinked. */
    const held = () => readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } }).filter((target) => target.startsWith(path));
    writeFileSync(path, 'one');
    const files = keptFileSync();
    await files.sync(path);
    await files.sync(path);
    assert.deepEqual(held(), [path], 'one handle, kept between flushes');
    unlinkSync(path);
    writeFileSync(path, 'two');
    await files.sync(path);
    assert.deepEqual(held(), [path], 'the handle on the unlinked file is dropped for one on the new file');
    await files.close();
    assert.deepEqual(held(), []);
  });

  it('a vault that is not there is refused when the daemon starts, with a stable code', () => {
    assert.throws(() => sqliteAuditWriter(join(root, 'missing', 'vault.db'), 'full', createSealer(createSecretKey(randomBytes(32)))), (err) => isAivaultError(err, 'VAULT_NOT_INITIALIZED'));
  });

  it('an append that cannot be committed is refused, and the log goes on after', async () => {
    const vault = await vaultAt('refused', 'crash-safe');
    await vault.audit.append({ actor: 'owner:x', action: 'warm', decision: 'allow' });
    // A trigger planted in the log's file: every write transaction refuses the file.
    const db = new DatabaseSync(join(root, 'refused', 'audit.db'));
    db.exec('CREATE TRIGGER planted AFTER INSERT ON audit_log BEGIN SELECT 1; END');
    await assert.rejects(vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' }), (err) => isAivaultError(err, 'VAULT_TAMPERED'));
    db.exec('DROP TRIGGER planted');
    db.close();
    assert.ok((await vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' })) > 1);
    await vault.close();
  });

  // What the writer itself committed is not checked again at its next commit; anything changed
  // behind its back still is: an anchor rolled back, or the log cut with its head put back.
  const putBack = {
    anchor: { file: 'vault.db', read: "SELECT value FROM meta WHERE key = 'audit_anchor'", write: "UPDATE meta SET value = ? WHERE key = 'audit_anchor'", cut: undefined },
    'log cut to an earlier head': { file: 'audit.db', read: "SELECT value FROM audit_meta WHERE key = 'head'", write: "UPDATE audit_meta SET value = ? WHERE key = 'head'", cut: 'DELETE FROM audit_log WHERE seq > 3' },
  };
  for (const [what, t] of Object.entries(putBack)) {
    it(`a running writer records an ${what} put back while it runs`, async () => {
      const vault = await vaultAt(`behind-${what.split(' ')[0]}`, 'crash-safe');
      for (let i = 0; i < 3; i++) await vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' });
      const db = new DatabaseSync(join(root, `behind-${what.split(' ')[0]}`, t.file));
      const old = (db.prepare(t.read).get() as { value: string }).value;
      for (let i = 0; i < 2; i++) await vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' });
      if (t.cut) db.exec(t.cut);
      db.prepare(t.write).run(old);
      db.close();
      await vault.audit.append({ actor: 'agent:a', action: 'after', decision: 'allow' });
      const note = (await vault.audit.list()).find((r) => r.action === 'audit.discontinuity');
      assert.equal(note?.reason, 'ANCHOR_MISMATCH');
      await vault.close();
    });
  }
});
