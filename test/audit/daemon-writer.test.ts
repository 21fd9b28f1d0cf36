// The daemon's audit writer on the embedded engine: a commit that waits (for the disk, or for
// another process's lock) holds no other request up; nothing counts as written before it is
// flushed (with `full`); and it still fails closed.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, linkSync, mkdtempSync, readdirSync, readlinkSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { spawn, spawnSync } from 'node:child_process';
import { SqliteStorage } from '../../src/storage/sqlite.ts';
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

  it('flushes through a handle kept open, and refuses to flush a file replaced behind it', async () => {
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
    // Flushing the new file would leave what was written to the old one unflushed.
    await assert.rejects(files.sync(path), (err) => isAivaultError(err, 'VAULT_TAMPERED'));
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
  // behind its back still is, and a head behind the one it last wrote is a log put back (the
  // anchor is not under the state seal, so it can be put back with the log).
  type Tamper = (db: DatabaseSync, h0: { text: string; seq: number }, h1: string) => void;
  const cutTo = (db: DatabaseSync, seq: number) => db.prepare('DELETE FROM audit.audit_log WHERE seq > ?').run(seq);
  const setHead = (db: DatabaseSync, text: string) => db.prepare("UPDATE audit.audit_meta SET value = ? WHERE key = 'head'").run(text);
  const setAnchor = (db: DatabaseSync, text: string) => db.prepare("UPDATE meta SET value = ? WHERE key = 'audit_anchor'").run(text);
  const putBack: Record<string, Tamper> = {
    'an anchor rolled back': (db, h0) => setAnchor(db, h0.text),
    'a log cut with its head put back': (db, h0) => (cutTo(db, h0.seq), setHead(db, h0.text)),
    'a log cut with its head and anchor put back together': (db, h0) => (cutTo(db, h0.seq), setHead(db, h0.text), setAnchor(db, h0.text)),
    'a log cut several commits back, its anchor one commit ahead of it': (db, h0, h1) => (cutTo(db, h0.seq), setHead(db, h0.text), setAnchor(db, h1)),
  };
  for (const [what, tamper] of Object.entries(putBack)) {
    it(`a running writer records ${what} while it runs`, async () => {
      const name = `behind-${Object.keys(putBack).indexOf(what)}`;
      const vault = await vaultAt(name, 'crash-safe');
      const db = new DatabaseSync(join(root, name, 'vault.db'));
      db.prepare('ATTACH DATABASE ? AS audit').run(join(root, name, 'audit.db'));
      const headText = () => (db.prepare("SELECT value FROM audit.audit_meta WHERE key = 'head'").get() as { value: string }).value;
      for (let i = 0; i < 3; i++) await vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' });
      const h0 = { text: headText(), seq: (JSON.parse(headText()) as { seq: number }).seq };
      await vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' });
      const h1 = headText();
      for (let i = 0; i < 3; i++) await vault.audit.append({ actor: 'agent:a', action: 'owner-change', decision: 'allow' });
      // Put back while the writer runs (another process, or someone at the files).
      db.exec('BEGIN IMMEDIATE');
      tamper(db, h0, h1);
      db.exec('COMMIT');
      db.close();
      await vault.audit.append({ actor: 'agent:a', action: 'after', decision: 'allow' });
      const note = (await vault.audit.list()).find((r) => r.action === 'audit.discontinuity');
      assert.equal(note?.reason, 'ANCHOR_MISMATCH');
      assert.equal((await vault.audit.verify()).ok, false);
      await vault.close();
    });
  }

  it('refuses to go on when a vault file is replaced under it (its writes would go to a file no one sees)', async () => {
    const vault = await vaultAt('swapped', 'crash-safe');
    await vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' });
    const dir = join(root, 'swapped');
    // A current copy renamed over the live file: the process still holds the old inode.
    const db = new DatabaseSync(join(dir, 'vault.db'));
    db.prepare('VACUUM INTO ?').run(join(root, 'swapped-copy.db'));
    db.close();
    renameSync(join(root, 'swapped-copy.db'), join(dir, 'vault.db'));
    await assert.rejects(vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' }), (err) => isAivaultError(err, 'VAULT_TAMPERED') && /vault\.db was replaced/.test(err.message));
    await sleep(15);
    await assert.rejects(vault.storage.generation(), (err) => isAivaultError(err, 'VAULT_TAMPERED'));
    await vault.close().catch(() => {});
  });

  it('keeps an outcome whose commit was refused, and writes it once the log can be written again', async () => {
    const vault = await vaultAt('outcome-kept', 'crash-safe');
    const seq = await vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' });
    const db = new DatabaseSync(join(root, 'outcome-kept', 'audit.db'));
    db.exec('CREATE TRIGGER planted AFTER UPDATE ON audit_log BEGIN SELECT 1; END');
    // The request's answer came back while the trigger stood: its commit is refused.
    vault.audit.complete(seq, { status: 200, bytesOut: 5 });
    await vault.audit.flush();
    db.exec('DROP TRIGGER planted');
    db.close();
    await vault.audit.flush();
    const record = (await vault.audit.list()).find((r) => r.seq === seq);
    assert.deepEqual(record?.outcome, { status: 200, bytesOut: 5 });
    assert.equal((await vault.audit.verify()).ok, true);
    await vault.close();
  });

  it('audit verify gives no false alarm while the writer commits records and outcomes beside it', async () => {
    const vault = await vaultAt('verify-under-load', 'crash-safe');
    const draft = { actor: 'agent:a', action: 'invoke', decision: 'allow' } as const;
    const earlier = await Promise.all(Array.from({ length: 2500 }, () => vault.audit.append(draft)));
    // A daemon commits between every page the walk reads (and after the last): a record, and
    // an outcome for a record the walk has already passed.
    const readAudit = vault.storage.readAudit.bind(vault.storage);
    vault.storage.readAudit = async (filter) => {
      const page = await readAudit(filter);
      vault.audit.complete(earlier.shift()!, { status: 200 });
      await vault.audit.append(draft);
      return page;
    };
    for (let i = 0; i < 3; i++) {
      const result = await vault.audit.verify();
      assert.equal(result.ok, true, result.problem);
    }
    await vault.close();
  });

  for (const log of ['vault.db-wal', 'audit.db-shm']) {
    it(`refuses to go on when ${log} is replaced under it, and stays refused when it is put back`, async () => {
      const name = `swapped-${log}`;
      const vault = await vaultAt(name, 'full');
      await vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' });
      const live = join(root, name, log);
      const kept = join(root, `${name}-kept`);
      linkSync(live, kept);
      cpSync(live, `${live}.copy`);
      renameSync(`${live}.copy`, live);
      await assert.rejects(vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' }), (err) => isAivaultError(err, 'VAULT_TAMPERED') && err.message.includes(log));
      // The original put back (a hard link kept): still refused, until a restart.
      renameSync(kept, live);
      await assert.rejects(vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' }), (err) => isAivaultError(err, 'VAULT_TAMPERED'));
      await vault.close().catch(() => {});
    });
  }

  it('refuses to extend the chain from a stored head that is no position (a seq below 1 would hide what it writes)', async () => {
    const vault = await vaultAt('negative-head', 'crash-safe');
    await vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' });
    const db = new DatabaseSync(join(root, 'negative-head', 'vault.db'));
    db.prepare('ATTACH DATABASE ? AS audit').run(join(root, 'negative-head', 'audit.db'));
    const forged = JSON.stringify({ seq: -1000, hash: 'f'.repeat(64), outcomes: 0, prev: null, mac: '0'.repeat(64) });
    db.prepare("UPDATE audit.audit_meta SET value = ? WHERE key = 'head'").run(forged);
    db.prepare("UPDATE meta SET value = ? WHERE key = 'audit_anchor'").run(forged);
    db.close();
    await assert.rejects(vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' }), (err) => isAivaultError(err, 'VAULT_CORRUPTED'));
    assert.ok((await vault.audit.list()).every((r) => r.seq >= 1));
    await vault.close();
  });

  // An open that waited on a lock while holding the files could be left with the old ones
  // (swapped for copies, or moved away) by whoever holds the lock: it lets go and starts again.
  for (const [files, how] of [[['vault.db'], 'over'], [['vault.db-wal', 'vault.db-shm'], 'over'], [['vault.db-shm'], 'away']] as const) {
    it(`opens the files as they are once a lock is let go, not those ${how === 'over' ? 'replaced' : 'moved away'} meanwhile (${files.join(', ')})`, async () => {
      const dir = join(root, `open-race-${files.join('-')}-${how}`);
      const vault = await Vault.init({ dir, keyProvider: 'env', env: { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') } });
      await vault.close();
      const script = `
        const { DatabaseSync } = require('node:sqlite');
        const { cpSync, mkdirSync, renameSync } = require('node:fs');
        const { join } = require('node:path');
        const dir = ${JSON.stringify(dir)};
        const db = new DatabaseSync(join(dir, 'audit.db'));
        db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE');
        process.stdout.write('locked\\n');
        setTimeout(() => {
          mkdirSync(join(dir, 'x'));
          for (const f of ${JSON.stringify(files)}) {
            try {
              cpSync(join(dir, f), join(dir, f + '.copy'));
            } catch {
              continue; // not there: nobody holds it open
            }
            if (${JSON.stringify(how)} === 'away') renameSync(join(dir, f), join(dir, 'x', f));
            renameSync(join(dir, f + '.copy'), join(dir, f));
          }
          db.exec('COMMIT');
          db.close();
        }, 500);`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((resolve) => child.stdout!.once('data', resolve));
      const storage = SqliteStorage.open(join(dir, 'vault.db'));
      try {
        const held = readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } }).filter((t) => t.startsWith(dir));
        assert.ok(held.length > 0);
        assert.deepEqual(held.filter((t) => t.endsWith(' (deleted)') || t.startsWith(join(dir, 'x'))), [], 'no old file held');
        assert.ok((await storage.generation()) > 0);
      } finally {
        await storage.close();
        await new Promise((resolve) => child.once('exit', resolve));
      }
    });
  }

  it('refuses a WAL index moved away while the open waited inside SQLite (all read marks held: no busy answer to retry on)', { skip: (process.platform !== 'linux' && 'reads /proc') || (spawnSync('python3', ['-c', 'import fcntl']).status !== 0 && 'takes byte-range locks with python3') }, async () => {
    const dir = join(root, 'open-race-read-marks');
    const vault = await Vault.init({ dir, keyProvider: 'env', env: { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') } });
    await vault.close();
    // Another connection keeps the write-ahead indexes in place, as a running CLI would.
    const keeper = new DatabaseSync(join(dir, 'vault.db'));
    keeper.prepare('ATTACH DATABASE ? AS audit').run(join(dir, 'audit.db'));
    keeper.exec('SELECT count(*) FROM meta; SELECT count(*) FROM audit.audit_log');
    // Another process takes every read mark of audit.db's index (SQLite then waits by itself,
    // whatever its busy timeout), moves vault.db's index away meanwhile, then lets go.
    const script = [
      'import fcntl, os, shutil, sys, time',
      `d = ${JSON.stringify(dir)}`,
      "f = open(os.path.join(d, 'audit.db-shm'), 'r+b')",
      'fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 123, 0)',
      "print('locked', flush=True)",
      'time.sleep(0.7)',
      "os.mkdir(os.path.join(d, 'x'))",
      "shutil.copyfile(os.path.join(d, 'vault.db-shm'), os.path.join(d, 'copy'))",
      "os.rename(os.path.join(d, 'vault.db-shm'), os.path.join(d, 'x', 'index.orig'))",
      "os.rename(os.path.join(d, 'copy'), os.path.join(d, 'vault.db-shm'))",
      'time.sleep(0.2)',
    ].join('\n');
    const child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => child.stdout!.once('data', resolve));
    try {
      assert.throws(() => SqliteStorage.open(join(dir, 'vault.db')), (err) => isAivaultError(err, 'VAULT_TAMPERED') && err.message.includes('index.orig'));
    } finally {
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
      keeper.close();
    }
  });
});
