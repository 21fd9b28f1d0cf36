// Where committed audit batches go. One-shot CLI commands and PostgreSQL (whose commits are
// I/O the event loop awaits anyway) commit through the vault's own storage. The daemon on the
// embedded engine commits through a connection of its own that never blocks the event loop:
// it waits for another process's write lock with timers instead of inside SQLite, and with
// `full` durability it flushes the commit to disk on libuv's thread pool before the records
// count as written, both files at once (the log, and its anchor in vault.db).

import { fstatSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AivaultError } from '../errors.ts';
import { AUDIT_FILE, BUSY_TIMEOUT_MS, SqliteStorage, isBusy } from '../storage/sqlite.ts';
import type { AuditAppend, AuditOutcomeUpdate, AuditSealer, AuditStorage } from '../storage/types.ts';

/**
 * `full`: an audit record is flushed to disk before the request it records goes upstream.
 * `crash-safe`: it is in the write-ahead log first (it survives the process being killed,
 * and the request is still refused if it cannot be written), and on disk at the next
 * checkpoint, so a power loss can drop the last records.
 */
export type AuditDurability = 'full' | 'crash-safe';

export interface AuditWriter {
  write(appends: readonly AuditAppend[], outcomes: readonly AuditOutcomeUpdate[]): Promise<number[]>;
  close(): Promise<void>;
}

/** Commits through `storage`; `owned` storage is closed with the writer. */
export function storageWriter(storage: AuditStorage & { close(): Promise<void> }, sealer: AuditSealer, owned = false): AuditWriter {
  return {
    write: (appends, outcomes) => storage.writeAudit(appends, outcomes, sealer),
    close: async () => {
      if (owned) await storage.close();
    },
  };
}

/** Flushes files' written data to disk (fdatasync), off the event loop. */
export interface FileSync {
  sync(path: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Syncs through a handle kept open per file, not an open and a close per commit (they cost
 * more than the flush's own call on the loop). SQLite deletes a write-ahead log only when its
 * last connection closes, and the writer's own holds both open: a log found unlinked all the
 * same (its handle's link count 0) was replaced behind the process's back, and flushing the
 * file now at its path would leave the records just written unflushed, so nothing is.
 */
export function keptFileSync(): FileSync {
  const handles = new Map<string, Promise<FileHandle>>();
  const handle = async (path: string): Promise<FileHandle> => {
    const kept = handles.get(path);
    if (kept !== undefined) {
      const file = await kept;
      if (fstatSync(file.fd).nlink > 0) return file;
      throw new AivaultError('VAULT_TAMPERED', `${path} was removed or replaced while this process had it open; what was just written to it is not flushed: restart it on the vault as it now is`);
    }
    const opened = open(path, 'r');
    handles.set(path, opened);
    opened.catch(() => handles.delete(path));
    return opened;
  };
  return {
    sync: async (path) => (await handle(path)).datasync(),
    async close() {
      const all = [...handles.values()];
      handles.clear();
      await Promise.all(all.map(async (h) => (await h).close()).map((p) => p.catch(() => {})));
    },
  };
}

/** First wait for a lock another process holds; each retry waits twice as long, up to the last. */
const LOCK_WAITS_MS = [1, 2, 4, 8, 16, 32, 64];

/**
 * The daemon's writer on the embedded engine (vault.db at `path`). Its connection commits
 * with synchronous=NORMAL: in the write-ahead logs, where a killed process loses nothing;
 * `full` then flushes both logs before the batch resolves, so an acknowledged record
 * survives a power loss, as synchronous=FULL would make it, without the loop waiting.
 * `files` does the flushing (tests watch it).
 */
export function sqliteAuditWriter(path: string, durability: AuditDurability, sealer: AuditSealer, files: FileSync = keptFileSync()): AuditWriter {
  const storage = SqliteStorage.open(path, { synchronous: 'NORMAL', waitForLock: false });
  const logs = durability === 'full' ? [`${path}-wal`, join(dirname(path), `${AUDIT_FILE}-wal`)] : [];
  const commit = async (appends: readonly AuditAppend[], outcomes: readonly AuditOutcomeUpdate[]): Promise<number[]> => {
    const giveUp = performance.now() + BUSY_TIMEOUT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await storage.writeAudit(appends, outcomes, sealer);
      } catch (err) {
        if (!isBusy(err) || performance.now() >= giveUp) throw err;
        await sleep(LOCK_WAITS_MS[Math.min(attempt, LOCK_WAITS_MS.length - 1)]);
      }
    }
  };
  return {
    async write(appends, outcomes) {
      const seqs = await commit(appends, outcomes);
      await Promise.all(logs.map((log) => files.sync(log)));
      return seqs;
    },
    async close() {
      await files.close();
      await storage.close();
    },
  };
}
